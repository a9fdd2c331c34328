// Deferred payloads (ABI v2, host/deferred-payload.ts) and the per-call JSON
// validation the SDK's Message reuses (callScratch), on real compiled plugins
// driven through PluginChain.run — the call the broker makes per message:
// - a plugin that never reads a large payload never has it copied (fuel shows
//   the copy is charged only when it reads it), and when it does read it, it
//   gets exactly this message's bytes, never an earlier message's;
// - a module without the feature export gets the payload in the record, as
//   every binary before it did;
// - filter and its native twin validate each message afresh: a message of the
//   same length as the last one, at the same address, is never judged by the
//   last one's validation;
// - on large generated readings filter and router agree with their native
//   twins, and 16 KB readings cross a real broker byte for byte.
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { emptyMessage, MemoryKvStore, PluginChain, Verdict, type HookMessage } from "../host/index.js";
import { emptyV5 } from "../host/message-v5.js";
import { DEFER_PAYLOAD_MIN_BYTES } from "../host/deferred-payload.js";
import { FUEL_PER_BYTE } from "../host/host-calls.js";
import { buildSource } from "./fixtures.js";
import { collect, connect, end, ROOT, scratchDir, settle, startTestBroker, subscribe, wasm, type TestBroker } from "./helpers.js";
import { assertTwinsAgree, Rng, verdictCounts } from "./differential.js";
import type { HarnessMessage } from "../host/harness.js";

// "skip/…" decides on the topic alone; "read/…" hands the payload back
// reversed (so the test sees every byte the plugin read).
const READER = `
import { Message, Verdict } from "SDK_PATH";
export * from "SDK_PATH/exports";
export function onPublish(msg: Message): i32 {
  if (msg.topicMatches("skip/#")) return Verdict.Continue;
  const n = msg.payloadLength;
  const p = msg.payloadPtr;
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = load<u8>(p + <usize>(n - 1 - i));
  msg.setPayload(out);
  return Verdict.Continue;
}
`;

// Built before deferred payloads: no wasmq_features export, and it reads the
// payload's bytes straight from the record (after the topic).
const LEGACY = `
import { Message, Verdict } from "SDK_PATH";
export { wasmq_abi_version, wasmq_reserve } from "SDK_PATH/exports";
export function onPublish(msg: Message): i32 {
  const n = msg.payloadLength;
  const p = msg.topicPtr + <usize>msg.topicLen;
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = load<u8>(p + <usize>(n - 1 - i));
  msg.setPayload(out);
  return Verdict.Continue;
}
`;

let dir: string;
let reader: string;
let legacy: string;
const chains: PluginChain[] = [];

before(async () => {
  dir = scratchDir("wasmq-payload-fetch-");
  reader = await buildSource(READER, join(dir, "reader.wasm"));
  legacy = await buildSource(LEGACY, join(dir, "legacy.wasm"));
});

after(() => {
  for (const c of chains) c.close();
});

async function chainOf(spec: { name: string; wasm?: string; native?: string; config?: Record<string, unknown> }): Promise<PluginChain> {
  const chain = await PluginChain.load([{ config: {}, ...spec }], { kv: new MemoryKvStore(), publish: () => {} });
  chain.on("trap", (name, hook, kind, error) => assert.fail(`${name} trapped in ${hook}: ${kind}: ${String(error)}`));
  chains.push(chain);
  return chain;
}

function message(topic: string, payload: Uint8Array): HookMessage {
  const m = emptyMessage();
  m.topic = topic;
  m.clientId = "dev-1";
  m.payload = payload;
  return m;
}

/** n bytes that differ from message to message (seeded by `seed`). */
function bytes(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed * 7 + (i >> 8)) & 0xff;
  return b;
}

const reversed = (b: Uint8Array): Buffer => Buffer.from(b).reverse();

function fuelOf(chain: PluginChain): number {
  return chain.slots[0]!.stats.fuelUsedLast;
}

