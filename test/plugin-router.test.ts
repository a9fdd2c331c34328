// router: content-based routes (extra publishes) and topic rewrites, compared
// with its native twin on generated messages and observed through a broker.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type { HarnessMessage } from "../host/harness.js";
import { Rng, assertTwinsAgree, assertTwinsRefuse, randomIdentity, randomJson, randomNumberText, randomPayload, randomTopic, verdictCounts, randomV5Fields } from "./differential.js";
import { ROOT, collect, connect, end, settle, startTestBroker, subscribe, wasm, type TestBroker } from "./helpers.js";

const CONFIG = {
  routes: [
    { from: "sensors/+/temp", when: { field: "value", above: 30 }, to: "alerts/{1}", qos: 1 },
    { from: "sensors/+/temp", when: { field: "value", above: -50, below: -10 }, to: "alerts/{1}/cold" },
    { from: "sensors/+/battery", when: { field: "level", below: 10 }, to: "maintenance/{1}/battery", retain: true },
    { from: "events/+/#", when: { field: "severity", equals: "critical" }, to: "alerts/{1}/{#}", keepOriginal: false },
    { from: "events/+/#", when: { field: "ack", equals: false }, to: "pending/{2}/{1}" },
    { from: "status/#", when: { field: "code", equals: 500 }, to: "errors/{#}", qos: 2 },
    { from: "copy/+/+", to: "mirror/{2}/{1}" },
    { from: "#", when: { field: "meta.route", equals: "all" }, to: "everything" },
  ],
  rewrites: [
    { from: "legacy/+/+", to: "devices/{1}/{2}" },
    { from: "legacy/#", to: "devices/misc/{#}" },
    { from: "old/+/x", to: "{1}" },
  ],
};

// Init reads the config through the SDK's Config, whose every lookup rescans
// the whole document: this 11-rule config needs ~82 M fuel to load (see README).
const LIMITS = { fuel: 150_000_000 };

const VOCABULARY = [
  ["sensors", "sensors", "events", "events", "status", "copy", "legacy", "old", "$SYS"],
  ["dev-1", "dev-2", "ü", "a b", ""],
  ["temp", "battery", "x", "y"],
];

// Payload kinds, indexed so that a topic's first level can ask for the kind its routes read.
const PAYLOADS: ((rng: Rng) => string)[] = [
  (rng) => `{"value":${randomNumberText(rng)}}`,
  (rng) => `{"level":${randomNumberText(rng)},"value":${randomNumberText(rng)}}`,
  // "critical" spelled with an escape is still "critical".
  (rng) => `{"severity":${rng.pick(['"critical"', '"crit\\u0069cal"', '"info"', "1", '"Critical"', "null"])},"ack":${rng.pick(["true", "false", '"false"', "0"])}}`,
  (rng) => `{"code":${rng.pick(["500", "500.0", "5e2", '"500"', "404", "-500"])}}`,
  (rng) => `{"meta":{"route":${rng.pick(['"all"', '"none"', "1"])}},"meta.route":"all"}`,
];
const KIND_FOR_LEVEL: Record<string, number> = { sensors: 1, events: 2, status: 3 };

function payload(rng: Rng, topic: string): HarnessMessage["payload"] {
  const kind = KIND_FOR_LEVEL[topic.split("/")[0]!];
  if (kind !== undefined && rng.chance(0.6)) return PAYLOADS[kind]!(rng);
  const r = rng.int(8);
  if (r < PAYLOADS.length) return PAYLOADS[r]!(rng);
  if (r === 5) return randomJson(rng, ["value", "level", "severity", "ack", "code", "meta"]);
  return randomPayload(rng, ["value", "level", "severity", "ack", "code"]);
}

function messages(seed: number, count: number): HarnessMessage[] {
  const rng = new Rng(seed);
  const out: HarnessMessage[] = [];
  for (let i = 0; i < count; i++) {
    const depth = rng.int(4);
    const vocabulary = depth === 0 ? VOCABULARY : [...VOCABULARY, ...Array.from({ length: depth }, () => ["more", "é", "#x", "1"])];
    const topic = randomTopic(rng, vocabulary);
    out.push({
      hook: "publish",
      topic,
      payload: payload(rng, topic),
      qos: rng.int(3),
      retain: rng.chance(0.2),
      clientId: randomIdentity(rng),
    });
  }
  return out;
}

