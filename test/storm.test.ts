// Hostile load that is not malformed: a burst of thousands of connects and
// disconnects, and subscribers that never read. The broker must come back to
// zero clients after the storm, keep a well-behaved client served throughout,
// and bound what it buffers for a client that does not read.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { collect, connect, end, startTestBroker, subscribe, type TestBroker } from "./helpers.js";
import { connectPacket, RawClient } from "./ops-raw-mqtt.js";

const STORM_CONNECTIONS = 3000;
const STORM_CONCURRENCY = 250;

function clientCount(broker: TestBroker): number {
  return (broker.aedes as unknown as { connectedClients: number }).connectedClients;
}

async function until(condition: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A well-behaved client publishing QoS 1 to itself every few ms until stopped; every message must come back. */
async function startProbe(broker: TestBroker, topic: string) {
  const client = await connect(broker.url, { clientId: `probe-${topic.replaceAll("/", "-")}` });
  const got = collect(client);
  await subscribe(client, topic, 1);
  let sent = 0;
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      await client.publishAsync(topic, String(sent), { qos: 1 });
      sent++;
      await new Promise((r) => setTimeout(r, 5));
    }
  })();
  return {
    async stop() {
      stopped = true;
      await loop;
      await got.waitFor(sent);
      return { sent, received: got.messages.map((m) => Number(m.payload.toString())), connected: client.connected, client };
    },
  };
}

describe("connection storm", { timeout: 120_000 }, () => {
  let broker: TestBroker;
  before(async () => {
    broker = await startTestBroker({ ws: false });
  });
  after(() => broker.stop());

  test(`${STORM_CONNECTIONS} connects and disconnects in a burst: all answered, the probe served throughout, back to zero clients`, async () => {
    const probe = await startProbe(broker, "storm/probe");
    let accepted = 0;
    let next = 0;
    const one = async (n: number) => {
      const c = await RawClient.open(broker.port("tcp"));
      c.write(connectPacket({ clientId: `storm-${n}`, clean: n % 3 !== 0 }));
      const connack = await c.next("connack", 10_000);
      if (connack.returnCode === 0) accepted++;
      // Half leave politely, half just drop the connection (and publish no will: none set).
      if (n % 2 === 0) c.write({ cmd: "disconnect" });
      c.destroy();
    };
    await Promise.all(
      Array.from({ length: STORM_CONCURRENCY }, async () => {
        while (next < STORM_CONNECTIONS) await one(next++);
      }),
    );
    assert.equal(accepted, STORM_CONNECTIONS);
    const result = await probe.stop();
    assert.ok(result.connected, "the probe stayed connected");
    assert.ok(result.sent > 0);
    assert.deepEqual(result.received, Array.from({ length: result.sent }, (_, i) => i), "every probe message arrived, in order");
    await end(result.client);
    await until(() => clientCount(broker) === 0 && broker.connections.open === 0, "the broker to drop every client");
    assert.ok(broker.stats.connectsAccepted >= STORM_CONNECTIONS + 1);
    assert.equal(broker.stats.protocolErrors, 0);
  });
});

