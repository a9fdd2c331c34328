// What an idle connection holds (bench/README.md "mem3"): wasmq's send stage
// (broker/protocol/outgoing-publish.ts) replaces aedes' per-client delivery
// closures and counter-dedupe object, aedes' inbound QoS 2 window is created
// on first use (lazy-client-fields.ts), and connections share one wire-tap
// record (wire-tap.ts); aedes' bound per-client listeners are shared
// functions (aedes-listeners.ts). The behaviour behind each stays the same.
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { connect as tcpConnect, type Socket } from "node:net";
import type { EventEmitter } from "node:events";
import { after, before, describe, test } from "node:test";
import { uniqueId } from "./broker-support.js";
import { brokerForgot, collect, connect, end, settle, startTestBroker, subscribe, type TestBroker } from "./helpers.js";

const mqttPacket = createRequire(import.meta.url)("mqtt-packet") as { generate(packet: object): Buffer };

interface AedesClientView {
  conn: EventEmitter;
  _parser: EventEmitter;
  deliver0: (...args: unknown[]) => void;
  deliverQoS: (...args: unknown[]) => void;
  duplicates: Record<string, number>;
  _inboundInflight: Set<number>;
}

const clientOf = (broker: TestBroker, id: string) => (broker.aedes as unknown as { clients: Record<string, AedesClientView> }).clients[id]!;
const boundNames = (e: EventEmitter, event: string) => e.rawListeners(event).map((l) => l.name).filter((n) => n.startsWith("bound "));

/** A raw MQTT 3.1.1 connection that has its CONNACK. */
async function rawClient(broker: TestBroker, clientId: string): Promise<Socket> {
  const socket = tcpConnect(broker.port("tcp"), "127.0.0.1");
  await new Promise<void>((resolve, reject) => socket.once("connect", resolve).once("error", reject));
  socket.write(mqttPacket.generate({ cmd: "connect", protocolId: "MQTT", protocolVersion: 4, clean: true, clientId, keepalive: 600 }));
  await new Promise<void>((resolve, reject) => socket.once("data", () => resolve()).once("error", reject));
  socket.on("error", () => {});
  return socket;
}

const tapOf = (conn: object) => {
  const key = Object.getOwnPropertySymbols(conn).find((s) => s.description === "wasmq.wireTap");
  return key ? (conn as Record<symbol, unknown>)[key] : undefined;
};

