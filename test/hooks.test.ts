// Every hook's verdicts, observed from real MQTT clients through a real broker
// running the compiled probe fixture (and its chain neighbours).
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { buildFixture } from "./fixtures.js";
import { brokerForgot, collect, connect, connectCollecting, connectRefused, end, settle, startTestBroker, subscribe, type TestBroker } from "./helpers.js";

describe("plugin hooks through the broker (Wasm probe plugin)", () => {
  let broker: TestBroker;

  before(async () => {
    const probe = await buildFixture("probe");
    broker = await startTestBroker({
      persistence: "memory",
      plugins: [
        { name: "first", wasm: probe, config: { tag: "-A" } },
        { name: "second", wasm: probe, config: { tag: "-B" } },
      ],
    });
  });
  after(() => broker.stop());

  test("connect: a plugin denies with its CONNACK return code, others connect", async () => {
    assert.equal(await connectRefused(broker.url, { username: "bad", password: "x" }), 4);
    assert.equal(await connectRefused(broker.url, { username: "nope" }), 5);
    const ok = await connect(broker.url, { username: "good" });
    assert.ok(ok.connected);
    await end(ok);
  });

  test("subscribe: refused filter gets SUBACK 0x80, downgrade lowers the QoS, the connection stays", async () => {
    const c = await connect(broker.url);
    const granted = await subscribe(c, ["forbidden/x", "downgrade/x", "allowed/x"], 1);
    assert.deepEqual(granted, [128, 0, 1]);
    assert.ok(c.connected);
    await end(c);
  });

  test("subscribe: a plugin can rewrite the filter", async () => {
    const sub = await connect(broker.url);
    const got = collect(sub);
    await subscribe(sub, "alias/kitchen", 1);
    const pub = await connect(broker.url);
    await pub.publishAsync("real/kitchen", "via alias", { qos: 1 });
    const [m] = await got.waitFor(1);
    assert.equal(m!.topic, "real/kitchen");
    await end(sub, pub);
  });

  test("publish: drop is silent (acked, delivered to no one), rewrite and route change what subscribers get", async () => {
    const sub = await connect(broker.url);
    const got = collect(sub);
    await subscribe(sub, ["drop/#", "rewrite/#", "rewritten/#", "route/#", "routed/#"], 1);
    const pub = await connect(broker.url);
    await pub.publishAsync("drop/me", "gone", { qos: 1 });
    await pub.publishAsync("rewrite/t1", "moved", { qos: 1 });
    await pub.publishAsync("route/r1", "copied", { qos: 1 });
    await settle(sub);
    await got.waitFor(4);
    await settle(sub);
    const topics = got.messages.map((m) => m.topic).sort();
    // Both probes in the chain route, so the routed copy arrives twice.
    assert.deepEqual(topics, ["rewritten/t1", "route/r1", "routed/r1", "routed/r1"]);
    assert.ok(pub.connected, "a dropped publish must not disconnect the publisher");
    await end(sub, pub);
  });

  test("publish: deny closes the publisher's connection only", async () => {
    const bystander = await connect(broker.url);
    const pub = await connect(broker.url);
    const closed = new Promise<void>((resolve) => pub.once("close", () => resolve()));
    pub.publish("deny/x", "no", { qos: 0 });
    await closed;
    await settle(bystander);
    assert.ok(bystander.connected);
    await end(bystander, pub);
  });

  test("chain order: plugins run in config order on the modified message", async () => {
    const sub = await connect(broker.url);
    const got = collect(sub);
    await subscribe(sub, "tagged/#", 1);
    const pub = await connect(broker.url);
    await pub.publishAsync("tagged/x", "payload", { qos: 1 });
    const [m] = await got.waitFor(1);
    assert.equal(m!.payload.toString(), "payload-A-B");
    await end(sub, pub);
  });

  test("deliver: per-subscriber drop and rewrite", async () => {
    const owner = await connect(broker.url, { clientId: "owner" });
    const other = await connect(broker.url, { clientId: "other" });
    const loud = await connect(broker.url, { clientId: "loud-1" });
    const gotOwner = collect(owner);
    const gotOther = collect(other);
    const gotLoud = collect(loud);
    for (const c of [owner, other, loud]) await subscribe(c, ["private/#", "shout/#"], 1);
    const pub = await connect(broker.url);
    await pub.publishAsync("private/diary", "secret", { qos: 1 });
    await pub.publishAsync("shout/hello", "hello", { qos: 1 });
    await gotOwner.waitFor(2);
    await gotOther.waitFor(1);
    await gotLoud.waitFor(1);
    await settle(other);
    await settle(loud);
    assert.deepEqual(gotOwner.messages.map((m) => [m.topic, m.payload.toString()]).sort(), [["private/diary", "secret"], ["shout/hello", "hello"]]);
    assert.deepEqual(gotOther.messages.map((m) => [m.topic, m.payload.toString()]), [["shout/hello", "hello"]]);
    assert.deepEqual(gotLoud.messages.map((m) => [m.topic, m.payload.toString()]), [["shout/hello", "HELLO"]]);
    await end(owner, other, loud, pub);
  });

  test("deliver: also on messages replayed from an offline queue, including QoS 2 ones downgraded for a QoS 1 wildcard", async () => {
    const away = await connect(broker.url, { clientId: "loud-away", clean: false });
    await subscribe(away, "shout/+", 1);
    await end(away);
    await brokerForgot(broker, "loud-away");
    const pub = await connect(broker.url);
    await pub.publishAsync("shout/one", "one", { qos: 1 });
    await pub.publishAsync("shout/two", "two", { qos: 2 });
    const { client: back, got } = await connectCollecting(broker.url, { clientId: "loud-away", clean: false });
    await got.waitFor(2);
    assert.deepEqual(
      got.messages.map((m) => [m.topic, m.payload.toString(), m.qos]),
      [
        ["shout/one", "ONE", 1],
        ["shout/two", "TWO", 1],
      ],
    );
    await end(back, pub);
  });
});
