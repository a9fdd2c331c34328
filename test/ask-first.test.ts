// The connect and subscribe steps ask the persistence before aedes opens a
// stream (broker/protocol/ask-first.ts, broker/persistence/quiet-lookup.ts):
// a clean-start client, a returning session with nothing stored, and a filter
// no retained message matches open no persistence stream (the persistence's
// own stream counters say so); everything a stream would have carried still
// arrives, in order.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { MqttClient } from "mqtt";
import { uniqueId } from "./broker-support.js";
import { brokerForgot, collect, connect, connectCollecting, end, settle, startTestBroker, subscribe, type TestBroker } from "./helpers.js";

interface CountingPersistence {
  streams: { outgoing: number; retained: number };
  queuedCount(clientId: string): number;
}

const storeOf = (broker: TestBroker) => broker.persistence.persistence as unknown as CountingPersistence;
const counts = (broker: TestBroker) => ({ ...storeOf(broker).streams });

/** A persistent session subscribed to `${tag}/q` that went away; `payloads` are then queued for it. */
async function awaySession(broker: TestBroker, tag: string, payloads: string[]): Promise<{ id: string; pub: MqttClient }> {
  const id = `${tag}-dev`;
  const first = await connect(broker.url, { clientId: id, clean: false });
  await subscribe(first, `${tag}/q`, 1);
  await end(first);
  await brokerForgot(broker, id);
  const pub = await connect(broker.url, { clientId: `${tag}-pub` });
  for (const p of payloads) await pub.publishAsync(`${tag}/q`, p, { qos: 1 });
  assert.equal(storeOf(broker).queuedCount(id), payloads.length);
  return { id, pub };
}

for (const persistence of ["memory", "lmdb"] as const) {
  describe(`ask the persistence first (${persistence})`, () => {
    let broker: TestBroker;
    before(async () => {
      broker = await startTestBroker({ persistence });
    });
    after(() => broker.stop());

    test("a clean-start client subscribing to a filter no retained message matches opens no stream, and its subscription works", async () => {
      const tag = uniqueId("quiet");
      const pub = await connect(broker.url, { clientId: `${tag}-pub` });
      await pub.publishAsync(`${tag}/elsewhere`, "kept", { qos: 1, retain: true });
      const before = counts(broker);

      const sub = await connect(broker.url, { clientId: `${tag}-sub`, clean: true });
      const got = collect(sub);
      assert.deepEqual(await subscribe(sub, `${tag}/cmd/+`, 1), [1]);
      assert.deepEqual(counts(broker), before, "no stored-queue stream at CONNECT, no retained stream at SUBSCRIBE");

      await pub.publishAsync(`${tag}/cmd/1`, "live", { qos: 1 });
      const [m] = await got.waitFor(1);
      assert.equal(m!.payload.toString(), "live");
      assert.equal(m!.retain, false);
      await end(pub, sub);
    });

    test("a filter that matches retained messages still gets them all, including one its own connection stored just before", async () => {
      const tag = uniqueId("ret");
      const pub = await connect(broker.url, { clientId: `${tag}-pub` });
      await pub.publishAsync(`${tag}/a`, "A", { qos: 1, retain: true });
      await pub.publishAsync(`${tag}/b`, "B", { qos: 0, retain: true });
      await pub.publishAsync(`${tag}/gone`, "G", { qos: 1, retain: true });
      await pub.publishAsync(`${tag}/gone`, "", { qos: 1, retain: true }); // cleared: not sent

      const sub = await connect(broker.url, { clientId: `${tag}-sub` });
      const got = collect(sub);
      const before = counts(broker);
      await subscribe(sub, `${tag}/+`, 1);
      const msgs = await got.waitFor(2);
      assert.deepEqual(msgs.map((m) => `${m.topic}=${m.payload}`).sort(), [`${tag}/a=A`, `${tag}/b=B`]);
      assert.ok(msgs.every((m) => m.retain));
      assert.equal(counts(broker).retained, before.retained + 1, "the matching filter opened the retained stream");

      // Same connection: a retained PUBLISH, then a SUBSCRIBE that matches it, back to back.
      // (On memory persistence aedes also delivers that message live to the new subscription,
      // before and after this change alike: only its arrival is asserted.)
      sub.publish(`${tag}/self/r`, "mine", { qos: 0, retain: true });
      await subscribe(sub, `${tag}/self/#`, 0);
      const all = await got.waitFor(3);
      assert.equal(`${all[2]!.topic}=${all[2]!.payload}`, `${tag}/self/r=mine`);

      // A cleared topic answers "nothing" again.
      const cleared = counts(broker);
      await subscribe(sub, `${tag}/gone`, 1);
      await settle(sub);
      assert.equal(counts(broker).retained, cleared.retained, "a filter matching only a cleared retained topic opens no stream");
      assert.deepEqual(got.messages.filter((m) => m.topic === `${tag}/gone`), []);
      await end(pub, sub);
    });

    test("a returning persistent session gets its stored queue in order; with nothing stored it opens no stream", async () => {
      const tag = uniqueId("back");
      const { id, pub } = await awaySession(broker, tag, ["1", "2", "3", "4", "5", "6"]);

      const before = counts(broker);
      const back = await connectCollecting(broker.url, { clientId: id, clean: false });
      const msgs = await back.got.waitFor(6);
      assert.deepEqual(msgs.map((m) => m.payload.toString()), ["1", "2", "3", "4", "5", "6"]);
      assert.equal(counts(broker).outgoing, before.outgoing + 1, "the stored queue was streamed");
      await settle(back.client);
      await end(back.client);
      await brokerForgot(broker, id);

      // Nothing stored now: the next return opens no stream, and live traffic still flows.
      const empty = counts(broker);
      const again = await connectCollecting(broker.url, { clientId: id, clean: false });
      assert.equal(counts(broker).outgoing, empty.outgoing, "an empty stored queue opens no stream");
      await pub.publishAsync(`${tag}/q`, "7", { qos: 1 });
      const [seven] = await again.got.waitFor(1);
      assert.equal(seven!.payload.toString(), "7");
      await end(again.client, pub);
    });

    test("a clean start over a session with a stored queue still discards that queue through the stream", async () => {
      const { id, pub } = await awaySession(broker, uniqueId("wipe"), ["stale"]);

      const before = counts(broker);
      const fresh = await connectCollecting(broker.url, { clientId: id, clean: true });
      await settle(fresh.client);
      assert.equal(counts(broker).outgoing, before.outgoing + 1);
      assert.equal(fresh.got.messages.length, 0, "a clean start receives nothing stored [MQTT-3.1.2-6]");
      assert.equal(storeOf(broker).queuedCount(id), 0, "the stale queue is gone");
      await end(fresh.client, pub);
    });

    test("a wildcard-first filter gets no retained \"$\" message [MQTT-4.7.2-1]", async () => {
      const tag = uniqueId("dollar");
      const pub = await connect(broker.url, { clientId: `${tag}-pub` });
      await pub.publishAsync(`$${tag}/x`, "no", { qos: 1, retain: true });
      const sub = await connect(broker.url, { clientId: `${tag}-sub` });
      const got = collect(sub);
      await subscribe(sub, `+/x`, 1);
      await subscribe(sub, `$${tag}/+`, 1);
      const [m] = await got.waitFor(1);
      assert.equal(m!.topic, `$${tag}/x`);
      await settle(sub);
      assert.equal(got.messages.length, 1);
      await end(pub, sub);
    });
  });
}
