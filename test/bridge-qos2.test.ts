/**
 * Issue #14: QoS 2 across a bridge is exactly once, across a lost link and a
 * kill -9 of the edge. A proxy between the edge and the upstream cuts the link
 * at an exact point of the QoS 2 exchange (test/mqtt-cut-proxy.ts):
 * - PUBCOMP withheld: the upstream released the message (its subscribers have
 *   it) but the edge never hears so. Resending the PUBLISH would deliver it a
 *   second time; the edge must resume with PUBREL ([MQTT-4.4.0-1]).
 * - just after PUBREC: the upstream holds the message, the edge has its PUBREC.
 * Then the edge is kill -9'd in that state and restarted on the same data dir,
 * and every message must reach the upstream's subscriber exactly once. The
 * upstream is a real Mosquitto, and in the other runs a second wasmq.
 * Inbound: the link is cut just after the edge's PUBREC, so the upstream's
 * PUBREL comes on the next connection of a restarted edge: each command must
 * reach the edge's subscriber exactly once (mqtt.js delivers on PUBREL).
 */
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import mqtt from "mqtt";
import { CliBroker, killSpawned, writeConfig } from "./broker-support.js";
import { Edge, FAST, Mosquitto, Tally, hasMosquitto, publishAll, sleep, startLoggedBroker, until } from "./bridge-support.js";
import { connectCollecting, end, subscribe, tempDir } from "./helpers.js";
import { CutProxy, type CutRule } from "./mqtt-cut-proxy.js";

const dir = tempDir("wasmq-bridge-qos2-");
after(async () => {
  await killSpawned();
  rmSync(dir, { recursive: true, force: true });
});
let n = 0;

interface Upstream {
  url: string;
  port: number;
  stop(): Promise<void>;
  lines?: { msg: string }[];
}

async function mosquittoUpstream(): Promise<Upstream> {
  const m = await Mosquitto.start(tempDir("wasmq-bridge-qos2-mq-"));
  return { url: m.url, port: m.port, stop: async () => (await m.stop(), rmSync(m.dir, { recursive: true, force: true })) };
}

async function wasmqUpstream(): Promise<Upstream> {
  const b = await startLoggedBroker({}, join(dir, `cloud-${n++}`));
  const port = b.broker.port("tcp")!;
  return { url: b.url, port, stop: () => b.broker.close(), lines: b.lines };
}

const UPSTREAMS: [string, () => Promise<Upstream>, boolean][] = [
  ["Mosquitto", mosquittoUpstream, hasMosquitto],
  ["wasmq", wasmqUpstream, true],
];

function edgeConfig(upstreamUrl: string, bridge: Record<string, unknown>): string {
  const name = `edge-${n++}`;
  return writeConfig(dir, `${name}.json`, {
    host: "127.0.0.1",
    port: 0,
    ws: false,
    data: join(dir, `${name}-data`),
    sys: false,
    log: { level: "info" },
    metrics: { port: 0 },
    bridges: [{ name: "cloud", url: upstreamUrl, clientId: `qos2-${name}`, ...FAST, ...bridge }],
  });
}

type Status = { queue: { messages: number }; qos2: { awaitingPubcomp: number }; received: number };
async function bridgeStatus(cli: CliBroker): Promise<Status> {
  const line = await cli.waitForLine((l) => /admin API on/.test(l.msg));
  const base = /(http:\/\/\S+)\/metrics/.exec(line.msg)![1];
  const all = (await (await fetch(`${base}/bridges`)).json()) as { bridges?: unknown[] } | unknown[];
  const list = (Array.isArray(all) ? all : all.bridges) as Status[];
  return list[0]!;
}

