// Each configured limit, enforced: the offending client (or packet, or
// subscription) is turned away, everyone else keeps being served, and the
// rejection is counted.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { collect, connect, end, startTestBroker, subscribe, type TestBroker } from "./helpers.js";
import { connectPacket, mqttString, rawPacket, RawClient } from "./ops-raw-mqtt.js";

const LIMITS = {
  maxPacketSize: 4096,
  maxInflight: 2,
  connectTimeoutMs: 300,
  maxTopicLength: 32,
  maxTopicLevels: 4,
  maxClientIdLength: 16,
};

describe("limits", { timeout: 60_000 }, () => {
  let broker: TestBroker;
  let port: number;
  before(async () => {
    broker = await startTestBroker({ persistence: "memory", limits: LIMITS });
    port = broker.port("tcp");
  });
  after(() => broker.stop());

  test("maxPacketSize: a packet over the limit closes the connection, one at the limit is delivered", async () => {
    const sub = await connect(broker.url);
    const got = collect(sub);
    await subscribe(sub, "big/#", 0);
    const topic = mqttString("big/ok");
    const fits = rawPacket(0x30, Buffer.concat([topic, Buffer.alloc(LIMITS.maxPacketSize - 3 - topic.length, 0x61)]));
    assert.equal(fits.length, LIMITS.maxPacketSize);
    const { client: ok } = await RawClient.connect(port);
    ok.write(fits);
    await got.waitFor(1);
    assert.ok(await ok.alive());

    const before = broker.stats.limitRejections.maxPacketSize;
    const { client: over } = await RawClient.connect(port);
    over.write(rawPacket(0x30, Buffer.concat([mqttString("big/over"), Buffer.alloc(LIMITS.maxPacketSize, 0x61)])));
    await over.waitClosed();
    assert.equal(broker.stats.limitRejections.maxPacketSize, before + 1);
    assert.equal(got.messages.length, 1, "the oversized message went nowhere");
    ok.destroy();
    await end(sub);
  });

  test("maxPacketSize: a header declaring 200 MB is refused at once, before any of the body arrives", async () => {
    const { client } = await RawClient.connect(port);
    // PUBLISH, remaining length 200 000 000 (varint 0x80 0x84 0xaf 0x5f), and nothing more.
    client.write(Buffer.from([0x30, 0x80, 0x84, 0xaf, 0x5f]));
    await client.waitClosed();
  });

  test("maxInflight: a third QoS 2 message awaiting PUBREL closes the connection; completing flows keeps it open", async () => {
    const { client: polite } = await RawClient.connect(port);
    for (let id = 1; id <= 5; id++) {
      polite.write({ cmd: "publish", topic: "inflight/ok", payload: Buffer.from("x"), qos: 2, messageId: id });
      await polite.next("pubrec");
      polite.write({ cmd: "pubrel", messageId: id });
      await polite.next("pubcomp");
    }
    assert.ok(await polite.alive());

    const before = broker.stats.limitRejections.maxInflight;
    const { client: greedy } = await RawClient.connect(port);
    for (let id = 1; id <= 2; id++) {
      greedy.write({ cmd: "publish", topic: "inflight/greedy", payload: Buffer.from("x"), qos: 2, messageId: id });
      await greedy.next("pubrec");
    }
    greedy.write({ cmd: "publish", topic: "inflight/greedy", payload: Buffer.from("x"), qos: 2, messageId: 3 });
    await greedy.waitClosed();
    assert.equal(broker.stats.limitRejections.maxInflight, before + 1);
    polite.destroy();
  });

  test("connectTimeoutMs: a socket that sends nothing, or half a CONNECT, is closed (half-open connections)", async () => {
    const before = broker.stats.limitRejections.connectTimeoutMs;
    const silent = await RawClient.open(port);
    const partial = await RawClient.open(port);
    partial.write(connectPacket({ clientId: "half" }).subarray(0, 6));
    await Promise.all([silent.waitClosed(), partial.waitClosed()]);
    assert.equal(broker.stats.limitRejections.connectTimeoutMs, before + 2);
    // The broker let go of them (its side of the close lands a moment after ours).
    for (let i = 0; i < 200 && broker.connections.open > 0; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(broker.connections.open, 0);
  });

  test("maxTopicLength: a PUBLISH topic over the limit (in UTF-8 bytes) disconnects; a SUBSCRIBE filter over it gets 0x80", async () => {
    const atLimit = "t/" + "x".repeat(LIMITS.maxTopicLength - 2);
    const { client } = await RawClient.connect(port);
    client.write({ cmd: "subscribe", messageId: 1, subscriptions: [{ topic: atLimit, qos: 0 }, { topic: atLimit + "y", qos: 1 }] });
    assert.deepEqual((await client.next("suback")).granted, [0, 128]);
    assert.ok(await client.alive(), "a refused filter does not cost the connection");
    client.write({ cmd: "publish", topic: atLimit, payload: Buffer.from("fits"), qos: 0 });
    assert.equal((await client.next("publish")).topic, atLimit);

    // 11 characters, 33 bytes: over a 32-byte limit.
    const { client: wide } = await RawClient.connect(port);
    wide.write({ cmd: "publish", topic: "€".repeat(11), payload: Buffer.from("x"), qos: 0 });
    await wide.waitClosed();
    assert.ok(await client.alive());
    client.destroy();
  });

  test("maxTopicLevels: more levels than allowed disconnects, in PUBLISH and in SUBSCRIBE", async () => {
    const { client: pub } = await RawClient.connect(port);
    pub.write({ cmd: "publish", topic: "a/b/c/d/e", payload: Buffer.from("x"), qos: 0 });
    await pub.waitClosed();
    const { client: sub } = await RawClient.connect(port);
    sub.write({ cmd: "subscribe", messageId: 1, subscriptions: [{ topic: "a/b/c/d/#", qos: 0 }] });
    await sub.waitClosed();
    const { client: ok } = await RawClient.connect(port);
    ok.write({ cmd: "subscribe", messageId: 1, subscriptions: [{ topic: "a/b/c/#", qos: 0 }] });
    assert.deepEqual((await ok.next("suback")).granted, [0]);
    ok.destroy();
  });

  test("maxClientIdLength: a longer client id gets CONNACK 0x02 (MQTT 3.1.1 and 3.1), one at the limit connects", async () => {
    const before = broker.stats.limitRejections.maxClientIdLength;
    const long = await RawClient.connect(port, { clientId: "x".repeat(LIMITS.maxClientIdLength + 1) });
    assert.equal(long.connack.returnCode, 2);
    await long.client.waitClosed();
    const old = await RawClient.open(port);
    old.write(
      rawPacket(0x10, Buffer.concat([mqttString("MQIsdp"), Buffer.from([3, 0x02, 0, 0]), mqttString("y".repeat(LIMITS.maxClientIdLength + 1))])),
    );
    assert.equal((await old.next("connack")).returnCode, 2);
    const fits = await RawClient.connect(port, { clientId: "z".repeat(LIMITS.maxClientIdLength) });
    assert.equal(fits.connack.returnCode, 0);
    fits.client.destroy();
    assert.ok(broker.stats.limitRejections.maxClientIdLength >= before + 1);
  });
});

describe("maxConnections", { timeout: 30_000 }, () => {
  let broker: TestBroker;
  before(async () => {
    broker = await startTestBroker({ persistence: "memory", ws: false, limits: { maxConnections: 3 } });
  });
  after(() => broker.stop());

  test("sockets past the limit are closed at accept; a freed slot is usable again", async () => {
    const port = broker.port("tcp");
    const held = await Promise.all([0, 1, 2].map(() => RawClient.connect(port)));
    assert.deepEqual(
      held.map((h) => h.connack.returnCode),
      [0, 0, 0],
    );
    const refused = await RawClient.open(port);
    refused.write(connectPacket());
    await refused.waitClosed();
    assert.deepEqual(refused.packets, [], "no CONNACK: refused before MQTT starts");
    assert.equal(broker.connections.refused, 1);

    held[0]!.client.destroy();
    await held[0]!.client.waitClosed();
    // The slot frees when the broker sees the close; retry until it has (bounded).
    let again: RawClient | null = null;
    for (let i = 0; i < 50 && !again; i++) {
      const c = await RawClient.open(port);
      c.write(connectPacket());
      try {
        await c.next("connack", 1000);
        again = c;
      } catch {
        await new Promise((r) => setTimeout(r, 20));
      }
    }
    assert.ok(again, "a new client connected once a slot was free");
    for (const h of held.slice(1)) h.client.destroy();
    again.destroy();
  });
});
