// A client's SUBSCRIBE and UNSUBSCRIBE take effect in its packet order
// (broker/protocol/packet-order.ts). aedes handled the packets of one socket
// read concurrently: an UNSUBSCRIBE did not stop a PUBLISH sent after it
// [MQTT-3.10.4-2], and a retained PUBLISH followed by a SUBSCRIBE to its topic
// was delivered twice. The packets here are written in one `socket.write`, so
// they reach the broker in one chunk; the mqtt.js case writes them back to
// back as an application would. The same cases run against Mosquitto (which
// handles a connection's packets one by one) as the reference.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { rmSync } from "node:fs";
import { hasMosquitto, Mosquitto } from "./bridge-support.js";
import { brokerForgot, collect, connect, end, settle, startTestBroker, tempDir, type TestBroker } from "./helpers.js";
import { connectPacket, mqttPacket, RawClient, type Packet } from "./ops-raw-mqtt.js";

let nextTopic = 0;
const unique = (name: string) => `order/${name}/${process.pid}-${nextTopic++}`;

const sub = (messageId: number, topic: string, qos: number) => ({ cmd: "subscribe", messageId, subscriptions: [{ topic, qos }] });
const unsub = (messageId: number, topic: string) => ({ cmd: "unsubscribe", messageId, unsubscriptions: [topic] });
function pub(topic: string, payload: string, qos: number, messageId: number, retain = false) {
  return { cmd: "publish", topic, payload: Buffer.from(payload), qos, retain, dup: false, ...(qos > 0 ? { messageId } : {}) };
}
/** Several packets in one buffer: one write, one chunk on the broker's side. */
const chunk = (...packets: object[]) => Buffer.concat(packets.map((p) => mqttPacket.generate(p)));

/**
 * Wait until the broker has handled everything the client sent before: the
 * client subscribes to a topic of its own and publishes to it (QoS 1); the
 * message coming back means the earlier packets' deliveries were written.
 * Returns the PUBLISH packets the client received before that message.
 */
async function deliveredBeforeMarker(client: RawClient): Promise<Packet[]> {
  const marker = unique("marker");
  client.write(chunk(sub(900, marker, 1)));
  while ((await client.next("suback")).messageId !== 900);
  client.write(chunk(pub(marker, "m", 1, 901)));
  for (;;) {
    const p = await client.next("publish");
    if (p.topic === marker) break;
  }
  const at = client.packets.findIndex((p) => p.cmd === "publish" && p.topic === marker);
  return client.packets.slice(0, at).filter((p) => p.cmd === "publish");
}

const texts = (packets: Packet[]) => packets.map((p) => `${p.payload!.toString()}${p.retain ? "(retained)" : ""}`);

