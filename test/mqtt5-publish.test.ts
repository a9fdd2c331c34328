// MQTT 5 PUBLISH: properties, message expiry, topic aliases, subscription
// identifiers, flow control and packet size limits, malformed properties
// (broker/protocol/mqtt5/encoder.ts, inbound.ts, properties.ts).
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { brokerForgot, native, startTestBroker, type TestBroker } from "./helpers.js";
import { connect5, publishWithRawProperties, Raw5, sleep, uid } from "./mqtt5-raw.js";

let broker: TestBroker;
let port: number;

before(async () => {
  broker = await startTestBroker({ persistence: "lmdb", mqtt5: { receiveMaximum: 3, maxTopicAlias: 4 } });
  port = broker.port("tcp");
});
after(() => broker.stop());

/** Subscribe a raw v5 client to `topic` and wait for the SUBACK. */
async function rawSubscriber(connect: Record<string, unknown>, topic: string, qos = 1, properties?: Record<string, unknown>): Promise<Raw5> {
  const { c } = await Raw5.connect(port, connect);
  c.send({ cmd: "subscribe", messageId: 1, subscriptions: [{ topic, qos }], ...(properties ? { properties } : {}) });
  await c.next("suback");
  return c;
}

describe("PUBLISH properties", { timeout: 30_000 }, () => {
  test("[MQTT-3.3.2-16..20] payload format, content type, response topic, correlation data and user properties reach the subscriber unchanged", async () => {
    const t = uid("props");
    const sub = await rawSubscriber({}, t);
    const { client } = await connect5(broker.url, { clientId: uid("pub") });
    const properties = {
      payloadFormatIndicator: true,
      contentType: "application/json",
      responseTopic: "reply/here",
      correlationData: Buffer.from([1, 2, 3]),
      userProperties: { region: "eu", tag: ["a", "b"] },
    };
    await client.publishAsync(t, "{}", { qos: 1, properties });
    const got = await sub.next("publish");
    const p = got.properties!;
    assert.equal(p.payloadFormatIndicator, true);
    assert.equal(p.contentType, "application/json");
    assert.equal(p.responseTopic, "reply/here");
    assert.deepEqual(p.correlationData, Buffer.from([1, 2, 3]));
    assert.deepEqual({ ...(p.userProperties as object) }, { region: "eu", tag: ["a", "b"] });
    assert.equal(p.topicAlias, undefined);
    sub.destroy();
    await client.endAsync();
  });

  test("[MQTT-3.3.2-6] message expiry counts down while queued; the interval sent is what is left", async () => {
    const id = uid("expq");
    const t = uid("t");
    const away = await rawSubscriber({ clientId: id, clean: false, properties: { sessionExpiryInterval: 60 } }, t);
    away.destroy();
    await sleep(100);
    const { client } = await connect5(broker.url, { clientId: uid("pub") });
    await client.publishAsync(t, "soon", { qos: 1, properties: { messageExpiryInterval: 1 } });
    await client.publishAsync(t, "later", { qos: 1, properties: { messageExpiryInterval: 100 } });
    await client.publishAsync(t, "never", { qos: 1 });
    await sleep(1100); // the first one's second passes while it waits in the queue
    const { c: back } = await Raw5.connect(port, { clientId: id, clean: false, properties: { sessionExpiryInterval: 60 } });
    const first = await back.next("publish");
    const second = await back.next("publish");
    assert.equal(String(first.payload), "later", "the expired message was dropped");
    assert.ok((first.properties!.messageExpiryInterval as number) < 100 && (first.properties!.messageExpiryInterval as number) >= 98);
    assert.equal(String(second.payload), "never");
    assert.equal(second.properties?.messageExpiryInterval, undefined);
    back.destroy();
    await client.endAsync();
  });

  test("[MQTT-3.3.2-5] an expired retained message is not sent to a new subscriber", async () => {
    const t = uid("expr");
    const { client } = await connect5(broker.url, { clientId: uid("pub") });
    await client.publishAsync(t, "gone", { qos: 1, retain: true, properties: { messageExpiryInterval: 1 } });
    await client.publishAsync(`${t}/x`, "kept", { qos: 1, retain: true, properties: { messageExpiryInterval: 100, contentType: "c/t" } });
    await sleep(1100);
    const sub = await rawSubscriber({}, `${t}/#`);
    const only = await sub.next("publish");
    assert.equal(String(only.payload), "kept");
    assert.equal(only.properties?.contentType, "c/t", "a retained message keeps its properties");
    await client.publishAsync(`${t}/x`, "", { qos: 1, retain: true });
    await sub.next("publish"); // the live clear: nothing else came first
    assert.equal(sub.publishes().length, 2);
    sub.destroy();
    await client.endAsync();
  });
});

