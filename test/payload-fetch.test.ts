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
//   last one's validation.
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { emptyMessage, MemoryKvStore, PluginChain, Verdict, type HookMessage } from "../host/index.js";
import { emptyV5 } from "../host/message-v5.js";
import { DEFER_PAYLOAD_MIN_BYTES } from "../host/deferred-payload.js";
import { FUEL_PER_BYTE } from "../host/host-calls.js";
import { buildSource } from "./fixtures.js";
import { ROOT, scratchDir } from "./helpers.js";

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