/** Poll the edge's bridge status until `cond` (a state, not a speed check; generous safety timeout). */
async function pollStatus(cli: CliBroker, what: string, cond: (s: Status) => boolean, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond(await bridgeStatus(cli))) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(await bridgeStatus(cli))}`);
    await sleep(50);
  }
}

const OUT_CUTS: [string, CutRule][] = [
  ["PUBCOMP withheld (the upstream already released the message)", { direction: "toBridge", type: "pubcomp", forward: false }],
  ["link cut just after PUBREC", { direction: "toBridge", type: "pubrec", forward: true }],
];

for (const [kind, startUpstream, available] of UPSTREAMS) {
  describe(`QoS 2 exactly once through a ${kind} upstream`, { skip: !available && "mosquitto not installed" }, () => {
    for (const [what, rule] of OUT_CUTS) {
      test(`outbound, ${what}, edge kill -9'd in that state and restarted: each message delivered once upstream`, async () => {
        const upstream = await startUpstream();
        const proxy = await CutProxy.start(upstream.port, rule);
        const tally = await Tally.start(upstream.url, "site1/#", {}, 2);
        const edge = new Edge(edgeConfig(proxy.url, { out: [{ topic: "sensors/#", qos: 2, remotePrefix: "site1/" }] }));
        try {
          await edge.start();
          await edge.cli!.waitForLine((l) => /bridge cloud connected/.test(l.msg));
          const N = 40;
          await publishAll(edge.url, N, (i) => `sensors/s${i % 4}`, "x", 0, 2);
          await proxy.cut;
          // Let the edge see the link go (what it does in that state is what is tested), then kill it.
          await edge.cli!.waitForLine((l) => /lost its connection/.test(l.msg));
          // The state is stable now (nothing left to write); the kill lands in it, not mid-write (bridge-crash covers kills mid-write).
          await sleep(300);
          // The edge may notice the lost link or not; either way it dies now, with PUBREC recorded for what it had answered.
          await edge.kill9();
          proxy.passThrough();
          await edge.start();
          await tally.waitDistinct(N);
          // Every message completed at the edge (PUBCOMP), then a fence through the upstream: copies still on their way are in.
          await pollStatus(edge.cli!, "edge queue drained", (s) => s.queue.messages === 0);
          const fence = await mqtt.connectAsync(upstream.url, { clientId: `fence-${n++}` });
          await fence.publishAsync("site1/fence", "fence", { qos: 2 });
          await fence.endAsync();
          await tally.waitDistinct(N + 1);
          const twice = [...tally.counts].filter(([, c]) => c > 1).map(([p, c]) => `${p}×${c}`);
          assert.deepEqual(twice, [], `delivered more than once at the upstream`);
          for (let i = 0; i < N; i++) assert.equal(tally.counts.get(`x${i}`), 1, `x${i} delivered once`);
          assert.ok((proxy.seen.toBridge.pubrec ?? 0) >= 1, "the exchange reached PUBREC before the cut");
        } finally {
          await edge.stop();
          await tally.end();
          await proxy.close();
          await upstream.stop();
        }
      });
    }

    test("inbound, link cut just after the edge's PUBREC, edge kill -9'd and restarted: each command delivered once at the edge", async () => {
      const upstream = await startUpstream();
      const proxy = await CutProxy.start(upstream.port, { direction: "toUpstream", type: "pubrec", forward: true });
      const config = edgeConfig(proxy.url, { in: [{ topic: "commands/#", qos: 2 }] });
      const edge = new Edge(config);
      const cloud = await mqtt.connectAsync(upstream.url, { clientId: `cloud-${n++}` });
      let local: Awaited<ReturnType<typeof connectCollecting>> | null = null;
      try {
        await edge.start();
        await edge.cli!.waitForLine((l) => /bridge cloud connected/.test(l.msg));
        // A persistent local subscriber, offline during the crash: what the edge publishes is queued for it.
        local = await connectCollecting(edge.url, { clientId: "edge-app", clean: false });
        await subscribe(local.client, "commands/#", 2);
        // The bridge's SUBSCRIBE at the upstream may still be in flight: probe at QoS 1 (PUBACK, so the cut waits) until one lands.
        for (let i = 0; !local.got.messages.some((m) => m.payload.toString() === "probe") && i < 400; i++) {
          await cloud.publishAsync("commands/probe", "probe", { qos: 1 });
          await new Promise((r) => setTimeout(r, 25));
        }
        const N = 20;
        for (let i = 0; i < N; i++) await cloud.publishAsync(`commands/c${i % 3}`, `c${i}`, { qos: 2 });
        await proxy.cut;
        await edge.kill9();
        await end(local.client);
        const before = local.got.messages;
        proxy.passThrough();
        await edge.start();
        // Reconnect the subscriber once the commands are in its offline queue (not while they are being added to it).
        await pollStatus(edge.cli!, `${N} commands received over the bridge`, (s) => s.received >= N).catch((err: Error) => {
          throw new Error(`${err.message}\nupstream: ${JSON.stringify(upstream.lines?.slice(-20))}\nedge: ${edge.cli!.stdout.slice(-3000)}`);
        });
        local = await connectCollecting(edge.url, { clientId: "edge-app", clean: false });
        const all = () => [...before, ...local!.got.messages].map((m) => m.payload.toString());
        await until(`${N} commands at the edge`, () => new Set(all().filter((p) => p.startsWith("c"))).size >= N, 20_000).catch((err: Error) => {
          const got = new Set(all());
          throw new Error(`${JSON.stringify(upstream.lines?.slice(-30))}\n${err.message}: missing ${Array.from({ length: N }, (_, i) => `c${i}`).filter((p) => !got.has(p)).join(",")}; seen ${JSON.stringify(proxy.seen)}\n${edge.cli!.stdout}`);
        });
        await cloud.publishAsync("commands/fence", "fence", { qos: 2 });
        await until("fence", () => all().includes("fence"));
        const counts = new Map<string, number>();
        for (const p of all()) counts.set(p, (counts.get(p) ?? 0) + 1);
        for (let i = 0; i < N; i++) assert.equal(counts.get(`c${i}`), 1, `c${i} delivered once at the edge`);
      } finally {
        if (local) await end(local.client);
        await cloud.endAsync().catch(() => {});
        await edge.stop();
        await proxy.close();
        await upstream.stop();
      }
    });
  });
}
