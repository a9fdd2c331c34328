// Idle hooks (ABI v2-r3, host/abi-idle.ts): a plugin declares in init that a
// hook has nothing to do for its config, and the broker stops calling it.
// Real compiled .wasm (acl, generated plugins), the native twin, a real broker
// with real MQTT clients, the admin API's plugin listing.
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { MemoryKvStore, PluginChain, emptyMessage } from "../host/index.js";
import { ACL_LIMITS as LIMITS } from "./acl-messages.js";
import { buildSource, readBytes } from "./fixtures.js";
import { adminCli, collect, connect, end, native, scratchDir, settle, startTestBroker, subscribe, wasm, type TestBroker } from "./helpers.js";

const SETTLE_RULE = { topic: "wasmq-test/settle/#", access: "readwrite" };
/** No deny rule: acl's deliver hook can only answer Continue. */
const NO_DENY = {
  default: "deny",
  rules: [{ topic: "public/#", access: "readwrite" }, { topic: "devices/%c/#", access: "readwrite" }, { username: "ops", topic: "#", access: "read" }, SETTLE_RULE],
};
/** The same plus a deny rule, which a "#" subscription must still respect at delivery. */
const WITH_DENY = { ...NO_DENY, rules: [...NO_DENY.rules, { topic: "devices/+/secret", access: "deny" }] };

interface PluginView {
  name: string;
  hooks: string[];
  idleHooks: string[];
  stats: { calls: Record<string, number>; traps: Record<string, number> };
}

async function plugin(broker: TestBroker, name: string): Promise<PluginView> {
  const res = await fetch(`http://127.0.0.1:${broker.admin!.address.port}/plugins/${name}`);
  assert.equal(res.status, 200);
  return (await res.json()) as PluginView;
}

function aclBroker(config: Record<string, unknown>): Promise<TestBroker> {
  return startTestBroker({
    persistence: "memory",
    metrics: { port: 0 },
    plugins: [
      { name: "acl-wasm", wasm: wasm("acl"), config, limits: LIMITS },
      { name: "acl-native", native: native("acl"), config },
    ],
  });
}

/** ops subscribes to "#", dev-1 publishes its status, a secret, and a topic outside its space; returns what ops got. */
async function traffic(broker: TestBroker): Promise<{ got: string[]; subacks: number[] }> {
  const ops = await connect(broker.url, { clientId: "ops-console", username: "ops" });
  const seen = collect(ops);
  const subacks = await subscribe(ops, ["#"], 1);
  const dev = await connect(broker.url, { clientId: "dev-1", username: "alice" });
  const refused = await subscribe(dev, ["devices/dev-2/#"], 1);
  await dev.publishAsync("devices/dev-1/status", "ok", { qos: 1 });
  await dev.publishAsync("devices/dev-1/secret", "key", { qos: 1 });
  await dev.publishAsync("devices/dev-2/status", "spoofed", { qos: 1 });
  await dev.publishAsync("public/news", "hello", { qos: 1 });
  await settle(ops);
  await end(ops, dev);
  return { got: seen.messages.filter((m) => !m.topic.startsWith("wasmq-test/")).map((m) => `${m.topic} ${m.payload.toString()}`).sort(), subacks: [...subacks, ...refused] };
}

describe("acl declares deliver idle when no rule can deny at delivery", () => {
  let broker: TestBroker;
  before(async () => {
    broker = await aclBroker(NO_DENY);
  });
  after(() => broker.stop());

  test("deliver is never called while messages flow, and publish/subscribe are still enforced (Wasm and native alike)", async () => {
    assert.equal(broker.chain.has("deliver"), false, "no plugin needs the deliver stage");
    const { got, subacks } = await traffic(broker);
    assert.deepEqual(subacks, [1, 128], "a subscription outside the client's space is refused");
    // No deny rule: the secret flows; the spoofed publish is still dropped at publish.
    assert.deepEqual(got, ["devices/dev-1/secret key", "devices/dev-1/status ok", "public/news hello"]);
    for (const name of ["acl-wasm", "acl-native"]) {
      const view = await plugin(broker, name);
      assert.ok(view.hooks.includes("deliver"), `${name} still exports onDeliver`);
      assert.deepEqual(view.idleHooks, ["deliver"], `${name} lists deliver as idle`);
      assert.equal(view.stats.calls.deliver, 0, `${name}: deliver calls`);
      assert.ok(view.stats.calls.publish >= 4, `${name}: publish calls ${view.stats.calls.publish}`);
      assert.ok(view.stats.calls.subscribe >= 2, `${name}: subscribe calls ${view.stats.calls.subscribe}`);
    }
  });

  test("wasmq admin plugins marks the idle hook, so an operator sees why it has 0 calls", async () => {
    const listing = await adminCli(["plugins", "--url", broker.admin!.url]);
    assert.equal(listing.code, 0, listing.err);
    const rows = listing.out.split("\n").filter((line) => line.startsWith("acl-"));
    assert.equal(rows.length, 2, listing.out);
    for (const row of rows) assert.match(row, /subscribe,publish,deliver\(idle\)/);
  });
});

