// MQTT 3.1.1 normative statements a server must honour, checked on the wire.
// Statement ids in test names are the spec's ([MQTT-x.y.z-n]). Several of them
// are aedes deviations that wasmq corrects in broker/protocol/conformance.ts; those tests
// say "(aedes deviation)".
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { brokerForgot, collect, connect, connectCollecting, end, settle, startTestBroker, subscribe, type TestBroker } from "./helpers.js";
import { mqttString, rawPacket, RawClient } from "./ops-raw-mqtt.js";

let broker: TestBroker;
let port: number;

before(async () => {
  broker = await startTestBroker({ persistence: "lmdb", sys: { intervalSec: 1 } });
  port = broker.port("tcp");
});
after(() => broker.stop());



const id = (prefix: string) => `${prefix}-${Math.random().toString(36).slice(2, 8)}`;
const publishBody = (topic: Buffer | string, payload = "x") => Buffer.concat([mqttString(topic), Buffer.from(payload)]);

describe("CONNECT", { timeout: 30_000 }, () => {
  test("[MQTT-3.1.0-1] the first packet must be CONNECT: anything else closes the connection unanswered", async () => {
    const c = await RawClient.open(port);
    c.write({ cmd: "pingreq" });
    await c.waitClosed();
    assert.deepEqual(c.packets, []);
  });

  test("[MQTT-3.1.0-2] a second CONNECT is a protocol violation and disconnects the client", async () => {
    const { client, connack } = await RawClient.connect(port, { clientId: id("twice") });
    assert.equal(connack.returnCode, 0);
    client.write({ cmd: "connect", protocolId: "MQTT", protocolVersion: 4, clean: true, clientId: id("again"), keepalive: 0 });
    await client.waitClosed();
  });

  test("[MQTT-3.1.2-2] an unsupported protocol level gets CONNACK 0x01 and the connection is closed", async () => {
    const c = await RawClient.open(port);
    // "MQTT", level 9, clean session, keepalive 0, client id "x"
    c.write(rawPacket(0x10, Buffer.concat([mqttString("MQTT"), Buffer.from([9, 0x02, 0, 0]), mqttString("x")])));
    const connack = await c.next("connack");
    assert.equal(connack.returnCode, 1);
    await c.waitClosed();
  });

  test("[MQTT-3.1.2-3] the reserved CONNECT flag must be 0: set, the connection is closed", async () => {
    const c = await RawClient.open(port);
    c.write(rawPacket(0x10, Buffer.concat([mqttString("MQTT"), Buffer.from([4, 0x03, 0, 0]), mqttString("x")])));
    await c.waitClosed();
    assert.equal(c.packets.filter((p) => p.cmd === "connack" && p.returnCode === 0).length, 0);
  });

  test("[MQTT-3.1.3-6] an empty client id with CleanSession=1 is accepted (the server assigns one)", async () => {
    const { client, connack } = await RawClient.connect(port, { clientId: "", clean: true });
    assert.equal(connack.returnCode, 0);
    assert.ok(await client.alive());
    client.destroy();
  });

  test("[MQTT-3.1.3-8] an empty client id with CleanSession=0 gets CONNACK 0x02 and is closed (aedes deviation)", async () => {
    const client = await RawClient.open(port);
    // mqtt-packet refuses to build this CONNECT: "MQTT", level 4, flags 0 (CleanSession=0), keepalive 0, client id ""
    client.write(rawPacket(0x10, Buffer.concat([mqttString("MQTT"), Buffer.from([4, 0x00, 0, 0]), mqttString("")])));
    const connack = await client.next("connack");
    assert.equal(connack.returnCode, 2);
    assert.equal(connack.sessionPresent, false);
    await client.waitClosed();
  });

  test("[MQTT-3.1.4-2] a client connecting with an id already in use takes over: the old connection is closed", async () => {
    const shared = id("dup");
    const first = await RawClient.connect(port, { clientId: shared });
    const second = await RawClient.connect(port, { clientId: shared });
    assert.equal(second.connack.returnCode, 0);
    await first.client.waitClosed();
    assert.ok(await second.client.alive());
    second.client.destroy();
  });

  test("[MQTT-1.5.3-1] ill-formed UTF-8 in the client id closes the connection (aedes deviation)", async () => {
    const c = await RawClient.open(port);
    c.write(rawPacket(0x10, Buffer.concat([mqttString("MQTT"), Buffer.from([4, 0x02, 0, 0]), mqttString(Buffer.from([0x61, 0xc3, 0x28]))])));
    await c.waitClosed();
    assert.equal(c.packets.filter((p) => p.cmd === "connack" && p.returnCode === 0).length, 0);
  });

  test("[MQTT-3.3.2-2] a will topic with a wildcard makes the CONNECT a protocol violation (aedes deviation)", async () => {
    const c = await RawClient.open(port);
    c.write({ cmd: "connect", protocolId: "MQTT", protocolVersion: 4, clean: true, clientId: id("will"), keepalive: 0, will: { topic: "a/#", payload: Buffer.from("x"), qos: 0, retain: false } });
    await c.waitClosed();
    assert.equal(c.packets.filter((p) => p.cmd === "connack" && p.returnCode === 0).length, 0);
  });
});