describe("deferred payloads: copied into a plugin only when it reads them", () => {
  test("a plugin that reads a large payload gets exactly this message's bytes, after calls that did not read theirs", async () => {
    const chain = await chainOf({ name: "reader", wasm: reader });
    const sizes = [16384, 16384, 5000, DEFER_PAYLOAD_MIN_BYTES, DEFER_PAYLOAD_MIN_BYTES - 1, 64, 0, 70000, 16384];
    let seed = 0;
    for (const size of sizes) {
      // Same length, same address: what a stale record would show is the skipped message.
      const skipped = message("skip/a", bytes(size, ++seed));
      assert.equal(chain.run("publish", skipped).verdict, Verdict.Continue);
      const read = message("read/a", bytes(size, ++seed));
      const out = chain.run("publish", read);
      assert.equal(out.verdict, Verdict.Continue);
      assert.equal(out.modified, true);
      assert.ok(Buffer.from(read.payload).equals(reversed(bytes(size, seed))), `${size} B: the plugin read other bytes than this message's`);
    }
  });

  test("fuel shows the copy is charged when the plugin fetches, and not when it never reads", async () => {
    const chain = await chainOf({ name: "reader", wasm: reader });
    const size = 16384;
    // The first call also checks the filter "skip/#", which the SDK then remembers.
    chain.run("publish", message("skip/a", bytes(64, 1)));
    chain.run("publish", message("skip/a", bytes(size, 1)));
    const skipLarge = fuelOf(chain);
    chain.run("publish", message("skip/a", bytes(64, 1)));
    const skipSmall = fuelOf(chain);
    // Skipping costs the same whatever the payload's size: nothing was copied or charged.
    assert.equal(skipLarge, skipSmall);
    chain.run("publish", message("read/a", bytes(size, 2)));
    const readLarge = fuelOf(chain);
    assert.ok(readLarge - skipLarge >= size * FUEL_PER_BYTE, `reading 16 KB cost only ${readLarge - skipLarge} fuel more than skipping it`);
  });

  test("a module whose wasmq_features traps is refused, naming it", async () => {
    const broken = await buildSource(
      `import { Message, Verdict } from "SDK_PATH";
export { wasmq_abi_version, wasmq_reserve } from "SDK_PATH/exports";
export function wasmq_features(): i32 { unreachable(); return 1; }
export function onPublish(msg: Message): i32 { return Verdict.Continue; }
`,
      join(dir, "broken-features.wasm"),
    );
    await assert.rejects(chainOf({ name: "broken", wasm: broken }), /plugin "broken": refused: wasmq_features\(\) failed/);
  });

  test("a module without the feature export gets the payload in the record, as before", async () => {
    const chain = await chainOf({ name: "legacy", wasm: legacy });
    for (const [i, size] of [16384, 64, 70000, 16384].entries()) {
      const m = message("read/a", bytes(size, 100 + i));
      chain.run("publish", m);
      assert.ok(Buffer.from(m.payload).equals(reversed(bytes(size, 100 + i))), `${size} B read from the record differ`);
    }
  });
});

describe("the SDK's JSON validation is reused within a call, never across calls", () => {
  const filterConfig = { rules: [{ topic: "#", field: "value", min: 0, max: 100 }] };
  const SIZE = 1600;
  /** head + padding + tail, exactly SIZE bytes. */
  const doc = (head: string, tail: string): string => head + "a".repeat(SIZE - head.length - tail.length) + tail;
  // All the same length, written into one reused buffer: a validation or a
  // root-member table kept from the last call would misjudge the next.
  const docs: [string, number][] = [
    [doc('{"value":21.5,"x":"', '"}'), Verdict.Continue],
    [doc('{"value":21.5,"x":"', "}"), Verdict.Drop], // unterminated string
    [doc('{"value":300.,"x":"', '"}'), Verdict.Drop], // invalid number
    [doc('{"value":300.5,"x":"', '"}'), Verdict.Drop], // out of range
    [doc('{"x":"', '","value":7.25}'), Verdict.Continue], // the field after the long string
    [doc('{"value":21.5,"x":"', '"}'), Verdict.Continue],
    [doc('{"vaaue":21.5,"x":"', '"}'), Verdict.Drop], // missing field
    [doc('{"value":1,"value":999,"x":"', '"}'), Verdict.Drop], // the last duplicate wins
    [doc('{"value":999,"value":1,"x":"', '"}'), Verdict.Continue],
  ];

  for (const kind of ["wasm", "native"] as const) {
    test(`filter (${kind}) judges each message by its own payload`, async () => {
      const spec =
        kind === "wasm"
          ? { name: "filter", wasm: join(ROOT, "dist/plugins/filter.wasm"), config: filterConfig }
          : { name: "filter", native: join(ROOT, "dist/plugins-as/filter/native.js"), config: filterConfig };
      const chain = await chainOf(spec);
      const payload = Buffer.alloc(SIZE);
      for (let round = 0; round < 2; round++) {
        for (const [i, [text, want]] of docs.entries()) {
          assert.equal(text.length, SIZE);
          payload.write(text, "latin1");
          const m = message("sensors/a/temp", payload);
          // MQTT 5 messages too: the host writes their header fields another way.
          if ((i + round) % 2 === 1) m.v5 = { ...emptyV5(5), userProperties: [["k", "v"]], contentType: "application/json" };
          const out = chain.run("publish", m);
          assert.equal(out.verdict, want, `${text.slice(0, 40)}…: got verdict ${out.verdict}`);
        }
      }
    });
  }
});

/** A reading of 1–20 KB: a long string (sometimes with escapes, non-ASCII or a broken byte) and a number field before or after it. */
function largeReading(rng: Rng): HarnessMessage["payload"] {
  const pad = "x".repeat(1000 + rng.int(19000));
  const cut = rng.int(pad.length);
  const odd = rng.pick(['\\"', "\\\\", "\\u00e9", "é", "😀", "\\n", "", "", "\u0001", "\\q"]);
  const text = pad.slice(0, cut) + odd + pad.slice(cut);
  const value = rng.pick(["21.5", "-3", "300", "1e2", '"21"', "null", "01"]);
  const doc = rng.chance(0.5) ? `{"value":${value},"s":"${text}"}` : `{"s":"${text}","meta":{"battery":5},"value":${value}}`;
  if (rng.chance(0.1)) {
    // a byte that is not UTF-8, somewhere in the string
    const bytes = Buffer.from(doc);
    bytes[12 + rng.int(bytes.length - 20)] = 0xff;
    return { base64: bytes.toString("base64") };
  }
  return rng.chance(0.1) ? doc.slice(0, -1) : doc;
}

