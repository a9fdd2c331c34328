// filter: drop (or deny) JSON readings outside configured ranges, compared with
// its native twin on generated readings and observed through a broker.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { HarnessMessage } from "../host/harness.js";
import { Rng, assertTwinsAgree, assertTwinsRefuse, randomJson, randomNumberText, randomPayload, randomTopic, verdictCounts, randomV5Fields } from "./differential.js";
import { collect, connect, end, settle, startTestBroker, subscribe, wasm, type TestBroker } from "./helpers.js";

const CONFIG = {
  rules: [
    { topic: "sensors/+/temp", field: "value", min: -40, max: 85 },
    { topic: "sensors/+/humidity", field: "value", min: 0, max: 100 },
    { topic: "sensors/#", field: "meta.battery", min: 0 },
    { topic: "lab/+/+", field: "readings.0", max: 1e300 },
  ],
};

const VOCABULARY = [["sensors", "sensors", "lab", "other"], ["dev-1", "ü", "", "+"], ["temp", "humidity", "x"]];

function reading(rng: Rng): HarnessMessage["payload"] {
  const r = rng.int(10);
  if (r < 4) return `{"value":${randomNumberText(rng)}${rng.chance(0.5) ? `,"meta":{"battery":${randomNumberText(rng)}}` : ""}}`;
  if (r < 5) return `{"readings":[${randomNumberText(rng)},1],"value":${randomNumberText(rng)},"meta":{"battery":1}}`;
  if (r < 6) return `{"value":${rng.pick(['"20"', "null", "true", "[20]", '{"v":1}'])},"meta":{"battery":5}}`;
  if (r < 7) return randomJson(rng, ["value", "meta", "readings"]);
  return randomPayload(rng, ["value", "meta", "readings"]);
}

function messages(seed: number, count: number): HarnessMessage[] {
  const rng = new Rng(seed);
  const out: HarnessMessage[] = [];
  for (let i = 0; i < count; i++) out.push({ hook: "publish", topic: randomTopic(rng, VOCABULARY), payload: reading(rng) });
  return out;
}

describe("filter: Wasm and native twin agree", () => {
  test("600 generated readings: ranges, missing fields, invalid JSON (drop everything bad)", async () => {
    const results = await assertTwinsAgree("filter", CONFIG, messages(31, 600));
    const counts = verdictCounts(results);
    for (const outcome of ["continue", "drop"]) assert.ok((counts[outcome] ?? 0) > 50, `too few ${outcome}: ${JSON.stringify(counts)}`);
  });

  test("300 generated readings with action deny, missing and invalid passed", async () => {
    const config = { ...CONFIG, action: "deny", onMissing: "pass", onInvalid: "pass" };
    const results = await assertTwinsAgree("filter", config, messages(32, 300));
    const counts = verdictCounts(results);
    assert.equal(counts.drop, undefined);
    for (const outcome of ["continue", "deny"]) assert.ok((counts[outcome] ?? 0) > 10, `too few ${outcome}: ${JSON.stringify(counts)}`);
  });

  test("bad configs are refused by both builds, naming the key", async () => {
    await assertTwinsRefuse("filter", { rules: [] }, /config\.rules must be a non-empty array/);
    await assertTwinsRefuse("filter", { rules: [{ topic: "a/#/b", field: "v" }] }, /rules\.0\.topic must be an MQTT topic filter/);
    await assertTwinsRefuse("filter", { rules: [{ topic: "a" }] }, /rules\.0\.field is required/);
    await assertTwinsRefuse("filter", { rules: [{ topic: "a", field: "v", min: 5, max: 1 }] }, /rules\.0: min must not exceed max/);
    await assertTwinsRefuse("filter", { rules: [{ topic: "a", field: "v" }], action: "reject" }, /config\.action must be drop or deny/);
  });
});

describe("filter through the broker", () => {
  let broker: TestBroker;
  let strict: TestBroker;

  before(async () => {
    const config = { rules: [...CONFIG.rules.slice(0, 2), { topic: "sensors/+/humidity", field: "meta.battery", min: 0 }] };
    broker = await startTestBroker({ persistence: "memory", plugins: [{ name: "filter", wasm: wasm("filter"), config }] });
    strict = await startTestBroker({ persistence: "memory", plugins: [{ name: "filter", wasm: wasm("filter"), config: { rules: CONFIG.rules.slice(0, 1), action: "deny" } }] });
  });
  after(async () => {
    await broker.stop();
    await strict.stop();
  });

  test("out-of-range, non-numeric and non-JSON readings are dropped; good ones delivered", async () => {
    const sub = await connect(broker.url);
    const got = collect(sub);
    await subscribe(sub, "sensors/#", 1);
    const dev = await connect(broker.url);
    for (const payload of ['{"value":21.5}', '{"value":120}', '{"value":-41}', '{"value":"21"}', "21.5", "twenty", '{"value":85}']) {
      await dev.publishAsync("sensors/dev-1/temp", payload, { qos: 1 });
    }
    await dev.publishAsync("sensors/dev-1/humidity", '{"value":101}', { qos: 1 });
    await dev.publishAsync("sensors/dev-1/humidity", '{"value":55,"meta":{"battery":-1}}', { qos: 1 });
    await dev.publishAsync("sensors/dev-1/humidity", '{"value":55,"meta":{"battery":80}}', { qos: 1 });
    await got.waitFor(3);
    await settle(sub);
    assert.deepEqual(got.messages.map((m) => `${m.topic} ${m.payload.toString()}`), [
      'sensors/dev-1/temp {"value":21.5}',
      'sensors/dev-1/temp {"value":85}',
      'sensors/dev-1/humidity {"value":55,"meta":{"battery":80}}',
    ]);
    assert.ok(dev.connected, "dropping keeps the publisher connected");
    await end(sub, dev);
  });

  test('with "action": "deny" an out-of-range reading disconnects its publisher only', async () => {
    const bystander = await connect(strict.url);
    const dev = await connect(strict.url);
    await dev.publishAsync("sensors/dev-2/temp", '{"value":20}', { qos: 1 });
    const closed = new Promise<void>((resolve) => dev.once("close", () => resolve()));
    dev.publish("sensors/dev-2/temp", '{"value":500}', { qos: 0 });
    await closed;
    await settle(bystander);
    assert.ok(bystander.connected);
    await end(bystander, dev);
  });

  test("a bad config stops the broker from starting, naming the plugin", async () => {
    await assert.rejects(
      startTestBroker({ persistence: "memory", plugins: [{ name: "filter", wasm: wasm("filter"), config: { rules: [{ topic: "t", field: "v", min: 2, max: 1 }] } }] }),
      /plugin "filter": init refused its config/,
    );
  });
});

describe("filter: twins agree on MQTT 5 messages with properties (ABI v2)", () => {
  test("400 generated messages with user properties, content type, response topic, correlation data, expiry", async () => {
    const rng = new Rng(1205);
    const v5 = messages(1205, 400).map((m) => ({ ...m, ...randomV5Fields(rng) }));
    const results = await assertTwinsAgree("filter", CONFIG, v5);
    assert.ok(results.some((r) => r.reasonCode === 0x99), "no refusal carried 0x99");
  });
});
