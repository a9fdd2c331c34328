// MQTT 5 SUBSCRIBE options, SUBACK/UNSUBACK reason codes, shared
// subscriptions (also for 3.1.1 clients) and will delay / will properties
// (broker/protocol/mqtt5/inbound.ts, index.ts, broker/protocol/shared-subscriptions.ts).
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { connect as connect311, startTestBroker, type TestBroker } from "./helpers.js";
import { connect5, Raw5, sleep, uid } from "./mqtt5-raw.js";

let broker: TestBroker;
let port: number;

before(async () => {
  broker = await startTestBroker({ persistence: "lmdb" });
  port = broker.port("tcp");
});
after(() => broker.stop());

async function publisher() {
  return (await connect5(broker.url, { clientId: uid("pub") })).client;
}

describe("subscription options", { timeout: 30_000 }, () => {
  test("[MQTT-3.8.3-3] No Local: the client's own messages are not sent back to it", async () => {
    const t = uid("nl");
    const { c } = await Raw5.connect(port);
    c.send({ cmd: "subscribe", messageId: 1, subscriptions: [{ topic: t, qos: 0, nl: true }] });
    await c.next("suback");
    c.send({ cmd: "publish", topic: t, payload: "mine", qos: 1, messageId: 2 });
    await c.next("puback");
    const other = await publisher();
    await other.publishAsync(t, "theirs", { qos: 1 });
    const got = await c.next("publish");
    assert.equal(String(got.payload), "theirs");
    assert.equal(c.publishes().length, 1);
    c.destroy();
    await other.endAsync();
  });

  test("[MQTT-3.3.1-12] [MQTT-3.3.1-13] Retain As Published keeps RETAIN on live messages; without it RETAIN is 0", async () => {
    const t = uid("rap");
    const { c } = await Raw5.connect(port);
    c.send({ cmd: "subscribe", messageId: 1, subscriptions: [{ topic: `${t}/a`, qos: 0, rap: true }, { topic: `${t}/b`, qos: 0 }] });
    await c.next("suback");
    const pub = await publisher();
    await pub.publishAsync(`${t}/a`, "x", { qos: 1, retain: true });
    await pub.publishAsync(`${t}/b`, "x", { qos: 1, retain: true });
    assert.equal((await c.next("publish", (p) => p.topic === `${t}/a`)).retain, true);
    assert.equal((await c.next("publish", (p) => p.topic === `${t}/b`)).retain, false);
    c.destroy();
    await pub.endAsync();
  });

  test("[MQTT-3.3.1-9..11] Retain Handling 0 sends retained messages at every subscribe, 1 only for a new subscription, 2 never", async () => {
    const t = uid("rh");
    const pub = await publisher();
    for (const level of ["0", "1", "2"]) await pub.publishAsync(`${t}/${level}`, `kept-${level}`, { qos: 1, retain: true });
    const { c } = await Raw5.connect(port);
    const subscribeAll = async (messageId: number) => {
      c.send({ cmd: "subscribe", messageId, subscriptions: [0, 1, 2].map((rh) => ({ topic: `${t}/${rh}`, qos: 0, rh })) });
      await c.next("suback");
      // a marker through a fresh subscription shows what was sent before it
      const marker = `${t}/marker${messageId}`;
      c.send({ cmd: "subscribe", messageId: messageId + 100, subscriptions: [{ topic: marker, qos: 0 }] });
      await c.next("suback");
      await pub.publishAsync(marker, "m", { qos: 1 });
      await c.next("publish", (p) => p.topic === marker);
      return c.publishes().filter((p) => p.retain).map((p) => String(p.payload)).sort();
    };
    assert.deepEqual(await subscribeAll(1), ["kept-0", "kept-1"]);
    c.packets.length = 0;
    assert.deepEqual(await subscribeAll(2), ["kept-0"], "again: only Retain Handling 0");
    c.destroy();
    await pub.endAsync();
  });

  test("[MQTT-3.9.3-*] SUBACK carries a reason code per filter (granted QoS 0/1/2)", async () => {
    const t = uid("suback");
    const { c } = await Raw5.connect(port);
    c.send({ cmd: "subscribe", messageId: 9, subscriptions: [0, 1, 2].map((qos) => ({ topic: `${t}/${qos}`, qos })) });
    const suback = await c.next("suback");
    assert.deepEqual(suback.granted, [0, 1, 2]);
    c.destroy();
  });

  test("[MQTT-3.11.3-1] UNSUBACK: 0x00 for a subscription that existed, 0x11 for one that did not", async () => {
    const t = uid("unsub");
    const { c } = await Raw5.connect(port);
    c.send({ cmd: "subscribe", messageId: 1, subscriptions: [{ topic: t, qos: 1 }] });
    await c.next("suback");
    c.send({ cmd: "unsubscribe", messageId: 2, unsubscriptions: [t, `${t}/never`] });
    const unsuback = await c.next("unsuback");
    assert.deepEqual(unsuback.granted, [0x00, 0x11]);
    c.destroy();
  });
});

