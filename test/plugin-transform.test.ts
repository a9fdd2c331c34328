// transform: CSV/binary → JSON, unit conversion and redaction. The twins must
// produce the same bytes: one number formatter (checked over many doubles),
// one JSON splicer (checked on generated, duplicate-keyed and escaped JSON).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type { HarnessMessage, HarnessResult } from "../host/harness.js";
import { Rng, assertTwinsAgree, assertTwinsRefuse, randomJson, randomNumberText, randomPayload, randomWord, verdictCounts } from "./differential.js";
import { ROOT, collect, connect, end, native, settle, startTestBroker, subscribe, wasm, type TestBroker } from "./helpers.js";

const { formatNumber } = (await import(native("transform"))) as { formatNumber: (x: number, decimals?: number) => string };

// Init reads the config through the SDK's Config, whose every lookup rescans the
// whole document: the 1.4 KB PUBLISH_RULES need ~300 M fuel to load (README).
const LIMITS = { fuel: 1_000_000_000 };

const LAYOUT = [
  { name: "t", type: "i16", scale: 0.01 },
  { name: "h", type: "u8" },
  { type: "pad", size: 1 },
  { name: "p", type: "u32", scale: 0.1, offset: -5 },
  { name: "f", type: "f32" },
  { name: "d", type: "f64" },
  { name: "s", type: "i8" },
  { name: "w", type: "u16" },
  { name: "i", type: "i32", scale: -1 },
];
const LAYOUT_SIZE = 2 + 1 + 1 + 4 + 4 + 8 + 1 + 2 + 4;

const PUBLISH_RULES = {
  decimals: 2,
  rules: [
    { topic: "csv/+", csvToJson: { fields: ["temp", "hum", "id"] }, convert: [{ field: "temp", from: "F", to: "C" }] },
    { topic: "csv/semi/#", csvToJson: { fields: ["a", "b"], separator: ";" }, decimals: 0, convert: [{ field: "b", scale: 3 }] },
    { topic: "bin/le", binaryToJson: { fields: LAYOUT } },
    { topic: "bin/be", binaryToJson: { fields: LAYOUT, bigEndian: true }, decimals: 6 },
    { topic: "bin/f64/+", binaryToJson: { fields: [{ name: "x", type: "f64" }, { name: "y", type: "f64" }] }, decimals: 15 },
    { topic: "json/#", convert: [{ field: "temp", from: "C", to: "K" }, { field: "p", scale: 0.001 }, { field: "a.0.x", offset: 1 }], redact: ["password", "gps.lat", "tokens.1"] },
    { topic: "json/remove/#", redact: ["password", "gps", "arr.0", "x.y"], redactMode: "remove" },
    { topic: "json/#", redact: ["temp"], mask: 'hidden "\u00e9\u0001 😀' },
  ],
};

const DELIVER_RULES = {
  onInvalid: "pass",
  decimals: 0,
  rules: [
    { topic: "fleet/#", hook: "deliver", redact: ["gps", "driver.name"], redactMode: "remove", exceptUsers: ["ops", "a/b"] },
    { topic: "fleet/+/speed", hook: "deliver", convert: [{ field: "v", from: "K", to: "F" }], decimals: 15 },
    { topic: "raw/#", csvToJson: { fields: ["x"] } },
  ],
};

const JSON_FIELDS = ["password", "gps", "lat", "temp", "p", "a", "x", "y", "tokens", "arr", "driver", "name", "v"];

function csvLine(rng: Rng, cells: number): string {
  const out: string[] = [];
  for (let i = 0; i < cells; i++) {
    const r = rng.int(8);
    out.push(r < 4 ? randomNumberText(rng) : r < 5 ? "" : r < 6 ? ` ${randomNumberText(rng)} ` : r < 7 ? randomWord(rng) : rng.pick(['"q"', "a\\b", "1,5", "tab\there", "1e", "0x10", "NaN", "true"]));
  }
  return out.join(",") + rng.pick(["", "", "\n", "\r\n", " ", "\n\n"]);
}

function binary(rng: Rng, size: number): HarnessMessage["payload"] {
  const bytes = rng.bytes(size + (rng.chance(0.1) ? rng.pick([-1, 1]) : 0));
  return { base64: bytes.toString("base64") };
}

