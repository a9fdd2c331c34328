// MQTT 3.1.1 normative statements a server must honour, checked on the wire: SUBSCRIBE,
// UNSUBSCRIBE and topic filters. Statement ids in test names are the spec's
// ([MQTT-x.y.z-n]). Several of them are aedes deviations that wasmq corrects in
// broker/protocol/conformance.ts; those tests say "(aedes deviation)". The other parts:
// conformance-connect.test.ts (CONNECT, Session Present, wills),
// conformance-publish.test.ts (PUBLISH, retained messages, QoS).
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { collect, connect, connectCollecting, end, settle, subscribe } from "./helpers.js";
import { mqttString, rawPacket, RawClient } from "./ops-raw-mqtt.js";
import { broker, id, port, publishBody, useConformanceBroker } from "./conformance-support.js";

useConformanceBroker();

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
