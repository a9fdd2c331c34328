// aggregate: the Wasm build against its native twin on generated readings and
// ticks, its config checks, and its summaries through a real broker (per
// topic, one summary with maxTopics, and a window surviving reload and restart).
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { after, describe, test } from "node:test";
import type { MqttClient } from "mqtt";
import { assertConfigRefused, assertExampleConfigLoads, assertTwinsAgree, pick, prng, type TimedMessage } from "./differential-state.js";
import { collect, connect, end, native, startTestBroker, subscribe, tempDir, wasm, type Received, type TestBroker } from "./helpers.js";

function aggregateSteps(seed: number, count: number): TimedMessage[] {
  const random = prng(seed);
  const topics = [
    "sensors/a/temp",
    "sensors/b/temp",
    "sensors/$&/temp",
    'sensors/q"uote\\/temp',
    "sensors/ünï/temp",
    "plant/line-1/press",
    "plant/line-2/press/x",
    "sensors/a/hum",
    "other/x",
  ];
  const values = [
    () => Math.round((random() * 200 - 100) * 1000) / 1000,
    () => Math.floor(random() * 50),
    () => random() * 1e6,
    () => -random() * 1e-7,
    () => 1e16, // beyond the reading range: ignored
    () => 0.125,
  ];
  const steps: TimedMessage[] = [];
  let at = 1_700_000_000_000;
  for (let i = 0; i < count; i++) {
    const r = random();
    if (r < 0.15) {
      at += Math.floor(random() * 2500);
      steps.push({ at, message: { hook: "tick", now: at } });
      continue;
    }
    at += Math.floor(random() * 50);
    const shape = random();
    const payload =
      shape < 0.8 ? { reading: { value: pick(random, values)() } } : shape < 0.87 ? "not json" : shape < 0.94 ? { reading: { value: "12" } } : { other: 1 };
    steps.push({ at, message: { topic: pick(random, topics), payload, clientId: "dev" } });
  }
  return steps;
}

describe("aggregate: Wasm and native twins agree", () => {
  test("per-topic summaries, maxTopics, odd topics, checkpoints and restarts (600 messages)", async () => {
    const config = { topics: ["sensors/+/temp", "plant/#"], field: "reading.value", intervalSec: 5, maxTopics: 4, decimals: 2, output: "stats/{topic}", qos: 1 };
    const results = await assertTwinsAgree("aggregate", config, aggregateSteps(5, 600), [180, 390]);
    const published = results.flatMap((r) => r.published);
    assert.ok(published.length >= 10, `summaries were published (${published.length})`);
    assert.ok(published.every((p) => p.topic.startsWith("stats/") && p.qos === 1));
    for (const p of published) JSON.parse(p.payload); // every summary is valid JSON
    assert.ok(published.some((p) => p.topic === "stats/sensors/$&/temp"), "a $& in a topic stays literal");
    assert.ok(results.every((r) => r.verdict === "continue"), "aggregate only observes");
  });

  test("one summary for all topics, no decimals, retained (500 messages)", async () => {
    const config = { topics: ["#"], field: "reading.value", intervalSec: 3, maxTopics: 3, decimals: 0, output: "stats/all", retain: true };
    const results = await assertTwinsAgree("aggregate", config, aggregateSteps(6, 500), [250]);
    const published = results.flatMap((r) => r.published);
    assert.ok(published.length >= 5 && published.every((p) => p.topic === "stats/all" && p.retain));
    const bodies = published.map((p) => JSON.parse(p.payload) as { ignored: number; topics: Record<string, unknown> });
    assert.ok(bodies.every((b) => Object.keys(b.topics).length <= 3));
    assert.ok(bodies.some((b) => b.ignored > 0), "samples beyond maxTopics are counted as ignored");
  });

  test("without persist a restart starts an empty window (500 messages)", async () => {
    const config = { topics: ["sensors/#"], field: "reading.value", intervalSec: 2, persist: false, decimals: 6 };
    const results = await assertTwinsAgree("aggregate", config, aggregateSteps(7, 500), [100, 200, 300, 400]);
    assert.ok(results.some((r) => r.published.length > 0));
  });

  test("bad configs are refused by both twins, naming the key", async () => {
    const bad: [Record<string, unknown>, RegExp][] = [
      [{}, /config\.topics must be a non-empty array/],
      [{ topics: { a: "b" } }, /config\.topics must be an array/],
      [{ topics: ["a/#/b"] }, /config\.topics\.0 must be an MQTT topic filter/],
      [{ topics: ["a"], intervalSec: 0 }, /config\.intervalSec must be a whole number from 1/],
      [{ topics: ["a"], decimals: 9 }, /config\.decimals must be a whole number from 0 to 6/],
      [{ topics: ["a"], output: "stats/+" }, /config\.output must be a topic name/],
    ];
    for (const [config, expected] of bad) await assertConfigRefused("aggregate", config, expected);
  });

  test("config.example.json is accepted by both twins", () => assertExampleConfigLoads("aggregate"));
});