/** Doubles of every kind as 8 little-endian bytes: random bit patterns and chosen values. */
function doubles(rng: Rng): Buffer {
  const buf = Buffer.alloc(16);
  for (const at of [0, 8]) {
    const r = rng.int(4);
    if (r === 0) buf.writeDoubleLE(rng.pick([0, -0, 0.5, 1.005, 2.675, 1e21, 2 ** 53, 2 ** 53 - 1, -(2 ** 60), 1e308, 5e-324, NaN, Infinity, 0.1 + 0.2, 123.456, 9.995, 1 / 3]), at);
    else if (r === 1) buf.writeDoubleLE((rng.next() - 0.5) * 10 ** (rng.int(40) - 20), at);
    else buf.set(rng.bytes(8), at);
  }
  return buf;
}

function publishMessages(seed: number, count: number): HarnessMessage[] {
  const rng = new Rng(seed);
  const out: HarnessMessage[] = [];
  for (let i = 0; i < count; i++) {
    const r = rng.int(12);
    let topic: string;
    let payload: HarnessMessage["payload"];
    if (r < 2) [topic, payload] = ["csv/" + randomWord(rng), csvLine(rng, rng.chance(0.85) ? 3 : rng.int(5))];
    else if (r < 3) [topic, payload] = ["csv/semi/x", csvLine(rng, 2).replace(",", ";")];
    else if (r < 4) [topic, payload] = [rng.pick(["bin/le", "bin/be"]), binary(rng, LAYOUT_SIZE)];
    else if (r < 6) [topic, payload] = ["bin/f64/" + rng.int(3), { base64: doubles(rng).toString("base64") }];
    else if (r < 10) [topic, payload] = [rng.pick(["json/a", "json/remove/b", "json/remove"]), rng.chance(0.8) ? randomJson(rng, JSON_FIELDS) : randomPayload(rng, JSON_FIELDS)];
    else [topic, payload] = [rng.pick(["other", "json", "csv/a/b"]), randomPayload(rng, JSON_FIELDS)];
    out.push({ hook: "publish", topic, payload });
  }
  return out;
}

function vehicleReport(rng: Rng): string {
  const members: string[] = [];
  if (rng.chance(0.7)) members.push(`"gps":${rng.chance(0.8) ? `{"lat":${randomNumberText(rng)},"lon":${randomNumberText(rng)}}` : randomJson(rng, JSON_FIELDS, 2)}`);
  if (rng.chance(0.5)) members.push(`"driver":{"name":${JSON.stringify(randomWord(rng))},"id":${rng.int(100)}}`);
  if (rng.chance(0.7)) members.push(`"v":${randomNumberText(rng)}`);
  if (rng.chance(0.3)) members.push(`"gps":null`);
  return `{${members.join(rng.pick([",", ", "]))}}`;
}

function deliverMessages(seed: number, count: number): HarnessMessage[] {
  const rng = new Rng(seed);
  const out: HarnessMessage[] = [];
  for (let i = 0; i < count; i++) {
    const topic = rng.pick(["fleet/truck-1/pos", "fleet/truck-2/speed", "fleet", "raw/1", "elsewhere"]);
    const payload = topic === "raw/1" && rng.chance(0.5) ? csvLine(rng, 1) : rng.chance(0.6) ? vehicleReport(rng) : rng.chance(0.7) ? randomJson(rng, JSON_FIELDS) : randomPayload(rng, JSON_FIELDS);
    const username = rng.pick([null, "ops", "a/b", "driver", "OPS", ""]);
    out.push({ hook: rng.chance(0.8) ? "deliver" : "publish", topic, payload, username, clientId: `sub-${rng.int(5)}`, peer: "pub" });
  }
  return out;
}

function parsedChanges(results: HarnessResult[]): unknown[] {
  return results.filter((r) => r.changed?.payload !== undefined).map((r) => JSON.parse(r.changed!.payload!) as unknown);
}

