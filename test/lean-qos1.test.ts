// The QoS 1 path with less garbage per message (bench/README.md "ack10"):
// - lean-publish.ts: a QoS 1 PUBLISH is acknowledged and published without
//   aedes' step runners; the offline enqueue is skipped when the persistence
//   says no stored subscription can match; a PUBACK of a session the
//   persistence holds nothing for is answered without the store;
// - quiet-lookup.ts `mayHaveStoredSubscriptions`, kept by the memory and the
//   LMDB persistence.
import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import type { Aedes } from "aedes";
import { createMemoryPersistence } from "../broker/persistence/memory.js";
import { collect, connect, connectCollecting, end, ROOT, settle, startTestBroker, subscribe } from "./helpers.js";
import { close, freshDir, openP } from "./lmdb-support.js";
import { until } from "./store-support.js";
import { countAedesSeries, publishVia, watchPublished } from "./lean-support.js";

type Store = {
  outgoingClearMessageId(client: { id: string }, packet: object): Promise<unknown>;
  subscriptionsByTopic(topic: string): Promise<unknown[]>;
  queuedCount(clientId: string): number;
  mayHaveStoredSubscriptions(topic: string): boolean;
};

/** Count the calls our persistence gets for one method (the real method runs). */
function countCalls<K extends "outgoingClearMessageId" | "subscriptionsByTopic">(store: Store, method: K, counts: (args: Parameters<Store[K]>) => boolean) {
  const inner = store[method].bind(store) as (...args: unknown[]) => Promise<unknown>;
  let calls = 0;
  (store as unknown as Record<string, unknown>)[method] = (...args: unknown[]) => {
    if (counts(args as Parameters<Store[K]>)) calls++;
    return inner(...args);
  };
  return () => calls;
}

function publishQoS1(client: Awaited<ReturnType<typeof connect>>, topic: string, payload: string): Promise<void> {
  return new Promise((resolve, reject) => client.publish(topic, payload, { qos: 1 }, (err) => (err ? reject(err) : resolve())));
}