describe("Session Present", { timeout: 30_000 }, () => {
  test("[MQTT-3.2.2-1] CleanSession=1 always gets Session Present 0", async () => {
    const cid = id("sp-clean");
    const a = await RawClient.connect(port, { clientId: cid, clean: false });
    a.client.write({ cmd: "disconnect" });
    await a.client.waitClosed();
    const b = await RawClient.connect(port, { clientId: cid, clean: true });
    assert.equal(b.connack.sessionPresent, false);
    b.client.destroy();
  });

  test("[MQTT-3.2.2-3] a new CleanSession=0 client gets Session Present 0", async () => {
    const { client, connack } = await RawClient.connect(port, { clientId: id("sp-new"), clean: false });
    assert.equal(connack.returnCode, 0);
    assert.equal(connack.sessionPresent, false);
    client.destroy();
  });

  test("[MQTT-3.2.2-2] a returning CleanSession=0 client gets Session Present 1, also when its session has no subscriptions (aedes deviation)", async () => {
    const bare = id("sp-bare");
    const first = await RawClient.connect(port, { clientId: bare, clean: false });
    first.client.write({ cmd: "disconnect" });
    await first.client.waitClosed();
    const again = await RawClient.connect(port, { clientId: bare, clean: false });
    assert.equal(again.connack.sessionPresent, true);
    again.client.destroy();

    const subscribed = id("sp-subs");
    const s1 = await RawClient.connect(port, { clientId: subscribed, clean: false });
    s1.client.write({ cmd: "subscribe", messageId: 1, subscriptions: [{ topic: "sp/x", qos: 1 }] });
    await s1.client.next("suback");
    s1.client.write({ cmd: "disconnect" });
    await s1.client.waitClosed();
    const s2 = await RawClient.connect(port, { clientId: subscribed, clean: false });
    assert.equal(s2.connack.sessionPresent, true);
    s2.client.destroy();
  });

  test("a clean connection ends the session: the next CleanSession=0 connection starts a new one (Session Present 0)", async () => {
    const cid = id("sp-end");
    const a = await RawClient.connect(port, { clientId: cid, clean: false });
    a.client.write({ cmd: "disconnect" });
    await a.client.waitClosed();
    const b = await RawClient.connect(port, { clientId: cid, clean: true });
    b.client.write({ cmd: "disconnect" });
    await b.client.waitClosed();
    const c = await RawClient.connect(port, { clientId: cid, clean: false });
    assert.equal(c.connack.sessionPresent, false);
    c.client.destroy();
  });
});

