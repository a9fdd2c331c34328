// Plugin ABI v2 without a broker: the v2 record and setters read and behave the
// same in a Wasm build and its native twin over generated MQTT 5 messages; reason
// codes and reason strings come back in the outcome; every change is validated
// like client input; a binary built with the SDK from before v2 loads and
// decides exactly as before.
import assert from "node:assert/strict";
import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { runPlugin, type HarnessMessage, type HarnessResult } from "../host/harness.js";
import { inspectModule } from "../host/wasm-binary.js";
import { Rng, randomV5Fields, randomWord } from "./differential.js";
import { buildFixture } from "./fixtures.js";
import { ROOT, tempDir, wasm } from "./helpers.js";
import { BEFORE_V2, buildPluginAt, hasCommit } from "./old-sdk.js";

const NATIVE_PROBE = join(ROOT, "dist/test/fixtures/v5probe-native.js");
const TOPICS = ["v5/tag/x", "v5/replace/x", "v5/strip/x", "v5/set/x", "v5/route/r1", "v5/deny/x", "v5/quota/x", "v5/plain-deny/x", "v5/deliver/x", "other/x", "quota/a", "plain/a"];

function generated(seed: number, count: number): HarnessMessage[] {
  const rng = new Rng(seed);
  const out: HarnessMessage[] = [];
  for (let i = 0; i < count; i++) {
    const hook = rng.pick(["publish", "publish", "publish", "subscribe", "connect", "deliver"] as const);
    out.push({
      hook,
      topic: rng.pick(TOPICS),
      payload: rng.chance(0.5) ? randomWord(rng) : { base64: rng.bytes(rng.int(20)).toString("base64") },
      clientId: randomWord(rng),
      username: rng.pick([null, "alice", "banned", "busy", "v1-code"]),
      qos: rng.int(3),
      ...randomV5Fields(rng),
      ...(hook === "subscribe" && rng.chance(0.7)
        ? { noLocal: rng.chance(0.5), retainAsPublished: rng.chance(0.5), retainHandling: rng.int(3), subscriptionIdentifier: rng.int(3) * 1000 }
        : {}),
      ...(hook === "connect" ? { sessionExpiry: rng.pick([0, 30, 4294967295]) } : {}),
    });
  }
  return out;
}

let probe: string;
before(async () => {
  probe = await buildFixture("v5probe");
});

