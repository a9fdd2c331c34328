// The message record a Wasm plugin reads is exactly the message, call after
// call, although the host rewrites only what changed (host/record-writer.ts):
// publish and deliver records in separate lanes of the input region, the
// per-client prefix and the topic cached per lane, the region grown for large
// payloads, deferred payloads fetched on demand. A real compiled fixture logs
// every field it reads; a seeded sequence mixes hooks, clients, topics, MQTT 5
// fields and payload sizes across the lanes' boundary and past the region.
import assert from "node:assert/strict";
import { join } from "node:path";
import { before, describe, test } from "node:test";
import { Verdict } from "../host/abi.js";
import { PluginChain } from "../host/chain.js";
import { MemoryKvStore } from "../host/kv.js";
import { emptyMessage, type HookMessage } from "../host/message.js";
import { emptyV5, type MessageV5 } from "../host/message-v5.js";
import { Rng } from "./differential.js";
import { buildFixture } from "./fixtures.js";
import { ROOT } from "./helpers.js";

const CLIENTS = [
  { clientId: "pub-a", username: "alice" as string | null },
  { clientId: "pub-b", username: null },
  { clientId: "sub-1", username: "bob" },
  { clientId: "sub-ü", username: "ünï" },
  { clientId: "c-" + "x".repeat(90), username: "long" },
];
// The last topics take a little more than half a region of 4, 8 or 16 KB as UTF-8 (3 bytes a character, what
// the host reserves for each): the cached prefix and topic of such a record reach into the deliver lane.
const TOPICS = ["sensors/1/temp", "sensors/2/temp", "a", "温度/ü", "t/" + "level/".repeat(20) + "end", "sensors/1/temperature", "long/" + "温".repeat(700), "long/" + "温".repeat(1400), "long/" + "温".repeat(2800)];
const SIZES = [0, 1, 64, 1023, 1024, 1500, 2047, 3000, 5000, 9000, 20000, 70000];

function fnv1a(bytes: Uint8Array): number {
  let h = 0x811c9dc5;
  for (const b of bytes) h = Math.imul(h ^ b, 0x01000193) >>> 0;
  return h;
}

function expected(hook: string, m: HookMessage): string {
  const v5 = m.v5;
  let s = `${hook}|${m.clientId}|${m.username === null ? "-" : "u:" + m.username}|${m.password === null ? "-" : "p:" + m.password.length}`;
  const topic = Buffer.from(m.topic, "utf8");
  s += `|${m.peer}|${topic.length}:${fnv1a(topic)}|${m.qos}${m.retain ? "r" : ""}${m.dup ? "d" : ""}|v${v5?.protocolVersion ?? 4}`;
  s += `|props=${v5?.userProperties.length ?? 0}`;
  for (const [k, v] of v5?.userProperties ?? []) s += `,${k}=${v}`;
  s += `|ct=${v5?.contentType ?? "-"}|exp=${v5?.messageExpiry ?? -1}`;
  s += `|${m.payload.length}:${fnv1a(m.payload)}`;
  return s;
}

function randomV5(rng: Rng): MessageV5 | undefined {
  const r = rng.int(4);
  if (r === 0) return undefined;
  if (r === 1) return emptyV5(rng.pick([4, 5]));
  const v5 = emptyV5(5);
  if (rng.chance(0.5)) v5.userProperties = [["k", "v"], ["ü", rng.pick(["1", "two", ""])]];
  if (rng.chance(0.5)) v5.contentType = rng.pick(["application/json", "text/ü"]);
  if (rng.chance(0.5)) v5.messageExpiry = rng.int(1000);
  return v5;
}

/** Run `calls` through a fresh chain with the echo fixture; each record as the plugin read it, and as it should be. */
async function echo(wasm: string, calls: { hook: "publish" | "deliver" | "subscribe"; m: HookMessage }[]): Promise<{ got: string[]; want: string[] }> {
  const chain = await PluginChain.load([{ name: "echo", wasm }], { kv: new MemoryKvStore(), publish: () => {} });
  const got: string[] = [];
  chain.on("log", (_plugin, _level, message) => got.push(message));
  const want: string[] = [];
  try {
    for (const { hook, m } of calls) {
      want.push(expected(hook, m));
      chain.run(hook, m);
    }
  } finally {
    chain.close();
  }
  return { got, want };
}

function message(clientId: string, topic: string, payload: Uint8Array, peer = ""): HookMessage {
  const m = emptyMessage();
  m.clientId = clientId;
  m.topic = topic;
  m.payload = payload;
  m.peer = peer;
  return m;
}

