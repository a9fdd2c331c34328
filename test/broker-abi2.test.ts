// Plugin ABI v2 through a real broker: mqtt.js v5 and raw v5 frames on real
// sockets, plugins built from AssemblyScript (v5probe fixture, acl, filter,
// router). A plugin's refusal answers v5 clients with its reason code and keeps
// the connection; a user property it adds reaches the subscriber; SUBACK and
// CONNACK carry the codes it chose; 3.1.1 clients keep today's behaviour.
import assert from "node:assert/strict";
import type { MqttClient } from "mqtt";
import { after, before, describe, test } from "node:test";
import { buildFixture } from "./fixtures.js";
import { connect, connectRefused, end, native, startTestBroker, subscribe, wasm, type TestBroker } from "./helpers.js";
import { connect5, Raw5, uid } from "./mqtt5-raw.js";
import { BEFORE_V2, buildPluginAt, hasCommit } from "./old-sdk.js";
import { rmSync } from "node:fs";
import { tempDir } from "./helpers.js";

let probeBroker: TestBroker;
let examples: TestBroker;
before(async () => {
  probeBroker = await startTestBroker({ persistence: "memory", plugins: [{ name: "v5probe", wasm: await buildFixture("v5probe") }] });
  examples = await startTestBroker({
    persistence: "memory",
    plugins: [
      { name: "acl", wasm: wasm("acl"), config: { default: "deny", onDeniedPublish: "disconnect", rules: [{ topic: "#", access: "readwrite" }, { topic: "closed/#", access: "deny" }] } },
      { name: "filter", wasm: wasm("filter"), config: { rules: [{ topic: "sensors/+/temp", field: "value", min: -40, max: 85 }] } },
      { name: "router", native: native("router"), config: { routes: [{ from: "requests/+", to: "handled/{1}", qos: 1 }] } },
    ],
  });
});
after(async () => {
  await probeBroker?.stop();
  await examples?.stop();
});

const url = (b: TestBroker) => `mqtt://127.0.0.1:${b.port("tcp")}`;

function publish(client: MqttClient, topic: string, payload: string, opts: Record<string, unknown>): Promise<(Error & { code?: number }) | null> {
  return new Promise((resolve) => client.publish(topic, payload, opts, (err) => resolve((err as Error & { code?: number }) ?? null)));
}

function nextMessage(client: MqttClient, topic: string): Promise<{ payload: string; properties: Record<string, unknown> }> {
  return new Promise((resolve) => {
    const on = (t: string, payload: Buffer, packet: { properties?: Record<string, unknown> }) => {
      if (t !== topic) return;
      client.off("message", on);
      const properties = { ...(packet.properties ?? {}) };
      // mqtt-packet parses user properties into a null-prototype object
      if (properties.userProperties) properties.userProperties = { ...(properties.userProperties as object) };
      resolve({ payload: payload.toString(), properties });
    };
    client.on("message", on);
  });
}