describe("ABI v2: Wasm and native twin agree over generated MQTT 5 messages", () => {
  test("800 generated connects, subscribes, publishes and deliveries with properties", async () => {
    const messages = generated(12, 800);
    const [fromWasm, fromNative] = await Promise.all([
      runPlugin({ name: "v5probe", wasm: probe }, messages),
      runPlugin({ name: "v5probe", native: NATIVE_PROBE }, messages),
    ]);
    for (let i = 0; i < messages.length; i++) {
      assert.equal(fromWasm[i]!.trap, undefined, `trap on ${JSON.stringify(messages[i])}`);
      assert.deepEqual(fromWasm[i], fromNative[i], `differ on message ${i}: ${JSON.stringify(messages[i])}`);
    }
    // the inputs reached every outcome
    const seen = new Set(fromWasm.map((r) => `${r.hook}:${r.verdict}:${r.reasonCode ?? ""}:${r.changed ? "changed" : ""}:${r.published.length}`));
    for (const want of ["publish:deny:135::0", "publish:drop:151::0", "connect:deny:138::0", "subscribe:deny:151::0", "publish:continue:::1"]) {
      assert.ok(seen.has(want), `no ${want} among ${[...seen].join(", ")}`);
    }
    assert.ok(fromWasm.some((r) => r.hook === "deliver" && r.changed?.userProperties !== undefined));
  });

  test("what a v2 plugin reads and changes, checked field by field", async () => {
    const v5: Partial<HarnessMessage> = {
      userProperties: [["a", "1"], ["b", "two"], ["a", "3"]],
      contentType: "text/plain",
      responseTopic: "reply/1",
      correlationData: "req-9",
      payloadFormat: 1,
      messageExpiry: 120,
    };
    const messages: HarnessMessage[] = [
      { topic: "v5/tag/x", ...v5 },
      { topic: "v5/replace/x", ...v5 },
      { topic: "v5/strip/x", ...v5 },
      { topic: "v5/set/x", protocolVersion: 4 },
      { topic: "v5/route/r1", payload: "p", qos: 1, ...v5 },
      { topic: "v5/deny/x", ...v5 },
      { topic: "v5/quota/x", ...v5 },
      { hook: "connect", username: "banned", sessionExpiry: 30, userProperties: [["role", "sensor"]] },
      { hook: "connect", username: "busy" },
      { hook: "connect", username: "v1-code" },
      { hook: "subscribe", topic: "quota/a", noLocal: true, retainHandling: 2, subscriptionIdentifier: 7 },
    ];
    for (const spec of [{ name: "v5probe", wasm: probe }, { name: "v5probe", native: NATIVE_PROBE }]) {
      const r = await runPlugin(spec, messages);
      assert.match(r[0]!.logs[0]!, /^info: publish v5 props=3 \[a=1\] \[b=two\] \[a=3\] ct=text\/plain rt=reply\/1 cd=5:114 pf=1 exp=120 a\?y a=1\?y b=two$/);
      assert.deepEqual(r[0]!.changed, { userProperties: [["a", "1"], ["b", "two"], ["a", "3"], ["tagged-by", "v5probe"]] });
      assert.deepEqual(r[1]!.changed, { userProperties: [["a", "replaced"], ["b", "two"]] });
      assert.deepEqual(r[2]!.changed, { userProperties: [["b", "two"]], contentType: null, responseTopic: null, correlationData: null, payloadFormat: null, messageExpiry: null });
      assert.match(r[2]!.logs[1]!, /removed 2/);
      assert.deepEqual(r[3]!.changed, { contentType: "application/json", responseTopic: "reply/here", correlationData: "corr", payloadFormat: 1, messageExpiry: 60 });
      assert.match(r[3]!.logs[0]!, /publish v4 props=0 ct=- rt=- cd=- pf=-1 exp=-1/);
      assert.deepEqual(r[4]!.published, [
        { topic: "routed/r1", payload: "p", qos: 1, retain: false, properties: { userProperties: [["a", "1"], ["b", "two"], ["a", "3"]], contentType: "text/plain", responseTopic: "reply/1", correlationData: "req-9", payloadFormat: 1, messageExpiry: 120 } },
      ]);
      // a refusal carries its code and reason string; its changes are not applied
      assert.equal(r[5]!.verdict, "deny");
      assert.equal(r[5]!.reasonCode, 0x87);
      assert.equal(r[5]!.reasonString, "denied by v5probe");
      assert.equal(r[5]!.changed, undefined);
      assert.equal(r[6]!.verdict, "drop");
      assert.equal(r[6]!.reasonCode, 0x97);
      // CONNACK: the v5 code, and the nearest 3.1.1 return code for old clients
      assert.deepEqual([r[7]!.returnCode, r[7]!.reasonCode, r[7]!.reasonString], [5, 0x8a, "banned by v5probe"]);
      assert.match(r[7]!.logs[0]!, /connect v5 props=1 \[role=sensor\].* session=30$/);
      assert.deepEqual([r[8]!.returnCode, r[8]!.reasonCode], [3, 0x89]);
      assert.deepEqual([r[9]!.returnCode, r[9]!.reasonCode], [4, undefined]);
      assert.deepEqual([r[10]!.verdict, r[10]!.reasonCode, r[10]!.reasonString], ["deny", 0x97, "subscription quota"]);
      assert.match(r[10]!.logs[0]!, /nl=1 rap=0 rh=2 id=7$/);
    }
  });
});