describe("transform: Wasm and native twin agree", () => {
  test("700 generated publishes: CSV, binary, conversions, masking and removal", async () => {
    const messages = publishMessages(11, 700);
    const results = await assertTwinsAgree("transform", PUBLISH_RULES, messages, LIMITS);
    const counts = verdictCounts(results);
    for (const outcome of ["continue", "drop", "changed"]) assert.ok((counts[outcome] ?? 0) > 30, `too few ${outcome}: ${JSON.stringify(counts)}`);
    // Every rewritten payload is valid JSON (parsedChanges throws otherwise).
    assert.ok(parsedChanges(results).length > 200);
    // Removal leaves no trace of the removed fields at top level.
    results.forEach((r, i) => {
      if (!messages[i]!.topic!.startsWith("json/remove") || !r.changed?.payload) return;
      const out = JSON.parse(r.changed.payload) as unknown;
      if (out && typeof out === "object" && !Array.isArray(out)) {
        assert.ok(!("password" in out) && !("gps" in out), `still there after removal: ${r.changed.payload}`);
      }
    });
  });

  test("400 generated deliveries: per-subscriber rules, exempt users, onInvalid pass", async () => {
    const messages = deliverMessages(12, 400);
    const results = await assertTwinsAgree("transform", DELIVER_RULES, messages, LIMITS);
    const counts = verdictCounts(results);
    assert.equal(counts.drop, undefined, "onInvalid: pass never drops");
    assert.ok((counts.changed ?? 0) > 50, JSON.stringify(counts));
    results.forEach((r, i) => {
      const m = messages[i]!;
      if (m.hook === "deliver" && m.topic === "fleet/truck-1/pos" && (m.username === "ops" || m.username === "a/b")) {
        assert.equal(r.changed, undefined, "exempt subscribers get the message as published");
      }
      if (m.hook === "publish" && m.topic!.startsWith("fleet")) assert.equal(r.changed, undefined, "deliver rules do not run at publish");
    });
  });

  test("the number formatter: twins agree on 4000 doubles, and the native one is exact where it claims", async () => {
    const rng = new Rng(13);
    const messages: HarnessMessage[] = [];
    for (let i = 0; i < 2000; i++) messages.push({ topic: "bin/f64/1", payload: { base64: doubles(rng).toString("base64") } });
    const results = await assertTwinsAgree("transform", PUBLISH_RULES, messages, LIMITS);
    for (const r of results) assert.match(r.changed!.payload!, /^\{"x":(null|-?(0|[1-9]\d*)(\.\d*[1-9])?),"y":(null|-?(0|[1-9]\d*)(\.\d*[1-9])?)\}$/);
    for (let i = 0; i < 3000; i++) {
      const x = i % 3 === 0 ? Buffer.from(rng.bytes(8)).readDoubleLE(0) : (rng.next() - 0.5) * 10 ** (rng.int(44) - 22);
      const decimals = rng.int(16);
      const s = formatNumber(x, decimals);
      if (!Number.isFinite(x)) {
        assert.equal(s, "null");
        continue;
      }
      if (Math.abs(x) >= 2 ** 53) {
        assert.equal(s, BigInt(x).toString(), `exact integer digits of ${x}`);
        continue;
      }
      // Rounded on the scaled binary value, whose own rounding can add up to half
      // a unit more near 2^53: within one unit of the last printed digit.
      let d = decimals;
      while (d > 0 && Math.abs(x) * 10 ** d >= 2 ** 53) d--;
      assert.ok(Math.abs(Number(s) - x) <= 10 ** -d + Math.abs(x) * 2 ** -52, `${x} with ${decimals} decimals gave ${s}`);
      if (Math.abs(x) * 10 ** d < 2 ** 40) assert.ok(Math.abs(Number(s) - x) <= 0.5 * 10 ** -d * (1 + 1e-6) + Math.abs(x) * 2 ** -52, `${x} with ${decimals} decimals gave ${s}`);
    }
    assert.deepEqual(
      [formatNumber(21.5, 2), formatNumber(48), formatNumber(70 / 3, 2), formatNumber(-0.0001, 2), formatNumber(1e21, 2), formatNumber(1.005, 2), formatNumber(-0), formatNumber(0.1 + 0.2, 15), formatNumber(2 ** 64, 3)],
      ["21.5", "48", "23.33", "0", "1000000000000000000000", "1", "0", "0.3", "18446744073709551616"],
    );
  });

  test("worked examples: bytes around an edit are kept as sent", async () => {
    const results = await assertTwinsAgree("transform", PUBLISH_RULES, [
      { topic: "csv/dev-1", payload: "70.5, 48 ,dev\"1\r\n" },
      { topic: "csv/semi/x", payload: "1.5;2.5" },
      { topic: "bin/le", payload: { base64: Buffer.from("3008 2a 00 e8030000 0000c03f 000000000000f03f ff 3412 ffffffff".replaceAll(" ", ""), "hex").toString("base64") } },
      { topic: "json/x", payload: '{ "password" : "s3cret", "gps":{"lat":51.5,"lon":-0.12} ,"temp":21.5,"p" :101325, "tokens":["a","b"],"password":"again"}' },
      { topic: "json/remove/x", payload: '{"password":1, "keep":true, "password":2,"gps":{},"arr":[[1],2]}' },
      { topic: "json/x", payload: '{"p\\u0061ssword":"escaped key"}' },
      { topic: "json/x", payload: '{"password":"unterminated}' },
      { topic: "csv/dev-1", payload: "1,2" },
    ], LIMITS);
    assert.deepEqual(
      results.map((r) => r.changed?.payload ?? r.verdict),
      [
        '{"temp":21.39,"hum":48,"id":"dev\\"1"}',
        '{"a":1.5,"b":8}',
        '{"t":20.96,"h":42,"p":95,"f":1.5,"d":1,"s":-1,"w":4660,"i":1}',
        '{ "password" : "***", "gps":{"lat":"***","lon":-0.12} ,"temp":"hidden \\"é\\u0001 😀","p" :101.33, "tokens":["a","***"],"password":"***"}',
        '{"keep":true,"arr":[2]}',
        '{"p\\u0061ssword":"***"}',
        "drop",
        "drop",
      ],
    );
  });

  test("config.example.json does what the README's table says", async () => {
    const example = JSON.parse(readFileSync(join(ROOT, "plugins-as/transform/config.example.json"), "utf8")) as Record<string, unknown>;
    const report = '{"speed":80,"gps":{"lat":1,"lon":2}}';
    const results = await assertTwinsAgree("transform", example, [
      { topic: "plant/boiler/csv", payload: "70.5,48,1013" },
      { topic: "tags/t1/raw", payload: { base64: Buffer.from("30082a00e80f", "hex").toString("base64") } },
      { topic: "accounts/42", payload: '{"user":"ann","password":"x","card":{"number":"4111"}}' },
      { hook: "deliver", topic: "fleet/t7", payload: report, username: "viewer" },
      { hook: "deliver", topic: "fleet/t7", payload: report, username: "ops" },
      { topic: "plant/boiler/csv", payload: "1,2" },
    ], { fuel: 50_000_000 });
    assert.deepEqual(results.map((r) => r.changed?.payload ?? r.verdict), [
      '{"temp":21.39,"hum":48,"pres":1013}',
      '{"temp":20.96,"hum":42,"battery":4.07}',
      '{"user":"ann","password":"***","card":{"number":"***"}}',
      '{"speed":80}',
      "continue",
      "drop",
    ]);
  });

  test("bad configs are refused by both builds, naming the key", async () => {
    await assertTwinsRefuse("transform", {}, /config\.rules must be a non-empty array/);
    await assertTwinsRefuse("transform", { rules: [{ topic: "a/#/b", redact: ["x"] }] }, /rules\.0\.topic must be an MQTT topic filter/);
    await assertTwinsRefuse("transform", { rules: [{ topic: "a" }] }, /rules\.0 does nothing/);
    await assertTwinsRefuse("transform", { rules: [{ topic: "a", redact: ["x", ""] }] }, /rules\.0\.redact\.1 must be a non-empty string/);
    await assertTwinsRefuse("transform", { rules: [{ topic: "a", redact: "x" }] }, /rules\.0\.redact must be an array of strings/);
    await assertTwinsRefuse("transform", { rules: [{ topic: "a", redact: ["x"], redactMode: "hide" }] }, /rules\.0\.redactMode must be mask or remove/);
    await assertTwinsRefuse("transform", { rules: [{ topic: "a", redact: ["x"], mask: 1 }] }, /rules\.0\.mask must be a string/);
    await assertTwinsRefuse("transform", { rules: [{ topic: "a", convert: [{ field: "t", from: "C", to: "R" }] }] }, /rules\.0\.convert\.0\.from and \.to must each be C, F or K/);
    await assertTwinsRefuse("transform", { rules: [{ topic: "a", convert: [{ field: "t" }] }] }, /rules\.0\.convert\.0 needs either from and to/);
    await assertTwinsRefuse("transform", { rules: [{ topic: "a", convert: [{ field: "t", from: "C", to: "F", scale: 2 }] }] }, /rules\.0\.convert\.0 needs either from and to/);
    await assertTwinsRefuse("transform", { rules: [{ topic: "a", convert: [{ field: "t", scale: 2, offset: "1" }] }] }, /rules\.0\.convert\.0\.scale and \.offset must be finite numbers/);
    await assertTwinsRefuse("transform", { rules: [{ topic: "a", csvToJson: { fields: [] } }] }, /rules\.0\.csvToJson\.fields must name at least one field/);
    await assertTwinsRefuse("transform", { rules: [{ topic: "a", csvToJson: { fields: ["a"], separator: " " } }] }, /rules\.0\.csvToJson\.separator must be one printable ASCII character/);
    await assertTwinsRefuse("transform", { rules: [{ topic: "a", csvToJson: { fields: ["a"] }, binaryToJson: { fields: [] } }] }, /rules\.0 can have csvToJson or binaryToJson, not both/);
    await assertTwinsRefuse("transform", { rules: [{ topic: "a", binaryToJson: { fields: [{ name: "x", type: "i64" }] } }] }, /rules\.0\.binaryToJson\.fields\.0\.type must be one of u8, i8/);
    await assertTwinsRefuse("transform", { rules: [{ topic: "a", binaryToJson: { fields: [{ type: "pad", size: 0 }] } }] }, /fields\.0\.size must be a whole number of bytes/);
    await assertTwinsRefuse("transform", { rules: [{ topic: "a", binaryToJson: { fields: [{ name: "x", type: "u8" }], bigEndian: 1 } }] }, /binaryToJson\.bigEndian must be true or false/);
    await assertTwinsRefuse("transform", { rules: [{ topic: "a", redact: ["x"], hook: "subscribe" }] }, /rules\.0\.hook must be publish or deliver/);
    await assertTwinsRefuse("transform", { rules: [{ topic: "a", redact: ["x"], exceptUsers: ["ops"] }] }, /rules\.0\.exceptUsers needs "hook": "deliver"/);
    await assertTwinsRefuse("transform", { rules: [{ topic: "a", redact: ["x"], decimals: 16 }] }, /rules\.0\.decimals must be a whole number from 0 to 15/);
    await assertTwinsRefuse("transform", { rules: [{ topic: "a", redact: ["x"] }], onInvalid: "keep" }, /config\.onInvalid must be drop or pass/);
  });
});