describe("PUBLISH and retained messages", { timeout: 30_000 }, () => {
  test("[MQTT-3.3.1-6/9] a new subscription gets the retained message with RETAIN=1, live messages arrive with RETAIN=0", async () => {
    const topic = id("ret/live");
    const pub = await connect(broker.url);
    await pub.publishAsync(topic, "kept", { qos: 1, retain: true });
    const sub = await connect(broker.url);
    const got = collect(sub);
    await subscribe(sub, topic, 1);
    await got.waitFor(1);
    await pub.publishAsync(topic, "live", { qos: 1, retain: true });
    await got.waitFor(2);
    assert.deepEqual(
      got.messages.map((m) => [m.payload.toString(), m.retain]),
      [
        ["kept", true],
        ["live", false],
      ],
    );
    await end(pub, sub);
  });

  test("[MQTT-3.3.1-10/11] a retained message with an empty payload is delivered as usual and deletes the retained message", async () => {
    const topic = id("ret/delete");
    const pub = await connect(broker.url);
    await pub.publishAsync(topic, "kept", { qos: 1, retain: true });
    const live = await connect(broker.url);
    const liveGot = collect(live);
    await subscribe(live, topic, 1);
    await liveGot.waitFor(1);
    await pub.publishAsync(topic, "", { qos: 1, retain: true });
    await liveGot.waitFor(2);
    assert.equal(liveGot.messages[1]!.payload.length, 0);
    const late = await connect(broker.url);
    const lateGot = collect(late);
    await subscribe(late, topic, 1);
    await settle(late);
    assert.deepEqual(lateGot.messages, [], "nothing retained any more");
    await end(pub, live, late);
  });

  test("[MQTT-3.3.1-12] RETAIN=0 neither stores nor replaces the retained message", async () => {
    const topic = id("ret/keep");
    const pub = await connect(broker.url);
    await pub.publishAsync(topic, "kept", { qos: 1, retain: true });
    await pub.publishAsync(topic, "not kept", { qos: 1, retain: false });
    const sub = await connect(broker.url);
    const got = collect(sub);
    await subscribe(sub, topic, 1);
    await got.waitFor(1);
    await settle(sub);
    assert.deepEqual(
      got.messages.map((m) => m.payload.toString()),
      ["kept"],
    );
    await end(pub, sub);
  });

  test("[MQTT-4.3.3] QoS 2: a PUBLISH resent with DUP before PUBREL is delivered exactly once", async () => {
    const topic = id("qos2/once");
    const sub = await connect(broker.url);
    const got = collect(sub);
    await subscribe(sub, topic, 2);
    const { client: pub } = await RawClient.connect(port, { clientId: id("q2pub") });
    const publish = { cmd: "publish", topic, payload: Buffer.from("one"), qos: 2, messageId: 7, retain: false, dup: false };
    pub.write(publish);
    assert.equal((await pub.next("pubrec")).messageId, 7);
    pub.write({ ...publish, dup: true });
    assert.equal((await pub.next("pubrec")).messageId, 7);
    pub.write({ cmd: "pubrel", messageId: 7 });
    assert.equal((await pub.next("pubcomp")).messageId, 7);
    // The identifier is free again: a new message with it is a new message.
    pub.write({ ...publish, payload: Buffer.from("two") });
    await pub.next("pubrec");
    pub.write({ cmd: "pubrel", messageId: 7 });
    await pub.next("pubcomp");
    await got.waitFor(2);
    await settle(sub);
    assert.deepEqual(
      got.messages.map((m) => [m.payload.toString(), m.qos]),
      [
        ["one", 2],
        ["two", 2],
      ],
    );
    pub.destroy();
    await end(sub);
  });

  test("[MQTT-3.8.4-6] delivery QoS is the minimum of message and subscription QoS, also through wildcard filters (aedes deviation)", async () => {
    const base = id("down");
    const sub = await connect(broker.url);
    const got = collect(sub);
    await subscribe(sub, `${base}/+`, 1);
    const pub = await connect(broker.url);
    await pub.publishAsync(`${base}/live`, "q2", { qos: 2 });
    await got.waitFor(1);
    assert.equal(got.messages[0]!.qos, 1, "QoS 2 message through a QoS 1 wildcard subscription");

    await pub.publishAsync(`${base}2/kept`, "q1", { qos: 1, retain: true });
    const zero = await connect(broker.url);
    const zeroGot = collect(zero);
    await subscribe(zero, `${base}2/#`, 0);
    await zeroGot.waitFor(1);
    assert.equal(zeroGot.messages[0]!.qos, 0, "retained QoS 1 message through a QoS 0 wildcard subscription");
    await end(sub, pub, zero);
  });

  test("[MQTT-3.8.4-6] also for a message queued while the session was away: replayed at the granted QoS, and gone once acknowledged (aedes deviation)", async () => {
    const cid = id("down-offline");
    const base = id("down-q");
    const away = await RawClient.connect(port, { clientId: cid, clean: false });
    away.client.write({ cmd: "subscribe", messageId: 1, subscriptions: [{ topic: `${base}/+`, qos: 1 }] });
    await away.client.next("suback");
    away.client.destroy();
    await brokerForgot(broker, cid);
    const pub = await connect(broker.url);
    await pub.publishAsync(`${base}/x`, "q2", { qos: 2 });
    const back = await RawClient.connect(port, { clientId: cid, clean: false });
    const replayed = await back.client.next("publish");
    assert.deepEqual([replayed.payload!.toString(), replayed.qos], ["q2", 1]);
    back.client.write({ cmd: "puback", messageId: replayed.messageId });
    back.client.write({ cmd: "subscribe", messageId: 2, subscriptions: [{ topic: `${base}/+`, qos: 1 }] });
    await back.client.next("suback"); // the PUBACK before it has been handled
    back.client.destroy();
    await brokerForgot(broker, cid);
    const again = await RawClient.connect(port, { clientId: cid, clean: false });
    await pub.publishAsync(`${base}/y`, "after", { qos: 1 });
    const next = await again.client.next("publish");
    assert.equal(next.payload!.toString(), "after", "the acknowledged message is not replayed again");
    again.client.destroy();
    await end(pub);
  });

  test("[MQTT-3.3.1-1] a message redelivered to a returning session has DUP=1; one queued while it was away has DUP=0 (aedes deviation)", async () => {
    const cid = id("dup");
    const topic = id("dup/t");
    const first = await RawClient.connect(port, { clientId: cid, clean: false });
    first.client.write({ cmd: "subscribe", messageId: 1, subscriptions: [{ topic, qos: 1 }] });
    await first.client.next("suback");
    const pub = await connect(broker.url);
    await pub.publishAsync(topic, "sent-unacked", { qos: 1 });
    const original = await first.client.next("publish");
    assert.equal(original.dup, false);
    first.client.destroy(); // gone without PUBACK
    await brokerForgot(broker, cid);
    await pub.publishAsync(topic, "queued", { qos: 1 });
    const back = await RawClient.connect(port, { clientId: cid, clean: false });
    const a = await back.client.next("publish");
    const b = await back.client.next("publish");
    assert.deepEqual(
      [a, b].map((p) => [p.payload!.toString(), p.dup]),
      [
        ["sent-unacked", true],
        ["queued", false],
      ],
    );
    assert.equal(a.messageId, original.messageId, "same packet identifier on redelivery");
    back.client.destroy();
    await end(pub);
  });

  test("[MQTT-3.3.5-1] overlapping filters: one copy at the highest granted QoS, live and from the offline queue (aedes deviation)", async () => {
    const base = id("overlap");
    const filters = [`${base}/#`, `${base}/+`];
    const live = await connect(broker.url);
    const liveGot = collect(live);
    await subscribe(live, filters[0]!, 0);
    await subscribe(live, filters[1]!, 1);
    const cid = id("overlap-offline");
    const away = await connect(broker.url, { clientId: cid, clean: false });
    await subscribe(away, filters[0]!, 0);
    await subscribe(away, filters[1]!, 1);
    await end(away);
    await brokerForgot(broker, cid);
    const pub = await connect(broker.url);
    await pub.publishAsync(`${base}/x`, "once", { qos: 1 });
    await liveGot.waitFor(1);
    const { client: back, got: backGot } = await connectCollecting(broker.url, { clientId: cid, clean: false });
    await backGot.waitFor(1);
    await settle(live);
    await settle(back);
    for (const got of [liveGot, backGot]) {
      assert.deepEqual(
        got.messages.map((m) => [m.payload.toString(), m.qos]),
        [["once", 1]],
      );
    }
    await end(live, pub, back);
  });

  test("[MQTT-2.3.1-1] PUBLISH QoS 1, SUBSCRIBE and UNSUBSCRIBE with packet identifier 0 close the connection (aedes deviation)", async () => {
    const cases = [
      rawPacket(0x32, Buffer.concat([mqttString("zero/id"), Buffer.from([0, 0]), Buffer.from("p")])),
      rawPacket(0x82, Buffer.concat([Buffer.from([0, 0]), mqttString("zero/#"), Buffer.from([1])])),
      rawPacket(0xa2, Buffer.concat([Buffer.from([0, 0]), mqttString("zero/#")])),
    ];
    for (const bytes of cases) {
      const { client } = await RawClient.connect(port);
      client.write(bytes);
      await client.waitClosed();
      assert.deepEqual(
        client.packets.map((p) => p.cmd),
        ["connack"],
        "no PUBACK / SUBACK / UNSUBACK for identifier 0",
      );
    }
  });

  test("[MQTT-1.5.3-1/2] ill-formed UTF-8 or U+0000 in a topic name closes the connection (aedes deviation)", async () => {
    for (const topic of [Buffer.from([0x61, 0x2f, 0xff]), Buffer.from([0x61, 0xed, 0xa0, 0x80]), Buffer.from([0x61, 0x00, 0x62])]) {
      const { client } = await RawClient.connect(port);
      client.write(rawPacket(0x30, publishBody(topic)));
      await client.waitClosed();
    }
  });

  test("[MQTT-3.3.2-2] a wildcard or an empty topic name in PUBLISH closes the connection", async () => {
    for (const topic of ["a/+", "a/#", "#", ""]) {
      const { client } = await RawClient.connect(port);
      client.write(rawPacket(0x30, publishBody(topic)));
      await client.waitClosed();
    }
  });

  test("clients cannot publish to $SYS/ topics: the connection is closed (aedes' rule, kept under the plugin adapter)", async () => {
    const { client } = await RawClient.connect(port);
    client.write({ cmd: "publish", topic: "$SYS/broker/uptime", payload: Buffer.from("forged"), qos: 0, retain: true });
    await client.waitClosed();
  });
});