describe("acknowledgement reason codes", { timeout: 30_000 }, () => {
  test("[MQTT-3.4.2-1] PUBACK/PUBREC 0x10 when no session subscribes to the topic, 0x00 when one does (also away)", async () => {
    const t = uid("ack");
    const { c } = await Raw5.connect(port);
    c.send({ cmd: "publish", topic: `${t}/nobody`, payload: "x", qos: 1, messageId: 1 });
    assert.equal((await c.next("puback")).reasonCode, 0x10);
    c.send({ cmd: "publish", topic: `${t}/nobody`, payload: "x", qos: 2, messageId: 2 });
    assert.equal((await c.next("pubrec")).reasonCode, 0x10);
    c.send({ cmd: "pubrel", messageId: 2 });
    await c.next("pubcomp");
    const live = await rawSubscriber({}, `${t}/live`, 0);
    c.send({ cmd: "publish", topic: `${t}/live`, payload: "x", qos: 1, messageId: 3 });
    assert.equal((await c.next("puback")).reasonCode, 0x00);
    const awayId = uid("away");
    const away = await rawSubscriber({ clientId: awayId, clean: false, properties: { sessionExpiryInterval: 60 } }, `${t}/away`, 1);
    away.destroy();
    await brokerForgot(broker, awayId); // only its stored session subscribes now
    c.send({ cmd: "publish", topic: `${t}/away`, payload: "x", qos: 1, messageId: 4 });
    assert.equal((await c.next("puback")).reasonCode, 0x00);
    live.destroy();
    c.destroy();
  });
});

describe("refused PUBLISH", { timeout: 30_000 }, () => {
  test("a PUBLISH to $SYS/ closes the v5 connection with DISCONNECT 0x87 and a reason string", async () => {
    const { c } = await Raw5.connect(port);
    c.send({ cmd: "publish", topic: "$SYS/forged", payload: "x", qos: 1, messageId: 1 });
    const d = await c.next("disconnect");
    assert.equal(d.reasonCode, 0x87);
    assert.match(String(d.properties?.reasonString), /\$SYS/);
    await c.waitClosed();
  });

  test("a plugin's deny (acl, onDeniedPublish: disconnect) tells a v5 client 0x87 before closing", async () => {
    const acl = await startTestBroker({
      persistence: "memory",
      plugins: [{ name: "acl", native: native("acl"), config: { default: "deny", onDeniedPublish: "disconnect", rules: [{ topic: "open/#", access: "readwrite" }] } }],
    });
    try {
      const { c } = await Raw5.connect(acl.port("tcp"));
      c.send({ cmd: "publish", topic: "open/a", payload: "x", qos: 1, messageId: 1 });
      assert.equal((await c.next("puback")).reasonCode, 0x10);
      c.send({ cmd: "publish", topic: "closed/a", payload: "x", qos: 1, messageId: 2 });
      assert.equal((await c.next("disconnect")).reasonCode, 0x87);
      await c.waitClosed();
    } finally {
      await acl.stop();
    }
  });
});

describe("topic aliases (inbound)", { timeout: 30_000 }, () => {
  test("[MQTT-3.3.2-12] an alias set with a topic then used with an empty topic names that topic", async () => {
    const t = uid("alias");
    const sub = await rawSubscriber({}, t, 0);
    const { c } = await Raw5.connect(port);
    c.send({ cmd: "publish", topic: t, payload: "1", qos: 0, properties: { topicAlias: 2 } });
    c.send({ cmd: "publish", topic: "", payload: "2", qos: 1, messageId: 7, properties: { topicAlias: 2 } });
    assert.equal((await c.next("puback")).reasonCode, 0);
    const a = await sub.next("publish");
    const b = await sub.next("publish");
    assert.deepEqual([a.topic, String(a.payload), b.topic, String(b.payload)], [t, "1", t, "2"]);
    assert.equal(b.properties?.topicAlias, undefined, "the alias is the publisher's, not forwarded");
    c.destroy();
    sub.destroy();
  });

  test("[MQTT-3.3.2-9] an alias above our Topic Alias Maximum: DISCONNECT 0x94", async () => {
    const { c } = await Raw5.connect(port);
    c.send({ cmd: "publish", topic: "a", payload: "x", qos: 0, properties: { topicAlias: 5 } });
    assert.equal((await c.next("disconnect")).reasonCode, 0x94);
    await c.waitClosed();
  });

  test("[MQTT-3.3.4-*] an empty topic with an alias never set: DISCONNECT 0x82", async () => {
    const { c } = await Raw5.connect(port);
    c.send({ cmd: "publish", topic: "", payload: "x", qos: 0, properties: { topicAlias: 1 } });
    assert.equal((await c.next("disconnect")).reasonCode, 0x82);
    await c.waitClosed();
  });
});