for (const persistence of ["memory", "lmdb"] as const) {
  describe(`idle connection footprint (${persistence})`, () => {
    let broker: TestBroker;
    before(async () => {
      broker = await startTestBroker({ persistence });
    });
    after(() => broker.stop());

    test("an idle subscribed client holds no delivery closures, counter-dedupe object, QoS 2 window or wire-tap record of its own", async () => {
      const [idA, idB] = [uniqueId("idle-a"), uniqueId("idle-b")];
      const a = await connect(broker.url, { clientId: idA });
      const b = await connect(broker.url, { clientId: idB, clean: false });
      await subscribe(a, "idle/a", 1);
      await subscribe(b, "idle/b", 0);
      const [ca, cb] = [clientOf(broker, idA), clientOf(broker, idB)];

      // Per client, because aedes' router calls them without a receiver; but bound shared functions, not closures over aedes' own.
      assert.notEqual(ca.deliver0, cb.deliver0);
      for (const f of [ca.deliver0, ca.deliverQoS, cb.deliver0, cb.deliverQoS]) assert.match(f.name, /^bound /);
      // The dedupe stage replaces aedes' counter dedupe: one shared, frozen, empty object.
      assert.equal(ca.duplicates, cb.duplicates);
      assert.ok(Object.isFrozen(ca.duplicates));
      assert.deepEqual(Object.keys(ca.duplicates), []);
      // No inbound QoS 2 yet: no Set of its own.
      assert.equal(Object.hasOwn(ca, "_inboundInflight"), false);
      assert.equal(Object.hasOwn(cb, "_inboundInflight"), false);
      // aedes' error forwarders and end handler: shared functions, not functions bound to each client.
      for (const c of [ca, cb]) {
        assert.deepEqual(boundNames(c.conn, "error"), []);
        assert.deepEqual(boundNames(c._parser, "error"), []);
        assert.deepEqual(boundNames(c.conn, "end"), []);
        assert.equal(c._parser.listenerCount("error"), 1, "the parser's errors still reach the client");
      }
      // Both connections share the broker's wire-tap record.
      assert.ok(tapOf(ca.conn) !== undefined);
      assert.equal(tapOf(ca.conn), tapOf(cb.conn));
      await end(a, b);
    });

    test("the send stage delivers QoS 0, 1 and 2 (downgraded to the subscription's QoS) to clean and persistent sessions; QoS 2 inbound gets its window on first use", async () => {
      const sub = await connect(broker.url, { clientId: uniqueId("send-sub"), clean: false });
      const got = collect(sub);
      await subscribe(sub, "send/q1/#", 1);
      await subscribe(sub, "send/q0/#", 0);
      const pubId = uniqueId("send-pub");
      const pub = await connect(broker.url, { clientId: pubId });
      await pub.publishAsync("send/q1/two", "a", { qos: 2 });
      const window = clientOf(broker, pubId)._inboundInflight;
      assert.ok(window instanceof Set && Object.hasOwn(clientOf(broker, pubId), "_inboundInflight"), "created by the first QoS 2 PUBLISH");
      assert.equal(window.size, 0, "released by PUBREL");
      await pub.publishAsync("send/q1/one", "b", { qos: 1 });
      await pub.publishAsync("send/q0/one", "c", { qos: 1 });
      await pub.publishAsync("send/q0/zero", "d", { qos: 0 });
      await got.waitFor(4);
      await settle(sub);
      const byTopic = Object.fromEntries(got.messages.map((m) => [m.topic, m]));
      assert.equal(got.messages.length, 4);
      assert.equal(byTopic["send/q1/two"]!.qos, 1, "QoS 2 message, QoS 1 subscription");
      assert.equal(byTopic["send/q1/one"]!.qos, 1);
      assert.equal(byTopic["send/q0/one"]!.qos, 0, "QoS 1 message, QoS 0 subscription");
      assert.equal(byTopic["send/q0/zero"]!.qos, 0);
      await end(sub, pub);
    });

    test("another broker's birth resets no shared state and breaks no delivery", async () => {
      const sub = await connect(broker.url, { clientId: uniqueId("birth-sub") });
      const got = collect(sub);
      await subscribe(sub, "birth/#", 1);
      // aedes clears each client's counter-dedupe entry for a reborn broker (a delete on the shared frozen object).
      await new Promise<void>((resolve, reject) =>
        broker.aedes.publish({ cmd: "publish", topic: "$SYS/other-broker/birth", payload: Buffer.from("other-broker"), qos: 0, retain: false, dup: false }, (err) => (err ? reject(err) : resolve())),
      );
      const pub = await connect(broker.url);
      await pub.publishAsync("birth/after", "x", { qos: 1 });
      await got.waitFor(1);
      assert.equal(got.messages[0]!.topic, "birth/after");
      await end(sub, pub);
    });

    test("a half-closed stream, a reset socket and a malformed packet each still end their client", async () => {
      const ids = [uniqueId("ended"), uniqueId("reset"), uniqueId("malformed")];
      const [ended, reset, malformed] = await Promise.all(ids.map((id) => rawClient(broker, id)));
      for (const id of ids) assert.ok(id in (broker.aedes as unknown as { clients: object }).clients);
      ended!.end(); // the broker's stream sees 'end'
      reset!.resetAndDestroy(); // the broker's stream sees ECONNRESET ('error')
      const closed = new Promise<void>((resolve) => malformed!.once("close", () => resolve()));
      malformed!.write(Buffer.from([0xf0, 0x00])); // AUTH is not an MQTT 3.1.1 packet: the parser's 'error'
      await closed;
      for (const id of ids) await brokerForgot(broker, id);
      ended!.destroy();
    });
  });
}