describe("message records written by lane (record-writer.ts)", () => {
  let wasm: string;
  before(async () => {
    wasm = await buildFixture("recordecho");
  });

  test("a deliver record in the upper half does not leave the publish lane's cached topic stale when that topic reaches past the middle", async () => {
    // 3 bytes a character: the topic takes ~2.1 KB of the first 4 KB region, past its middle (2 KB).
    const long = "long/" + "温".repeat(700);
    const small = Buffer.from("{}");
    const { got, want } = await echo(wasm, [
      { hook: "publish", m: message("pub", long, small) },
      { hook: "deliver", m: message("sub", "short", small, "pub") },
      { hook: "publish", m: message("pub", long, small) },
    ]);
    assert.deepEqual(got, want);
  });

  test("a publish record reaching into the upper half does not leave the deliver lane's cached prefix stale", async () => {
    const small = Buffer.from("{}");
    const { got, want } = await echo(wasm, [
      { hook: "deliver", m: message("sub", "t", small, "pub") },
      { hook: "publish", m: message("pub", "t", Buffer.alloc(3500, 7)) },
      { hook: "deliver", m: message("sub", "t", small, "pub") },
    ]);
    assert.deepEqual(got, want);
  });

  test("callScratch starts at zero every call when the lane's header is reused: filter validates each reading itself", async () => {
    // The SDK marks "this call's payload was validated" in callScratch; a mark left from
    // the previous call would let an invalid reading through on its first field.
    const filter = join(ROOT, "dist/plugins/filter.wasm");
    const config = { rules: [{ topic: "bench/+/data", field: "value", min: -40, max: 85 }], onInvalid: "drop" };
    const chain = await PluginChain.load([{ name: "filter", wasm: filter, config }], { kv: new MemoryKvStore(), publish: () => {} });
    try {
      const verdicts = ['{"value":5}', '{"value":5,', '{"value":5}', '{"value":5} x'].map((p) => chain.run("publish", message("dev", "bench/1/data", Buffer.from(p))).verdict);
      assert.deepEqual(verdicts, [Verdict.Continue, Verdict.Drop, Verdict.Continue, Verdict.Drop]);
    } finally {
      chain.close();
    }
  });

  for (const seed of [1, 2, 3]) {
    test(`every field of 1,500 mixed publish/deliver/subscribe records is what was sent (seed ${seed})`, async () => {
      const chain = await PluginChain.load([{ name: "echo", wasm }], { kv: new MemoryKvStore(), publish: () => {} });
      const lines: string[] = [];
      chain.on("log", (_plugin, _level, message) => lines.push(message));
      const rng = new Rng(seed);
      const passwords = [Buffer.from("secret"), Buffer.from("other-password")];
      const payloads = new Map(SIZES.map((n) => [n, rng.bytes(n)]));
      const want: string[] = [];
      try {
        let client = CLIENTS[0]!;
        let topic = TOPICS[0]!;
        let peer = CLIENTS[1]!.clientId;
        let deliverTopic = TOPICS[1]!;
        for (let i = 0; i < 1500; i++) {
          // Runs of one client and topic, as real traffic has, so the caches hit and then miss.
          if (rng.chance(0.3)) client = rng.pick(CLIENTS);
          if (rng.chance(0.3)) topic = rng.pick(TOPICS);
          if (rng.chance(0.3)) peer = rng.pick(CLIENTS).clientId;
          if (rng.chance(0.3)) deliverTopic = rng.pick(TOPICS.slice(0, 6));
          const hook = rng.pick(["publish", "publish", "deliver", "deliver", "subscribe"] as const);
          const m = emptyMessage();
          m.clientId = client.clientId;
          m.username = client.username;
          m.password = rng.chance(0.1) ? rng.pick(passwords) : null;
          m.topic = hook === "subscribe" ? topic.replace(/^sensors\/1/, "sensors/+") : hook === "deliver" ? deliverTopic : topic;
          m.peer = hook === "deliver" ? peer : "";
          m.qos = rng.int(3);
          m.retain = rng.chance(0.2);
          m.dup = rng.chance(0.1);
          // Mostly small; the largest rarely, so the region stays small long enough for records to cross its middle.
          const size = rng.chance(0.7) ? rng.pick(SIZES.slice(0, 4)) : rng.chance(0.02) ? SIZES[SIZES.length - 1]! : rng.pick(SIZES.slice(0, -1));
          // Sometimes a fresh payload of the same size: a changed payload must be rewritten.
          m.payload = rng.chance(0.5) ? payloads.get(size)! : rng.bytes(size);
          const v5 = randomV5(rng);
          if (v5) m.v5 = v5;
          want.push(expected(hook, m));
          const out = chain.run(hook, m);
          assert.equal(out.verdict, 0, `call ${i} (${hook}) was not answered Continue: ${out.decidedBy}`);
        }
      } finally {
        chain.close();
      }
      assert.equal(lines.length, want.length);
      for (let i = 0; i < want.length; i++) assert.equal(lines[i], want[i], `record ${i}`);
    });
  }
});
