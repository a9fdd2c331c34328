// The memory settle (broker/ops/memory-settle.ts): one compacting GC after a
// burst of connections, once nothing flows; counted in the metrics; never
// while clients publish; off with `memorySettle: false`.
import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import type { MqttClient } from "mqtt";
import { ConfigError, parseRawConfig, resolveConfig } from "../broker/config.js";
import { compactingGc, fullGc } from "../broker/ops/memory-settle.js";
import { collect, connect, end, startTestBroker, subscribe, type TestBroker } from "./helpers.js";

async function until(condition: () => boolean, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function connectMany(url: string, n: number): Promise<MqttClient[]> {
  const clients: MqttClient[] = [];
  for (let i = 0; i < n; i++) clients.push(await connect(url, { clientId: `settle-${i}` }));
  return clients;
}

describe("memory settle after a connection burst", { timeout: 120_000 }, () => {
  const open: MqttClient[] = [];
  const brokers: TestBroker[] = [];
  after(async () => {
    await end(...open);
    for (const b of brokers) await b.stop();
  });

  test("runs once after the burst when the broker is quiet, is counted in the metrics, and the clients keep working", async () => {
    const broker = await startTestBroker({ persistence: "memory", metrics: { port: 0 }, memorySettle: { afterConnects: 20, idleMs: 300 } });
    brokers.push(broker);
    const clients = await connectMany(broker.url, 25);
    open.push(...clients);
    await until(() => broker.stats.memorySettles > 0, "the settle");
    assert.equal(broker.stats.memorySettles, 1);
    assert.ok(broker.stats.memorySettleSeconds > 0, "its pause is counted");
    // The RSS it gave back is read a second later, once V8 has unmapped the emptied pages (it may be 0 on a small heap).
    await sleep(1200);
    // Quiet for several more windows: no second settle without another burst.
    await sleep(1500);
    assert.equal(broker.stats.memorySettles, 1, "one settle per burst");
    const text = await (await fetch(`${broker.admin!.url}/metrics`)).text();
    assert.match(text, /^wasmq_memory_settles_total 1$/m);
    assert.match(text, /^wasmq_memory_settle_seconds_total [0-9.e-]+$/m);
    assert.match(text, /^wasmq_memory_settle_released_bytes_total \d+$/m);
    // Sessions survive the collection: a message still goes from one client to another.
    const got = collect(clients[0]!);
    await subscribe(clients[0]!, "after/settle", 1);
    await new Promise<void>((resolve, reject) => clients[1]!.publish("after/settle", "still here", { qos: 1 }, (err) => (err ? reject(err) : resolve())));
    await until(() => got.messages.length > 0, "the delivery");
    assert.equal(got.messages[0]!.payload.toString(), "still here");
  });

  test("never runs while clients publish; runs once they stop", async () => {
    const broker = await startTestBroker({ persistence: "memory", memorySettle: { afterConnects: 20, idleMs: 1500 } });
    brokers.push(broker);
    const clients = await connectMany(broker.url, 25);
    open.push(...clients);
    const publisher = clients[0]!;
    // One PUBLISH every 20 ms, far inside the 1.5 s quiet window, for 4 s.
    const sent = { n: 0 };
    const timer = setInterval(() => {
      publisher.publish("busy/topic", "x", { qos: 0 });
      sent.n++;
    }, 20);
    await sleep(4000);
    clearInterval(timer);
    await until(() => broker.stats.publishReceived[0] >= sent.n, "the last publishes");
    assert.equal(broker.stats.memorySettles, 0, "no settle while clients publish");
    await until(() => broker.stats.memorySettles > 0, "the settle once they stopped");
    assert.equal(broker.stats.memorySettles, 1);
  });

  test("does not run without a burst (fewer connections than afterConnects)", async () => {
    const broker = await startTestBroker({ persistence: "memory", memorySettle: { afterConnects: 20, idleMs: 200 } });
    brokers.push(broker);
    open.push(...(await connectMany(broker.url, 10)));
    await sleep(1500);
    assert.equal(broker.stats.memorySettles, 0);
  });

  test("memorySettle: false turns it off", async () => {
    const broker = await startTestBroker({ persistence: "memory", memorySettle: false });
    brokers.push(broker);
    assert.equal(broker.config.memorySettle, null);
  });

  test("defaults, and bad values name the key and the file", () => {
    const config = resolveConfig(parseRawConfig({}, "settle.json"), null);
    assert.deepEqual(config.memorySettle, { afterConnects: 1000, idleMs: 2000 });
    const bad = (raw: unknown, key: RegExp) =>
      assert.throws(
        () => resolveConfig(parseRawConfig(raw, "settle.json"), null),
        (err: Error) => err instanceof ConfigError && /settle\.json/.test(err.message) && key.test(err.message),
      );
    bad({ memorySettle: { idleMs: 10 } }, /memorySettle\.idleMs/);
    bad({ memorySettle: { afterConnects: 0 } }, /memorySettle\.afterConnects/);
    bad({ memorySettle: { every: 5 } }, /memorySettle/);
    bad({ memorySettle: true }, /memorySettle/);
  });

  test("the compacting GC gives back old-space pages a regular full GC keeps", async () => {
    const { getHeapSpaceStatistics } = await import("node:v8");
    const oldFree = () => {
      const s = getHeapSpaceStatistics().find((x) => x.space_name === "old_space")!;
      return s.space_size - s.space_used_size;
    };
    // Old-space garbage interleaved with live objects, pages left about two-thirds full: the pattern a connection burst leaves.
    const live: object[] = [];
    let dead: object[] | null = [];
    for (let i = 0; i < 600_000; i++) {
      const o = { i, s: `x${i}` };
      if (i % 3 === 0) dead.push(o);
      else live.push(o);
    }
    fullGc()();
    fullGc()();
    dead = null;
    fullGc()();
    fullGc()();
    const afterRegular = oldFree();
    compactingGc();
    const afterCompacting = oldFree();
    assert.ok(afterCompacting < afterRegular, `old space committed-but-free: ${afterRegular} bytes after regular GCs, ${afterCompacting} after the compacting one`);
    assert.equal(live.length, 400_000);
  });
});
