// A SUBSCRIBE/UNSUBSCRIBE that hangs is answered with failure after
// limits.subscribeTimeoutMs, undone, and no longer holds its client's later
// packets (broker/protocol/barrier-deadline.ts). The hang is real: a cluster
// node on a real redis-server that is frozen with SIGSTOP (connections stay
// open, nothing answers), so the (P)SUBSCRIBE of the routing and a persistent
// session's subscription writes wait; and, last, one that is killed (ioredis
// keeps the commands in its offline queue until it is back). Without the
// deadline the SUBACK (and the PINGRESP sent after it) only come once Redis
// answers again.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ConfigError, loadConfig } from "../broker/config.js";
import { startRedis, waitFor, type RedisServer } from "./cluster-support.js";
import { connect, end, tempDir, startTestBroker, type TestBroker } from "./helpers.js";
import { createRequire } from "node:module";
import { mqttPacket, RawClient, type Packet } from "./ops-raw-mqtt.js";
import { Raw5, type Packet5 } from "./mqtt5-raw.js";
import type { MqttClient } from "mqtt";

const TIMEOUT_MS = 1500;
/** Longer than the deadline by far: a wait for something that must come, not a speed requirement. */
const WAIT_MS = 30_000;
let n = 0;
const unique = (name: string) => `subto/${name}/${process.pid}-${n++}`;
const chunk = (...packets: object[]) => Buffer.concat(packets.map((p) => mqttPacket.generate(p)));
const generate5 = (packet: object) => (createRequire(import.meta.url)("mqtt-packet") as { generate(p: object, o: object): Buffer }).generate(packet, { protocolVersion: 5 });

interface LiveClient {
  subscriptions: Record<string, unknown>;
}
const clientOf = (broker: TestBroker, clientId: string) => (broker.aedes as unknown as { clients: Record<string, LiveClient | undefined> }).clients[clientId];
const liveSubscriptions = (broker: TestBroker, clientId: string) => Object.keys(clientOf(broker, clientId)?.subscriptions ?? {});