describe("ABI v2: changes are validated like client input", () => {
  const cases: [string, Partial<HarnessMessage>][] = [
    ["bad/nul", {}], // U+0000 in a user property name [MQTT-1.5.4-2]
    ["bad/wild-response", {}], // a response topic with a wildcard [MQTT-3.3.2-14]
    ["bad/expiry", {}], // above a four-byte integer
    ["bad/format", {}], // payload format indicator 2
    ["bad/code", {}], // 0x8A Banned cannot go in a PUBACK
    ["bad/big", {}], // a user property value over 65535 bytes
  ];
  for (const kind of ["wasm", "native"] as const) {
    test(`${kind}: every invalid change traps as invalid-output and the message gets the failure policy`, async () => {
      // more traps in a row than the default breaker allows: keep it closed to see each one
      const breaker = { failures: 100 };
      const spec = kind === "wasm" ? { name: "v5probe", wasm: probe, breaker } : { name: "v5probe", native: NATIVE_PROBE, breaker };
      // one run per case: a native instance restarts asynchronously after a trap
      const results: HarnessResult[] = [];
      for (const [topic, extra] of cases) results.push(...(await runPlugin(spec, [{ topic, protocolVersion: 5, ...extra }])));
      for (const [i, r] of results.entries()) {
        assert.equal(r.trap, "invalid-output", `${cases[i]![0]}: ${JSON.stringify(r)}`);
        assert.equal(r.verdict, "drop"); // fail-closed
        assert.equal(r.changed, undefined);
      }
    });
  }

  test("a change that makes the PUBLISH larger than maxPacketSize is refused (charged and checked per byte)", async () => {
    const { PluginChain } = await import("../host/chain.js");
    const { MemoryKvStore } = await import("../host/kv.js");
    const { emptyMessage } = await import("../host/message.js");
    const chain = await PluginChain.load([{ name: "v5probe", wasm: probe }], {
      kv: new MemoryKvStore(),
      publish: () => {},
      output: { maxTopicLength: 65535, maxTopicLevels: 100, maxPacketSize: 64, reservedTopicPrefixes: ["$SYS"] },
    });
    const traps: string[] = [];
    chain.on("trap", (_p, _h, kind) => traps.push(kind));
    try {
      const msg = emptyMessage();
      msg.topic = "v5/set/x"; // adds ~40 bytes of properties to a 30-byte packet
      msg.payload = Buffer.from("0123456789");
      assert.equal(chain.run("publish", msg).verdict, 1);
      assert.deepEqual(traps, ["invalid-output"]);
      msg.topic = "v5/tag/x"; // 26 bytes more: fits
      msg.payload = Buffer.alloc(0);
      assert.equal(chain.run("publish", msg).verdict, 0);
    } finally {
      chain.close();
    }
  });
});

describe("ABI v1 binaries keep working", () => {
  const dir = tempDir("wasmq-abi-v1-");
  after(() => rmSync(dir, { recursive: true, force: true }));
  const buildOld = (plugin: string) => buildPluginAt(BEFORE_V2, plugin, dir);

  const strip = (rs: HarnessResult[]) => rs.map(({ reasonCode: _c, ...r }) => r);

  test("acl and filter built with the v1 SDK load and decide exactly as the current builds, v5 fields or not", { skip: !hasCommit(BEFORE_V2) && `commit ${BEFORE_V2} is not in this clone` }, async () => {
    for (const [plugin, config, topics] of [
      ["acl", JSON.parse(readFileSync(join(ROOT, "plugins-as/acl/config.example.json"), "utf8")), ["public/x", "devices/c1/t", "devices/c2/secret", "other/y"]],
      ["filter", JSON.parse(readFileSync(join(ROOT, "plugins-as/filter/config.example.json"), "utf8")), ["sensors/a/temp", "sensors/b/humidity", "x/y"]],
    ] as const) {
      const old = await buildOld(plugin);
      const imports = inspectModule(readFileSync(old)).imports.map((i) => `${i.module}.${i.name}`);
      assert.ok(!imports.some((i) => i.includes("user_property") || i.includes("set_reason")), "a v1 build imports no v2 function");
      const rng = new Rng(3);
      const messages: HarnessMessage[] = [];
      for (let i = 0; i < 300; i++) {
        messages.push({
          hook: rng.pick(["subscribe", "publish", "connect"] as const),
          topic: rng.pick(topics),
          payload: rng.pick(['{"value":20}', '{"value":200}', "not json", "{}"]),
          clientId: rng.pick(["c1", "c2", "ops-1"]),
          username: rng.pick([null, "ops", "c1"]),
          ...randomV5Fields(rng),
        });
      }
      const [v1, current] = await Promise.all([runPlugin({ name: plugin, wasm: old, config }, messages), runPlugin({ name: plugin, wasm: wasm(plugin), config }, messages)]);
      // same verdicts, changes, logs; only the current (v2) builds add a reason code for v5 clients
      assert.deepEqual(v1, strip(v1), "a v1 plugin's codes are 3.1.1 return codes, never reason codes");
      assert.deepEqual(v1, strip(current), plugin);
      assert.ok(v1.some((r) => r.verdict !== "continue") && v1.some((r) => r.verdict === "continue"));
      assert.ok(current.some((r) => r.reasonCode !== undefined));
    }
  });
});