describe("will", { timeout: 30_000 }, () => {
  test("[MQTT-3.1.2-8/10] the will is published when the connection drops, not after DISCONNECT [MQTT-3.14.4-3]", async () => {
    const topic = id("will");
    const watcher = await connect(broker.url);
    const got = collect(watcher);
    await subscribe(watcher, `${topic}/#`, 1);
    const polite = await RawClient.connect(port, { clientId: id("polite"), will: { topic: `${topic}/polite`, payload: Buffer.from("gone") } });
    polite.client.write({ cmd: "disconnect" });
    await polite.client.waitClosed();
    const rude = await RawClient.connect(port, { clientId: id("rude"), will: { topic: `${topic}/rude`, payload: Buffer.from("gone") } });
    rude.client.destroy();
    await got.waitFor(1);
    await settle(watcher);
    assert.deepEqual(
      got.messages.map((m) => m.topic),
      [`${topic}/rude`],
    );
    await end(watcher);
  });

  test("[MQTT-3.1.2-24] a client silent for 1.5 keep-alive periods is disconnected and its will published", async () => {
    const topic = id("keepalive");
    const watcher = await connect(broker.url);
    const got = collect(watcher);
    await subscribe(watcher, topic, 0);
    const silent = await RawClient.connect(port, { clientId: id("silent"), keepalive: 1, will: { topic, payload: Buffer.from("timed out") } });
    await silent.client.waitClosed();
    await got.waitFor(1);
    assert.equal(got.messages[0]!.payload.toString(), "timed out");
    await end(watcher);
  });
});

