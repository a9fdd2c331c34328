// ratelimit: the Wasm build against its native twin on generated traffic, its
// config checks, and its behaviour through a real broker (bursts, bytes,
// per-topic limits, deny, and limits surviving a hot reload and a restart).
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, rmSync } from "node:fs";
import { after, describe, test } from "node:test";
import { promisify } from "node:util";
import type { MqttClient } from "mqtt";
import { assertConfigRefused, assertExampleConfigLoads, assertTwinsAgree, pick, prng, type TimedMessage } from "./differential-state.js";
import { collect, connect, end, native, settle, startTestBroker, subscribe, tempDir, wasm, type TestBroker } from "./helpers.js";

const run = promisify(execFile);

function ratelimitSteps(seed: number, count: number): TimedMessage[] {
  const random = prng(seed);
  const clients = ["dev-0", "dev-1", "dev-2", "capteur-é", "dev-4", "dev-5"];
  const topics = ["sensors/1/temp", "cmd/reboot", "cmd/a/b", "bulk/a", "bulk/b/c", "other"];
  const steps: TimedMessage[] = [];
  let at = 1_700_000_000_000;
  for (let i = 0; i < count; i++) {
    const r = random();
    // Mostly small steps, some bursts at the same instant, a clock stepping back, long idles.
    at += r < 0.3 ? 0 : r < 0.85 ? Math.floor(random() * 300) : r < 0.9 ? -Math.floor(random() * 200) : Math.floor(random() * 6000);
    steps.push({
      at,
      message: { topic: pick(random, topics), clientId: pick(random, clients), payload: "x".repeat(Math.floor(random() * 120)) },
    });
  }
  return steps;
}

describe("ratelimit: Wasm and native twins agree", () => {
  test("refilling buckets, per-topic limits, checkpoints and restarts (600 messages)", async () => {
    const config = {
      messagesPerSecond: 5,
      burstMessages: 8,
      bytesPerSecond: 400,
      burstBytes: 600,
      perTopic: [
        { topic: "cmd/#", messagesPerSecond: 1, burstMessages: 2 },
        { topic: "bulk/+", bytesPerSecond: 100.5, burstBytes: 150 },
      ],
    };
    const results = await assertTwinsAgree("ratelimit", config, ratelimitSteps(1, 600), [150, 300, 450]);
    const verdicts = new Set(results.map((r) => r.verdict));
    assert.deepEqual([...verdicts].sort(), ["continue", "drop"], "the traffic must exercise both passing and limiting");
  });

  test("quotas without refill, deny, write-through checkpoints and a tiny client cache (600 messages)", async () => {
    const config = { messagesPerSecond: 0, burstMessages: 40, bytesPerSecond: 0, burstBytes: 3000, action: "deny", checkpointFraction: 0, maxCachedClients: 2 };
    const results = await assertTwinsAgree("ratelimit", config, ratelimitSteps(2, 600), [100, 333]);
    const denied = results.filter((r) => r.verdict === "deny").length;
    assert.ok(denied > 0 && denied < results.length, `some but not all messages are denied (${denied})`);
  });

  test("bad configs are refused by both twins, naming the key", async () => {
    const bad: [Record<string, unknown>, RegExp][] = [
      [{ action: "block" }, /config\.action must be drop or deny/],
      [{ messagesPerSecond: -1 }, /config\.messagesPerSecond must be a number >= 0/],
      [{ burstBytes: "lots" }, /config\.burstBytes must be a number >= 0/],
      [{ checkpointFraction: 1 }, /config\.checkpointFraction must be a number in \[0, 1\)/],
      [{ perTopic: { topic: "a" } }, /config\.perTopic must be an array/],
      [{ perTopic: [{ topic: "a/#/b", messagesPerSecond: 1 }] }, /perTopic\.0\.topic must be an MQTT topic filter/],
      [{ perTopic: [{ topic: "a/#" }] }, /perTopic\.0 limits nothing/],
    ];
    for (const [config, expected] of bad) await assertConfigRefused("ratelimit", config, expected);
  });

  test("config.example.json is accepted by both twins", () => assertExampleConfigLoads("ratelimit"));
});