describe("router: Wasm and native twin agree", () => {
  test("600 generated publishes: routes, conditions, moves and rewrites", async () => {
    const results = await assertTwinsAgree("router", CONFIG, messages(7, 600), LIMITS);
    const counts = verdictCounts(results);
    for (const outcome of ["continue", "drop", "changed", "published"]) assert.ok((counts[outcome] ?? 0) > 10, `too few ${outcome}: ${JSON.stringify(counts)}`);
    // Every extra publish went to a topic its route allows, with the original payload.
    for (const r of results) for (const p of r.published) assert.match(p.topic, /^(alerts|maintenance|pending|errors|mirror)\/|^everything$/);
  });

  test("routing examples: captures, {#} of a parent match, qos defaults to the message's", async () => {
    const results = await assertTwinsAgree("router", CONFIG, [
      { topic: "sensors/dev-9/temp", payload: { value: 31.5 }, qos: 0 },
      { topic: "sensors/dev-9/temp", payload: { value: -20 }, qos: 2 },
      { topic: "events/gw/door/3", payload: { severity: "critical" } },
      { topic: "events/gw", payload: { severity: "critical", ack: false } },
      { topic: "legacy/a/b" },
      { topic: "legacy/a/b/c" },
      { topic: "old/y/x" },
      { topic: "$SYS/x", payload: { meta: { route: "all" } } },
    ], LIMITS);
    assert.deepEqual(
      results.map((r) => [r.verdict, r.changed?.topic ?? null, r.published.map((p) => `${p.topic} q${p.qos}${p.retain ? " r" : ""}`)]),
      [
        ["continue", null, ["alerts/dev-9 q1"]],
        ["continue", null, ["alerts/dev-9/cold q2"]],
        ["drop", null, ["alerts/gw/door/3 q0"]],
        ["drop", null, ["alerts/gw/ q0", "pending//gw q0"]],
        ["continue", "devices/a/b", []],
        ["continue", "devices/misc/a/b/c", []],
        ["continue", "y", []],
        ["continue", null, []],
      ],
    );
    assert.equal(results[0]!.published[0]!.payload, '{"value":31.5}');
  });

  test("config.example.json does what the README's table says", async () => {
    const example = JSON.parse(readFileSync(join(ROOT, "plugins-as/router/config.example.json"), "utf8")) as Record<string, unknown>;
    const results = await assertTwinsAgree("router", example, [
      { topic: "sensors/dev-7/temp", payload: '{"value":31.5}' },
      { topic: "sensors/dev-7/temp", payload: '{"value":21}' },
      { topic: "events/gw-1/door/3", payload: '{"severity":"critical"}' },
      { topic: "legacy/boiler/pressure", payload: "2.1" },
    ], { fuel: 20_000_000 });
    assert.deepEqual(
      results.map((r) => [r.verdict, r.changed?.topic ?? null, r.published.map((p) => `${p.topic} ${p.payload} q${p.qos}`)]),
      [
        ["continue", null, ['alerts/dev-7 {"value":31.5} q1']],
        ["continue", null, []],
        ["drop", null, ['alerts/gw-1/door/3 {"severity":"critical"} q0']],
        ["continue", "devices/boiler/pressure", []],
      ],
    );
  });

  test("bad configs are refused by both builds, naming the key", async () => {
    await assertTwinsRefuse("router", {}, /at least one entry in routes or rewrites/);
    await assertTwinsRefuse("router", { routes: { a: 1 } }, /routes and config\.rewrites must be arrays/);
    await assertTwinsRefuse("router", { routes: [{ from: "a/#/b", to: "x" }] }, /routes\.0\.from must be an MQTT topic filter/);
    await assertTwinsRefuse("router", { routes: [{ from: "a/+", to: "x/{2}" }] }, /routes\.0\.to: \{2\} is not a wildcard of a\/\+/);
    await assertTwinsRefuse("router", { routes: [{ from: "a/+", to: "x/{#}" }] }, /routes\.0\.to: \{#\} needs a "from" filter ending in '#'/);
    await assertTwinsRefuse("router", { routes: [{ from: "a/+", to: "x/{1" }] }, /routes\.0\.to: unclosed '\{'/);
    await assertTwinsRefuse("router", { routes: [{ from: "a/+", to: "x/+" }] }, /routes\.0\.to must be a topic name/);
    await assertTwinsRefuse("router", { routes: [{ from: "a/+", to: "" }] }, /routes\.0\.to must be a non-empty topic/);
    await assertTwinsRefuse("router", { routes: [{ from: "a", to: "b", when: { field: "v" } }] }, /routes\.0\.when needs above, below or equals/);
    await assertTwinsRefuse("router", { routes: [{ from: "a", to: "b", when: { above: 1 } }] }, /routes\.0\.when\.field must name a JSON field/);
    await assertTwinsRefuse("router", { routes: [{ from: "a", to: "b", when: { field: "v", above: "1" } }] }, /routes\.0\.when\.above must be a number/);
    await assertTwinsRefuse("router", { routes: [{ from: "a", to: "b", when: { field: "v", equals: [1] } }] }, /routes\.0\.when\.equals must be a number, a string or a boolean/);
    await assertTwinsRefuse("router", { routes: [{ from: "a", to: "b", qos: 3 }] }, /routes\.0\.qos must be 0, 1 or 2/);
    await assertTwinsRefuse("router", { routes: [{ from: "a", to: "b", retain: "yes" }] }, /routes\.0\.retain must be true or false/);
    await assertTwinsRefuse("router", { rewrites: [{ from: "a/+", to: "b/{1}" }, { from: "c", to: "d/{1}" }] }, /rewrites\.1\.to: \{1\} is not a wildcard of c/);
  });
});

describe("router through the broker", () => {
  let broker: TestBroker;

  before(async () => {
    broker = await startTestBroker({ persistence: "memory", plugins: [{ name: "router", wasm: wasm("router"), config: CONFIG, limits: LIMITS }] });
  });
  after(() => broker.stop());

  test("a reading above the threshold is also published to alerts/<id>; others are not", async () => {
    const watcher = await connect(broker.url);
    const alerts = collect(watcher);
    await subscribe(watcher, ["alerts/#", "sensors/#"], 1);
    const device = await connect(broker.url, { clientId: "dev-42" });
    await device.publishAsync("sensors/dev-42/temp", JSON.stringify({ value: 35.2 }), { qos: 1 });
    await device.publishAsync("sensors/dev-42/temp", JSON.stringify({ value: 21 }), { qos: 1 });
    await alerts.waitFor(3);
    await settle(watcher);
    assert.deepEqual(
      alerts.messages.map((m) => [m.topic, m.payload.toString()]).sort(),
      [
        ["alerts/dev-42", '{"value":35.2}'],
        ["sensors/dev-42/temp", '{"value":21}'],
        ["sensors/dev-42/temp", '{"value":35.2}'],
      ],
    );
    await end(watcher, device);
  });

  test("a rewrite renames the message; a move (keepOriginal: false) leaves only the routed copy", async () => {
    const watcher = await connect(broker.url);
    const got = collect(watcher);
    await subscribe(watcher, ["legacy/#", "devices/#", "events/#", "alerts/#"], 1);
    const device = await connect(broker.url);
    await device.publishAsync("legacy/boiler/pressure", "2.1", { qos: 1 });
    await device.publishAsync("events/gw-1/fire", JSON.stringify({ severity: "critical" }), { qos: 1 });
    await device.publishAsync("events/gw-1/door", JSON.stringify({ severity: "minor" }), { qos: 1 });
    await got.waitFor(3);
    await settle(watcher);
    assert.deepEqual(got.messages.map((m) => m.topic).sort(), ["alerts/gw-1/fire", "devices/boiler/pressure", "events/gw-1/door"]);
    assert.ok(device.connected, "a moved message is dropped silently, the publisher stays connected");
    await end(watcher, device);
  });

  test("a bad config stops the broker from starting, naming the plugin", async () => {
    await assert.rejects(
      startTestBroker({ persistence: "memory", plugins: [{ name: "router", wasm: wasm("router"), config: { routes: [{ from: "a/+", to: "b/{9}" }] } }] }),
      /plugin "router": init refused its config/,
    );
  });
});

describe("router: twins agree on MQTT 5 messages with properties (ABI v2)", () => {
  test("400 generated messages with user properties, content type, response topic, correlation data, expiry", async () => {
    const rng = new Rng(1205);
    const v5 = messages(1205, 400).map((m) => ({ ...m, ...randomV5Fields(rng) }));
    const results = await assertTwinsAgree("router", CONFIG, v5, LIMITS);
    assert.ok(results.some((r) => r.published.some((p) => p.properties !== undefined && (p.properties.correlationData !== null || p.properties.responseTopic !== null))), "no routed copy carried request/response properties");
  });
});