interface Summary {
  topic?: string;
  count: number;
  min: number;
  max: number;
  mean: number;
  last: number;
  from: number;
  to: number;
}

/**
 * Wait until the summaries received for `topic` cover `count` samples (windows
 * may split them). A window is known by its from/to: a summary seen twice (live,
 * then as a retained message) counts once.
 */
async function summariesCovering(got: ReturnType<typeof collect> | (() => Received[]), topic: string, count: number, timeoutMs = 15_000): Promise<Summary[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const received = typeof got === "function" ? got() : got.messages;
    const windows = new Map<string, Summary>();
    for (const m of received) {
      if (m.topic !== `stats/${topic}`) continue;
      const s = JSON.parse(m.payload.toString()) as Summary;
      windows.set(`${s.from}-${s.to}`, s);
    }
    const summaries = [...windows.values()].sort((x, y) => x.from - y.from);
    const covered = summaries.reduce((n, s) => n + s.count, 0);
    if (covered >= count) return summaries;
    if (Date.now() > deadline) assert.fail(`summaries for ${topic} cover ${covered} of ${count} samples: ${JSON.stringify(summaries)}`);
    await sleep(25);
  }
}

/** The statistics of every window together, as one window would have given them. */
function combined(summaries: Summary[]) {
  const count = summaries.reduce((n, s) => n + s.count, 0);
  return {
    count,
    min: Math.min(...summaries.map((s) => s.min)),
    max: Math.max(...summaries.map((s) => s.max)),
    mean: summaries.reduce((sum, s) => sum + s.mean * s.count, 0) / count,
    last: summaries[summaries.length - 1]!.last,
  };
}

async function publishReadings(pub: MqttClient, topic: string, values: (number | string)[]): Promise<void> {
  for (const v of values) await pub.publishAsync(topic, typeof v === "number" ? JSON.stringify({ value: v }) : v, { qos: 1 });
}

for (const kind of ["wasm", "native"] as const) {
  describe(`aggregate through the broker (${kind})`, () => {
    let broker: TestBroker | undefined;
    after(() => broker?.stop());
    const plugin = (config: Record<string, unknown>) => [
      { name: "aggregate", ...(kind === "wasm" ? { wasm: wasm("aggregate") } : { native: native("aggregate") }), config },
    ];

    test("publishes per-topic statistics of the matching readings after the interval", async () => {
      broker = await startTestBroker({
        persistence: "memory",
        limits: { tickIntervalMs: 100 },
        plugins: plugin({ topics: ["sensors/+/temp"], field: "value", intervalSec: 1, output: "stats/{topic}" }),
      });
      const sub = await connect(broker.url);
      const got = collect(sub);
      await subscribe(sub, ["stats/#", "sensors/#"], 1);
      const pub = await connect(broker.url);
      await publishReadings(pub, "sensors/a/temp", [1, "garbage", 2, 3]);
      await publishReadings(pub, "sensors/b/temp", [10, -20]);
      await publishReadings(pub, "sensors/a/humidity", [99]);
      const a = await summariesCovering(got, "sensors/a/temp", 3);
      const b = await summariesCovering(got, "sensors/b/temp", 2);
      await sleep(300); // a few more ticks: nothing else may turn up
      assert.deepEqual(combined(a), { count: 3, min: 1, max: 3, mean: 2, last: 3 });
      assert.deepEqual(combined(b), { count: 2, min: -20, max: 10, mean: -5, last: -20 });
      assert.ok(a.every((s) => s.topic === "sensors/a/temp" && s.to > s.from));
      assert.equal(got.messages.filter((m) => m.topic === "stats/sensors/a/humidity").length, 0);
      assert.equal(got.messages.filter((m) => m.topic.startsWith("sensors/")).length, 7, "readings pass through untouched");
      await end(sub, pub);
      await broker.stop();
      broker = undefined;
    });
  });
}

