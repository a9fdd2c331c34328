// The QoS 0 publish path with less garbage per message (bench/README.md "gc9"):
// - lean-publish.ts: a message that is not retained skips aedes' step
//   runner but keeps aedes' contract: published() and the 'publish' event get
//   the packet as handed in, with its client; the level limit refuses before
//   routing; everything else still goes through aedes;
// - packet-order.ts: orders of idle clients are reused by the next client;
// - router-cache.ts: the router keeps topic splits and matches, bounded, and
//   matching follows subscribe/unsubscribe;
// - outgoing-publish.ts: a QoS 0 message is written as routed, a QoS 1/2 one
//   to a QoS 0 subscription still as a QoS 0 copy.
import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import { test } from "node:test";
import { Aedes, type Client } from "aedes";
import { collect, connect, end, settle, startTestBroker, subscribe } from "./helpers.js";
import { mqttPacket, RawClient, type Packet } from "./ops-raw-mqtt.js";
import { KEPT_TOPICS } from "../broker/protocol/router-cache.js";
import { PacketOrder } from "../broker/protocol/packet-order.js";
import { stateOf } from "../broker/protocol/client-state.js";
import { countAedesSeries, publishVia, watchPublished } from "./lean-support.js";

test("QoS 0, not retained: aedes' step runner is not used, and aedes' contract holds — published() and 'publish' get the packet as handed in, with its client; the level limit refuses before routing", { timeout: 60_000 }, async () => {
  const series = countAedesSeries("lean/");
  const broker = await startTestBroker({ persistence: "memory", limits: { maxTopicLevels: 4 } }).finally(series.restore);
  const sub = await connect(broker.url);
  const pub = await connect(broker.url, { clientId: "lean-publisher" });
  try {
    await subscribe(sub, "lean/#", 0);
    const got = collect(sub);
    const seen = watchPublished(broker.aedes, "lean/");

    // handed in by the application
    const packet = { cmd: "publish", topic: "lean/app", payload: Buffer.from("a"), qos: 0, retain: false, dup: false };
    assert.equal(await publishVia(broker.aedes, packet), undefined);
    await got.waitFor(1);
    assert.equal(seen.published.length, 1);
    assert.equal(seen.published[0]!.packet, packet, "published() gets the object handed in");
    assert.equal(seen.published[0]!.clientId, null);
    assert.equal(seen.events[0]!.packet, packet, "so does the 'publish' event");
    assert.equal("brokerId" in packet, false, "the routed copy is aedes-packet's, the packet handed in is left as it was");

    // from a client
    pub.publish("lean/client", "b", { qos: 0 });
    await got.waitFor(2);
    await settle(pub);
    const fromClient = seen.published.find((p) => p.packet.topic === "lean/client");
    assert.equal(fromClient?.clientId, "lean-publisher");
    assert.equal(seen.events.find((e) => e.packet.topic === "lean/client")?.clientId, "lean-publisher");
    assert.deepEqual(got.messages.map((m) => `${m.topic} ${m.payload} q${m.qos} r${m.retain}`), ["lean/app a q0 rfalse", "lean/client b q0 rfalse"]);

    // five levels against a limit of four: refused, nothing routed, no 'publish'
    const deep = await publishVia(broker.aedes, { cmd: "publish", topic: "lean/1/2/3/4", payload: Buffer.from("c"), qos: 0, retain: false });
    assert.match(String(deep), /too many levels/);
    // a client sending one is closed (aedes' own handling of it)
    const { client: raw } = await RawClient.connect(broker.port("tcp"));
    raw.write(mqttPacket.generate({ cmd: "publish", topic: "lean/1/2/3/4", payload: Buffer.from("d"), qos: 0, retain: false, dup: false }));
    await raw.waitClosed();
    await settle(pub);
    assert.equal(got.messages.length, 2);
    assert.equal(seen.events.length, 2);
    assert.equal(seen.published.length, 2);
    assert.equal(series.calls(), 0, "no QoS 0 message went through aedes' own publish");
  } finally {
    await end(sub, pub);
    await broker.stop();
  }
});