describe("subscribeTimeoutMs: a SUBSCRIBE/UNSUBSCRIBE stuck on a frozen Redis", () => {
  let redis: RedisServer;
  let broker: TestBroker;
  let publisher: MqttClient;
  before(async () => {
    redis = await startRedis();
    broker = await startTestBroker({ persistence: "memory", cluster: { redis: redis.url }, limits: { subscribeTimeoutMs: TIMEOUT_MS } });
    publisher = await connect(broker.url, { clientId: unique("publisher") });
  });
  after(async () => {
    redis.thaw();
    await end(publisher);
    await broker.stop();
    await redis.stop();
  });

  /** Freeze Redis for the duration of `fn`, thawing it whatever happens. */
  async function frozen<T>(fn: () => Promise<T>): Promise<T> {
    redis.freeze();
    try {
      return await fn();
    } finally {
      redis.thaw();
    }
  }

  /** Publish `topic` then `marker` (QoS 1); resolves with what `client` received before the marker. */
  async function receivedBefore(client: RawClient, topic: string, marker: string): Promise<string[]> {
    await publisher.publishAsync(topic, "late", { qos: 1 });
    await publisher.publishAsync(marker, "marker", { qos: 1 });
    for (;;) if ((await client.next("publish", WAIT_MS)).topic === marker) break;
    return client.packets.filter((p) => p.cmd === "publish" && p.topic !== marker).map((p) => p.topic!);
  }

  test("3.1.1 clean session: SUBACK 0x80, the PINGREQ behind it is answered, and the subscription never appears", async () => {
    const clientId = unique("c311");
    const { client } = await RawClient.connect(broker.port("tcp"), { clientId });
    const topic = unique("t");
    const before = broker.stats.limitRejections.subscribeTimeoutMs;
    const [suback, pingresp] = await frozen(async () => {
      client.write(chunk({ cmd: "subscribe", messageId: 7, subscriptions: [{ topic, qos: 1 }] }, { cmd: "pingreq" }));
      const s = await client.next("suback", WAIT_MS);
      return [s, await client.next("pingresp", WAIT_MS)] as [Packet, Packet];
    });
    assert.equal(suback.messageId, 7);
    assert.deepEqual(suback.granted, [0x80]);
    assert.equal(pingresp.cmd, "pingresp");
    assert.equal(broker.stats.limitRejections.subscribeTimeoutMs, before + 1);
    // Redis answers the stuck (P)SUBSCRIBE now: nothing of it may come back to life.
    const marker = unique("marker");
    client.write(chunk({ cmd: "subscribe", messageId: 8, subscriptions: [{ topic: marker, qos: 1 }] }));
    assert.deepEqual((await client.next("suback", WAIT_MS)).granted, [1]);
    assert.deepEqual(await receivedBefore(client, topic, marker), []);
    assert.deepEqual(liveSubscriptions(broker, clientId), [marker]);
    client.destroy();
  });

  test("3.1.1 re-SUBSCRIBE with another QoS that hangs: the old subscription stays as it was", async () => {
    const clientId = unique("resub");
    const { client } = await RawClient.connect(broker.port("tcp"), { clientId });
    const topic = unique("t");
    client.write(chunk({ cmd: "subscribe", messageId: 1, subscriptions: [{ topic: `${topic}/#`, qos: 0 }] }));
    assert.deepEqual((await client.next("suback", WAIT_MS)).granted, [0]);
    const suback = await frozen(async () => {
      client.write(chunk({ cmd: "subscribe", messageId: 2, subscriptions: [{ topic: `${topic}/#`, qos: 1 }] }));
      return client.next("suback", WAIT_MS);
    });
    assert.deepEqual(suback.granted, [0x80]);
    await publisher.publishAsync(`${topic}/x`, "after", { qos: 1 });
    const p = await client.next("publish", WAIT_MS);
    assert.equal(p.topic, `${topic}/x`);
    assert.equal(p.qos, 0, "still the QoS 0 subscription");
    client.destroy();
  });

  test("3.1.1 $share subscription (its group recorded in Redis) and a wildcard, in one SUBSCRIBE: 0x80 for both, neither appears", async () => {
    const clientId = unique("share");
    const { client } = await RawClient.connect(broker.port("tcp"), { clientId });
    const topic = unique("t");
    const suback = await frozen(async () => {
      client.write(chunk({ cmd: "subscribe", messageId: 3, subscriptions: [{ topic: `$share/g/${topic}`, qos: 1 }, { topic: `${topic}/+`, qos: 0 }] }));
      return client.next("suback", WAIT_MS);
    });
    assert.deepEqual(suback.granted, [0x80, 0x80]);
    const marker = unique("marker");
    client.write(chunk({ cmd: "subscribe", messageId: 4, subscriptions: [{ topic: marker, qos: 1 }] }));
    assert.deepEqual((await client.next("suback", WAIT_MS)).granted, [1]);
    await publisher.publishAsync(`${topic}/x`, "late", { qos: 1 });
    assert.deepEqual(await receivedBefore(client, topic, marker), []);
    assert.deepEqual(liveSubscriptions(broker, clientId), [marker]);
    client.destroy();
  });

  test("3.1.1 UNSUBSCRIBE that hangs: the connection is closed (its UNSUBACK cannot say it failed)", async () => {
    const clientId = unique("unsub311");
    const { client } = await RawClient.connect(broker.port("tcp"), { clientId });
    const topic = unique("t");
    client.write(chunk({ cmd: "subscribe", messageId: 1, subscriptions: [{ topic, qos: 0 }] }));
    await client.next("suback", WAIT_MS);
    await frozen(async () => {
      client.write(chunk({ cmd: "unsubscribe", messageId: 2, unsubscriptions: [topic] }));
      await waitFor(() => client.closed, "the connection to close", WAIT_MS);
    });
    assert.equal(client.packets.some((p) => p.cmd === "unsuback"), false, JSON.stringify(client.packets.map((p) => p.cmd)));
  });

  test("v5 persistent session: SUBACK 0x80, UNSUBACK 0x80, and the stored session is what it was before", async () => {
    const clientId = unique("c5");
    const keep = unique("keep");
    const topic = unique("t");
    const session = { clientId, clean: false, properties: { sessionExpiryInterval: 300 } };
    let { c } = await Raw5.connect(broker.port("tcp"), session);
    c.send({ cmd: "subscribe", messageId: 1, subscriptions: [{ topic: keep, qos: 1 }] });
    assert.deepEqual((await c.next("suback")).granted, [1]);
    const [suback, unsuback] = await frozen(async () => {
      c.sendRaw(
        Buffer.concat([
          generate5({ cmd: "subscribe", messageId: 2, subscriptions: [{ topic, qos: 1 }] }),
          generate5({ cmd: "unsubscribe", messageId: 3, unsubscriptions: [keep] }),
        ]),
      );
      const s = await c.next("suback");
      return [s, await c.next("unsuback")] as [Packet5, Packet5];
    });
    assert.deepEqual(suback.granted, [0x80], "0x80 Unspecified error");
    assert.deepEqual(unsuback.granted, [0x80]);
    // A SUBSCRIBE after the thaw: its store write waits behind the stuck ones and their repair.
    const marker = unique("marker");
    c.send({ cmd: "subscribe", messageId: 4, subscriptions: [{ topic: marker, qos: 1 }] });
    assert.deepEqual((await c.next("suback", (p) => p.messageId === 4)).granted, [1]);
    assert.deepEqual(liveSubscriptions(broker, clientId).sort(), [keep, marker].sort());
    c.destroy();
    await waitFor(() => clientOf(broker, clientId) === undefined, "the session to go away");
    // What the store holds (aedes-persistence-redis: one hash per session) is what comes back.
    const stored = await redis.client().hkeys(`client:${encodeURIComponent(clientId)}`);
    assert.deepEqual(stored.sort(), [keep, marker].sort());
    ({ c } = await Raw5.connect(broker.port("tcp"), session));
    await waitFor(() => liveSubscriptions(broker, clientId).length === 2, "the session's subscriptions to be restored");
    await publisher.publishAsync(topic, "not subscribed", { qos: 1 });
    await publisher.publishAsync(keep, "kept", { qos: 1 });
    const p = await c.next("publish");
    assert.equal(p.topic, keep);
    assert.equal(c.publishes().some((x) => x.topic === topic), false);
    c.destroy();
  });

  // Last: Redis comes back empty (its persistence is off in the tests).
  test("3.1.1 persistent session while Redis is down (commands wait in ioredis' offline queue): SUBACK 0x80, and when Redis is back the store does not keep it", async () => {
    const clientId = unique("offline");
    const { client } = await RawClient.connect(broker.port("tcp"), { clientId, clean: false });
    const topic = unique("t");
    await redis.down();
    try {
      client.write(chunk({ cmd: "subscribe", messageId: 5, subscriptions: [{ topic, qos: 1 }] }, { cmd: "pingreq" }));
      assert.deepEqual((await client.next("suback", WAIT_MS)).granted, [0x80]);
      await client.next("pingresp", WAIT_MS);
    } finally {
      await redis.up();
    }
    await waitFor(() => broker.cluster!.store.link.up, "the node's Redis link back");
    // A SUBSCRIBE after Redis is back: its store write lands after the stuck one and its repair.
    const marker = unique("marker");
    client.write(chunk({ cmd: "subscribe", messageId: 6, subscriptions: [{ topic: marker, qos: 1 }] }));
    assert.deepEqual((await client.next("suback", WAIT_MS)).granted, [1]);
    assert.deepEqual(await redis.client().hkeys(`client:${encodeURIComponent(clientId)}`), [marker]);
    assert.deepEqual(liveSubscriptions(broker, clientId), [marker]);
    client.destroy();
  });
});

describe("subscribeTimeoutMs in the config file", () => {
  test("a bad value is refused naming the key and the file", () => {
    const dir = tempDir("wasmq-subto-config-");
    const file = join(dir, "bad.json");
    writeFileSync(file, JSON.stringify({ limits: { subscribeTimeoutMs: -5 } }));
    try {
      assert.throws(() => loadConfig(file), (err: Error) => err instanceof ConfigError && err.message.includes("limits.subscribeTimeoutMs") && err.message.includes(file));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("default 10 s; 0 turns the deadline off", () => {
    const dir = tempDir("wasmq-subto-config-");
    const file = join(dir, "ok.json");
    try {
      writeFileSync(file, JSON.stringify({}));
      assert.equal(loadConfig(file).limits.subscribeTimeoutMs, 10_000);
      writeFileSync(file, JSON.stringify({ limits: { subscribeTimeoutMs: 0 } }));
      assert.equal(loadConfig(file).limits.subscribeTimeoutMs, 0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