describe("aggregate through the broker: one summary for all topics (wasm)", () => {
  test("tracks at most maxTopics and counts the rest as ignored", async () => {
    const broker = await startTestBroker({
      persistence: "memory",
      limits: { tickIntervalMs: 100 },
      plugins: [{ name: "aggregate", wasm: wasm("aggregate"), config: { topics: ["room/+"], intervalSec: 2, maxTopics: 2, output: "stats/rooms" } }],
    });
    try {
      const sub = await connect(broker.url);
      const got = collect(sub);
      await subscribe(sub, "stats/rooms", 1);
      const pub = await connect(broker.url);
      // A first window closing marks the start of a fresh 2 s window for the readings that matter.
      await publishReadings(pub, "room/primer", [0]);
      await got.waitFor(1);
      await publishReadings(pub, "room/kitchen", [20, 22]);
      await publishReadings(pub, "room/hall", [18]);
      await publishReadings(pub, "room/attic", [30, 31]);
      await got.waitFor(2);
      const body = JSON.parse(got.messages[1]!.payload.toString()) as { ignored: number; topics: Record<string, Summary> };
      assert.deepEqual(Object.keys(body.topics), ["room/kitchen", "room/hall"]);
      assert.equal(body.ignored, 2);
      assert.deepEqual(body.topics["room/kitchen"], { count: 2, min: 20, max: 22, mean: 21, last: 22 });
      await end(sub, pub);
    } finally {
      await broker.stop();
    }
  });
});

describe("aggregate keeps its window across a hot reload and a broker restart (LMDB)", () => {
  const dataDir = tempDir();
  after(() => rmSync(dataDir, { recursive: true, force: true }));

  test("samples taken before the reload and the restart are in the summary", async () => {
    const cfg = {
      limits: { tickIntervalMs: 100 },
      // Retained summaries: a window the restarted broker closes before the test resubscribes is not missed.
      plugins: [{ name: "aggregate", wasm: wasm("aggregate"), config: { topics: ["sensors/+/temp"], intervalSec: 3, retain: true } }],
    };
    let broker = await startTestBroker(cfg, { dataDir });
    try {
      const sub1 = await connect(broker.url);
      const got1 = collect(sub1);
      await subscribe(sub1, "stats/#", 1);
      const pub = await connect(broker.url);
      await publishReadings(pub, "sensors/p/temp", [1, 2]);
      await checkpointed(broker, 2);
      const [reload] = await broker.chain.reload("aggregate");
      assert.equal(reload!.ok, true, reload!.error ?? "");
      await publishReadings(pub, "sensors/p/temp", [3]);
      await checkpointed(broker, 3);
      await end(pub, sub1);
      await broker.stop();

      broker = await startTestBroker(cfg, { dataDir });
      const sub = await connect(broker.url);
      const got = collect(sub);
      await subscribe(sub, "stats/#", 1);
      const pub2 = await connect(broker.url);
      await publishReadings(pub2, "sensors/p/temp", [4]);
      const summaries = await summariesCovering(() => [...got1.messages, ...got.messages], "sensors/p/temp", 4);
      assert.deepEqual(combined(summaries), { count: 4, min: 1, max: 4, mean: 2.5, last: 4 });
      await end(sub, pub2);
    } finally {
      await broker.stop();
    }
  });

  /** Wait for the tick that checkpoints the first tracked topic with `count` samples into the plugin's kv namespace. */
  async function checkpointed(broker: TestBroker, count: number): Promise<void> {
    const key = Buffer.from("w/0");
    for (let i = 0; i < 500; i++) {
      const record = broker.persistence.kv.get("aggregate", key);
      if (record && Buffer.from(record).readDoubleLE(0) === count) return;
      await sleep(20);
    }
    assert.fail(`no checkpoint with ${count} samples`);
  }
});
