// acl: topic access by username / client id with %u/%c patterns, compared with
// its native twin on generated subscribes, publishes and deliveries, and
// observed through a broker with real clients.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { ACL_CONFIG as CONFIG, ACL_LIMITS as LIMITS, aclMessages as messages } from "./acl-messages.js";
import { assertTwinsAgree, assertTwinsRefuse, verdictCounts } from "./differential.js";
import { collect, connect, end, settle, startTestBroker, subscribe, wasm, type TestBroker } from "./helpers.js";

describe("acl: Wasm and native twin agree", () => {
  test("600 generated subscribes, publishes and deliveries, identities with '/', '+', '#' and long names", async () => {
    const results = await assertTwinsAgree("acl", CONFIG, messages(21, 600), LIMITS);
    const counts = verdictCounts(results);
    for (const outcome of ["continue", "drop", "deny"]) assert.ok((counts[outcome] ?? 0) > 20, `too few ${outcome}: ${JSON.stringify(counts)}`);
  });

  test("default allow and disconnect on denied publish: 300 generated messages", async () => {
    const config = { ...CONFIG, default: "allow", onDeniedPublish: "disconnect" };
    const msgs = messages(22, 300);
    const results = await assertTwinsAgree("acl", config, msgs, LIMITS);
    results.forEach((r, i) => {
      if (msgs[i]!.hook === "publish") assert.notEqual(r.verdict, "drop", "a denied publish disconnects instead");
    });
    assert.ok(results.some((r, i) => msgs[i]!.hook === "publish" && r.verdict === "deny"));
  });

  test("bad configs are refused by both builds, naming the key", async () => {
    await assertTwinsRefuse("acl", { rules: "all" }, /config\.rules must be an array/);
    await assertTwinsRefuse("acl", { rules: [{ topic: "a", access: "all" }] }, /rules\.0\.access must be read, write, readwrite or deny, not all/);
    await assertTwinsRefuse("acl", { rules: [{ topic: "a/#/b" }] }, /rules\.0\.topic must be an MQTT topic filter/);
    await assertTwinsRefuse("acl", { default: "maybe" }, /config\.default must be allow or deny/);
    await assertTwinsRefuse("acl", { onDeniedPublish: "kick" }, /config\.onDeniedPublish must be drop or disconnect/);
  });
});

describe("acl through the broker", () => {
  let broker: TestBroker;

  before(async () => {
    // The test helpers' settle() round trip needs its own topic.
    const config = { ...CONFIG, rules: [...CONFIG.rules, { topic: "wasmq-test/settle/#", access: "readwrite" }] };
    broker = await startTestBroker({ persistence: "memory", plugins: [{ name: "acl", wasm: wasm("acl"), config, limits: LIMITS }] });
  });
  after(() => broker.stop());

  test("subscriptions are granted within the client's own %c/%u space and refused outside it", async () => {
    const dev = await connect(broker.url, { clientId: "dev-1", username: "alice" });
    assert.deepEqual(await subscribe(dev, ["devices/dev-1/#", "devices/dev-2/#", "users/alice/inbox/+", "users/bob/inbox/+", "#", "public/news"], 1), [1, 128, 1, 128, 128, 1]);
    assert.ok(dev.connected, "a refused subscription keeps the connection");
    await end(dev);
  });

  test("unauthorised publishes are dropped silently; deny rules hold even under a '#' subscription", async () => {
    const ops = await connect(broker.url, { clientId: "ops-console", username: "ops" });
    const seen = collect(ops);
    assert.deepEqual(await subscribe(ops, "#", 1), [1]);
    const dev = await connect(broker.url, { clientId: "dev-1", username: "alice" });
    await dev.publishAsync("devices/dev-1/status", "ok", { qos: 1 });
    await dev.publishAsync("devices/dev-2/status", "spoofed", { qos: 1 });
    await dev.publishAsync("devices/dev-1/secret", "key", { qos: 1 });
    await dev.publishAsync("users/alice/outbox", "mail", { qos: 1 });
    await dev.publishAsync("users/bob/outbox", "not mine", { qos: 1 });
    const slash = await connect(broker.url, { clientId: "dev-1/x", username: "alice" });
    await slash.publishAsync("devices/dev-1/x/status", "widened", { qos: 1 });
    await seen.waitFor(2);
    await settle(ops);
    assert.deepEqual(seen.messages.map((m) => `${m.topic} ${m.payload.toString()}`).sort(), ["devices/dev-1/status ok", "users/alice/outbox mail"]);
    assert.ok(dev.connected && slash.connected, "dropped publishes do not disconnect");
    await end(ops, dev, slash);
  });

  test("a bad config stops the broker from starting, naming the plugin", async () => {
    await assert.rejects(
      startTestBroker({ persistence: "memory", plugins: [{ name: "acl", wasm: wasm("acl"), config: { rules: [{ topic: "x", access: "sometimes" }] } }] }),
      /plugin "acl": refused: config key "rules\.0\.access" must be equal to one of the allowed values/,
    );
  });
});
