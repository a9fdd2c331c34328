// limits.maxInflightOutbound: at most N QoS 1/2 messages are out to a client
// unacknowledged; the rest wait in order and go out as PUBACK / PUBCOMP come
// back. Watched on the wire with a raw client that acknowledges when told to.
import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { brokerForgot, CLI, collect, connect, connectCollecting, end, startTestBroker, subscribe, type TestBroker } from "./helpers.js";
import { RawClient, type Packet } from "./ops-raw-mqtt.js";

const publishes = (c: RawClient, prefix: string) => c.packets.filter((p) => p.cmd === "publish" && p.topic?.startsWith(prefix));
const payloads = (ps: Packet[]) => ps.map((p) => p.payload?.toString());
const run = promisify(execFile);
const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => `m${from + i}`);

async function rawSubscriber(broker: TestBroker, filters: { topic: string; qos: number }[], clientId?: string): Promise<RawClient> {
  const { client } = await RawClient.connect(broker.port("tcp"), clientId ? { clientId, clean: false } : {});
  client.write({ cmd: "subscribe", messageId: 1, subscriptions: filters });
  await client.next("suback");
  return client;
}

async function publishAll(broker: TestBroker, topic: string, list: string[], qos: 1 | 2): Promise<void> {
  const pub = await connect(broker.url);
  for (const p of list) await pub.publishAsync(topic, p, { qos });
  await end(pub);
}

/**
 * A QoS 0 message published after everything else and delivered through a
 * QoS 0 subscription, which the window never holds: once it has arrived,
 * whatever the window let through ahead of it has arrived too.
 */
