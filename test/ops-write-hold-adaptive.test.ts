/**
 * The adaptive write hold (`writeHold: "adaptive"`, the default) seen by an
 * operator, with real mqtt.js subscribers on a real broker and LMDB dir: a
 * subscriber that acknowledges at once is held (deliveries dropped
 * unwritten); one that never acknowledges is written first once its estimate
 * settled — counted in `writtenFirst` and in the sessions by decision —
 * through GET /store, `/metrics`, `wasmq admin store` and `$SYS`.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import mqtt from "mqtt";
import { HELD_DELIVERY_METRICS as M } from "../broker/ops/held-deliveries.js";
import { DECIDE_EVERY, TIMEOUT_RUN } from "../broker/persistence/lmdb/ack-pace.js";
import { killSpawned, runCli } from "./broker-support.js";
import { collect, connect, end, startTestBroker, subscribe, type Received, type TestBroker } from "./helpers.js";
import { scrape as metrics } from "./metrics-support.js";
import { muteSubscriber, store, until } from "./store-support.js";

after(killSpawned);

/** Publish `n` QoS 1 messages one after the other (each waits for its PUBACK). */
async function publishEach(url: string, topic: string, n: number): Promise<void> {
  const pub = await connect(url, { clientId: `pub-${topic.replace(/\W/g, "-")}` });
  for (let i = 0; i < n; i++) await pub.publishAsync(topic, String(i), { qos: 1 });
  await end(pub);
}

// Well above a local subscriber's round trip, so "acknowledges at once" is within it.
const CAP_MS = 200;
const SETTLE = DECIDE_EVERY;

describe("adaptive write hold figures (LMDB)", { timeout: 120_000 }, () => {
  let broker: TestBroker;
  const clients: mqtt.MqttClient[] = [];
  before(async () => {
    broker = await startTestBroker({ persistence: "lmdb", writeHoldMs: CAP_MS, metrics: { port: 0 }, sys: { intervalSec: 1 } });
  });
  after(async () => {
    for (const c of clients) c.end(true);
    await broker.stop();
  });

  test("the default mode is adaptive, and says so", async () => {
    const h = (await store(broker)).writeHold!;
    assert.equal(h.mode, "adaptive");
    assert.equal(h.holdMs, CAP_MS);
    const m = await metrics(broker);
    assert.equal(m.get(`${M.mode}{mode="adaptive"}`), 1);
    assert.equal(m.get(`${M.mode}{mode="fixed"}`), 0);
  });

  test("a subscriber that acknowledges at once is held: its deliveries dropped unwritten, none written first", async () => {
    const sub = await connect(broker.url, { clientId: "fast-sub", clean: false });
    clients.push(sub);
    const got = collect(sub);
    await subscribe(sub, "fast/t", 1);
    const b = (await store(broker)).writeHold!;
    await publishEach(broker.url, "fast/t", 3 * SETTLE);
    await got.waitFor(3 * SETTLE);
    const a = (await store(broker)).writeHold!;
    assert.equal(a.held - b.held, 3 * SETTLE, "every delivery held");
    assert.equal(a.writtenFirst - b.writtenFirst, 0);
    assert.ok(a.droppedUnwritten - b.droppedUnwritten > a.written - b.written, `mostly dropped unwritten: ${JSON.stringify(a)}`);
    assert.equal(a.sessionsHolding, 1);
  });

  test("a subscriber that never acknowledges is written first once its estimate settles", async () => {
    const sub = await muteSubscriber(broker.url, "mute-sub", "mute/t");
    clients.push(sub);
    const b = (await store(broker)).writeHold!;
    // Its first deliveries are held for the cap (no evidence yet), run out and are written; after
    // a few (a held entry the 1 s packet-identifier write touches is written unsampled) it is decided.
    const pub = await connect(broker.url, { clientId: "pub-mute" });
    let n = 0;
    while ((await store(broker)).writeHold!.sessionsWritingFirst === 0) {
      assert.ok(n++ < TIMEOUT_RUN + SETTLE, "decided within a bounded number of deliveries");
      await pub.publishAsync("mute/t", String(n), { qos: 1 });
    }
    await end(pub);
    const mid = (await store(broker)).writeHold!;
    assert.equal(mid.held - b.held, n, "held until decided");
    assert.equal(mid.written - b.written, n, "and each written");
    assert.equal(mid.sessionsWritingFirst, 1, "decided: written first");
    // Then its deliveries are not held at all.
    await publishEach(broker.url, "mute/t", 10);
    const a = (await store(broker)).writeHold!;
    assert.equal(a.held - mid.held, 0, "none held");
    assert.equal(a.writtenFirst - mid.writtenFirst, 10, "all written first");
    assert.equal(a.current, 0);
    assert.ok((await store(broker)).queued! >= n + 10, "every one is stored for the session");
    const m = await metrics(broker);
    assert.equal(m.get(M.writtenFirst), a.writtenFirst);
    assert.equal(m.get(`${M.sessions}{decision="write_first"}`), 1);
    assert.equal(m.get(`${M.sessions}{decision="hold"}`), 1);
  });

  test("wasmq admin store and $SYS show the mode and the decision", async () => {
    const h = (await store(broker)).writeHold!;
    const run = await runCli(["admin", "store", "--url", broker.admin!.url]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, new RegExp(`^write hold\\s+adaptive, at most ${CAP_MS} ms$`, "m"));
    assert.match(run.stdout, new RegExp(`^  written first\\s+${h.writtenFirst} `, "m"));
    assert.match(run.stdout, /^ {2}sessions\s+1 held, 1 written first$/m);
    const sys = await connect(broker.url);
    const got = collect(sys);
    await subscribe(sys, "$SYS/broker/store/held/#", 0);
    const latest = (name: string) => got.messages.filter((m: Received) => m.topic === `$SYS/broker/store/held/${name}`).at(-1)?.payload.toString();
    // Retained figures reach a wildcard subscriber in no set order: wait for every one asserted below.
    const figures = ["mode", "sessions holding", "sessions writing first"];
    await until(() => latest("written first") === String(h.writtenFirst) && figures.every((f) => latest(f) !== undefined), "the adaptive figures");
    assert.equal(latest("mode"), "adaptive");
    assert.equal(latest("sessions holding"), "1");
    assert.equal(latest("sessions writing first"), "1");
    await end(sys);
  });
});