describe("shared subscriptions", { timeout: 30_000 }, () => {
  test("[MQTT-4.8.2-*] one delivery per group, round robin among members; every group gets each message", async () => {
    const t = uid("share");
    const members = await Promise.all([0, 1].map(async () => (await connect5(broker.url, { clientId: uid("m") })).client));
    const other = (await connect5(broker.url, { clientId: uid("o") })).client;
    const counts = [0, 0, 0];
    members.forEach((m, i) => m.on("message", () => counts[i]!++));
    other.on("message", () => counts[2]!++);
    for (const m of members) await m.subscribeAsync(`$share/g1/${t}/+`, { qos: 1 });
    await other.subscribeAsync(`$share/g2/${t}/+`, { qos: 1 });
    const pub = await publisher();
    for (let i = 0; i < 6; i++) await pub.publishAsync(`${t}/x`, String(i), { qos: 1 });
    while (counts[0]! + counts[1]! < 6 || counts[2]! < 6) await sleep(20);
    await sleep(100);
    assert.deepEqual(counts, [3, 3, 6]);
    await Promise.all([...members, other, pub].map((c) => c.endAsync()));
  });

  test("3.1.1 clients share a group too (as EMQX and HiveMQ allow)", async () => {
    const t = uid("share311");
    const a = await connect311(broker.url, { clientId: uid("a") });
    const b = await connect311(broker.url, { clientId: uid("b") });
    const got: string[] = [];
    a.on("message", () => got.push("a"));
    b.on("message", () => got.push("b"));
    await a.subscribeAsync(`$share/workers/${t}`, { qos: 1 });
    await b.subscribeAsync(`$share/workers/${t}`, { qos: 1 });
    const pub = await connect311(broker.url, { clientId: uid("p") });
    for (let i = 0; i < 4; i++) await pub.publishAsync(t, String(i), { qos: 1 });
    while (got.length < 4) await sleep(20);
    await sleep(100);
    assert.deepEqual(got.sort(), ["a", "a", "b", "b"]);
    await Promise.all([a, b, pub].map((c) => c.endAsync()));
  });

  test("a persistent member that is away receives the group's QoS 1 messages when it returns (no member connected)", async () => {
    const t = uid("shareaway");
    const id = uid("away");
    const first = await connect5(broker.url, { clientId: id, clean: false, properties: { sessionExpiryInterval: 60 } });
    await first.client.subscribeAsync(`$share/g/${t}`, { qos: 1 });
    await first.client.endAsync();
    const pub = await publisher();
    await pub.publishAsync(t, "while-away", { qos: 1 });
    const { c } = await Raw5.connect(port, { clientId: id, clean: false, properties: { sessionExpiryInterval: 60 } });
    assert.equal(String((await c.next("publish")).payload), "while-away");
    c.destroy();
    await pub.endAsync();
  });

  test("[MQTT-4.8.2-2] a malformed share name closes the connection; [MQTT-3.8.3-4] No Local on a shared subscription: DISCONNECT 0x82", async () => {
    const bad = await Raw5.connect(port);
    bad.c.send({ cmd: "subscribe", messageId: 1, subscriptions: [{ topic: "$share/g+/t", qos: 0 }] });
    await bad.c.waitClosed();
    const nl = await Raw5.connect(port);
    nl.c.send({ cmd: "subscribe", messageId: 1, subscriptions: [{ topic: "$share/g/t", qos: 0, nl: true }] });
    assert.equal((await nl.c.next("disconnect")).reasonCode, 0x82);
    await nl.c.waitClosed();
  });
});

describe("will delay and will properties", { timeout: 30_000 }, () => {
  const will = (topic: string, delay: number) => ({ topic, payload: Buffer.from("gone"), qos: 1, retain: false, properties: { willDelayInterval: delay, contentType: "text/plain", userProperties: { why: "lost" } } });

  test("[MQTT-3.1.3-9] the will is published after the Will Delay Interval, with its properties and without the delay property", async () => {
    const t = uid("will");
    const { c: watcher } = await Raw5.connect(port);
    watcher.send({ cmd: "subscribe", messageId: 1, subscriptions: [{ topic: t, qos: 1 }] });
    await watcher.next("suback");
    const { c } = await Raw5.connect(port, { clientId: uid("w"), properties: { sessionExpiryInterval: 30 }, will: will(t, 1) });
    const lostAt = Date.now();
    c.destroy();
    const got = await watcher.next("publish");
    assert.ok(Date.now() - lostAt >= 900, "not before the delay");
    assert.equal(got.properties?.contentType, "text/plain");
    assert.deepEqual({ ...(got.properties?.userProperties as object) }, { why: "lost" });
    assert.equal(got.properties?.willDelayInterval, undefined);
    watcher.destroy();
  });

  test("[MQTT-3.1.2-8] a reconnect within the delay cancels the will", async () => {
    const t = uid("willc");
    const id = uid("wc");
    const { c: watcher } = await Raw5.connect(port);
    watcher.send({ cmd: "subscribe", messageId: 1, subscriptions: [{ topic: t, qos: 1 }, { topic: `${t}/marker`, qos: 1 }] });
    await watcher.next("suback");
    const { c } = await Raw5.connect(port, { clientId: id, clean: false, properties: { sessionExpiryInterval: 30 }, will: will(t, 1) });
    c.destroy();
    const { c: back } = await Raw5.connect(port, { clientId: id, clean: false, properties: { sessionExpiryInterval: 30 } });
    await sleep(1500);
    back.send({ cmd: "publish", topic: `${t}/marker`, payload: "m", qos: 1, messageId: 3 });
    await watcher.next("publish", (p) => p.topic === `${t}/marker`);
    assert.equal(watcher.publishes().filter((p) => p.topic === t).length, 0);
    back.destroy();
    watcher.destroy();
  });

  test("DISCONNECT with reason 0x04 (Disconnect with Will Message) publishes the will", async () => {
    const t = uid("will4");
    const { c: watcher } = await Raw5.connect(port);
    watcher.send({ cmd: "subscribe", messageId: 1, subscriptions: [{ topic: t, qos: 1 }] });
    await watcher.next("suback");
    const { c } = await Raw5.connect(port, { will: will(t, 0) });
    c.send({ cmd: "disconnect", reasonCode: 0x04 });
    assert.equal(String((await watcher.next("publish")).payload), "gone");
    watcher.destroy();
  });
});
