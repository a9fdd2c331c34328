// MQTT 3.1.1 normative statements a server must honour, checked on the wire: PUBLISH,
// retained messages and QoS. Statement ids in test names are the spec's
// ([MQTT-x.y.z-n]). Several of them are aedes deviations that wasmq corrects in
// broker/protocol/conformance.ts; those tests say "(aedes deviation)". The other parts:
// conformance-connect.test.ts (CONNECT, Session Present, wills),
// conformance-subscribe.test.ts (SUBSCRIBE, UNSUBSCRIBE, topic filters).
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { brokerForgot, collect, connect, connectCollecting, end, settle, subscribe } from "./helpers.js";
import { mqttString, rawPacket, RawClient } from "./ops-raw-mqtt.js";
import { broker, id, port, publishBody, useConformanceBroker } from "./conformance-support.js";

useConformanceBroker();

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
