// A persistent QoS 1 subscriber that reconnects while a publisher streams:
// aedes replays the session's queue (emptyQueue → outgoingUpdate) while live
// messages for the same session are delivered (deliverQoS → outgoingUpdate),
// both on queue entries of the same session. Every message must arrive
// [MQTT-4.3.2], a message sent again must carry DUP [MQTT-3.3.1-1] and only
// when it was unacknowledged [MQTT-4.4.0-1], and the broker must not drop the
// connection over it ("no such packet").
import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import mqtt, { type IPublishPacket, type MqttClient } from "mqtt";
import { end, startTestBroker, type TestBroker } from "./helpers.js";
import { uniqueId } from "./broker-support.js";

const TOTAL = 1200;
const CYCLES = 6;
/** Publishes in flight at once from the publisher: live traffic keeps arriving during the replay. */
const WINDOW = 16;

interface Receipt {
  dup: boolean;
  connection: number;
}

for (const persistence of ["lmdb", "memory"] as const) {
  describe(`session replay under live traffic (${persistence})`, () => {
    let broker: TestBroker | undefined;
    const open: MqttClient[] = [];
    after(async () => {
      await end(...open);
      await broker?.stop();
    });

    test("a persistent QoS 1 subscriber reconnecting during a stream loses nothing and gets repeats only with DUP", async () => {
      broker = await startTestBroker({ persistence });
      const url = broker.url;
      const brokerErrors: string[] = [];
      broker.aedes.on("clientError", (client, err) => {
        // the errors of a connection the test itself cut are expected
        if (client.id === subscriberId && !/connection closed|EPIPE|ECONNRESET/.test(err.message)) brokerErrors.push(err.message);
      });
      const subscriberId = uniqueId("replay-sub");
      const topic = `replay/${subscriberId}`;
      const receipts = new Map<number, Receipt[]>();
      let connection = 0;
      let distinct = 0;
      const waiters: { count: number; resolve: () => void }[] = [];
      const unexpectedCloses: number[] = [];

      /** Connect the subscriber; the listener is attached before CONNACK, as the replay follows it at once. */
      async function connectSubscriber(): Promise<MqttClient> {
        const n = ++connection;
        const client = mqtt.connect(url, { clientId: subscriberId, clean: false, reconnectPeriod: 0, connectTimeout: 30_000 });
        let ending = false;
        client.on("message", (_t, payload, packet: IPublishPacket) => {
          const id = Number(payload.toString());
          const list = receipts.get(id) ?? [];
          if (list.length === 0) distinct++;
          list.push({ dup: packet.dup === true, connection: n });
          receipts.set(id, list);
          for (const w of waiters.splice(0)) {
            if (distinct >= w.count) w.resolve();
            else waiters.push(w);
          }
        });
        client.on("close", () => {
          if (!ending) unexpectedCloses.push(n);
        });
        (client as MqttClient & { stopping?: () => void }).stopping = () => (ending = true);
        await new Promise<void>((resolve, reject) => {
          client.once("connect", () => resolve());
          client.once("error", reject);
        });
        client.on("error", () => {});
        open.push(client);
        return client;
      }

      function receivedAtLeast(count: number): Promise<void> {
        if (distinct >= count) return Promise.resolve();
        return new Promise((resolve, reject) => {
          // a safety net against a hang, not a speed requirement
          const timer = setTimeout(
            () =>
              reject(
                new Error(
                  `only ${distinct} of ${count} distinct messages arrived (published ${published}, connection ${connection}, ` +
                    `closed by the broker: ${unexpectedCloses.join(",") || "none"}, broker errors: ${brokerErrors.join("; ") || "none"}); missing: ${missing().slice(0, 20).join(",")}`,
                ),
              ),
            120_000,
          );
          waiters.push({ count, resolve: () => (clearTimeout(timer), resolve()) });
        });
      }
      function missing(): number[] {
        const out: number[] = [];
        for (let i = 0; i < TOTAL; i++) if (!receipts.has(i)) out.push(i);
        return out;
      }

      let subscriber = await connectSubscriber();
      await subscriber.subscribeAsync(topic, { qos: 1 });

      const publisher = mqtt.connect(url, { clientId: uniqueId("replay-pub"), reconnectPeriod: 0 });
      open.push(publisher);
      await new Promise<void>((resolve, reject) => (publisher.once("connect", () => resolve()), publisher.once("error", reject)));
      let published = 0;
      let next = 0;
      const publishedAll = new Promise<void>((resolve, reject) => {
        const pump = () => {
          while (next < TOTAL && next - published < WINDOW) {
            const id = next++;
            publisher.publish(topic, String(id), { qos: 1 }, (err) => {
              if (err) return reject(err);
              published++;
              for (const w of publishWaiters.splice(0)) {
                if (published >= w.count) w.resolve();
                else publishWaiters.push(w);
              }
              if (published === TOTAL) resolve();
              else pump();
            });
          }
        };
        pump();
      });
      const publishWaiters: { count: number; resolve: () => void }[] = [];
      const publishedAtLeast = (count: number) =>
        published >= count ? Promise.resolve() : new Promise<void>((resolve) => publishWaiters.push({ count, resolve }));

      // Each cycle: drop the connection abruptly (no DISCONNECT, PUBACKs may be
      // lost) while messages flow, let the session queue fill offline, then
      // come back while the publisher is still streaming.
      const step = Math.floor(TOTAL / (CYCLES + 2));
      for (let cycle = 1; cycle <= CYCLES; cycle++) {
        await receivedAtLeast(Math.min(step * cycle, TOTAL));
        (subscriber as MqttClient & { stopping: () => void }).stopping();
        await subscriber.endAsync(true);
        await publishedAtLeast(Math.min(published + step / 2, TOTAL));
        subscriber = await connectSubscriber();
      }
      await publishedAll;
      await receivedAtLeast(TOTAL);

      assert.deepEqual(missing(), [], "every published message reaches the persistent subscriber");
      const repeatsWithoutDup: string[] = [];
      for (const [id, list] of receipts) {
        list.slice(1).forEach((r, i) => {
          if (!r.dup) repeatsWithoutDup.push(`${id} (receipt ${i + 2}, connection ${r.connection}; first on ${list[0]!.connection})`);
        });
      }
      assert.deepEqual(repeatsWithoutDup, [], "a message delivered again carries DUP [MQTT-3.3.1-1]");
      // A repeat is a redelivery of an unacknowledged message: it comes on a later connection, never twice on one [MQTT-4.4.0-1].
      const twiceOnOneConnection = [...receipts].filter(([, list]) => new Set(list.map((r) => r.connection)).size < list.length).map(([id]) => id);
      assert.deepEqual(twiceOnOneConnection, [], "no message arrives twice on one connection");
      assert.deepEqual(brokerErrors, [], "the broker raised no error on the subscriber's connections");
      assert.deepEqual(unexpectedCloses, [], "the broker closed none of the subscriber's connections");
    });
  });
}
