/**
 * What the write hold did, as an operator sees it (broker/OPERATIONS.md
 * "Deliveries acknowledged before they are written"): Prometheus metrics,
 * GET /store and `wasmq admin store`, `$SYS/broker/store/held/...` and the
 * dashboard's live samples — over a run where the subscriber acknowledges at
 * once (deliveries dropped unwritten) and one where it never does (every held
 * delivery written). Real broker, real LMDB dir, real mqtt.js clients.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import mqtt from "mqtt";
import { HELD_DELIVERY_METRICS as M } from "../broker/ops/held-deliveries.js";
import { killSpawned, runCli } from "./broker-support.js";
import { collect, connect, end, startTestBroker, subscribe, type Received, type TestBroker } from "./helpers.js";
import { scrape as metrics } from "./metrics-support.js";
import { idleHold, muteSubscriber, store, until } from "./store-support.js";

after(killSpawned);

/** Publish `n` QoS 1 messages, `window` at a time; resolves once every PUBACK is in. */
async function publishAll(url: string, topic: string, n: number, window = 20): Promise<void> {
  const pub = await connect(url, { clientId: `pub-${topic.replace(/\W/g, "-")}` });
  for (let i = 0; i < n; i += window) {
    await Promise.all(Array.from({ length: Math.min(window, n - i) }, (_, k) => pub.publishAsync(topic, String(i + k), { qos: 1 })));
  }
  await end(pub);
}

const HOLD_MS = 200;

describe("write hold figures (LMDB)", { timeout: 120_000 }, () => {
  let broker: TestBroker;
  const clients: mqtt.MqttClient[] = [];
  before(async () => {
    // A hold well above the subscriber's round trip here, so "acknowledges at once" means within the hold.
    // "fixed": every held delivery waits the whole hold (the adaptive mode's figures: ops-write-hold-adaptive.test.ts).
    broker = await startTestBroker({ persistence: "lmdb", writeHoldMs: HOLD_MS, writeHold: "fixed", metrics: { port: 0 }, sys: { intervalSec: 1 } });
  });
  after(async () => {
    for (const c of clients) c.end(true);
    await broker.stop();
  });

  test("a fresh broker: every figure is there and zero, the hold as configured", async () => {
    const m = await metrics(broker);
    assert.equal(m.get(M.holdSeconds), HOLD_MS / 1000);
    for (const name of [M.held, M.droppedUnwritten, M.written, M.current, M.writtenWait]) assert.equal(m.get(name), 0, name);
    const s = await store(broker);
    assert.equal(s.mode, "lmdb");
    assert.equal(s.durability, "sync");
    assert.deepEqual(s.writeHold, idleHold(HOLD_MS, "fixed"));
  });

  test("a subscriber that acknowledges at once: deliveries held and dropped unwritten, few or none written", async () => {
    const sub = await connect(broker.url, { clientId: "fast-sub", clean: false });
    clients.push(sub);
    const got = collect(sub);
    await subscribe(sub, "fast/t", 1);
    const before = (await store(broker)).writeHold!;
    await publishAll(broker.url, "fast/t", 200);
    await got.waitFor(200);
    const after = (await store(broker)).writeHold!;
    const held = after.held - before.held;
    const dropped = after.droppedUnwritten - before.droppedUnwritten;
    const written = after.written - before.written;
    assert.equal(held, 200, "every message to the connected persistent session was held");
    assert.equal(dropped + written, held, "each held delivery was dropped or written once its publisher had the PUBACK");
    assert.equal(after.current, 0);
    assert.ok(dropped > 0 && written < dropped, `mostly dropped unwritten: dropped ${dropped}, written ${written}`);
    const m = await metrics(broker);
    assert.equal(m.get(M.held), after.held);
    assert.equal(m.get(M.droppedUnwritten), after.droppedUnwritten);
    assert.equal(m.get(M.written), after.written);
    assert.equal(m.get(M.current), 0);
  });

  test("a subscriber that never acknowledges: every held delivery is written, each after the hold", async () => {
    const sub = await muteSubscriber(broker.url, "slow-sub", "slow/t");
    clients.push(sub);
    const before = (await store(broker)).writeHold!;
    await publishAll(broker.url, "slow/t", 30, 30);
    const after = (await store(broker)).writeHold!;
    assert.equal(after.held - before.held, 30);
    assert.equal(after.written - before.written, 30, "written = held");
    assert.equal(after.droppedUnwritten - before.droppedUnwritten, 0);
    assert.equal(after.current, 0, "a PUBACK went out for each: nothing is still held");
    const waited = after.writtenWaitSeconds - before.writtenWaitSeconds;
    // A held put whose hold ran out waited the whole hold; the deferred
    // packet-identifier write (once a second) materializes the puts it meets in
    // their hold early, with the time they really waited: about one hold's
    // worth of messages per tick (~6 of 30 here), so half the hold on average
    // is what holds under any load (the whole hold failed once at load 15).
    assert.ok(waited >= (30 * HOLD_MS) / 2 / 1000, `written deliveries count the time they were held: ${waited} s for 30`);
    assert.equal((await metrics(broker)).get(M.writtenWait), after.writtenWaitSeconds);
    assert.ok((await store(broker)).queued! >= 30, "they are stored for the session");
  });

  test("wasmq admin store prints the figures; --json is GET /store", async () => {
    const s = await store(broker);
    const run = await runCli(["admin", "store", "--url", broker.admin!.url]);
    assert.equal(run.code, 0, run.stderr);
    const h = s.writeHold!;
    assert.match(run.stdout, /^store\s+lmdb \(durability sync\)$/m);
    assert.match(run.stdout, new RegExp(`^write hold\\s+${HOLD_MS} ms \\(fixed\\)$`, "m"));
    assert.match(run.stdout, new RegExp(`^  held deliveries\\s+${h.held} \\(0 now\\)$`, "m"));
    assert.match(run.stdout, new RegExp(`^  dropped unwritten\\s+${h.droppedUnwritten} `, "m"));
    assert.match(run.stdout, new RegExp(`^  written\\s+${h.written} \\(held \\d+\\.\\d ms on average before the write\\)$`, "m"));
    const json = await runCli(["admin", "store", "--json", "--url", broker.admin!.url]);
    assert.equal(json.code, 0, json.stderr);
    assert.deepEqual(Object.keys(JSON.parse(json.stdout) as object).sort(), Object.keys(s).sort());
  });

  test("$SYS/broker/store/held/... carry the same figures", async () => {
    const sys = await connect(broker.url);
    const got = collect(sys);
    await subscribe(sys, "$SYS/broker/store/held/#", 0);
    const h = (await store(broker)).writeHold!;
    const latest = (name: string) => got.messages.filter((m: Received) => m.topic === `$SYS/broker/store/held/${name}`).at(-1)?.payload.toString();
    await until(() => latest("total") === String(h.held) && latest("written") === String(h.written), "the held figures");
    assert.equal(latest("hold ms"), String(HOLD_MS));
    assert.equal(latest("count"), "0");
    assert.equal(latest("dropped unwritten"), String(h.droppedUnwritten));
    assert.equal(latest("written wait seconds"), h.writtenWaitSeconds.toFixed(3));
    await end(sys);
  });

  test("the dashboard's live samples carry held, dropped unwritten and written per second", async () => {
    const ac = new AbortController();
    const res = await fetch(`${broker.admin!.url}/dashboard/api/live`, { signal: ac.signal });
    assert.equal(res.status, 200);
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    const samples: Array<Record<string, number | null>> = [];
    const reading = (async () => {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        buffer += decoder.decode(value, { stream: true });
        let at: number;
        while ((at = buffer.indexOf("\n\n")) >= 0) {
          const event = buffer.slice(0, at);
          buffer = buffer.slice(at + 2);
          const data = /^event: sample\ndata: (.*)$/s.exec(event);
          if (data) samples.push(JSON.parse(data[1]!) as Record<string, number | null>);
        }
      }
    })().catch(() => {});
    await until(() => samples.length > 0, "a first sample");
    assert.equal(typeof samples[0]!.held, "number");
    assert.equal(typeof samples[0]!.heldDropped, "number");
    assert.equal(typeof samples[0]!.heldWritten, "number");
    await publishAll(broker.url, "fast/t", 100);
    await until(() => samples.some((s) => (s.held ?? 0) > 0 && (s.heldDropped ?? 0) > 0), "a sample with deliveries held and dropped unwritten");
    ac.abort();
    await reading;
  });
});