describe("transform through the broker", () => {
  let broker: TestBroker;

  before(async () => {
    broker = await startTestBroker({
      persistence: "memory",
      plugins: [
        {
          name: "transform",
          wasm: wasm("transform"),
          limits: LIMITS,
          config: {
            rules: [
              { topic: "plant/+/csv", csvToJson: { fields: ["temp", "hum", "pres"] }, convert: [{ field: "temp", from: "F", to: "C" }], decimals: 1 },
              { topic: "accounts/#", redact: ["password"] },
              { topic: "fleet/#", hook: "deliver", redact: ["gps"], redactMode: "remove", exceptUsers: ["ops"] },
            ],
          },
        },
      ],
    });
  });
  after(() => broker.stop());

  test("subscribers see the rewritten payloads; an exempt subscriber sees the original", async () => {
    const viewer = await connect(broker.url, { username: "viewer" });
    const ops = await connect(broker.url, { username: "ops" });
    const gotViewer = collect(viewer);
    const gotOps = collect(ops);
    await subscribe(viewer, ["plant/#", "accounts/#", "fleet/#"], 1);
    await subscribe(ops, "fleet/#", 1);
    const device = await connect(broker.url);
    await device.publishAsync("plant/boiler/csv", "212,40,1013\n", { qos: 1 });
    await device.publishAsync("accounts/42", '{"user":"ann","password":"hunter2"}', { qos: 1 });
    await device.publishAsync("fleet/truck-7", '{"speed":80,"gps":{"lat":1,"lon":2}}', { qos: 1 });
    await device.publishAsync("plant/boiler/csv", "not,enough", { qos: 1 });
    await gotViewer.waitFor(3);
    await gotOps.waitFor(1);
    await settle(viewer);
    assert.deepEqual(
      gotViewer.messages.map((m) => [m.topic, m.payload.toString()]).sort(),
      [
        ["accounts/42", '{"user":"ann","password":"***"}'],
        ["fleet/truck-7", '{"speed":80}'],
        ["plant/boiler/csv", '{"temp":100,"hum":40,"pres":1013}'],
      ],
    );
    assert.deepEqual(gotOps.messages.map((m) => m.payload.toString()), ['{"speed":80,"gps":{"lat":1,"lon":2}}']);
    await end(viewer, ops, device);
  });

  test("a bad config stops the broker from starting, naming the plugin", async () => {
    await assert.rejects(
      startTestBroker({ persistence: "memory", plugins: [{ name: "transform", wasm: wasm("transform"), config: { rules: [{ topic: "x", redactMode: "mask" }] } }] }),
      /plugin "transform": init refused its config/,
    );
  });
});