describe("large readings: Wasm (SIMD scan, deferred payload) and native twins agree", () => {
  const rng = new Rng(1717);
  const messages: HarnessMessage[] = [];
  for (let i = 0; i < 160; i++) messages.push({ hook: "publish", topic: rng.pick(["sensors/a/temp", "sensors/b/humidity", "other/x"]), payload: largeReading(rng) });

  test("filter", async () => {
    const config = { rules: [{ topic: "sensors/+/temp", field: "value", min: -40, max: 85 }, { topic: "sensors/#", field: "meta.battery", min: 0 }], onMissing: "pass" };
    const counts = verdictCounts(await assertTwinsAgree("filter", config, messages));
    for (const outcome of ["continue", "drop"]) assert.ok((counts[outcome] ?? 0) > 20, `too few ${outcome}: ${JSON.stringify(counts)}`);
  });

  test("router (routed copies carry the fetched payload)", async () => {
    const config = { routes: [{ from: "sensors/+/temp", to: "alerts/{1}", when: { field: "value", above: 50 } }] };
    const counts = verdictCounts(await assertTwinsAgree("router", config, messages));
    assert.ok((counts.published ?? 0) >= 3, `too few routed: ${JSON.stringify(counts)}`);
  });
});

describe("large documents: transform (SIMD string skip) and its native twin agree", () => {
  test("redact and convert fields around long strings with escapes", async () => {
    const rng = new Rng(1718);
    const messages: HarnessMessage[] = [];
    for (let i = 0; i < 120; i++) {
      const pad = "p".repeat(rng.int(20000));
      const odd = rng.pick(['\\"', "\\\\", "\\u00e9", "é", "\\n", ""]);
      const cut = rng.int(pad.length + 1);
      const long = pad.slice(0, cut) + odd + pad.slice(cut);
      const parts = [`"password":"${long}"`, `"note":"${long}"`, `"card":{"number":"4111${odd}","x":"${long}"}`, `"temp":${rng.int(100)}`, `"password":1`];
      const picked = parts.filter(() => rng.chance(0.7));
      messages.push({ hook: "publish", topic: "accounts/a/b", payload: `{${picked.join(",")}}` });
    }
    const config = { rules: [{ topic: "accounts/#", redact: ["password", "card.number"], convert: [{ field: "temp", from: "F", to: "C" }] }] };
    const counts = verdictCounts(await assertTwinsAgree("transform", config, messages));
    assert.ok((counts.changed ?? 0) > 50, `too few changed: ${JSON.stringify(counts)}`);
  });
});

describe("16 KB readings through a broker: acl + filter + router (Wasm)", () => {
  let broker: TestBroker;
  before(async () => {
    broker = await startTestBroker({
      persistence: "memory",
      plugins: [
        { name: "acl", wasm: wasm("acl"), config: { default: "allow" } },
        { name: "filter", wasm: wasm("filter"), config: { rules: [{ topic: "sensors/+/temp", field: "value", min: -40, max: 85 }] } },
        { name: "router", wasm: wasm("router"), config: { routes: [{ from: "sensors/+/temp", to: "alerts/{1}", when: { field: "value", above: 50 } }] } },
      ],
    });
  });
  after(async () => {
    await broker.stop();
  });

  test("valid readings arrive byte for byte, routed copies too; invalid and out-of-range ones are dropped", async () => {
    const sub = await connect(broker.url);
    const got = collect(sub);
    await subscribe(sub, "#", 1);
    const dev = await connect(broker.url);
    const reading = (value: string, fill: string): Buffer => Buffer.from(`{"value":${value},"x":"${fill.repeat(Math.ceil(16300 / fill.length)).slice(0, 16300)}"}`);
    const ok = reading("21.5", "abcé\\\"");
    const hot = reading("60", "0123456789");
    for (const payload of [ok, reading("300", "y"), Buffer.concat([reading("20", "z").subarray(0, -2), Buffer.from([0xff, 0x7d])]), hot]) {
      await dev.publishAsync("sensors/dev-1/temp", payload, { qos: 1 });
    }
    await got.waitFor(3);
    await settle(sub);
    assert.deepEqual(got.messages.map((m) => m.topic).sort(), ["alerts/dev-1", "sensors/dev-1/temp", "sensors/dev-1/temp"]);
    const byTopic = (t: string) => got.messages.filter((m) => m.topic === t).map((m) => m.payload);
    assert.ok(byTopic("sensors/dev-1/temp")[0]!.equals(ok));
    assert.ok(byTopic("sensors/dev-1/temp")[1]!.equals(hot));
    assert.ok(byTopic("alerts/dev-1")[0]!.equals(hot));
    await end(sub, dev);
  });
});
