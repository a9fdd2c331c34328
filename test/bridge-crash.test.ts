/**
 * Issue #14, the core promise: no acknowledged QoS 1 message published at the
 * edge is lost on its way to the upstream, whatever fails. The upstream is a
 * real Mosquitto; the edge is the wasmq CLI (so it can be kill -9'd) with an
 * LMDB data dir.
 */
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { after, before, describe, test } from "node:test";
import mqtt from "mqtt";
import { killSpawned, writeConfig } from "./broker-support.js";
import { Edge, FAST, Mosquitto, Tally, hasMosquitto, publishAll, sleep, until } from "./bridge-support.js";
import { tempDir } from "./helpers.js";

const dir = tempDir("wasmq-bridge-crash-");
after(async () => {
  await killSpawned();
  rmSync(dir, { recursive: true, force: true });
});

function edgeConfig(name: string, upstream: string, extra: Record<string, unknown> = {}, top: Record<string, unknown> = {}): string {
  return writeConfig(dir, `${name}.json`, {
    host: "127.0.0.1",
    port: 0,
    ws: false,
    data: `${dir}/${name}-data`,
    sys: false,
    log: { level: "info" },
    bridges: [{ name: "cloud", url: upstream, clientId: `edge-${name}`, ...FAST, out: [{ topic: "sensors/#", qos: 1, remotePrefix: "site1/" }], ...extra }],
    ...top,
  });
}