describe("write hold figures with writeHoldMs 0 and with the memory store", { timeout: 60_000 }, () => {
  test("writeHoldMs 0: nothing is held; the figures say the hold is off", async () => {
    const broker = await startTestBroker({ persistence: "lmdb", writeHoldMs: 0, metrics: { port: 0 } });
    try {
      const sub = await connect(broker.url, { clientId: "sub-0", clean: false });
      const got = collect(sub);
      await subscribe(sub, "zero/t", 1);
      await publishAll(broker.url, "zero/t", 20);
      await got.waitFor(20);
      await end(sub);
      const s = await store(broker);
      assert.deepEqual(s.writeHold, idleHold(0, "adaptive"));
      const m = await metrics(broker);
      assert.equal(m.get(M.holdSeconds), 0);
      assert.equal(m.get(M.held), 0);
      const run = await runCli(["admin", "store", "--url", broker.admin!.url]);
      assert.match(run.stdout, /^write hold\s+off \(writeHoldMs 0/m);
    } finally {
      await broker.stop();
    }
  });

  test("memory store: no write hold metrics, and GET /store says so", async () => {
    const broker = await startTestBroker({ persistence: "memory", metrics: { port: 0 } });
    try {
      const m = await metrics(broker);
      for (const name of Object.values(M)) assert.equal(m.has(name), false, `${name} absent`);
      const s = await store(broker);
      assert.equal(s.mode, "memory");
      assert.equal(s.writeHold, null);
    } finally {
      await broker.stop();
    }
  });
});