for (const persistence of ["memory", "lmdb"] as const) {
  test(`${persistence}: QoS 1 with no stored subscription — aedes' step runners are not used, the publisher gets its PUBACKs, the subscriber its messages, and the subscriber's PUBACKs are answered without the store ('ack' with no packet, as aedes' would)`, { timeout: 60_000 }, async () => {
    const series = countAedesSeries("q1/");
    const broker = await startTestBroker(persistence === "memory" ? { persistence } : {}).finally(series.restore);
    const store = (broker.aedes as unknown as { persistence: Store }).persistence;
    const clears = countCalls(store, "outgoingClearMessageId", ([client]) => client.id === "q1-sub");
    const lookups = countCalls(store, "subscriptionsByTopic", ([topic]) => topic.startsWith("q1/"));
    const acks: { packet: unknown; clientId: string }[] = [];
    broker.aedes.on("ack", (packet, client) => acks.push({ packet, clientId: client.id }));
    const sub = await connect(broker.url, { clientId: "q1-sub" });
    const pub = await connect(broker.url, { clientId: "q1-pub" });
    try {
      await subscribe(sub, "q1/#", 1);
      const got = collect(sub);
      const seen = watchPublished(broker.aedes, "q1/");
      for (let i = 0; i < 3; i++) await publishQoS1(pub, `q1/${i}`, `m${i}`);
      // from the application too: published() and 'publish' get the packet handed in
      const packet = { cmd: "publish", topic: "q1/app", payload: Buffer.from("a"), qos: 1, retain: false, dup: false };
      assert.equal(await publishVia(broker.aedes, packet), undefined);
      await got.waitFor(4);
      await until(() => acks.length === 4, "the subscriber's four PUBACKs");
      assert.deepEqual(got.messages.map((m) => `${m.topic} ${m.payload} q${m.qos}`).sort(), ["q1/0 m0 q1", "q1/1 m1 q1", "q1/2 m2 q1", "q1/app a q1"]);
      assert.deepEqual(acks.map((a) => [a.packet, a.clientId]), Array(4).fill([undefined, "q1-sub"]));
      assert.equal(clears(), 0, "no PUBACK of the clean subscriber went to the store");
      assert.equal(lookups(), 0, "no offline enqueue: nothing stored could match");
      assert.equal(series.calls(), 0, "no QoS 1 message went through aedes' own publish");
      assert.equal(seen.published.find((p) => p.packet.topic === "q1/app")?.packet, packet);
      assert.equal(seen.events.find((e) => e.packet.topic === "q1/1")?.clientId, "q1-pub");
    } finally {
      await end(sub, pub);
      await broker.stop();
    }
  });

  test(`${persistence}: a stored subscription — QoS 1 messages are queued for the away session (a "$SYS/" one not for its wildcard-first filter), delivered once on its return, and its PUBACKs clear the store; once the session is gone the enqueue is skipped again`, { timeout: 60_000 }, async () => {
    const broker = await startTestBroker(persistence === "memory" ? { persistence } : {});
    const store = (broker.aedes as unknown as { persistence: Store }).persistence;
    const lookups = countCalls(store, "subscriptionsByTopic", ([topic]) => topic.startsWith("stored/"));
    const opts = { clientId: "keeper", clean: false } as const;
    let keeper = await connect(broker.url, opts);
    const pub = await connect(broker.url);
    try {
      await subscribe(keeper, ["stored/#", "+/probe"], 1);
      await end(keeper);
      assert.equal(store.mayHaveStoredSubscriptions("stored/1"), true);
      await publishQoS1(pub, "stored/1", "one");
      await publishQoS1(pub, "stored/2", "two");
      assert.equal(await publishVia(broker.aedes as Aedes, { cmd: "publish", topic: "$SYS/probe", payload: Buffer.from("sys"), qos: 1, retain: false }), undefined);
      assert.equal(lookups(), 2, "both client messages asked the store for its subscriptions");
      assert.equal(store.queuedCount("keeper"), 2, "the $SYS/ message was not queued for +/probe [MQTT-4.7.2-1]");

      const back = await connectCollecting(broker.url, opts);
      keeper = back.client;
      const got = back.got;
      await got.waitFor(2);
      await until(() => store.queuedCount("keeper") === 0, "the keeper's PUBACKs to clear its queue");
      assert.deepEqual(got.messages.map((m) => `${m.topic} ${m.payload}`), ["stored/1 one", "stored/2 two"]);
      await end(keeper);

      const third = await connectCollecting(broker.url, opts);
      keeper = third.client;
      const again = third.got;
      await settle(keeper);
      assert.deepEqual(again.messages, [], "nothing is delivered twice");
      await end(keeper);

      // the session ends (clean start): no stored subscription is left, so nothing is asked
      keeper = await connect(broker.url, { clientId: "keeper", clean: true });
      await end(keeper);
      await until(() => !store.mayHaveStoredSubscriptions("stored/3"), "the ended session's subscriptions to go");
      await publishQoS1(pub, "stored/3", "three");
      assert.equal(lookups(), 2);
    } finally {
      await end(keeper, pub);
      await broker.stop();
    }
  });
}