describe("ABI v2 verdicts on the wire (mqtt.js v5)", { timeout: 60_000 }, () => {
  test("a denied QoS 1 publish gets PUBACK 0x87 with the plugin's reason string, and the connection stays open", async () => {
    const { client } = await connect5(url(probeBroker));
    const watcher = await connect(url(probeBroker), { protocolVersion: 5 });
    try {
      await subscribe(watcher, "v5/#", 1);
      let leaked = false;
      watcher.on("message", (t) => (leaked ||= t.startsWith("v5/deny")));
      const err = await publish(client, "v5/deny/x", "no", { qos: 1 });
      assert.equal(err?.code, 0x87);
      // QoS 2: PUBREC 0x87 ends the flow; later QoS 2 flows still work
      assert.equal((await publish(client, "v5/deny/y", "no", { qos: 2 }))?.code, 0x87);
      const got = nextMessage(watcher, "v5/ok/after");
      assert.equal(await publish(client, "v5/ok/after", "yes", { qos: 2 }), null);
      assert.equal((await got).payload, "yes");
      assert.equal(client.connected, true);
      assert.equal(leaked, false);
    } finally {
      await end(client, watcher);
    }
  });

  test("raw v5: the PUBACK carries 0x87 and the reason string; a drop with a code (0x97) too; a plain deny is 0x87", async () => {
    const { c } = await Raw5.connect(probeBroker.port("tcp"));
    try {
      c.send({ cmd: "publish", topic: "v5/deny/x", payload: "x", qos: 1, messageId: 1 });
      const ack = await c.next("puback", (p) => p.messageId === 1);
      assert.equal(ack.reasonCode, 0x87);
      assert.equal(ack.properties?.reasonString, "denied by v5probe");
      c.send({ cmd: "publish", topic: "v5/quota/x", payload: "x", qos: 1, messageId: 2 });
      assert.equal((await c.next("puback", (p) => p.messageId === 2)).reasonCode, 0x97);
      c.send({ cmd: "publish", topic: "v5/plain-deny/x", payload: "x", qos: 2, messageId: 3 });
      assert.equal((await c.next("pubrec", (p) => p.messageId === 3)).reasonCode, 0x87);
      assert.equal(c.closed, false);
    } finally {
      c.socket.destroy();
    }
  });

  test("a user property the plugin adds reaches the subscriber, after the publisher's own (v5 and 3.1.1 publishers)", async () => {
    const sub = await connect(url(probeBroker), { protocolVersion: 5 });
    const { client: pub5 } = await connect5(url(probeBroker));
    const pub4 = await connect(url(probeBroker));
    try {
      await subscribe(sub, "v5/tag/#", 1);
      let got = nextMessage(sub, "v5/tag/a");
      await publish(pub5, "v5/tag/a", "1", { qos: 1, properties: { userProperties: { a: "1" }, correlationData: Buffer.from("c-1") } });
      let m = await got;
      assert.deepEqual(m.properties.userProperties, { a: "1", "tagged-by": "v5probe" });
      assert.equal(String(m.properties.correlationData), "c-1");
      got = nextMessage(sub, "v5/tag/b");
      await publish(pub4, "v5/tag/b", "2", { qos: 1 });
      m = await got;
      assert.deepEqual(m.properties.userProperties, { "tagged-by": "v5probe" });
      // set on publish: content type, response topic, correlation data, expiry, payload format
      await subscribe(sub, "v5/set/#", 1);
      got = nextMessage(sub, "v5/set/c");
      await publish(pub4, "v5/set/c", "{}", { qos: 1 });
      m = await got;
      assert.equal(m.properties.contentType, "application/json");
      assert.equal(m.properties.responseTopic, "reply/here");
      assert.equal(String(m.properties.correlationData), "corr");
      assert.equal(m.properties.payloadFormatIndicator, true);
      assert.ok((m.properties.messageExpiryInterval as number) > 0 && (m.properties.messageExpiryInterval as number) <= 60);
      // the deliver hook changes one subscriber's copy
      await subscribe(sub, "v5/deliver/#", 1);
      got = nextMessage(sub, "v5/deliver/d");
      await publish(pub5, "v5/deliver/d", "3", { qos: 1 });
      m = await got;
      assert.deepEqual(m.properties.userProperties, { "delivered-to": sub.options.clientId });
    } finally {
      await end(sub, pub5, pub4);
    }
  });

  test("SUBACK carries the code the plugin chose per filter, and its reason string", async () => {
    const { c } = await Raw5.connect(probeBroker.port("tcp"));
    try {
      c.send({ cmd: "subscribe", messageId: 5, subscriptions: [{ topic: "quota/a", qos: 1 }, { topic: "plain/a", qos: 1 }, { topic: "fine/a", qos: 1 }] });
      const suback = await c.next("suback");
      assert.deepEqual(suback.granted, [0x97, 0x87, 1]);
      assert.equal(suback.properties?.reasonString, "subscription quota");
    } finally {
      c.socket.destroy();
    }
  });

  test("the subscribe hook sees the subscription's options, identifier and the SUBSCRIBE's user properties", async () => {
    const { c } = await Raw5.connect(probeBroker.port("tcp"));
    try {
      const props = { subscriptionIdentifier: 42, userProperties: { why: "test" } };
      c.send({ cmd: "subscribe", messageId: 6, properties: props, subscriptions: [{ topic: "opts/a", qos: 1, nl: true, rh: 2 }, { topic: "opts/b", qos: 1, nl: false, rh: 2 }] });
      assert.deepEqual((await c.next("suback", (p) => p.messageId === 6)).granted, [0x83, 1]);
      c.send({ cmd: "subscribe", messageId: 7, properties: { subscriptionIdentifier: 41, userProperties: { why: "test" } }, subscriptions: [{ topic: "opts/c", qos: 1, nl: true, rh: 2 }] });
      assert.deepEqual((await c.next("suback", (p) => p.messageId === 7)).granted, [1]);
    } finally {
      c.socket.destroy();
    }
  });

  test("CONNACK carries the plugin's code; a 3.1.1 client gets the nearest return code", async () => {
    const banned = await Raw5.connect(probeBroker.port("tcp"), { username: "banned" });
    assert.equal(banned.connack.reasonCode, 0x8a);
    assert.equal(banned.connack.properties?.reasonString, "banned by v5probe");
    banned.c.socket.destroy();
    assert.equal(await connectRefused(url(probeBroker), { protocolVersion: 5, username: "busy" }), 0x89);
    assert.equal(await connectRefused(url(probeBroker), { protocolVersion: 5, username: "v1-code" }), 0x86);
    assert.equal(await connectRefused(url(probeBroker), { username: "banned" }), 5);
    assert.equal(await connectRefused(url(probeBroker), { username: "busy" }), 3);
  });

  test("a CONNACK code the packet cannot carry is refused as plugin output: the failure policy answers (3.1.1 code 3)", async () => {
    assert.equal(await connectRefused(url(probeBroker), { username: "bad-code" }), 3);
  });
});