test("a retained message goes through aedes' own publish and is stored for a later subscriber; a QoS 1 one does not (lean-qos1.test.ts)", { timeout: 60_000 }, async () => {
  const series = countAedesSeries("keep/");
  const broker = await startTestBroker({ persistence: "memory" }).finally(series.restore);
  const pub = await connect(broker.url);
  let late: Awaited<ReturnType<typeof connect>> | undefined;
  try {
    await new Promise<void>((resolve, reject) => pub.publish("keep/r", "retained", { qos: 0, retain: true }, (err) => (err ? reject(err) : resolve())));
    await new Promise<void>((resolve, reject) => pub.publish("keep/q1", "one", { qos: 1 }, (err) => (err ? reject(err) : resolve())));
    await settle(pub);
    late = await connect(broker.url);
    const got = collect(late);
    await subscribe(late, "keep/#", 1);
    await got.waitFor(1);
    assert.deepEqual(got.messages.map((m) => `${m.topic} ${m.payload} r${m.retain}`), ["keep/r retained rtrue"]);
    assert.equal(series.calls(), 1, "only the retained one went through aedes' own publish");
  } finally {
    await end(pub, late);
    await broker.stop();
  }
});

test("many clients, each SUBSCRIBE/PUBLISH x/UNSUBSCRIBE/PUBLISH y in one chunk, round after round: each gets exactly its x (packet orders reused between clients)", { timeout: 120_000 }, async () => {
  const broker = await startTestBroker({ persistence: "memory" });
  const clients: RawClient[] = [];
  try {
    for (let i = 0; i < 12; i++) clients.push((await RawClient.connect(broker.port("tcp"))).client);
    const chunk = (...packets: object[]) => Buffer.concat(packets.map((p) => mqttPacket.generate(p)));
    for (let round = 0; round < 5; round++) {
      await Promise.all(
        clients.map(async (client, i) => {
          const t = `reuse/${i}/${round}`;
          const from = client.packets.length;
          client.write(
            chunk(
              { cmd: "subscribe", messageId: 1, subscriptions: [{ topic: t, qos: 0 }] },
              { cmd: "publish", topic: t, payload: Buffer.from(`x${round}`), qos: 0, retain: false, dup: false },
              { cmd: "unsubscribe", messageId: 2, unsubscriptions: [t] },
              { cmd: "publish", topic: t, payload: Buffer.from(`y${round}`), qos: 0, retain: false, dup: false },
              // a marker on a topic of the client's own: it comes back once everything before it was handled
              { cmd: "subscribe", messageId: 3, subscriptions: [{ topic: `${t}/marker`, qos: 1 }] },
              { cmd: "publish", topic: `${t}/marker`, payload: Buffer.from("m"), qos: 1, messageId: 4, retain: false, dup: false },
            ),
          );
          for (;;) {
            const p = await client.next("publish");
            if (p.topic === `${t}/marker`) break;
          }
          // the marker's PUBACK: the client's packets are all done, its order goes back for the next client
          while ((await client.next("puback")).messageId !== 4);
          const got = client.packets.slice(from).filter((p: Packet) => p.cmd === "publish" && p.topic === t);
          assert.deepEqual(
            got.map((p) => p.payload!.toString()),
            [`x${round}`],
            `client ${i}, round ${round}`,
          );
        }),
      );
    }
  } finally {
    for (const c of clients) c.destroy();
    await broker.stop();
  }
});

test("an order left idle by a read inside its own last call back is kept once; the outer call back leaves it alone", () => {
  // aedes' read loop runs inside a packet's call back (_nextBatch) and may parse, handle and finish
  // another packet of the same client right there (a DISCONNECT, a QoS 0 message nobody subscribes to)
  const client = Object.assign(new EventEmitter(), { closed: false, conn: { destroyed: false }, connackSent: true, _parsingBatch: 0, broker: { queueLimit: 42 }, _nextBatch: () => {} });
  const st = stateOf(client as unknown as Client);
  const order = new PacketOrder(client as never);
  st.order = order;
  order.running = 1;
  let reads = 0;
  client._nextBatch = () => {
    if (reads++ > 0) return;
    order.running++; // the packet read now starts on the same order...
    order.done(); // ...and finishes at once: the order is idle and kept
  };
  assert.doesNotThrow(() => order.done());
  assert.equal(reads, 2);
  assert.equal(st.order, null);
  assert.equal(order.running, 0);
});