describe("acl with default allow and no deny rule declares subscribe and publish idle too", () => {
  let broker: TestBroker;
  before(async () => {
    broker = await aclBroker({ default: "allow", rules: [{ topic: "devices/%c/#", access: "readwrite" }] });
  });
  after(() => broker.stop());

  test("no subscribe, publish or deliver call while clients subscribe and publish anywhere (Wasm and native alike)", async () => {
    for (const hook of ["subscribe", "publish", "deliver"] as const) assert.equal(broker.chain.has(hook), false, `no plugin needs the ${hook} stage`);
    const { got, subacks } = await traffic(broker);
    assert.deepEqual(subacks, [1, 1], "everything is allowed");
    assert.deepEqual(got, ["devices/dev-1/secret key", "devices/dev-1/status ok", "devices/dev-2/status spoofed", "public/news hello"]);
    for (const name of ["acl-wasm", "acl-native"]) {
      const view = await plugin(broker, name);
      assert.deepEqual([...view.idleHooks].sort(), ["deliver", "publish", "subscribe"], `${name} lists its idle hooks`);
      for (const hook of ["subscribe", "publish", "deliver"]) assert.equal(view.stats.calls[hook] ?? 0, 0, `${name}: ${hook} calls`);
    }
  });
});

describe("acl with a deny rule keeps its deliver hook", () => {
  let broker: TestBroker;
  before(async () => {
    broker = await aclBroker(WITH_DENY);
  });
  after(() => broker.stop());

  test("deliver is called and drops what a deny rule forbids under a '#' subscription (Wasm and native alike)", async () => {
    assert.equal(broker.chain.has("deliver"), true);
    const { got } = await traffic(broker);
    assert.deepEqual(got, ["devices/dev-1/status ok", "public/news hello"], "the secret is dropped at delivery");
    for (const name of ["acl-wasm", "acl-native"]) {
      const view = await plugin(broker, name);
      assert.deepEqual(view.idleHooks, [], `${name} has no idle hook`);
      assert.ok(view.stats.calls.deliver >= 2, `${name}: deliver calls ${view.stats.calls.deliver}`);
    }
  });
});

// Two builds of one plugin: its deliver hook drops "x/drop"; v1 declares it idle
// (so nothing is dropped), v2 does not. Reloading flips the broker's deliver stage.
const GATE = (idle: boolean) => `
import { Config, Hook, Message, Verdict, declareIdle } from "SDK_PATH";
export * from "SDK_PATH/exports";
export function init(config: Config): bool {
  ${idle ? "declareIdle(Hook.deliver);" : ""}
  return true;
}
export function onDeliver(msg: Message): i32 {
  return msg.topic == "x/drop" ? Verdict.Drop : Verdict.Continue;
}
`;
const MISUSE = `
import { Config, Hook, Message, Verdict, declareIdle } from "SDK_PATH";
export * from "SDK_PATH/exports";
export function init(config: Config): bool {
  if (config.string("idle", "") == "connect") declareIdle(Hook.connect);
  if (config.string("idle", "") == "bogus") declareIdle(42);
  return true;
}
export function onPublish(msg: Message): i32 {
  if (msg.topic == "late") declareIdle(Hook.deliver);
  return Verdict.Continue;
}
`;

