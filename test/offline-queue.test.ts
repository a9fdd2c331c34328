// limits.maxQueuedMessages: what a persistent session accumulates while it is
// away is bounded per client. A full queue keeps its oldest messages and new
// ones for that session are dropped (and counted); publishers are acknowledged
// either way, other sessions and connected clients are unaffected, and with
// LMDB the count survives a restart.
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { after, describe, test } from "node:test";
import type { MqttClient } from "mqtt";
import { brokerForgot, collect, connect, connectCollecting, end, startTestBroker, subscribe, tempDir, type Received, type TestBroker } from "./helpers.js";

const LIMIT = 5;

/** Subscribe a persistent session at QoS 1 and leave. */
async function leaveSession(broker: TestBroker, clientId: string, filter: string): Promise<void> {
  const c = await connect(broker.url, { clientId, clean: false });
  await subscribe(c, filter, 1);
  await c.endAsync();
  await brokerForgot(broker, clientId);
}

/** Reconnect a persistent session with the message handler in place before CONNACK, and take `count` messages. */
async function resume(broker: TestBroker, clientId: string, count: number): Promise<{ client: MqttClient; got: Received[] }> {
  const { client, got } = await connectCollecting(broker.url, { clientId, clean: false });
  await got.waitFor(count);
  return { client, got: got.messages };
}

/** Whatever was queued has arrived once a message published after it has: a round trip on the same connection. */
async function roundTrip(client: MqttClient, got: Received[]): Promise<void> {
  const arrived = new Promise<void>((resolve) => client.on("message", (topic) => topic === "probe" && resolve()));
  await subscribe(client, "probe", 1);
  await client.publishAsync("probe", "p", { qos: 1 });
  await arrived;
  assert.equal(got.at(-1)?.topic, "probe");
}

async function publishAll(broker: TestBroker, topic: string, payloads: string[]): Promise<void> {
  const pub = await connect(broker.url);
  for (const p of payloads) await pub.publishAsync(topic, p, { qos: 1 }); // each one PUBACKed
  await end(pub);
}

const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => `m${from + i}`);

for (const persistence of ["lmdb", "memory"] as const) {
  describe(`maxQueuedMessages (${persistence})`, { timeout: 60_000 }, () => {
    let broker: TestBroker;
    after(() => broker?.stop());

    test("a full offline queue keeps its oldest messages; the rest are dropped, counted, and acknowledged to the publisher", async () => {
      broker = await startTestBroker({ persistence, limits: { maxQueuedMessages: LIMIT } });
      await leaveSession(broker, "away", "q/#");
      await leaveSession(broker, "other", "other/#");
      const live = await connect(broker.url, { clientId: "live", clean: false });
      const liveGot = collect(live);
      await subscribe(live, "q/#", 1);

      const before = broker.stats.limitRejections.maxQueuedMessages;
      await publishAll(broker, "q/a", range(0, 8));
      await publishAll(broker, "other/a", range(0, 2));
      assert.equal(broker.stats.limitRejections.maxQueuedMessages, before + 3, "three messages dropped for 'away'");
      assert.equal(broker.persistence.persistence.queuedCount("away"), LIMIT);

      // The connected persistent session is bounded by the send-queue limits, not this one.
      await liveGot.waitFor(8);
      assert.deepEqual(liveGot.messages.map((m) => m.payload.toString()), range(0, 8));

      const other = await resume(broker, "other", 2);
      assert.deepEqual(other.got.map((m) => m.payload.toString()), range(0, 2), "another session's queue is its own");

      const away = await resume(broker, "away", LIMIT);
      await roundTrip(away.client, away.got);
      assert.deepEqual(away.got.map((m) => m.payload.toString()), [...range(0, LIMIT), "p"]);

      // Acknowledged messages leave the queue: gone again, the session has room for LIMIT more.
      await away.client.endAsync();
      await brokerForgot(broker, "away");
      await publishAll(broker, "q/b", range(10, 10 + LIMIT));
      assert.equal(broker.stats.limitRejections.maxQueuedMessages, before + 3, "nothing dropped while there was room");
      const again = await resume(broker, "away", LIMIT);
      await roundTrip(again.client, again.got);
      assert.deepEqual(again.got.map((m) => m.payload.toString()), [...range(10, 10 + LIMIT), "p"]);
      await end(live, other.client, again.client);
    });

    test("0 means no limit", async () => {
      await broker.stop();
      broker = await startTestBroker({ persistence, limits: { maxQueuedMessages: 0 } });
      await leaveSession(broker, "unbounded", "u/#");
      await publishAll(broker, "u/x", range(0, 30));
      const back = await resume(broker, "unbounded", 30);
      assert.deepEqual(back.got.map((m) => m.payload.toString()), range(0, 30));
      assert.equal(broker.stats.limitRejections.maxQueuedMessages, 0);
      await end(back.client);
    });
  });
}

describe("maxQueuedMessages across a restart (lmdb)", { timeout: 60_000 }, () => {
  const dataDir = tempDir();
  let broker: TestBroker | undefined;
  after(async () => {
    await broker?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  test("messages stored before the restart count against the limit after it", async () => {
    const config = { persistence: "lmdb" as const, limits: { maxQueuedMessages: LIMIT } };
    broker = await startTestBroker(config, { dataDir });
    await leaveSession(broker, "sleeper", "s/#");
    await publishAll(broker, "s/x", range(0, 3));
    await broker.stop();

    broker = await startTestBroker(config, { dataDir });
    await publishAll(broker, "s/x", range(3, 7));
    assert.equal(broker.stats.limitRejections.maxQueuedMessages, 2);
    const back = await resume(broker, "sleeper", LIMIT);
    await roundTrip(back.client, back.got);
    assert.deepEqual(back.got.map((m) => m.payload.toString()), [...range(0, LIMIT), "p"]);
    await end(back.client);
  });
});
