// Plugin faults under load: while 50 well-behaved clients publish QoS 1, one
// client keeps making the plugin fail in every way the sandbox knows (fuel,
// memory, out-of-bounds, abort, unreachable, a looping connect hook, and
// host-call floods: publish and log caps, fuel charged per byte copied).
// No well-behaved message may be lost: each is acknowledged and delivered.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { MqttClient } from "mqtt";
import { buildFixture } from "./fixtures.js";
import { collect, connect, connectRefused, end, startTestBroker, subscribe, type TestBroker } from "./helpers.js";

const PUBLISHERS = 50;
const MESSAGES_EACH = 20;
const FAULTS = ["loop", "alloc", "oob", "abort", "unreachable", "publish-flood", "log-flood", "bytes-flood"] as const;
const TRAP_KIND = {
  loop: "fuel",
  alloc: "memory",
  oob: "out-of-bounds",
  abort: "abort",
  unreachable: "unreachable",
  "publish-flood": "host-limit", // limits.maxPublishesPerCall below
  "log-flood": "host-limit", // limits.maxLogLinesPerCall (default 32)
  "bytes-flood": "fuel", // 256 KiB per publish at 8 fuel/byte is more than the 2 M budget
} as const;

for (const onError of ["fail-closed", "fail-open"] as const) {
  describe(`fault matrix under load (${onError})`, { timeout: 120_000 }, () => {
    let broker: TestBroker;
    before(async () => {
      broker = await startTestBroker({
        persistence: "memory",
        ws: false,
        plugins: [
          {
            name: "probe",
            wasm: await buildFixture("probe"),
            onError,
            watch: false,
            limits: { fuel: 2_000_000, memoryPages: 32, maxPublishesPerCall: 10 },
            // Faults here are one client's doing: keep the breaker out of it, so the test
            // shows per-message isolation (the breaker has its own tests in sandbox.test.ts).
            breaker: { failures: 100_000, windowMs: 1000, cooldownMs: 1000 },
          },
        ],
      });
    });
    after(() => broker.stop());

    test(`${PUBLISHERS} clients × ${MESSAGES_EACH} QoS 1 messages while every fault kind fires: all acknowledged, all delivered`, async () => {
      const subscribers = await Promise.all([0, 1].map(() => connect(broker.url)));
      const received = subscribers.map((s) => collect(s));
      for (const s of subscribers) await subscribe(s, ["load/#", "fault/#"], 1);

      const publishers: MqttClient[] = await Promise.all(Array.from({ length: PUBLISHERS }, (_, i) => connect(broker.url, { clientId: `good-${i}` })));
      const faulty = await connect(broker.url, { clientId: "faulty" });
      const publishTraps: string[] = [];
      broker.chain.on("trap", (_plugin, hook, kind) => {
        if (hook === "publish") publishTraps.push(kind);
      });
      let loadDone = false;
      let faultsSent = 0;
      let connectFaults = 0;
      const faults = (async () => {
        while (!loadDone || faultsSent < FAULTS.length * 2) {
          const kind = FAULTS[faultsSent % FAULTS.length]!;
          await faulty.publishAsync(`fault/${kind}`, "boom", { qos: 1 });
          faultsSent++;
          if (faultsSent % FAULTS.length === 0) {
            // The connect hook loops for this client id: fail-closed refuses it, fail-open lets it in.
            if (onError === "fail-closed") assert.equal(await connectRefused(broker.url, { clientId: "fault-loop" }), 3);
            else await end(await connect(broker.url, { clientId: "fault-loop" }));
            connectFaults++;
          }
        }
      })();

      let acked = 0;
      await Promise.all(
        publishers.map(async (p, i) => {
          for (let n = 0; n < MESSAGES_EACH; n++) {
            await p.publishAsync(`load/${i}/${n}`, `${i}:${n}`, { qos: 1 });
            acked++;
          }
        }),
      );
      loadDone = true;
      await faults;

      const total = PUBLISHERS * MESSAGES_EACH;
      assert.equal(acked, total, "every well-behaved message was acknowledged");
      for (const got of received) {
        await got.waitFor(total + (onError === "fail-open" ? faultsSent : 0), 30_000);
        const load = new Set(got.messages.filter((m) => m.topic.startsWith("load/")).map((m) => m.payload.toString()));
        assert.equal(load.size, total, "every well-behaved message was delivered");
        const faultDeliveries = got.messages.filter((m) => m.topic.startsWith("fault/")).length;
        assert.equal(faultDeliveries, onError === "fail-open" ? faultsSent : 0, "faulting messages follow the failure policy");
      }

      const slot = broker.chain.slot("probe")!;
      // One client sends the faults one at a time, so the publish hook's traps come in the same order.
      const expected = Array.from({ length: faultsSent }, (_, i) => TRAP_KIND[FAULTS[i % FAULTS.length]!]);
      assert.deepEqual(publishTraps, expected, `trap kinds in order: ${JSON.stringify(slot.stats.traps)}`);
      assert.ok(connectFaults >= 2);
      assert.equal(slot.breakerState, "closed");
      assert.ok(slot.ready, "a fresh instance is serving");
      assert.ok(publishers.every((p) => p.connected) && subscribers.every((s) => s.connected) && faulty.connected);
      await end(...publishers, ...subscribers, faulty);
    });
  });
}