describe("reload rebuilds the per-hook index", () => {
  let broker: TestBroker;
  let idleBuild: Buffer;
  let busyBuild: Buffer;
  before(async () => {
    const dir = scratchDir();
    idleBuild = readBytes(await buildSource(GATE(true), join(dir, "gate-idle.wasm")));
    busyBuild = readBytes(await buildSource(GATE(false), join(dir, "gate-busy.wasm")));
    const file = join(dir, "gate.wasm");
    writeFileSync(file, idleBuild);
    broker = await startTestBroker({ persistence: "memory", metrics: { port: 0 }, plugins: [{ name: "gate", wasm: file, watch: false }] });
  });
  after(() => broker.stop());

  async function delivered(): Promise<string[]> {
    const sub = await connect(broker.url, { clientId: "gate-sub" });
    const seen = collect(sub);
    await subscribe(sub, "x/+", 1);
    const pub = await connect(broker.url, { clientId: "gate-pub" });
    await pub.publishAsync("x/drop", "d", { qos: 1 });
    await pub.publishAsync("x/keep", "k", { qos: 1 });
    await settle(sub);
    await end(sub, pub);
    return seen.messages.filter((m) => m.topic.startsWith("x/")).map((m) => m.topic).sort();
  }

  test("idle → active → idle: the deliver stage follows the running build", async () => {
    assert.equal(broker.chain.has("deliver"), false);
    assert.deepEqual(await delivered(), ["x/drop", "x/keep"], "idle: deliver not called, nothing dropped");
    assert.equal((await plugin(broker, "gate")).stats.calls.deliver, 0);

    assert.deepEqual(await broker.chain.reload("gate", { bytes: busyBuild }), [{ plugin: "gate", ok: true, error: null }]);
    assert.equal(broker.chain.has("deliver"), true);
    assert.deepEqual(await delivered(), ["x/keep"], "active: the deliver hook drops x/drop");
    const active = await plugin(broker, "gate");
    assert.deepEqual(active.idleHooks, []);
    assert.ok(active.stats.calls.deliver >= 2);

    assert.deepEqual(await broker.chain.reload("gate", { bytes: idleBuild }), [{ plugin: "gate", ok: true, error: null }]);
    assert.equal(broker.chain.has("deliver"), false);
    const calls = (await plugin(broker, "gate")).stats.calls.deliver;
    assert.deepEqual(await delivered(), ["x/drop", "x/keep"]);
    assert.equal((await plugin(broker, "gate")).stats.calls.deliver, calls, "idle again: no more deliver calls");
  });
});

describe("hook_idle is init-only and for skippable hooks only", () => {
  let misuse: string;
  before(async () => {
    misuse = await buildSource(MISUSE, join(scratchDir(), "misuse.wasm"));
  });

  test("called from a hook, it traps as invalid-output and the broker keeps serving", async () => {
    const broker = await startTestBroker({ persistence: "memory", plugins: [{ name: "misuse", wasm: misuse, watch: false, onError: "fail-open" }] });
    try {
      const traps: string[] = [];
      broker.chain.on("trap", (_p, hook, kind, err) => traps.push(`${hook} ${kind} ${(err as Error).message}`));
      const c = await connect(broker.url, { clientId: "misuser" });
      await c.publishAsync("late", "x", { qos: 1 });
      await settle(c);
      assert.equal(traps.length, 1, traps.join("\n"));
      assert.match(traps[0]!, /^publish invalid-output plugin "misuse" was refused: a hook is declared idle in init, not in a hook/);
      assert.equal(broker.chain.has("deliver"), false, "the late declaration changed nothing");
      assert.ok(c.connected);
      await end(c);
    } finally {
      await broker.stop();
    }
  });

  test("connect cannot be declared idle, nor a number that is no hook: init fails naming the plugin", async () => {
    await assert.rejects(
      startTestBroker({ persistence: "memory", plugins: [{ name: "misuse", wasm: misuse, watch: false, config: { idle: "connect" } }] }),
      /plugin "misuse": init failed: .*hook_idle: connect cannot be declared idle/,
    );
    await assert.rejects(
      startTestBroker({ persistence: "memory", plugins: [{ name: "misuse", wasm: misuse, watch: false, config: { idle: "bogus" } }] }),
      /plugin "misuse": init failed: .*hook_idle: 42 is not a hook number/,
    );
  });
});

describe("transform declares deliver idle when it has no deliver rule", () => {
  const publishOnly = { rules: [{ topic: "accounts/#", redact: ["password"] }] };
  const withDeliver = { rules: [...publishOnly.rules, { topic: "fleet/#", hook: "deliver", redact: ["gps"], redactMode: "remove" }] };

  test("Wasm and native twin agree; a deliver rule keeps the hook and still rewrites per subscriber", async () => {
    for (const [config, idle] of [[publishOnly, true], [withDeliver, false]] as const) {
      const chain = await PluginChain.load(
        [
          { name: "t-wasm", wasm: wasm("transform"), config },
          { name: "t-native", native: native("transform"), config },
        ],
        { kv: new MemoryKvStore(), publish: () => {} },
      );
      try {
        for (const slot of chain.slots) assert.deepEqual([...slot.idleHooks], idle ? ["deliver"] : [], `${slot.name} ${JSON.stringify(config)}`);
        assert.equal(chain.has("deliver"), !idle);
        const msg = { ...emptyMessage(), topic: "fleet/truck-1", payload: Buffer.from('{"gps":[1,2],"speed":3}') };
        chain.run("deliver", msg);
        assert.equal(msg.payload.toString(), idle ? '{"gps":[1,2],"speed":3}' : '{"speed":3}');
        for (const slot of chain.slots) assert.equal(slot.stats.calls.deliver, idle ? 0 : 1, slot.name);
      } finally {
        chain.close();
      }
    }
  });
});
