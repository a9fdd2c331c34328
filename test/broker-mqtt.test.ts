// MQTT 3.1.1 behaviour of the plugin-less broker, seen by mqtt.js clients over
// TCP: QoS levels, payload bytes, retained messages, wills, persistent
// sessions, unsubscribe, wildcards and client-id takeover. LMDB persistence.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, afterEach, before, describe, test } from "node:test";
import type { IClientOptions, MqttClient } from "mqtt";
import { closed, connectWithConnack, disconnectedOn, uniqueId } from "./broker-support.js";
import { collect, connect, end, settle, startTestBroker, subscribe, type TestBroker } from "./helpers.js";

describe("MQTT over TCP (mqtt.js, LMDB persistence)", () => {
  let broker: TestBroker;
  // Every client a test opens, ended after it: the broker cannot stop with clients attached.
  let open: MqttClient[] = [];

  const client = async (opts: IClientOptions = {}): Promise<MqttClient> => {
    const c = await connect(broker.url, opts);
    open.push(c);
    return c;
  };

  before(async () => {
    broker = await startTestBroker({ persistence: "lmdb" });
  });
  afterEach(async () => {
    await end(...open);
    open = [];
  });
  after(() => broker.stop());

  test("QoS 0, 1 and 2 round trip with the QoS and payload they were published with", async () => {
    const sub = await client();
    const got = collect(sub);
    assert.deepEqual(await subscribe(sub, "qos/#", 2), [2]);
    const pub = await client();
    await pub.publishAsync("qos/0", "zero", { qos: 0 });
    await pub.publishAsync("qos/1", "one", { qos: 1 });
    await pub.publishAsync("qos/2", "two", { qos: 2 });
    const messages = await got.waitFor(3);
    const byTopic = new Map(messages.map((m) => [m.topic, m]));
    assert.deepEqual([...byTopic.keys()].sort(), ["qos/0", "qos/1", "qos/2"]);
    assert.equal(byTopic.get("qos/0")!.qos, 0);
    assert.equal(byTopic.get("qos/1")!.qos, 1);
    assert.equal(byTopic.get("qos/2")!.qos, 2);
    assert.equal(byTopic.get("qos/0")!.payload.toString(), "zero");
    assert.equal(byTopic.get("qos/1")!.payload.toString(), "one");
    assert.equal(byTopic.get("qos/2")!.payload.toString(), "two");
    assert.ok(messages.every((m) => !m.retain));
  });

  test("delivery QoS is the lower of the message's and the subscription's (exact and wildcard filters)", async () => {
    const sub = await client();
    const got = collect(sub);
    assert.deepEqual(await subscribe(sub, "down/exact", 1), [1]);
    assert.deepEqual(await subscribe(sub, "down/wild/+", 1), [1]);
    assert.deepEqual(await subscribe(sub, "down/zero", 0), [0]);
    const pub = await client();
    await pub.publishAsync("down/exact", "a", { qos: 2 });
    await pub.publishAsync("down/wild/x", "b", { qos: 2 });
    await pub.publishAsync("down/zero", "c", { qos: 1 });
    const messages = await got.waitFor(3);
    const qosOf = Object.fromEntries(messages.map((m) => [m.topic, m.qos]));
    assert.deepEqual(qosOf, { "down/exact": 1, "down/wild/x": 1, "down/zero": 0 });
  });

  test("binary and 256 KiB payloads arrive byte for byte at QoS 1 and 2", async () => {
    const binary = Buffer.from(Array.from({ length: 256 }, (_, i) => i)); // every byte value, NULs included
    const large = randomBytes(256 * 1024);
    const sub = await client();
    const got = collect(sub);
    await subscribe(sub, "bytes/#", 2);
    const pub = await client();
    await pub.publishAsync("bytes/binary", binary, { qos: 1 });
    await pub.publishAsync("bytes/large", large, { qos: 2 });
    const messages = await got.waitFor(2);
    const binaryMsg = messages.find((m) => m.topic === "bytes/binary")!;
    const largeMsg = messages.find((m) => m.topic === "bytes/large")!;
    assert.equal(binaryMsg.qos, 1);
    assert.ok(binaryMsg.payload.equals(binary), "binary payload differs");
    assert.equal(largeMsg.qos, 2);
    assert.equal(largeMsg.payload.length, large.length);
    assert.ok(largeMsg.payload.equals(large), "256 KiB payload differs");
  });

  test("retained: a later subscriber gets the last value with the retain flag; an empty retained payload clears it", async () => {
    const live = await client();
    const liveGot = collect(live);
    await subscribe(live, "ret/#", 1);
    const pub = await client();
    await pub.publishAsync("ret/a", "v1", { qos: 1, retain: true });
    await pub.publishAsync("ret/a", "v2", { qos: 1, retain: true });
    // MQTT-3.3.1-9: a subscriber already there gets it as a normal message.
    const liveMessages = await liveGot.waitFor(2);
    assert.deepEqual(liveMessages.map((m) => [m.payload.toString(), m.retain]), [["v1", false], ["v2", false]]);

    const later = await client();
    const laterGot = collect(later);
    await subscribe(later, "ret/#", 1);
    const [retained] = await laterGot.waitFor(1);
    assert.equal(retained!.topic, "ret/a");
    assert.equal(retained!.payload.toString(), "v2");
    assert.equal(retained!.retain, true);
    assert.equal(retained!.qos, 1);
    await settle(later);
    assert.equal(laterGot.messages.length, 1, "only the last retained value is kept");

    await pub.publishAsync("ret/a", Buffer.alloc(0), { qos: 1, retain: true });
    const afterClear = await client();
    const afterClearGot = collect(afterClear);
    await subscribe(afterClear, "ret/#", 1);
    await settle(afterClear);
    assert.deepEqual(afterClearGot.messages, [], "the retained message was cleared");
  });

  test("last will: published when the connection breaks without DISCONNECT", async () => {
    const watcher = await client();
    const got = collect(watcher);
    await subscribe(watcher, "will/#", 1);
    const clientId = uniqueId("will-abnormal");
    const dying = await client({ clientId, will: { topic: "will/abnormal", payload: Buffer.from("gone"), qos: 1, retain: false } });
    const gone = disconnectedOn(broker, clientId);
    dying.stream.destroy();
    await gone;
    const [will] = await got.waitFor(1);
    assert.equal(will!.topic, "will/abnormal");
    assert.equal(will!.payload.toString(), "gone");
    assert.equal(will!.qos, 1);
  });

  test("last will: not published after a clean DISCONNECT", async () => {
    const watcher = await client();
    const got = collect(watcher);
    await subscribe(watcher, "will/#", 1);
    const clientId = uniqueId("will-clean");
    const leaving = await connect(broker.url, { clientId, will: { topic: "will/clean", payload: Buffer.from("should not"), qos: 1, retain: false } });
    const gone = disconnectedOn(broker, clientId);
    await leaving.endAsync(false); // sends DISCONNECT
    await gone;
    await settle(watcher);
    assert.deepEqual(got.messages, []);
  });

  test("persistent session (clean=false): QoS 1 messages published while offline arrive on reconnect, with Session Present", async () => {
    const clientId = uniqueId("persistent");
    const first = await connectWithConnack(broker.url, { clientId, clean: false });
    open.push(first.client);
    assert.equal(first.connack.sessionPresent, false, "no session existed yet");
    await subscribe(first.client, "session/#", 1);
    const offline = disconnectedOn(broker, clientId);
    await first.client.endAsync(false);
    await offline;

    const pub = await client();
    for (const n of [1, 2, 3]) await pub.publishAsync(`session/${n}`, `m${n}`, { qos: 1 });

    let got!: ReturnType<typeof collect>;
    const again = await connectWithConnack(broker.url, { clientId, clean: false }, (c) => (got = collect(c)));
    open.push(again.client);
    assert.equal(again.connack.sessionPresent, true);
    const messages = await got.waitFor(3);
    assert.deepEqual(
      messages.map((m) => [m.topic, m.payload.toString(), m.qos]),
      [["session/1", "m1", 1], ["session/2", "m2", 1], ["session/3", "m3", 1]],
    );
    // The subscription itself survived too: live messages keep coming.
    await pub.publishAsync("session/4", "m4", { qos: 1 });
    const [, , , live] = await got.waitFor(4);
    assert.equal(live!.payload.toString(), "m4");
  });

  test("clean=true discards a stored session: no Session Present, nothing queued", async () => {
    const clientId = uniqueId("discarded");
    const first = await connect(broker.url, { clientId, clean: false });
    open.push(first);
    await subscribe(first, "discard/#", 1);
    let offline = disconnectedOn(broker, clientId);
    await first.endAsync(false);
    await offline;

    const cleaner = await connectWithConnack(broker.url, { clientId, clean: true });
    open.push(cleaner.client);
    assert.equal(cleaner.connack.sessionPresent, false);
    offline = disconnectedOn(broker, clientId);
    await cleaner.client.endAsync(false);
    await offline;

    const pub = await client();
    await pub.publishAsync("discard/x", "lost", { qos: 1 });
    let got!: ReturnType<typeof collect>;
    const again = await connectWithConnack(broker.url, { clientId, clean: false }, (c) => (got = collect(c)));
    open.push(again.client);
    assert.equal(again.connack.sessionPresent, false);
    await settle(again.client);
    assert.deepEqual(got.messages, []);
  });

  test("unsubscribe stops delivery", async () => {
    const sub = await client();
    const got = collect(sub);
    await subscribe(sub, "unsub/t", 1);
    const pub = await client();
    await pub.publishAsync("unsub/t", "before", { qos: 1 });
    await got.waitFor(1);
    await sub.unsubscribeAsync("unsub/t");
    await pub.publishAsync("unsub/t", "after", { qos: 1 });
    await settle(sub);
    assert.deepEqual(got.messages.map((m) => m.payload.toString()), ["before"]);
  });

  test("wildcards: + matches one level, # any number including its parent, and # skips $SYS", async () => {
    const filters = ["wc/+/temp", "wc/a/#", "#", "$SYS/#"];
    const subs = await Promise.all(filters.map(() => client()));
    const got = subs.map((s) => collect(s));
    for (const [i, filter] of filters.entries()) assert.deepEqual(await subscribe(subs[i]!, filter, 1), [1]);

    const topics = ["wc/kitchen/temp", "wc/kitchen/hum", "wc/a/b/temp", "wc/temp", "wc/a", "wc/a/b", "wc/a/b/c", "wc/ab", "wc/b"];
    const pub = await client();
    for (const t of topics) await pub.publishAsync(t, t, { qos: 1 });
    // Only the broker itself may publish to $SYS (clients are refused).
    await new Promise<void>((resolve, reject) =>
      broker.aedes.publish({ cmd: "publish", topic: "$SYS/wasmq-test/probe", payload: Buffer.from("sys"), qos: 0, retain: false, dup: false }, (err) =>
        err ? reject(err) : resolve(),
      ),
    );
    for (const s of subs) await settle(s);

    const received = (i: number) => got[i]!.messages.map((m) => m.topic).sort();
    assert.deepEqual(received(0), ["wc/kitchen/temp"], "+ is exactly one level");
    assert.deepEqual(received(1), ["wc/a", "wc/a/b", "wc/a/b/c", "wc/a/b/temp"], "wc/a/# includes wc/a itself, not wc/ab");
    assert.deepEqual(received(2), [...topics].sort(), "# gets every ordinary topic and nothing starting with $");
    assert.ok(received(3).includes("$SYS/wasmq-test/probe"), "$SYS/# gets the broker's $SYS message");
    assert.ok(received(3).every((t) => t.startsWith("$SYS/")));
  });

  test("a second connection with the same client id takes over; the first is disconnected (MQTT-3.1.4-2)", async () => {
    const clientId = uniqueId("takeover");
    const first = await client({ clientId });
    const firstClosed = closed(first);
    const second = await client({ clientId });
    await firstClosed;
    assert.equal(first.connected, false);
    assert.equal(second.connected, true);
    // The survivor is fully usable.
    const got = collect(second);
    await subscribe(second, "takeover/t", 1);
    await second.publishAsync("takeover/t", "still here", { qos: 1 });
    const [m] = await got.waitFor(1);
    assert.equal(m!.payload.toString(), "still here");
  });
});