for (const target of ["memory", "lmdb", "mosquitto"] as const) {
  const reference = target === "mosquitto";
  describe(`packet order: SUBSCRIBE/UNSUBSCRIBE are barriers (${reference ? "Mosquitto, the reference" : `wasmq, ${target}`})`, { skip: reference && !hasMosquitto ? "mosquitto not installed" : false }, () => {
    let broker: TestBroker | null = null;
    let mosquitto: Mosquitto | null = null;
    let mosquittoDir = "";
    let port: number;
    let url: string;
    before(async () => {
      if (reference) {
        mosquittoDir = tempDir("wasmq-order-mosquitto-");
        mosquitto = await Mosquitto.start(mosquittoDir);
        [port, url] = [mosquitto.port, mosquitto.url];
      } else {
        broker = await startTestBroker({ persistence: target });
        [port, url] = [broker.port("tcp"), broker.url];
      }
    });
    after(async () => {
      await broker?.stop();
      await mosquitto?.stop();
      if (mosquittoDir) rmSync(mosquittoDir, { recursive: true, force: true });
    });

    for (const qos of [0, 1]) {
      test(`QoS ${qos}: SUBSCRIBE, PUBLISH x, UNSUBSCRIBE, PUBLISH y in one chunk delivers exactly x [MQTT-3.10.4-2]`, async () => {
        const { client } = await RawClient.connect(port);
        const q = unique("unsub");
        client.write(chunk(sub(1, q, qos), pub(q, "x", qos, 2), unsub(3, q), pub(q, "y", qos, 4)));
        await client.next("unsuback");
        const got = await deliveredBeforeMarker(client);
        assert.deepEqual(texts(got), ["x"]);
        client.destroy();
      });

      test(`QoS ${qos}: a retained PUBLISH then a SUBSCRIBE to its topic in one chunk delivers one copy, retained`, async () => {
        const { client } = await RawClient.connect(port);
        const r = unique("retained");
        client.write(chunk(pub(r, "v", qos, 1, true), sub(2, r, qos)));
        await client.next("suback");
        const got = await deliveredBeforeMarker(client);
        assert.deepEqual(texts(got), ["v(retained)"]);
        client.destroy();
      });

      test(`QoS ${qos}: SUBSCRIBE then PUBLISH to the same topic in one chunk delivers it`, async () => {
        const { client } = await RawClient.connect(port);
        const s = unique("sub-pub");
        client.write(chunk(sub(1, s, qos), pub(s, "a", qos, 2), pub(s, "b", qos, 3)));
        await client.next("suback");
        const got = await deliveredBeforeMarker(client);
        assert.deepEqual(texts(got), ["a", "b"]);
        client.destroy();
      });

      // more PUBLISHes than wasmq reads of a chunk in one turn (publish-parser.ts: groups of 16, 16, 32, …),
      // and, with the marker, no more unacknowledged QoS 1 deliveries than Mosquitto's default window of 20
      const many = (topic: string, prefix: string, firstId: number) => Array.from({ length: 18 }, (_, i) => pub(topic, `${prefix}${i}`, qos, firstId + i));
      const names = (prefix: string) => Array.from({ length: 18 }, (_, i) => `${prefix}${i}`);

      test(`QoS ${qos}: 18 PUBLISHes, UNSUBSCRIBE, 18 PUBLISHes in one chunk (read over two turns) deliver exactly the first 18, in order`, async () => {
        const { client } = await RawClient.connect(port);
        const q = unique("unsub-many");
        client.write(chunk(sub(1, q, qos)));
        await client.next("suback");
        client.write(chunk(...many(q, "x", 2), unsub(50, q), ...many(q, "y", 60)));
        await client.next("unsuback");
        assert.deepEqual(texts(await deliveredBeforeMarker(client)), names("x"));
        client.destroy();
      });

      test(`QoS ${qos}: 18 PUBLISHes, SUBSCRIBE, 18 PUBLISHes in one chunk (read over two turns) deliver exactly the last 18, in order`, async () => {
        const { client } = await RawClient.connect(port);
        const s = unique("sub-many");
        client.write(chunk(...many(s, "a", 2), sub(50, s, qos), ...many(s, "b", 60)));
        await client.next("suback");
        assert.deepEqual(texts(await deliveredBeforeMarker(client)), names("b"));
        client.destroy();
      });

      test(`QoS ${qos}: SUBSCRIBE, DISCONNECT, PUBLISH in one chunk: the PUBLISH held behind the barrier is not handled [MQTT-3.14.4-1]`, async () => {
        const t = unique("after-disconnect");
        const { client: watcher } = await RawClient.connect(port);
        watcher.write(chunk(sub(1, t, qos)));
        await watcher.next("suback");
        const { client } = await RawClient.connect(port);
        client.write(Buffer.concat([chunk(sub(1, unique("disc-sub"), qos)), mqttPacket.generate({ cmd: "disconnect" }), chunk(pub(t, "after", qos, 2))]));
        await client.waitClosed();
        assert.deepEqual(texts(await deliveredBeforeMarker(watcher)), []);
        watcher.destroy();
      });

      test(`QoS ${qos}: UNSUBSCRIBE then SUBSCRIBE in one chunk leaves the subscription`, async () => {
        const { client } = await RawClient.connect(port);
        const t = unique("unsub-sub");
        client.write(chunk(sub(1, t, qos)));
        await client.next("suback");
        client.write(chunk(unsub(2, t), sub(3, t, qos)));
        await client.next("unsuback");
        await client.next("suback");
        const publisher = await connect(url);
        await publisher.publishAsync(t, "after", { qos: qos as 0 | 1 });
        await settle(publisher); // the broker has handled it (a QoS 0 publishAsync resolves once written)
        await end(publisher);
        assert.deepEqual(texts(await deliveredBeforeMarker(client)), ["after"]);
        client.destroy();
      });
    }

    test("packets sent before the CONNACK keep their order too (retained PUBLISH, then SUBSCRIBE)", async () => {
      const client = await RawClient.open(port);
      const r = unique("pre-connack");
      client.write(Buffer.concat([connectPacket(), chunk(pub(r, "early", 0, 0, true), sub(1, r, 0))]));
      await client.next("connack");
      await client.next("suback");
      assert.deepEqual(texts(await deliveredBeforeMarker(client)), ["early(retained)"]);
      client.destroy();
    });

    test("mqtt.js writing sub/pub/unsub/pub and retained pub/sub back to back gets x once and v once", async () => {
      const client = await connect(url);
      const got = collect(client);
      const [q, r] = [unique("js-q"), unique("js-r")];
      client.subscribe(q, { qos: 0 });
      client.publish(q, "x", { qos: 0 });
      client.unsubscribe(q);
      client.publish(q, "y", { qos: 0 });
      client.publish(r, "v", { qos: 0, retain: true });
      client.subscribe(r, { qos: 0 });
      await settle(client);
      assert.deepEqual(
        got.messages.map((m) => `${m.topic === q ? "q" : "r"}:${m.payload.toString()}${m.retain ? "(retained)" : ""}`),
        ["q:x", "r:v(retained)"],
      );
      await end(client);
    });

    // wasmq's own bookkeeping: not asked of the reference.
    if (!reference) {
      test("once its packets are handled, a connection holds no ordering state (an idle fleet pays one empty field)", async () => {
        const clientId = `order-idle-${process.pid}-${nextTopic++}`;
        const { client } = await RawClient.connect(port, { clientId });
        const q = unique("idle");
        client.write(chunk(sub(1, q, 1), pub(q, "x", 1, 2), unsub(3, q), pub(q, "y", 1, 4)));
        await client.next("unsuback");
        assert.deepEqual(texts(await deliveredBeforeMarker(client)), ["x"]);
        client.write({ cmd: "pingreq" });
        await client.next("pingresp");
        const aedesClient = (broker!.aedes as unknown as { clients: Record<string, object> }).clients[clientId]!;
        const stateKey = Object.getOwnPropertySymbols(aedesClient).find((s) => s.description === "wasmq.clientState")!;
        const state = (aedesClient as Record<symbol, { order: unknown }>)[stateKey]!;
        assert.equal(state.order, null);
        client.destroy();
      });

      test("a client that goes away while a SUBSCRIBE waits behind its PUBLISHes is let go; the broker keeps serving", async () => {
        const clientId = `order-gone-${process.pid}-${nextTopic++}`;
        const { client } = await RawClient.connect(port, { clientId });
        const [a, b] = [unique("gone-a"), unique("gone-b")];
        const publishes = Array.from({ length: 50 }, (_, i) => pub(a, `m${i}`, 1, i + 1));
        client.write(chunk(...publishes, sub(100, b, 1), pub(b, "late", 1, 101)));
        client.destroy();
        await brokerForgot(broker!, clientId);

        // The same client id again: the order still holds on the new connection.
        const { client: again } = await RawClient.connect(port, { clientId });
        const q = unique("gone-q");
        again.write(chunk(sub(1, q, 1), pub(q, "x", 1, 2), unsub(3, q), pub(q, "y", 1, 4)));
        await again.next("unsuback");
        assert.deepEqual(texts(await deliveredBeforeMarker(again)), ["x"]);
        again.destroy();
      });
    }
  });
}

describe("packet order: aedes' limit on packets sent before the CONNACK still holds", () => {
  test("more than queueLimit packets behind the CONNECT close the connection; up to the limit they are all handled, in order", async () => {
    const broker = await startTestBroker({ persistence: "memory", ws: false, limits: { queueLimit: 5 } });
    try {
      const port = broker.port("tcp");
      const over = await RawClient.open(port);
      const t = unique("limit");
      over.write(Buffer.concat([connectPacket(), chunk(...Array.from({ length: 6 }, (_, i) => pub(t, `p${i}`, 0, 0)))]));
      await over.waitClosed();

      const within = await RawClient.open(port);
      const r = unique("limit-ok");
      within.write(Buffer.concat([connectPacket(), chunk(pub(r, "a", 0, 0, true), sub(1, r, 0), pub(r, "b", 0, 0), unsub(2, r), pub(r, "c", 0, 0))]));
      await within.next("unsuback");
      assert.deepEqual(texts(await deliveredBeforeMarker(within)), ["a(retained)", "b"]);
      within.destroy();
    } finally {
      await broker.stop();
    }
  });
});