test("a plugin that changes a message's QoS: the publisher is answered for the QoS it sent (QoS 1: PUBACK; QoS 2: PUBREC, PUBCOMP), and the message is routed at the plugin's QoS", { timeout: 60_000 }, async () => {
  // aedes chose the acknowledgement by the changed QoS: none at 0 (the publisher waited forever), a PUBREC at 2, a PUBACK to a QoS 2 PUBLISH lowered to 1
  const broker = await startTestBroker({ persistence: "memory", plugins: [{ name: "qosflip", native: join(ROOT, "dist/test/fixtures/qosflip-native.js") }] });
  // an away persistent session's queue, slowed: each acknowledgement must still come after its message was stored
  const away = await connect(broker.url, { clientId: "flip-keeper", clean: false });
  await subscribe(away, "qosflip/#", 2);
  await end(away);
  const store = (broker.aedes as unknown as { persistence: { outgoingEnqueueCombi(subs: unknown[], packet: { topic: string }): Promise<void> } }).persistence;
  const enqueue = store.outgoingEnqueueCombi.bind(store);
  const stored = new Set<string>();
  store.outgoingEnqueueCombi = (subs, packet) =>
    enqueue(subs, packet)
      .then(() => new Promise((resolve) => setTimeout(resolve, 30)))
      .then(() => void stored.add(packet.topic));
  const sub = await connect(broker.url);
  const pub = await connect(broker.url);
  try {
    await subscribe(sub, "qosflip/#", 2);
    const got = collect(sub);
    const sent: Array<[string, 1 | 2, boolean]> = [
      ["qosflip/down/a", 1, false], // routed at 0: nothing to store for the away session
      ["qosflip/up/b", 1, true],
      ["qosflip/same/c", 1, true],
      ["qosflip/down/d", 2, false],
      ["qosflip/one/e", 2, true],
      ["qosflip/same/f", 2, true],
    ];
    for (const [topic, qos, storedFirst] of sent) {
      await new Promise<void>((resolve, reject) => pub.publish(topic, "m", { qos }, (err) => (err ? reject(err) : resolve())));
      assert.equal(stored.has(topic), storedFirst, `${topic}: stored before its acknowledgement`);
    }
    await got.waitFor(6);
    assert.deepEqual(got.messages.map((m) => `${m.topic} q${m.qos}`).sort(), [
      "qosflip/down/a q0",
      "qosflip/down/d q0",
      "qosflip/one/e q1",
      "qosflip/same/c q1",
      "qosflip/same/f q2",
      "qosflip/up/b q2",
    ]);
  } finally {
    await end(sub, pub);
    await broker.stop();
  }
});

test("mayHaveStoredSubscriptions follows the stored QoS > 0 subscriptions: memory and LMDB (also after a reopen); a memory store that takes other brokers' subscriptions always says maybe", { timeout: 60_000 }, async () => {
  const a = { id: "a" };
  const b = { id: "b" };
  const dir = freshDir();
  const stores: Array<{ name: string; store: Store & { addSubscriptions: Function; removeSubscriptions: Function; cleanSubscriptions: Function } }> = [
    { name: "memory", store: createMemoryPersistence({ sweepIntervalMs: 0 }) as never },
    { name: "lmdb", store: (await openP(dir)) as never },
  ];
  for (const { name, store } of stores) {
    const may = () => store.mayHaveStoredSubscriptions("t/x");
    assert.equal(may(), false, `${name}: empty`);
    await store.addSubscriptions(a, [{ topic: "t/#", qos: 1 }]);
    assert.equal(may(), true, `${name}: one QoS 1 subscription`);
    await store.addSubscriptions(a, [{ topic: "t/#", qos: 0 }]);
    assert.equal(may(), false, `${name}: the same filter at QoS 0 leaves the trie`);
    await store.addSubscriptions(a, [{ topic: "t/#", qos: 1 }, { topic: "u", qos: 2 }]);
    await store.addSubscriptions(b, [{ topic: "t/x", qos: 1 }]);
    await store.removeSubscriptions(a, ["t/#", "u"]);
    assert.equal(may(), true, `${name}: b's is left`);
    await store.cleanSubscriptions(b);
    assert.equal(may(), false, `${name}: b's session cleaned`);
    await store.addSubscriptions(b, [{ topic: "v", qos: 1 }]);
  }
  await close(stores[1]!.store as never);
  const reopened = (await openP(dir)) as unknown as Store;
  assert.equal(reopened.mayHaveStoredSubscriptions("v"), true, "lmdb: rebuilt from disk");
  await close(reopened as never);
  assert.equal((createMemoryPersistence({ sweepIntervalMs: 0, broadcastSubscriptions: true }) as unknown as Store).mayHaveStoredSubscriptions("t"), true);
});