async function probe(broker: TestBroker, raw: RawClient): Promise<void> {
  const seen = raw.packets.filter((p) => p.topic === "probe").length;
  const pub = await connect(broker.url);
  await pub.publishAsync("probe", "p", { qos: 0 });
  await pub.endAsync(); // a graceful DISCONNECT: the QoS 0 PUBLISH before it is handled
  for (let i = 0; i < 500 && raw.packets.filter((p) => p.topic === "probe").length === seen; i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(raw.packets.filter((p) => p.topic === "probe").length > seen, "the probe arrived");
}

async function waitForPublishes(raw: RawClient, prefix: string, count: number): Promise<Packet[]> {
  for (let i = 0; i < 500 && publishes(raw, prefix).length < count; i++) await new Promise((r) => setTimeout(r, 10));
  return publishes(raw, prefix);
}

describe("maxInflightOutbound", { timeout: 60_000 }, () => {
  let broker: TestBroker;
  after(() => broker?.stop());

  test("QoS 1: a client that does not acknowledge gets the window's worth, then one more per PUBACK, in order", async () => {
    broker = await startTestBroker({ persistence: "memory", limits: { maxInflightOutbound: 3 } });
    const raw = await rawSubscriber(broker, [
      { topic: "w/#", qos: 1 },
      { topic: "probe", qos: 0 },
    ]);
    await publishAll(broker, "w/a", range(0, 10), 1);
    await probe(broker, raw);
    assert.deepEqual(payloads(publishes(raw, "w/")), range(0, 3));

    raw.write({ cmd: "puback", messageId: publishes(raw, "w/")[0]!.messageId });
    assert.deepEqual(payloads(await waitForPublishes(raw, "w/", 4)), range(0, 4));
    await probe(broker, raw);
    assert.equal(publishes(raw, "w/").length, 4, "one PUBACK, one more message");

    for (const p of publishes(raw, "w/").slice(1)) raw.write({ cmd: "puback", messageId: p.messageId });
    await waitForPublishes(raw, "w/", 7);
    await probe(broker, raw);
    assert.deepEqual(payloads(publishes(raw, "w/")), range(0, 7));

    for (const p of publishes(raw, "w/").slice(4)) raw.write({ cmd: "puback", messageId: p.messageId });
    assert.deepEqual(payloads(await waitForPublishes(raw, "w/", 10)), range(0, 10));
    const ids = publishes(raw, "w/").map((p) => p.messageId);
    assert.equal(new Set(ids).size, 10, "distinct packet identifiers");
    raw.socket.destroy();
  });

  test("QoS 2: the slot frees at PUBCOMP, not at PUBREC", async () => {
    const raw = await rawSubscriber(broker, [
      { topic: "e/#", qos: 2 },
      { topic: "probe", qos: 0 },
    ]);
    await publishAll(broker, "e/a", range(0, 5), 2);
    await probe(broker, raw);
    assert.deepEqual(payloads(publishes(raw, "e/")), range(0, 3));

    const first = publishes(raw, "e/")[0]!.messageId;
    raw.write({ cmd: "pubrec", messageId: first });
    const pubrel = await raw.next("pubrel");
    assert.equal(pubrel.messageId, first);
    await probe(broker, raw);
    assert.equal(publishes(raw, "e/").length, 3, "PUBREC does not free the slot");

    raw.write({ cmd: "pubcomp", messageId: first });
    assert.deepEqual(payloads(await waitForPublishes(raw, "e/", 4)), range(0, 4));
    raw.socket.destroy();
  });

  test("the admin API and `wasmq admin clients` show what is in flight, waiting and stored per client", async () => {
    await broker.stop();
    broker = await startTestBroker({ metrics: { port: 0 }, limits: { maxInflightOutbound: 2 } });
    const raw = await rawSubscriber(broker, [{ topic: "a/#", qos: 1 }], "watched");
    await publishAll(broker, "a/x", range(0, 5), 1);
    await waitForPublishes(raw, "a/", 2);
    const res = await fetch(`${broker.admin!.url}/clients/watched`);
    const view = (await res.json()) as Record<string, unknown>;
    assert.deepEqual([view.inflightOut, view.waitingOut, view.storedMessages], [2, 3, 5], "2 sent, 3 waiting, all 5 in the session's store");
    const cli = await run(process.execPath, [CLI, "admin", "clients", "--url", broker.admin!.url]);
    assert.match(cli.stdout, /watched .* 2 \(\+3 waiting\)/);
    raw.write({ cmd: "puback", messageId: publishes(raw, "a/")[0]!.messageId });
    await waitForPublishes(raw, "a/", 3);
    const after = (await (await fetch(`${broker.admin!.url}/clients/watched`)).json()) as Record<string, unknown>;
    assert.deepEqual([after.inflightOut, after.waitingOut, after.storedMessages], [2, 2, 4]);
    raw.socket.destroy();
  });

  test("retained messages sent for a new subscription wait for the window without counting as a backlog", async () => {
    await broker.stop();
    broker = await startTestBroker({ persistence: "memory", limits: { maxInflightOutbound: 2, maxQueuedMessages: 3 } });
    const pub = await connect(broker.url);
    for (let i = 0; i < 10; i++) await pub.publishAsync(`kept/${i}`, `m${i}`, { qos: 1, retain: true });
    await end(pub);
    const raw = await rawSubscriber(broker, [
      { topic: "kept/#", qos: 1 },
      { topic: "probe", qos: 0 },
    ]);
    await waitForPublishes(raw, "kept/", 2);
    await probe(broker, raw);
    assert.equal(publishes(raw, "kept/").length, 2, "the window holds the rest back");
    assert.equal(raw.closed, false, "a subscriber to many retained messages is not a slow consumer");
    for (let acked = 0; acked < 10; acked++) {
      const next = publishes(raw, "kept/")[acked]!;
      raw.write({ cmd: "puback", messageId: next.messageId });
      await waitForPublishes(raw, "kept/", Math.min(10, acked + 3));
    }
    assert.deepEqual(payloads(publishes(raw, "kept/")).sort(), range(0, 10).sort());
    assert.ok(publishes(raw, "kept/").every((p) => p.retain), "sent with RETAIN set");
    raw.socket.destroy();
  });

  test("0 means no window: everything goes out unacknowledged", async () => {
    await broker.stop();
    broker = await startTestBroker({ persistence: "memory", limits: { maxInflightOutbound: 0 } });
    const raw = await rawSubscriber(broker, [{ topic: "u/#", qos: 1 }]);
    await publishAll(broker, "u/a", range(0, 10), 1);
    assert.deepEqual(payloads(await waitForPublishes(raw, "u/", 10)), range(0, 10));
    raw.socket.destroy();
  });

  test("a client that stops acknowledging is cut off past maxQueuedBytes held; what it was sent and held survives in its session", async () => {
    await broker.stop();
    broker = await startTestBroker({ limits: { maxInflightOutbound: 2, maxQueuedBytes: 100, maxQueuedMessages: 8 } });
    const raw = await rawSubscriber(broker, [{ topic: "s/#", qos: 1 }], "stuck");
    const padded = (list: string[]) => list.map((m) => m.padEnd(20, "."));
    // Two in flight; then 20-byte payloads wait until the sixth makes 120 > 100 bytes.
    await publishAll(broker, "s/a", padded(range(0, 8)), 1);
    await raw.waitClosed();
    assert.equal(broker.stats.limitRejections.maxQueuedBytes, 1);
    assert.deepEqual(payloads(publishes(raw, "s/")), padded(range(0, 2)), "only the window was sent");

    // Offline now, with eight stored: at maxQueuedMessages, new messages are not queued.
    await brokerForgot(broker, "stuck");
    await publishAll(broker, "s/a", padded(range(8, 10)), 1);
    assert.equal(broker.stats.limitRejections.maxQueuedMessages, 2);

    const { client: back, got } = await connectCollecting(broker.url, { clientId: "stuck", clean: false });
    await got.waitFor(8);
    await subscribe(back, "after", 1);
    await back.publishAsync("after", "p", { qos: 1 });
    await got.waitFor(9);
    assert.deepEqual(
      got.messages.map((m) => m.payload.toString()),
      [...padded(range(0, 8)), "p"],
    );
    await end(back);
  });

  test("messages waiting and no acknowledgement for drainTimeoutMs: disconnected; acknowledging keeps the client", async () => {
    await broker.stop();
    broker = await startTestBroker({ persistence: "memory", limits: { maxInflightOutbound: 1, drainTimeoutMs: 300 } });
    const polite = await rawSubscriber(broker, [{ topic: "d/#", qos: 1 }]);
    const silent = await rawSubscriber(broker, [{ topic: "d/#", qos: 1 }]);
    const pub = await connect(broker.url);
    for (let i = 0; i < 3; i++) {
      await pub.publishAsync("d/x", `m${i}`, { qos: 1 });
      const next = (await waitForPublishes(polite, "d/", i + 1))[i]!;
      polite.write({ cmd: "puback", messageId: next.messageId });
    }
    await silent.waitClosed();
    assert.equal(broker.stats.limitRejections.drainTimeoutMs, 1);
    assert.deepEqual(payloads(publishes(silent, "d/")), ["m0"], "the window's one message");
    assert.equal(polite.closed, false);
    await end(pub);
    polite.socket.destroy();
  });

  test("under load: five publishers, a window of 5, every message once and in each publisher's order", async () => {
    await broker.stop();
    broker = await startTestBroker({ persistence: "memory", limits: { maxInflightOutbound: 5 } });
    const sub = await connect(broker.url);
    const got = collect(sub);
    await subscribe(sub, "load/#", 1);
    const pubs = await Promise.all([0, 1, 2, 3, 4].map(() => connect(broker.url)));
    await Promise.all(
      pubs.map(async (pub, i) => {
        for (let n = 0; n < 100; n++) await pub.publishAsync(`load/${i}`, String(n), { qos: n % 3 === 0 ? 0 : 1 });
      }),
    );
    await got.waitFor(500);
    for (let i = 0; i < 5; i++) {
      const seq = got.messages.filter((m) => m.topic === `load/${i}`).map((m) => Number(m.payload.toString()));
      assert.deepEqual(
        seq.filter((n) => n % 3 !== 0),
        Array.from({ length: 100 }, (_, n) => n).filter((n) => n % 3 !== 0),
        `QoS 1 messages of publisher ${i}`,
      );
      assert.equal(seq.length, 100, `all of publisher ${i}`);
    }
    await end(sub, ...pubs);
  });
});