async function publishNumbered(client: MqttClient, topic: string, count: number, payload = (i: number) => String(i)): Promise<void> {
  for (let i = 0; i < count; i++) await client.publishAsync(topic, payload(i), { qos: 1 });
}

/** Messages the subscriber got on one topic prefix, after a round trip through the broker. */
async function receivedOn(sub: MqttClient, got: ReturnType<typeof collect>, prefix: string): Promise<string[]> {
  await settle(sub);
  return got.messages.filter((m) => m.topic.startsWith(prefix)).map((m) => m.payload.toString());
}

for (const kind of ["wasm", "native"] as const) {
  describe(`ratelimit through the broker (${kind})`, () => {
    const plugin = (config: Record<string, unknown>) => [
      { name: "ratelimit", ...(kind === "wasm" ? { wasm: wasm("ratelimit") } : { native: native("ratelimit") }), config },
    ];
    let broker: TestBroker | undefined;
    after(() => broker?.stop());

    test("a burst of 10 with no refill lets exactly 10 of 50 through, per client, and the publisher stays connected", async () => {
      broker = await startTestBroker({ persistence: "memory", plugins: plugin({ messagesPerSecond: 0, burstMessages: 10, bytesPerSecond: 0 }) });
      const sub = await connect(broker.url);
      const got = collect(sub);
      await subscribe(sub, "burst/#", 1);
      const pubA = await connect(broker.url, { clientId: "burst-a" });
      const pubB = await connect(broker.url, { clientId: "burst-b" });
      await publishNumbered(pubA, "burst/a", 50);
      await publishNumbered(pubB, "burst/b", 3);
      assert.deepEqual(await receivedOn(sub, got, "burst/a"), ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"]);
      assert.deepEqual(await receivedOn(sub, got, "burst/b"), ["0", "1", "2"], "another client has its own bucket");
      assert.ok(pubA.connected, "action drop must not disconnect");
      await end(sub, pubA, pubB);
      await broker.stop();
      broker = undefined;
    });

    test("bytes: a 100-byte burst passes three 30-byte payloads, and per-topic limits apply on top", async () => {
      broker = await startTestBroker({
        persistence: "memory",
        plugins: plugin({
          messagesPerSecond: 0,
          burstMessages: 0,
          bytesPerSecond: 0,
          burstBytes: 100,
          perTopic: [{ topic: "cmd/#", messagesPerSecond: 0, burstMessages: 1 }],
        }),
      });
      const sub = await connect(broker.url);
      const got = collect(sub);
      await subscribe(sub, ["bytes/#", "cmd/#"], 1);
      const pub = await connect(broker.url, { clientId: "bytes-a" });
      await publishNumbered(pub, "bytes/a", 5, (i) => String(i).padEnd(30, "."));
      assert.deepEqual((await receivedOn(sub, got, "bytes/a")).map((p) => p[0]), ["0", "1", "2"]);
      const cmd = await connect(broker.url, { clientId: "cmd-a" });
      await publishNumbered(cmd, "cmd/reboot", 3, (i) => `c${i}`);
      assert.deepEqual(await receivedOn(sub, got, "cmd/"), ["c0"]);
      await end(sub, pub, cmd);
      await broker.stop();
      broker = undefined;
    });

    test('action "deny" disconnects the publisher at the first message over its limit', async () => {
      broker = await startTestBroker({ persistence: "memory", plugins: plugin({ messagesPerSecond: 0, burstMessages: 2, action: "deny" }) });
      const sub = await connect(broker.url);
      const got = collect(sub);
      await subscribe(sub, "deny/#", 1);
      const pub = await connect(broker.url, { clientId: "deny-a" });
      const closed = new Promise<void>((resolve) => pub.once("close", () => resolve()));
      for (let i = 0; i < 3; i++) pub.publish("deny/a", String(i), { qos: 0 });
      await closed;
      assert.deepEqual(await receivedOn(sub, got, "deny/a"), ["0", "1"]);
      assert.ok(sub.connected, "only the offender is disconnected");
      await end(sub, pub);
      await broker.stop();
      broker = undefined;
    });
  });
}

describe("ratelimit state survives a hot reload and a broker restart (LMDB)", () => {
  const dirs: string[] = [];
  after(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  async function deliveredAfter(broker: TestBroker, clientId: string, count: number, tag: string): Promise<number> {
    const sub = await connect(broker.url);
    const got = collect(sub);
    await subscribe(sub, `quota/${tag}`, 1);
    const pub = await connect(broker.url, { clientId });
    await publishNumbered(pub, `quota/${tag}`, count);
    const n = (await receivedOn(sub, got, `quota/${tag}`)).length;
    await end(sub, pub);
    return n;
  }

  test("write-through checkpoints: a quota of 10 is exactly 10 across a reload and a restart", async () => {
    const dataDir = tempDir();
    dirs.push(dataDir);
    const cfg = { plugins: [{ name: "ratelimit", wasm: wasm("ratelimit"), config: { messagesPerSecond: 0, burstMessages: 10, checkpointFraction: 0 } }] };
    let broker = await startTestBroker(cfg, { dataDir });
    try {
      assert.equal(await deliveredAfter(broker, "quota-1", 4, "a"), 4);
      const [reload] = await broker.chain.reload("ratelimit");
      assert.equal(reload!.ok, true, reload!.error ?? "");
      assert.equal(await deliveredAfter(broker, "quota-1", 4, "b"), 4, "a reloaded instance resumes from kv");
      await broker.stop();
      broker = await startTestBroker(cfg, { dataDir });
      assert.equal(await deliveredAfter(broker, "quota-1", 5, "c"), 2, "a restarted broker remembers the 8 spent");
      assert.equal(await deliveredAfter(broker, "quota-2", 12, "d"), 10, "another client still has its full quota");
    } finally {
      await broker.stop();
    }
  });

  test("pessimistic checkpoints: a restart never grants more than the burst, and costs at most the reserve", async () => {
    const dataDir = tempDir();
    dirs.push(dataDir);
    // burst 20, checkpointFraction 0.25 → reserve 5 messages per checkpoint
    const cfg = { plugins: [{ name: "ratelimit", wasm: wasm("ratelimit"), config: { messagesPerSecond: 0, burstMessages: 20 } }] };
    let broker = await startTestBroker(cfg, { dataDir });
    try {
      assert.equal(await deliveredAfter(broker, "quota-3", 7, "a"), 7);
      await broker.stop();
      broker = await startTestBroker(cfg, { dataDir });
      const after = await deliveredAfter(broker, "quota-3", 20, "b");
      assert.ok(after <= 13, `at most the 13 left may pass after the restart, got ${after}`);
      assert.ok(after >= 8, `a restart costs at most the reserve of 5, got ${after}`);
    } finally {
      await broker.stop();
    }
  });
});

describe("ratelimit with mosquitto_pub as the publisher", { skip: !existsSync("/usr/bin/mosquitto_pub") && "mosquitto_pub not installed" }, () => {
  test("20 lines from mosquitto_pub -l with a burst of 5: 5 arrive", async () => {
    const broker = await startTestBroker({ persistence: "memory", plugins: [{ name: "ratelimit", wasm: wasm("ratelimit"), config: { messagesPerSecond: 0, burstMessages: 5 } }] });
    try {
      const sub = await connect(broker.url);
      const got = collect(sub);
      await subscribe(sub, "mosq/#", 1);
      const port = String(broker.port("tcp"));
      const child = run("/usr/bin/mosquitto_pub", ["-h", "127.0.0.1", "-p", port, "-i", "mosq-pub", "-t", "mosq/lines", "-q", "1", "-l"]);
      child.child.stdin!.end(Array.from({ length: 20 }, (_, i) => `line ${i}`).join("\n") + "\n");
      await child;
      assert.deepEqual(await receivedOn(sub, got, "mosq/"), ["line 0", "line 1", "line 2", "line 3", "line 4"]);
      await end(sub);
    } finally {
      await broker.stop();
    }
  });
});