describe("slow consumers", { timeout: 120_000 }, () => {
  /**
   * Each case floods a subscriber that never reads (its socket paused) past what
   * the kernel's socket buffers absorb, so the backlog builds up in the broker.
   * The configured limit that should trip first does; the backlog never grows past
   * it; a fast subscriber gets every message meanwhile.
   */
  const cases = [
    { limit: "maxQueuedBytes", limits: { queueLimit: 100_000, maxQueuedBytes: 1024 * 1024, drainTimeoutMs: 60_000 }, messages: 1000, size: 16 * 1024 },
    { limit: "queueLimit", limits: { queueLimit: 300, maxQueuedBytes: 256 * 1024 * 1024, drainTimeoutMs: 60_000 }, messages: 800, size: 32 * 1024 },
    { limit: "drainTimeoutMs", limits: { queueLimit: 100_000, maxQueuedBytes: 256 * 1024 * 1024, drainTimeoutMs: 300 }, messages: 500, size: 32 * 1024 },
  ] as const;

  for (const c of cases) {
    test(`${c.limit}: a subscriber that never reads is disconnected, its backlog stays bounded, others get every message`, async () => {
      const broker = await startTestBroker({ persistence: "memory", ws: false, limits: c.limits });
      try {
        const { client: slow } = await RawClient.connect(broker.port("tcp"), { clientId: "slow-reader" });
        slow.write({ cmd: "subscribe", messageId: 1, subscriptions: [{ topic: "flood/#", qos: 0 }] });
        await slow.next("suback");
        slow.socket.pause();

        const fast = await connect(broker.url, { clientId: "fast-reader" });
        const got = collect(fast);
        await subscribe(fast, "flood/#", 1);
        const publisher = await connect(broker.url, { clientId: "publisher" });

        let maxBuffered = 0;
        const clients = (broker.aedes as unknown as { clients: Record<string, { conn: { writableLength: number } }> }).clients;
        const sampler = setInterval(() => {
          const s = clients["slow-reader"];
          if (s) maxBuffered = Math.max(maxBuffered, s.conn.writableLength);
        }, 2);
        const payload = Buffer.alloc(c.size, 0x62);
        for (let i = 0; i < c.messages; i += 50) {
          await Promise.all(Array.from({ length: 50 }, (_, j) => publisher.publishAsync(`flood/${i + j}`, payload, { qos: 1 })));
        }
        await got.waitFor(c.messages, 30_000);
        await until(() => !clients["slow-reader"], "the slow reader to be disconnected");
        clearInterval(sampler);

        const rejections = broker.stats.limitRejections;
        assert.equal(rejections[c.limit], 1, JSON.stringify(rejections));
        assert.equal(rejections.queueLimit + rejections.maxQueuedBytes + rejections.drainTimeoutMs, 1, "one limit, once");
        if (c.limit === "maxQueuedBytes") {
          // Never more than the byte limit plus the message that crossed it (and its header).
          assert.ok(maxBuffered <= c.limits.maxQueuedBytes + c.size + 64, `buffered up to ${maxBuffered} bytes`);
        }
        if (c.limit === "queueLimit") assert.ok(maxBuffered <= (c.limits.queueLimit + 1) * (c.size + 64), `buffered up to ${maxBuffered} bytes`);
        assert.equal(new Set(got.messages.map((m) => m.topic)).size, c.messages, "the fast subscriber got every message");
        assert.ok(fast.connected && publisher.connected);
        slow.destroy();
        await end(fast, publisher);
      } finally {
        await broker.stop();
      }
    });
  }

  let broker: TestBroker;
  before(async () => {
    broker = await startTestBroker({ persistence: "memory", ws: false, limits: { queueLimit: 200, maxQueuedBytes: 1024 * 1024, drainTimeoutMs: 60_000 } });
  });
  after(() => broker.stop());

  test("a subscriber that reads slowly but keeps up is not disconnected", async () => {
    const { client: steady } = await RawClient.connect(broker.port("tcp"), { clientId: "steady-reader" });
    steady.write({ cmd: "subscribe", messageId: 1, subscriptions: [{ topic: "steady/#", qos: 0 }] });
    await steady.next("suback");
    const publisher = await connect(broker.url);
    const before = broker.stats.limitRejections.queueLimit + broker.stats.limitRejections.maxQueuedBytes;
    // Pause reading in short spells while 2 MB flow in bursts.
    const payload = Buffer.alloc(8 * 1024, 0x63);
    for (let burst = 0; burst < 8; burst++) {
      steady.socket.pause();
      await Promise.all(Array.from({ length: 32 }, (_, j) => publisher.publishAsync(`steady/${burst}/${j}`, payload, { qos: 1 })));
      steady.socket.resume();
      await new Promise((r) => setTimeout(r, 20));
    }
    await until(() => steady.packets.filter((p) => p.cmd === "publish").length === 8 * 32, "every message to reach the steady reader");
    assert.ok(await steady.alive());
    assert.equal(broker.stats.limitRejections.queueLimit + broker.stats.limitRejections.maxQueuedBytes, before);
    steady.destroy();
    await end(publisher);
  });
});
