// Messages that reach a subscriber out of publish order are all delivered
// (aedes' counter-based dedupe dropped the overtaken ones), while one message
// matched by overlapping subscriptions still arrives once.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { buildFixture } from "./fixtures.js";
import { collect, connect, end, settle, startTestBroker, subscribe, type TestBroker } from "./helpers.js";

for (const persistence of ["lmdb", "memory"] as const) {
  describe(`delivery order (${persistence})`, () => {
    let broker: TestBroker;
    before(async () => {
      const probe = await buildFixture("probe");
      broker = await startTestBroker({ persistence, plugins: [{ name: "probe", wasm: probe }] });
    });
    after(() => broker.stop());

    test("a publisher interleaving QoS 1 and QoS 0: every message of both arrives", async () => {
      const sub = await connect(broker.url);
      const got = collect(sub);
      await subscribe(sub, "mix/#", 1);
      const pub = await connect(broker.url);
      const n = 200;
      const acks: Promise<unknown>[] = [];
      for (let i = 0; i < n; i++) {
        acks.push(pub.publishAsync("mix/q1", `a${i}`, { qos: 1 }));
        pub.publish("mix/q0", `b${i}`, { qos: 0 });
      }
      await Promise.all(acks);
      await got.waitFor(2 * n);
      await settle(sub);
      assert.equal(got.messages.filter((m) => m.topic === "mix/q1").length, n);
      assert.equal(got.messages.filter((m) => m.topic === "mix/q0").length, n);
      await end(sub, pub);
    });

    test("a plugin's extra QoS 1 publish made while handling a QoS 0 message reaches a subscriber of both", async () => {
      const sub = await connect(broker.url);
      const got = collect(sub);
      await subscribe(sub, ["route/#", "routed/#"], 1);
      const pub = await connect(broker.url);
      for (let i = 0; i < 20; i++) pub.publish(`route/r${i}`, "x", { qos: 0 });
      await got.waitFor(40);
      await settle(sub);
      assert.equal(got.messages.filter((m) => m.topic.startsWith("routed/")).length, 20);
      assert.equal(got.messages.filter((m) => m.topic.startsWith("route/")).length, 20);
      await end(sub, pub);
    });

    test("overlapping subscriptions: one message arrives once", async () => {
      const sub = await connect(broker.url);
      const got = collect(sub);
      await subscribe(sub, ["ov/#", "ov/+", "ov/a"], 1);
      const pub = await connect(broker.url);
      await pub.publishAsync("ov/a", "once", { qos: 1 });
      await pub.publishAsync("ov/b", "once too", { qos: 0 });
      await got.waitFor(2);
      await settle(sub);
      assert.deepEqual(got.messages.map((m) => m.topic).sort(), ["ov/a", "ov/b"]);
      await end(sub, pub);
    });
  });
}
