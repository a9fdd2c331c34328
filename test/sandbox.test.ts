// The sandbox: every fault kind, with the broker serving other clients throughout,
// the in-flight message following onError, and the breaker opening on repeats.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { buildFixture } from "./fixtures.js";
import { collect, connect, end, settle, startTestBroker, subscribe, type TestBroker } from "./helpers.js";

const FAULTS = ["loop", "alloc", "oob", "abort", "unreachable"] as const;
const EXPECTED_TRAP: Record<(typeof FAULTS)[number], string> = {
  loop: "fuel",
  alloc: "memory",
  oob: "out-of-bounds",
  abort: "abort",
  unreachable: "unreachable",
};

describe("sandbox: faults are contained", () => {
  let closed: TestBroker;
  let open: TestBroker;

  before(async () => {
    const probe = await buildFixture("probe");
    const plugin = (onError: "fail-open" | "fail-closed") => ({
      name: "probe",
      wasm: probe,
      onError,
      limits: { fuel: 2_000_000, memoryPages: 32 },
      breaker: { failures: 1000, windowMs: 60_000, cooldownMs: 60_000 },
    });
    closed = await startTestBroker({ persistence: "memory", plugins: [plugin("fail-closed")] });
    open = await startTestBroker({ persistence: "memory", plugins: [plugin("fail-open")] });
  });
  after(async () => {
    await closed.stop();
    await open.stop();
  });

  for (const fault of FAULTS) {
    test(`${fault}: fail-closed drops the message, fail-open delivers it, the broker keeps serving`, async () => {
      for (const [broker, delivered] of [
        [closed, false],
        [open, true],
      ] as const) {
        const slot = broker.chain.slot("probe")!;
        const trapsBefore = slot.stats.traps[EXPECTED_TRAP[fault] as keyof typeof slot.stats.traps] ?? 0;
        const sub = await connect(broker.url);
        const got = collect(sub);
        await subscribe(sub, ["fault/#", "ok/#"], 1);
        const pub = await connect(broker.url);
        await pub.publishAsync(`fault/${fault}`, "boom", { qos: 1 });
        // The fresh instance's fuel reading: -1 until its first call, never the init budget's remainder.
        const fuelAfterTrap = slot.stats.fuelUsedLast;
        assert.ok(fuelAfterTrap >= -1 && fuelAfterTrap <= 2_000_000, `fuelUsedLast after a trap: ${fuelAfterTrap}`);
        // A well-behaved message right after: served by a fresh instance.
        await pub.publishAsync("ok/after", "fine", { qos: 1 });
        await got.waitFor(delivered ? 2 : 1);
        await settle(sub);
        const topics = got.messages.map((m) => m.topic);
        assert.deepEqual(topics.sort(), delivered ? ["fault/" + fault, "ok/after"].sort() : ["ok/after"]);
        assert.equal(slot.stats.traps[EXPECTED_TRAP[fault] as keyof typeof slot.stats.traps], trapsBefore + 1, JSON.stringify(slot.stats.traps));
        assert.ok(slot.ready, "a new instance replaced the trapped one");
        assert.ok(pub.connected && sub.connected);
        await end(sub, pub);
      }
    });
  }

  test("a trapping connect hook refuses (fail-closed) with 'server unavailable' but the next client connects", async () => {
    const { connectRefused } = await import("./helpers.js");
    assert.equal(await connectRefused(closed.url, { clientId: "fault-loop" }), 3);
    const c = await connect(closed.url, { clientId: "fine" });
    assert.ok(c.connected);
    await end(c);
  });
});

describe("sandbox: circuit breaker", () => {
  let broker: TestBroker;
  before(async () => {
    const probe = await buildFixture("probe");
    broker = await startTestBroker({
      persistence: "memory",
      plugins: [{ name: "probe", wasm: probe, onError: "fail-open", limits: { fuel: 1_000_000 }, breaker: { failures: 3, windowMs: 60_000, cooldownMs: 2_000 } }],
    });
  });
  after(() => broker.stop());

  test("opens after repeated faults, bypasses the plugin per policy, half-opens after the cooldown", async () => {
    const slot = broker.chain.slot("probe")!;
    const sub = await connect(broker.url);
    const got = collect(sub);
    await subscribe(sub, ["fault/#", "drop/#"], 1);
    const pub = await connect(broker.url);
    for (let i = 0; i < 3; i++) await pub.publishAsync("fault/abort", `f${i}`, { qos: 1 });
    await got.waitFor(3); // fail-open: the faulting messages still go through
    assert.equal(slot.breakerState, "open");
    const callsBefore = slot.stats.calls.publish;
    const failuresBefore = slot.stats.failures;
    // While open, the plugin is bypassed: its drop rule does not run, fail-open lets the message through.
    await pub.publishAsync("drop/while-open", "x", { qos: 1 });
    await got.waitFor(4);
    assert.equal(got.messages[3]!.topic, "drop/while-open");
    // Bypassed twice: its publish hook, and its deliver hook for the one subscriber.
    assert.equal(slot.stats.failures, failuresBefore + 2);
    assert.equal(slot.stats.calls.publish, callsBefore + 1);
    // After the cooldown a trial call goes to the plugin again; success closes the breaker.
    await new Promise((r) => setTimeout(r, 2_100));
    await pub.publishAsync("drop/after-cooldown", "x", { qos: 1 });
    await settle(sub);
    assert.equal(slot.breakerState, "closed");
    assert.equal(got.messages.length, 4, "the plugin ran again and dropped the message");
    await end(sub, pub);
  });
});