describe("topic aliases (outbound)", { timeout: 30_000 }, () => {
  test("[MQTT-3.3.2-11] the broker sets at most the client's Topic Alias Maximum aliases, then sends known topics empty", async () => {
    const t = uid("oa");
    const sub = await rawSubscriber({ properties: { topicAliasMaximum: 2 } }, `${t}/+`, 0);
    const { client } = await connect5(broker.url, { clientId: uid("pub") });
    for (const round of [1, 2]) for (const leaf of ["a", "b", "c"]) await client.publishAsync(`${t}/${leaf}`, `${leaf}${round}`, { qos: 1 });
    for (let i = 0; i < 6; i++) await sub.next("publish");
    const seen = sub.publishes().map((p) => [String(p.payload), p.topic, p.properties?.topicAlias ?? null]);
    assert.deepEqual(seen, [
      ["a1", `${t}/a`, 1],
      ["b1", `${t}/b`, 2],
      ["c1", `${t}/c`, null],
      ["a2", "", 1],
      ["b2", "", 2],
      ["c2", `${t}/c`, null],
    ]);
    sub.destroy();
    await client.endAsync();
  });

  test("mqtt.js with a Topic Alias Maximum resolves the aliases the broker sets; a client without one gets none", async () => {
    const t = uid("oajs");
    const { client: aliased } = await connect5(broker.url, { clientId: uid("js"), properties: { topicAliasMaximum: 4 } });
    const { client: plain } = await connect5(broker.url, { clientId: uid("plain") });
    const got: string[] = [];
    const aliasesSeen: unknown[] = [];
    aliased.on("message", (topic, payload, packet) => {
      got.push(`${topic}=${payload}`);
      aliasesSeen.push(packet.properties?.topicAlias);
    });
    const plainAliases: unknown[] = [];
    plain.on("message", (_t, _p, packet) => plainAliases.push(packet.properties?.topicAlias));
    await aliased.subscribeAsync(t, { qos: 1 });
    await plain.subscribeAsync(t, { qos: 1 });
    const pub = (await connect5(broker.url, { clientId: uid("pub") })).client;
    for (let i = 0; i < 3; i++) await pub.publishAsync(t, String(i), { qos: 1 });
    while (got.length < 3 || plainAliases.length < 3) await sleep(20);
    assert.deepEqual(got, [`${t}=0`, `${t}=1`, `${t}=2`]);
    assert.deepEqual(aliasesSeen, [1, 1, 1]);
    assert.deepEqual(plainAliases, [undefined, undefined, undefined]);
    await Promise.all([aliased, plain, pub].map((c) => c.endAsync()));
  });
});

describe("subscription identifiers", { timeout: 30_000 }, () => {
  test("[MQTT-3.3.4-3] [MQTT-3.3.4-4] a message matching several subscriptions carries each one's identifier, once", async () => {
    const t = uid("sid");
    const { c } = await Raw5.connect(port);
    c.send({ cmd: "subscribe", messageId: 1, subscriptions: [{ topic: `${t}/a`, qos: 0 }], properties: { subscriptionIdentifier: 7 } });
    await c.next("suback");
    c.send({ cmd: "subscribe", messageId: 2, subscriptions: [{ topic: `${t}/+`, qos: 0 }], properties: { subscriptionIdentifier: 300 } });
    await c.next("suback");
    c.send({ cmd: "subscribe", messageId: 3, subscriptions: [{ topic: "#", qos: 0 }] }); // no identifier
    await c.next("suback");
    const { client } = await connect5(broker.url, { clientId: uid("pub") });
    await client.publishAsync(`${t}/a`, "x", { qos: 0 });
    const got = await c.next("publish", (p) => p.topic === `${t}/a`);
    const ids = [got.properties?.subscriptionIdentifier].flat().sort((a, b) => Number(a) - Number(b));
    assert.deepEqual(ids, [7, 300]);
    c.destroy();
    await client.endAsync();
  });

  test("[MQTT-3.3.4-6] a client's PUBLISH with a Subscription Identifier is malformed: DISCONNECT 0x81", async () => {
    const { c } = await Raw5.connect(port);
    c.sendRaw(publishWithRawProperties(Buffer.from([0x0b, 0x05])));
    assert.equal((await c.next("disconnect")).reasonCode, 0x81);
    await c.waitClosed();
  });
});