describe("bridge to Mosquitto: nothing acknowledged is lost", { skip: !hasMosquitto && "mosquitto not installed" }, () => {
  let upstream: Mosquitto;
  before(async () => {
    upstream = await Mosquitto.start(dir);
  });
  after(async () => {
    await upstream?.stop();
  });

  test("upstream frozen (SIGSTOP), messages published at the edge, edge kill -9'd and restarted, upstream resumed: every message arrives", async () => {
    const tally = await Tally.start(upstream.url, "site1/sensors/#");
    const edge = new Edge(edgeConfig("frozen", upstream.url));
    try {
      await edge.start();
      await edge.cli!.waitForLine((l) => /bridge cloud connected/.test(l.msg));
      // Some traffic through a healthy link first.
      await publishAll(edge.url, 50, (i) => `sensors/t${i % 5}`, "warm");
      await tally.waitDistinct(50);

      upstream.pause();
      const N = 400;
      await publishAll(edge.url, N, (i) => `sensors/t${i % 5}`, "frozen");
      // TCP is open but nothing answers: the edge must notice (keep alive / acknowledgement timeout).
      await edge.cli!.waitForLine((l) => /lost its connection/.test(l.msg));
      // Acknowledged at the edge with the upstream frozen: only the edge's queue holds them now.
      await edge.kill9();
      await edge.start();
      await edge.cli!.waitForLine((l) => /messages queued from before the restart/.test(l.msg));
      await sleep(500);
      upstream.resume();
      await tally.waitDistinct(50 + N);
      for (let i = 0; i < N; i++) assert.ok(tally.counts.get(`frozen${i}`)! >= 1, `frozen${i} arrived`);
      // QoS 1 allows duplicates after a crash; they are counted, never a loss.
      console.log(`# frozen+kill-9: ${N} sent, ${tally.distinct - 50} distinct arrived, ${tally.duplicates} duplicates`);
    } finally {
      await edge.stop();
      await tally.end();
    }
  });

  test("edge kill -9'd at random moments while publishers stream to it: every acknowledged message arrives", async () => {
    const tally = await Tally.start(upstream.url, "site1/sensors/#");
    const edge = new Edge(edgeConfig("live", upstream.url));
    const acked = new Set<string>();
    try {
      for (let round = 0; round < 4; round++) {
        await edge.start();
        const client = mqtt.connect(edge.url, { reconnectPeriod: 0, clientId: `streamer-${round}` });
        client.on("error", () => {});
        await new Promise((resolve) => client.once("connect", resolve));
        // Stream with up to 50 unacknowledged; kill -9 the edge at a random moment in the stream.
        let i = 0;
        let stop = false;
        const streaming = new Promise<void>((resolve) => {
          let outstanding = 0;
          const pump = () => {
            while (!stop && outstanding < 50) {
              const payload = `live${round}-${i++}`;
              outstanding++;
              client.publish(`sensors/k${i % 7}`, payload, { qos: 1 }, (err) => {
                outstanding--;
                if (!err) acked.add(payload);
                if (stop && outstanding === 0) resolve();
                else pump();
              });
            }
          };
          pump();
          client.once("close", () => resolve());
        });
        await sleep(200 + Math.random() * 800);
        await edge.kill9();
        stop = true;
        await streaming;
        client.end(true);
      }
      await edge.start();
      // Messages stored but whose PUBACK the kill cut off may arrive too: wait for the acknowledged ones.
      await until("every acknowledged message upstream", () => [...acked].every((p) => tally.counts.has(p)), 120_000);
      for (const p of acked) assert.ok(tally.counts.has(p), `${p} was acknowledged by the edge and arrived`);
      console.log(`# random kill -9: ${acked.size} acknowledged, ${tally.distinct} distinct arrived, ${tally.duplicates} duplicates`);
    } finally {
      await edge.stop();
      await tally.end();
    }
  });

  test("QoS 2 end to end: upstream restarted under traffic, edge kill -9'd: every message arrives", async () => {
    // The bridge speaks QoS 2 to the upstream; the tally reads at QoS 1 (counting every copy).
    const tally = await Tally.start(upstream.url, "site1/sensors/#");
    const edge = new Edge(edgeConfig("qos2", upstream.url, { out: [{ topic: "sensors/#", qos: 2, remotePrefix: "site1/" }] }, { metrics: { port: 0 } }));
    try {
      await edge.start();
      await edge.cli!.waitForLine((l) => /bridge cloud connected/.test(l.msg));
      const N = 600;
      const publishing = publishAll(edge.url, N / 2, (i) => `sensors/q${i % 3}`, "two", 0, 2);
      await sleep(50);
      await upstream.restart();
      await Promise.race([publishing, sleep(20_000).then(() => Promise.reject(new Error("publishing stuck")))]);
      await edge.kill9();
      await edge.start();
      await publishAll(edge.url, N / 2, (i) => `sensors/q${i % 3}`, "two", N / 2, 2);
      await tally.waitDistinct(N, 15_000);
      for (let i = 0; i < N; i++) assert.ok(tally.counts.get(`two${i}`)! >= 1, `two${i} arrived`);
      console.log(`# qos 2: ${N} sent, ${tally.distinct} distinct, ${tally.duplicates} duplicates`);
    } catch (err) {
      const line = edge.cli?.lines.find((l) => /admin API on/.test(l.msg));
      const url = /(http:\/\/\S+)\/metrics/.exec(line?.msg ?? "")?.[1];
      if (url) console.log(JSON.stringify(await (await fetch(`${url}/bridges`)).json()));
      console.log("missing", Array.from({ length: 600 }, (_, i) => i).filter((i) => !tally.counts.has(`two${i}`)).join(","));
      throw err;
    } finally {
      await edge.stop();
      await tally.end();
    }
  });

  test("upstream restarted under traffic: every message arrives, in order per topic", async () => {
    const tally = await Tally.start(upstream.url, "site1/sensors/#");
    const order = new Map<string, number[]>();
    tally.client.on("message", (topic, payload) => {
      const list = order.get(topic) ?? [];
      list.push(Number(payload.toString().slice("r".length)));
      order.set(topic, list);
    });
    const edge = new Edge(edgeConfig("restart", upstream.url));
    try {
      await edge.start();
      await edge.cli!.waitForLine((l) => /bridge cloud connected/.test(l.msg));
      const N = 1200;
      const publishing = publishAll(edge.url, N, (i) => `sensors/r${i % 3}`, "r");
      await sleep(100);
      await upstream.restart();
      await publishing;
      await tally.waitDistinct(N);
      for (let i = 0; i < N; i++) assert.ok(tally.counts.get(`r${i}`)! >= 1, `r${i} arrived`);
      // In order per topic: after removing repeats (a resend after the restart), each topic's sequence only grows.
      for (const [topic, seen] of order) {
        const firsts = seen.filter((v, i) => seen.indexOf(v) === i);
        const sorted = [...firsts].sort((a, b) => a - b);
        assert.deepEqual(firsts, sorted, `order on ${topic}`);
      }
      console.log(`# upstream restart: ${N} sent, ${tally.distinct} distinct, ${tally.duplicates} duplicates`);
    } catch (err) {
      console.log(edge.cli?.stdout);
      throw err;
    } finally {
      await edge.stop();
      await tally.end();
    }
  });
});
