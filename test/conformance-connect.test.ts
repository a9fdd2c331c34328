// MQTT 3.1.1 normative statements a server must honour, checked on the wire: CONNECT,
// Session Present and wills. Statement ids in test names are the spec's
// ([MQTT-x.y.z-n]). Several of them are aedes deviations that wasmq corrects in
// broker/protocol/conformance.ts; those tests say "(aedes deviation)". The other parts:
// conformance-publish.test.ts (PUBLISH, retained messages, QoS),
// conformance-subscribe.test.ts (SUBSCRIBE, UNSUBSCRIBE, topic filters).
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { collect, connect, end, settle, subscribe } from "./helpers.js";
import { mqttString, rawPacket, RawClient } from "./ops-raw-mqtt.js";
import { broker, id, port, useConformanceBroker } from "./conformance-support.js";

useConformanceBroker();

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

/** Connect raw, do `meanwhile` (if given), then DISCONNECT and wait until the broker has closed the connection. */
async function connectAndLeave(clientId: string, clean: boolean, meanwhile?: (client: RawClient) => Promise<void>): Promise<void> {
  const { client } = await RawClient.connect(port, { clientId, clean });
  await meanwhile?.(client);
  client.write({ cmd: "disconnect" });
  await client.waitClosed();
}

describe("Session Present", { timeout: 30_000 }, () => {
  test("[MQTT-3.2.2-1] CleanSession=1 always gets Session Present 0", async () => {
    const cid = id("sp-clean");
    await connectAndLeave(cid, false);
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
    await connectAndLeave(bare, false);
    const again = await RawClient.connect(port, { clientId: bare, clean: false });
    assert.equal(again.connack.sessionPresent, true);
    again.client.destroy();

    const subscribed = id("sp-subs");
    await connectAndLeave(subscribed, false, async (client) => {
      client.write({ cmd: "subscribe", messageId: 1, subscriptions: [{ topic: "sp/x", qos: 1 }] });
      await client.next("suback");
    });
    const s2 = await RawClient.connect(port, { clientId: subscribed, clean: false });
    assert.equal(s2.connack.sessionPresent, true);
    s2.client.destroy();
  });

  test("a clean connection ends the session: the next CleanSession=0 connection starts a new one (Session Present 0)", async () => {
    const cid = id("sp-end");
    await connectAndLeave(cid, false);
    await connectAndLeave(cid, true);
    const c = await RawClient.connect(port, { clientId: cid, clean: false });
    assert.equal(c.connack.sessionPresent, false);
    c.client.destroy();
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