test("the router keeps topic splits and matches, bounded; matching follows subscribe and unsubscribe, on one topic and across many subscribers", { timeout: 60_000 }, async () => {
  const broker = await startTestBroker({ persistence: "memory" });
  const sub = await connect(broker.url);
  const other = await connect(broker.url);
  try {
    const matcher = (broker.aedes as unknown as { mq: { _matcher: { _split_cache?: Map<string, string[]>; match(topic: string): unknown[] } } }).mq._matcher;
    assert.ok(matcher._split_cache instanceof Map, "the split cache is on");
    const got = collect(sub);
    const gotOther = collect(other);
    await subscribe(sub, "splits/+/x", 0);
    const send = (topic: string, payload: string) => publishVia(broker.aedes, { cmd: "publish", topic, payload: Buffer.from(payload), qos: 0, retain: false });
    await send("splits/a/x", "1");
    await got.waitFor(1);
    assert.ok(matcher._split_cache.has("splits/a/x"));
    const one = matcher.match("splits/a/x");
    assert.equal(one.length, 1);
    // a second subscriber on another filter: the kept match is dropped, both get the next message
    await subscribe(other, "splits/#", 0);
    const two = matcher.match("splits/a/x");
    assert.equal(two.length, 2);
    // (with two filters matching, qlobber builds a new array on every match: only a kept one is the same)
    assert.equal(matcher.match("splits/a/x"), two, "the match is kept while subscriptions stay as they are");
    await send("splits/a/x", "2");
    await gotOther.waitFor(1);
    await new Promise<void>((resolve, reject) => sub.unsubscribe("splits/+/x", (err) => (err ? reject(err) : resolve())));
    await settle(sub);
    assert.equal(matcher.match("splits/a/x").length, 1, "the unsubscribe dropped the kept match");
    await send("splits/a/x", "3"); // only `other` now
    await subscribe(sub, "splits/a/#", 0);
    await send("splits/a/x", "4");
    await send("splits/a", "5"); // "#" includes the parent level [MQTT-4.7.1-2]
    await got.waitFor(4);
    await gotOther.waitFor(4);
    await settle(sub);
    await settle(other);
    assert.deepEqual(
      got.messages.map((m) => `${m.topic} ${m.payload}`),
      ["splits/a/x 1", "splits/a/x 2", "splits/a/x 4", "splits/a 5"],
    );
    assert.deepEqual(
      gotOther.messages.map((m) => `${m.topic} ${m.payload}`),
      ["splits/a/x 2", "splits/a/x 3", "splits/a/x 4", "splits/a 5"],
    );
    // more distinct topics than either keeps: the oldest go (two filters match each, so a match that is
    // worked out again is a new array)
    await subscribe(sub, "splits/many/+", 0);
    await send("splits/many/0", "n");
    const first = matcher.match("splits/many/0");
    assert.equal(first.length, 2);
    assert.equal(matcher.match("splits/many/0"), first);
    for (let i = 1; i < KEPT_TOPICS + 100; i++) await send(`splits/many/${i}`, "n");
    assert.ok(matcher._split_cache.size <= KEPT_TOPICS, `kept ${matcher._split_cache.size}`);
    assert.ok(!matcher._split_cache.has("splits/many/0"));
    assert.ok(matcher._split_cache.has(`splits/many/${KEPT_TOPICS + 99}`));
    assert.notEqual(matcher.match("splits/many/0"), first, "its match was dropped and worked out again");
    const last = `splits/many/${KEPT_TOPICS + 99}`;
    assert.equal(matcher.match(last), matcher.match(last));
    await gotOther.waitFor(4 + KEPT_TOPICS + 100);
    await got.waitFor(4 + KEPT_TOPICS + 100);
  } finally {
    await end(sub, other);
    await broker.stop();
  }
});

test("a QoS 1 message reaches a QoS 0 subscription as QoS 0 and a QoS 1 subscription as QoS 1; a QoS 0 message reaches both as sent", { timeout: 60_000 }, async () => {
  const broker = await startTestBroker({ persistence: "memory" });
  const low = await connect(broker.url);
  const high = await connect(broker.url, { protocolVersion: 5 });
  const pub = await connect(broker.url);
  try {
    await subscribe(low, "down/#", 0);
    await subscribe(high, "down/#", 1);
    const gotLow = collect(low);
    const gotHigh = collect(high);
    await new Promise<void>((resolve, reject) => pub.publish("down/one", "q1", { qos: 1 }, (err) => (err ? reject(err) : resolve())));
    pub.publish("down/zero", "q0", { qos: 0 });
    await gotLow.waitFor(2);
    await gotHigh.waitFor(2);
    const view = (ms: { topic: string; payload: Buffer; qos: number }[]) => ms.map((m) => `${m.topic} ${m.payload} q${m.qos}`).sort();
    assert.deepEqual(view(gotLow.messages), ["down/one q1 q0", "down/zero q0 q0"]);
    assert.deepEqual(view(gotHigh.messages), ["down/one q1 q1", "down/zero q0 q0"]);
  } finally {
    await end(low, high, pub);
    await broker.stop();
  }
});