describe("SUBSCRIBE, UNSUBSCRIBE and topic filters", { timeout: 30_000 }, () => {
  test("[MQTT-4.7.1] malformed filters in SUBSCRIBE close the connection (aedes deviation for 'a+' and 'a#')", async () => {
    for (const filter of ["a/#/b", "a/b#", "+a/b", "", "a+", "a#"]) {
      const { client } = await RawClient.connect(port);
      client.write({ cmd: "subscribe", messageId: 1, subscriptions: [{ topic: filter, qos: 0 }] });
      await client.waitClosed();
    }
  });

  test("[MQTT-1.5.3-1] ill-formed UTF-8 in a filter closes the connection (aedes deviation)", async () => {
    const { client } = await RawClient.connect(port);
    client.write(rawPacket(0x82, Buffer.concat([Buffer.from([0, 1]), mqttString(Buffer.from([0x61, 0xc0, 0xaf])), Buffer.from([0])])));
    await client.waitClosed();
  });

  test("[MQTT-3.8.4-5] SUBACK has one return code per filter, in order; [MQTT-3.10.4-5] UNSUBACK comes even when nothing matched", async () => {
    const { client } = await RawClient.connect(port);
    client.write({
      cmd: "subscribe",
      messageId: 3,
      subscriptions: [
        { topic: "s/a", qos: 2 },
        { topic: "s/b", qos: 0 },
        { topic: "s/+", qos: 1 },
      ],
    });
    const suback = await client.next("suback");
    assert.equal(suback.messageId, 3);
    assert.deepEqual(suback.granted, [2, 0, 1]);
    client.write({ cmd: "unsubscribe", messageId: 4, unsubscriptions: ["never/subscribed"] });
    assert.equal((await client.next("unsuback")).messageId, 4);
    client.destroy();
  });

  test("[MQTT-2.2.2-2] reserved fixed-header flags that are wrong close the connection", async () => {
    const cases = [
      rawPacket(0x80, Buffer.concat([Buffer.from([0, 1]), mqttString("x"), Buffer.from([0])])), // SUBSCRIBE must have flags 0010
      rawPacket(0xa0, Buffer.concat([Buffer.from([0, 1]), mqttString("x")])), // UNSUBSCRIBE must have flags 0010
      rawPacket(0x60, Buffer.from([0, 1])), // PUBREL must have flags 0010
      rawPacket(0x36, publishBody("q3")), // PUBLISH with QoS 3
      rawPacket(0xc1, Buffer.alloc(0)), // PINGREQ must have flags 0000
    ];
    for (const bytes of cases) {
      const { client } = await RawClient.connect(port);
      client.write(bytes);
      await client.waitClosed();
    }
  });

  test("[MQTT-3.8.3-4] reserved bits of a requested QoS byte set close the connection", async () => {
    const { client } = await RawClient.connect(port);
    client.write(rawPacket(0x82, Buffer.concat([Buffer.from([0, 1]), mqttString("x"), Buffer.from([0x04])])));
    await client.waitClosed();
  });

  test("[MQTT-4.7.2-1] '#' and '+/...' do not match '$' topics: live, retained, or queued for an offline session (aedes deviation for the last)", async () => {
    const wild = await connect(broker.url);
    const wildGot = collect(wild);
    await subscribe(wild, ["#", "+/#", "+/broker/uptime"], 1);
    const dollar = await connect(broker.url);
    const dollarGot = collect(dollar);
    await subscribe(dollar, ["$SYS/broker/uptime", "$app/#"], 1);
    // Offline persistent session with wildcard filters.
    const offlineId = id("offline");
    const offline = await connect(broker.url, { clientId: offlineId, clean: false });
    await subscribe(offline, ["#", "+/q"], 1);
    await end(offline);

    const pub = await connect(broker.url);
    await pub.publishAsync("$app/q", "dollar", { qos: 1, retain: true });
    await dollarGot.waitFor(2); // the uptime (retained, then republished each second) and $app/q
    await settle(wild);
    const late = await connect(broker.url);
    const lateGot = collect(late);
    await subscribe(late, ["#", "+/q"], 1);
    await settle(late);
    const { client: back, got: backGot } = await connectCollecting(broker.url, { clientId: offlineId, clean: false });
    await settle(back);

    const dollarTopics = (got: { messages: { topic: string }[] }) => got.messages.map((m) => m.topic).filter((t) => t.startsWith("$"));
    assert.deepEqual(dollarTopics(wildGot), [], "live");
    assert.deepEqual(dollarTopics(lateGot), [], "retained");
    assert.deepEqual(dollarTopics(backGot), [], "queued for the offline session");
    assert.ok(dollarGot.messages.some((m) => m.topic === "$app/q"));
    await pub.publishAsync("$app/q", "", { qos: 1, retain: true });
    await end(wild, dollar, pub, late, back);
  });

  test("aedes' internal $SYS/<broker id>/... messages (client ids, subscriptions) do not reach clients", async () => {
    const spy = await connect(broker.url);
    const got = collect(spy);
    await subscribe(spy, "$SYS/#", 0);
    await got.waitFor(1); // the retained $SYS/broker/... figures
    const other = await connect(broker.url, { clientId: id("noticed") });
    await subscribe(other, "secret/topic", 0);
    await end(other);
    // aedes publishes its notices synchronously with the events; a round trip through the broker follows them.
    await settle(spy);
    const internal = got.messages.filter((m) => !m.topic.startsWith("$SYS/broker/"));
    assert.deepEqual(
      internal.map((m) => m.topic),
      [],
    );
    await end(spy);
  });
});