describe("flow control and sizes", { timeout: 30_000 }, () => {
  test("[MQTT-3.3.4-7..9] inbound: more QoS 2 messages unacknowledged than our Receive Maximum (3): DISCONNECT 0x93", async () => {
    const { c, connack } = await Raw5.connect(port);
    assert.equal(connack.properties?.receiveMaximum, 3);
    for (let id = 1; id <= 3; id++) c.send({ cmd: "publish", topic: "rm", payload: "x", qos: 2, messageId: id });
    for (let id = 1; id <= 3; id++) await c.next("pubrec", (p) => p.messageId === id);
    assert.ok(!c.closed, "three are within the window");
    c.send({ cmd: "pubrel", messageId: 1 });
    await c.next("pubcomp");
    c.send({ cmd: "publish", topic: "rm", payload: "x", qos: 2, messageId: 4 }); // window: 2, 3, 4
    await c.next("pubrec", (p) => p.messageId === 4);
    c.send({ cmd: "publish", topic: "rm", payload: "x", qos: 2, messageId: 5 });
    assert.equal((await c.next("disconnect")).reasonCode, 0x93);
    await c.waitClosed();
  });

  test("[MQTT-3.3.4-9] outbound: at most the client's Receive Maximum QoS 1 messages unacknowledged; more follow acks", async () => {
    const t = uid("ro");
    const sub = await rawSubscriber({ properties: { receiveMaximum: 2 } }, t);
    const { client } = await connect5(broker.url, { clientId: uid("pub") });
    for (let i = 0; i < 5; i++) await client.publishAsync(t, String(i), { qos: 1 });
    await sub.next("publish");
    await sub.next("publish");
    await client.publishAsync(t, "marker", { qos: 0 }); // QoS 0 is not held by the window and arrives
    const marker = await sub.next("publish", (p) => String(p.payload) === "marker");
    assert.ok(marker);
    assert.equal(sub.publishes().filter((p) => p.qos === 1).length, 2, "two in flight, three held");
    for (const p of sub.publishes().filter((p) => p.qos === 1)) sub.send({ cmd: "puback", messageId: p.messageId });
    await sub.next("publish", (p) => String(p.payload) === "2");
    await sub.next("publish", (p) => String(p.payload) === "3");
    sub.destroy();
    await client.endAsync();
  });

  test("[MQTT-3.1.2-24] [MQTT-3.1.2-25] a message larger than the client's Maximum Packet Size is not sent, and the session goes on", async () => {
    const t = uid("mps");
    const sub = await rawSubscriber({ properties: { maximumPacketSize: 200 } }, t);
    const { client } = await connect5(broker.url, { clientId: uid("pub") });
    await client.publishAsync(t, Buffer.alloc(500), { qos: 1 });
    await client.publishAsync(t, "small", { qos: 1 });
    const got = await sub.next("publish");
    assert.equal(String(got.payload), "small");
    assert.equal(sub.publishes().length, 1);
    assert.ok(!sub.closed);
    sub.destroy();
    await client.endAsync();
  });
});

describe("malformed properties", { timeout: 30_000 }, () => {
  test("[MQTT-2.2.2-2] a property repeated in PUBLISH (Content Type twice): DISCONNECT 0x82, only that client closes", async () => {
    const bystander = await Raw5.connect(port);
    const { c } = await Raw5.connect(port);
    const ct = Buffer.concat([Buffer.from([0x03, 0, 1]), Buffer.from("a")]);
    c.sendRaw(publishWithRawProperties(Buffer.concat([ct, ct])));
    assert.equal((await c.next("disconnect")).reasonCode, 0x82);
    await c.waitClosed();
    bystander.c.send({ cmd: "pingreq" });
    await bystander.c.next("pingresp");
    bystander.c.destroy();
  });

  test("[MQTT-2.2.2-2] a property not allowed in PUBLISH (Session Expiry Interval): DISCONNECT 0x81", async () => {
    const { c } = await Raw5.connect(port);
    c.sendRaw(publishWithRawProperties(Buffer.from([0x11, 0, 0, 0, 5])));
    assert.equal((await c.next("disconnect")).reasonCode, 0x81);
    await c.waitClosed();
  });
});