describe("3.1.1 clients keep today's behaviour", { timeout: 60_000 }, () => {
  test("a deny closes a 3.1.1 publisher's connection; a drop with a code is acknowledged and delivered to no one", async () => {
    const client = await connect(url(probeBroker));
    const watcher = await connect(url(probeBroker));
    try {
      await subscribe(watcher, "v5/#", 1);
      let leaked = false;
      watcher.on("message", (t) => (leaked ||= !t.startsWith("v5/ok")));
      assert.equal(await publish(client, "v5/quota/x", "x", { qos: 1 }), null);
      const closed = new Promise<void>((r) => client.once("close", () => r()));
      client.publish("v5/plain-deny/x", "x", { qos: 1 });
      await closed;
      const got = nextMessage(watcher, "v5/ok/x");
      watcher.publish("v5/ok/x", "ok", { qos: 1 });
      await got;
      assert.equal(leaked, false);
    } finally {
      await end(client, watcher);
    }
  });
});

describe("example plugins speak v2", { timeout: 60_000 }, () => {
  test("acl: a denied publish is PUBACK 0x87 for v5 (connection open), a disconnect for 3.1.1", async () => {
    const { client: v5 } = await connect5(url(examples));
    const v4 = await connect(url(examples));
    try {
      assert.equal((await publish(v5, "closed/x", "x", { qos: 1 }))?.code, 0x87);
      assert.equal(await publish(v5, "open/x", "x", { qos: 1 }), null);
      const closed = new Promise<void>((r) => v4.once("close", () => r()));
      v4.publish("closed/x", "x", { qos: 1 });
      await closed;
    } finally {
      await end(v5, v4);
    }
  });

  test("filter: a reading that is not JSON gets PUBACK 0x99 Payload format invalid (v5); 3.1.1 is acknowledged", async () => {
    const { client: v5 } = await connect5(url(examples));
    const v4 = await connect(url(examples));
    try {
      assert.equal((await publish(v5, "sensors/a/temp", "not json", { qos: 1 }))?.code, 0x99);
      assert.equal((await publish(v5, "sensors/a/temp", '{"value":500}', { qos: 1 }))?.code, 0x99);
      assert.equal(await publish(v5, "sensors/a/temp", '{"value":20}', { qos: 1 }), null);
      assert.equal(await publish(v4, "sensors/a/temp", "not json", { qos: 1 }), null);
    } finally {
      await end(v5, v4);
    }
  });

  test("router: the routed copy keeps the request's response topic, correlation data and user properties", async () => {
    const sub = await connect(url(examples), { protocolVersion: 5 });
    const { client: pub } = await connect5(url(examples));
    try {
      const id = uid("req");
      await subscribe(sub, "handled/#", 1);
      const got = nextMessage(sub, `handled/${id}`);
      await publish(pub, `requests/${id}`, "ping", { qos: 1, properties: { responseTopic: `replies/${id}`, correlationData: Buffer.from("corr-7"), userProperties: { k: "v" } } });
      const m = await got;
      assert.equal(m.payload, "ping");
      assert.equal(m.properties.responseTopic, `replies/${id}`);
      assert.equal(String(m.properties.correlationData), "corr-7");
      assert.deepEqual(m.properties.userProperties, { k: "v" });
    } finally {
      await end(sub, pub);
    }
  });
});

describe("an ABI v1 binary in the broker", { timeout: 120_000, skip: !hasCommit(BEFORE_V2) && `commit ${BEFORE_V2} is not in this clone` }, () => {
  test("acl built with the v1 SDK: 3.1.1 publishers disconnected as before; v5 publishers get PUBACK 0x87 and stay", async () => {
    const dir = tempDir("wasmq-v1-broker-");
    const broker = await startTestBroker({
      persistence: "memory",
      plugins: [{ name: "acl", wasm: await buildPluginAt(BEFORE_V2, "acl", dir), config: { default: "deny", onDeniedPublish: "disconnect", rules: [{ topic: "open/#", access: "readwrite" }] } }],
    });
    const v4 = await connect(url(broker));
    const { client: v5 } = await connect5(url(broker));
    try {
      assert.equal((await publish(v5, "closed/x", "x", { qos: 1 }))?.code, 0x87);
      assert.equal(await publish(v5, "open/x", "x", { qos: 1 }), null);
      assert.equal(v5.connected, true);
      assert.equal(await publish(v4, "open/x", "x", { qos: 1 }), null);
      const closed = new Promise<void>((r) => v4.once("close", () => r()));
      v4.publish("closed/x", "x", { qos: 1 });
      await closed;
    } finally {
      await end(v4, v5);
      await broker.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
