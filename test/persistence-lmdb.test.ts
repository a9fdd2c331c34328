/**
 * LMDB persistence beyond the abstract suite: restart durability, kill -9 of a
 * writer process, retained/queue expiry, and aedes end to end (persistent
 * session across a broker restart). Open errors and the plugin KV store:
 * persistence-lmdb-open.test.ts.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { writeFileSync } from "node:fs";
import net from "node:net";
import path from "node:path";
import { after, describe, test } from "node:test";
import { fileURLToPath, pathToFileURL } from "node:url";
import { Aedes } from "aedes";
import mqtt from "mqtt";
import { createLmdbPersistence, setQueueExpiry, setRetainedExpiry } from "../broker/persistence/lmdb.js";
import { createMemoryPersistence } from "../broker/persistence/memory.js";
import { freshDir, broker, openP, close, list, pub, base, nextId } from "./lmdb-support.js";

describe("restart durability", () => {
  test("retained, subscriptions, queues, in-flight ids, incoming QoS 2 and wills survive close + reopen", async () => {
    const dir = freshDir();
    const binary = Buffer.from([0, 1, 2, 0xff, 0xfe, 0x80]);
    let p = await openP(dir);
    const clientA = { id: "client-a" };
    const clientB = { id: "client-b" };

    await p.storeRetained({ cmd: "publish", topic: "sensors/1/temp", payload: binary, qos: 1, retain: true });
    await p.storeRetained({ cmd: "publish", topic: "sensors/2/temp", payload: Buffer.from("21"), qos: 0, retain: true });
    await p.storeRetained({ cmd: "publish", topic: "$SYS/x", payload: Buffer.from("sys"), qos: 0, retain: true });
    await p.addSubscriptions(clientA, [
      { topic: "sensors/+/temp", qos: 1 },
      { topic: "alerts/#", qos: 2 },
      { topic: "noqos", qos: 0 },
    ]);
    await p.addSubscriptions(clientB, [{ topic: "sensors/#", qos: 1, subscriptionIdentifier: 7 }]);

    const packets = [pub("sensors/1/temp", binary), pub("sensors/1/temp", "two"), pub("sensors/1/temp", "three")];
    for (const pk of packets) await p.outgoingEnqueueCombi([{ clientId: clientA.id }, { clientId: clientB.id }], pk);
    // the first one is in flight to A with messageId 17
    await p.outgoingUpdate(clientA, { ...packets[0], messageId: 17 });
    await p.incomingStorePacket(clientA, { cmd: "publish", topic: "in/q2", payload: Buffer.from("q2"), qos: 2, messageId: 99 });
    await p.putWill(clientA, { cmd: "publish", topic: "wills/a", payload: Buffer.from("bye"), qos: 1, retain: false });
    await close(p);

    p = await openP(dir);
    const retained = await list(p.createRetainedStreamCombi(["sensors/#"]));
    assert.deepEqual(retained.map((r) => r.topic).sort(), ["sensors/1/temp", "sensors/2/temp"]);
    const r1 = retained.find((r) => r.topic === "sensors/1/temp")!;
    assert.ok(Buffer.isBuffer(r1.payload), "retained payload is a Buffer");
    assert.deepEqual(r1.payload, binary);
    assert.equal((await list(p.createRetainedStream("#"))).length, 2, "# does not match $SYS topics");
    assert.equal((await list(p.createRetainedStream("$SYS/#"))).length, 1);

    const byTopic = (await p.subscriptionsByTopic("sensors/1/temp")) as Array<{ clientId: string; qos: number }>;
    assert.deepEqual(byTopic.map((s) => `${s.clientId}:${s.qos}`).sort(), ["client-a:1", "client-b:1"]);
    assert.deepEqual(await p.countOffline(), { subsCount: 3, clientsCount: 2 });
    const subsA = (await p.subscriptionsByClient(clientA)) as Array<{ topic: string; qos: number }>;
    assert.deepEqual(subsA.map((s) => `${s.topic}:${s.qos}`).sort(), ["alerts/#:2", "noqos:0", "sensors/+/temp:1"]);
    const subsB = (await p.subscriptionsByClient(clientB)) as Array<{ subscriptionIdentifier?: number }>;
    assert.equal(subsB[0]!.subscriptionIdentifier, 7);

    const queueA = await list(p.outgoingStream(clientA));
    assert.equal(queueA.length, 3);
    assert.deepEqual(queueA.map((q) => q.brokerCounter), packets.map((pk) => pk.brokerCounter), "queue order kept");
    assert.equal(queueA[0]!.messageId, 17, "in-flight messageId kept");
    assert.equal(queueA[0]!.brokerId, "broker-1");
    assert.ok(Buffer.isBuffer(queueA[0]!.payload));
    assert.deepEqual(queueA[0]!.payload, binary);
    assert.equal(String(queueA[1]!.payload), "two");
    assert.equal((await list(p.outgoingStream(clientB))).length, 3);

    // enqueue after restart appends after the existing entries
    const later = pub("sensors/1/temp", "four");
    await p.outgoingEnqueue({ clientId: clientA.id }, later);
    const queueA2 = await list(p.outgoingStream(clientA));
    assert.deepEqual(queueA2.map((q) => String(q.payload)).slice(1), ["two", "three", "four"]);
    const cleared = (await p.outgoingClearMessageId(clientA, { messageId: 17 })) as { payload: Buffer };
    assert.deepEqual(cleared.payload, binary);
    assert.equal((await list(p.outgoingStream(clientA))).length, 3);

    const incoming = (await p.incomingGetPacket(clientA, { messageId: 99 })) as { topic: string; payload: Buffer };
    assert.equal(incoming.topic, "in/q2");
    assert.ok(Buffer.isBuffer(incoming.payload));
    const will = (await p.getWill(clientA)) as { topic: string; brokerId: string; clientId: string };
    assert.equal(will.topic, "wills/a");
    assert.equal(will.brokerId, "broker-1");
    assert.equal(will.clientId, "client-a");
    assert.equal((await list(p.streamWill({}))).length, 1);
    assert.equal((await list(p.streamWill({ "broker-1": Date.now() }))).length, 0);

    // removals survive too
    await p.removeSubscriptions(clientA, ["alerts/#"]);
    await p.cleanSubscriptions(clientB);
    await p.cleanIncoming(clientA);
    await p.delWill(clientA);
    await p.storeRetained({ cmd: "publish", topic: "sensors/2/temp", payload: Buffer.alloc(0), qos: 0, retain: true });
    await close(p);

    p = await openP(dir);
    assert.deepEqual(await p.countOffline(), { subsCount: 1, clientsCount: 1 });
    assert.deepEqual((await p.subscriptionsByTopic("sensors/1/temp") as unknown[]).length, 1);
    await assert.rejects(p.incomingGetPacket(clientA, { messageId: 99 }) as Promise<unknown>);
    assert.equal(await p.getWill(clientA), undefined);
    assert.deepEqual((await list(p.createRetainedStream("#"))).map((r) => r.topic), ["sensors/1/temp"]);
    assert.equal((await list(p.outgoingStream(clientA))).length, 3);
    await close(p);
  });

  test("long client ids and topics (hashed keys) round-trip", async () => {
    const dir = freshDir();
    let p = await openP(dir);
    const client = { id: "c".repeat(3000) };
    const longTopic = "t/" + "x".repeat(4000);
    await p.addSubscriptions(client, [{ topic: longTopic, qos: 1 }]);
    await p.storeRetained({ cmd: "publish", topic: longTopic, payload: Buffer.from("long"), qos: 0, retain: true });
    await p.outgoingEnqueue({ clientId: client.id }, pub(longTopic, "q"));
    await close(p);
    p = await openP(dir);
    assert.deepEqual(await p.getClientList(longTopic).toArray(), [client.id]);
    assert.equal((await p.subscriptionsByTopic(longTopic) as unknown[]).length, 1);
    assert.equal((await list(p.createRetainedStream("t/+"))).length, 1, "hashed retained keys are found by wildcards");
    assert.equal((await list(p.createRetainedStream(longTopic))).length, 1);
    assert.equal((await list(p.outgoingStream(client))).length, 1);
    await close(p);
  });

  test("a client id that extends another's is isolated (key prefixes)", async () => {
    const p = await openP(freshDir());
    await p.outgoingEnqueue({ clientId: "abc" }, pub("a", "1"));
    await p.outgoingEnqueue({ clientId: "abcd" }, pub("a", "2"));
    await p.addSubscriptions({ id: "abc" }, [{ topic: "x", qos: 1 }]);
    await p.addSubscriptions({ id: "abcd" }, [{ topic: "x", qos: 1 }]);
    await p.cleanSubscriptions({ id: "abc" });
    assert.equal((await list(p.outgoingStream({ id: "abc" }))).length, 1);
    assert.equal((await list(p.outgoingStream({ id: "abcd" }))).length, 1);
    assert.deepEqual(await p.getClientList("x").toArray(), ["abcd"]);
    await close(p);
  });
});

describe("kill -9", () => {
  for (const durability of ["sync", "async"] as const) {
    test(`every acknowledged write survives SIGKILL of the writer (durability ${durability})`, async () => {
      const dir = freshDir();
      const lmdbUrl = pathToFileURL(path.join(path.dirname(fileURLToPath(import.meta.url)), "../broker/persistence/lmdb.js")).href;
      const script = path.join(base, `writer-${nextId()}.mjs`);
      writeFileSync(
        script,
        `import { createLmdbPersistence } from ${JSON.stringify(lmdbUrl)};
const p = createLmdbPersistence({ path: ${JSON.stringify(dir)}, durability: ${JSON.stringify(durability)}, sweepIntervalMs: 0 });
const broker = { id: "b", counter: 0 };
await p.setup(broker);
await p.addSubscriptions({ id: "dev" }, [{ topic: "t", qos: 1 }]);
for (let i = 1; ; i++) {
  const packet = { cmd: "publish", topic: "t", payload: Buffer.from("m" + i), qos: 1, retain: false, brokerId: "b", brokerCounter: i };
  // several writers in the same turn, like concurrent clients
  await Promise.all([
    p.outgoingEnqueueCombi([{ clientId: "dev" }], packet),
    p.storeRetained({ ...packet, retain: true, topic: "r/" + (i % 50) }),
  ]);
  process.stdout.write("ack " + i + "\\n");
}
`,
      );
      const child = spawn(process.execPath, [script], { stdio: ["ignore", "pipe", "inherit"] });
      let acked = 0;
      let buffered = "";
      child.stdout.setEncoding("utf8");
      child.stdout.on("data", (chunk: string) => {
        buffered += chunk;
        const lines = buffered.split("\n");
        buffered = lines.pop()!;
        for (const line of lines) if (line.startsWith("ack ")) acked = Number(line.slice(4));
        if (acked >= 150 && child.exitCode === null && !child.killed) child.kill("SIGKILL");
      });
      const [code, signal] = (await once(child, "exit")) as [number | null, string | null];
      assert.equal(signal, "SIGKILL", `writer exited with code ${code}`);
      assert.ok(acked >= 150);

      const p = await openP(dir);
      const queue = await list(p.outgoingStream({ id: "dev" }));
      assert.ok(queue.length >= acked, `${queue.length} queued < ${acked} acknowledged`);
      for (let i = 1; i <= acked; i++) assert.equal(String(queue[i - 1]!.payload), "m" + i, "acknowledged messages in order");
      assert.deepEqual(await p.countOffline(), { subsCount: 1, clientsCount: 1 });
      const retained = await list(p.createRetainedStream("r/+"));
      assert.equal(retained.length, 50);
      await close(p);
    });
  }
});

describe("expiry (persist-hook TTL)", () => {
  test("expired retained messages are not delivered, purged on read and by the sweep", async () => {
    const dir = freshDir();
    let p = await openP(dir);
    const now = Date.now();
    const stale = { cmd: "publish", topic: "ttl/stale", payload: Buffer.from("old"), qos: 0, retain: true };
    setRetainedExpiry(stale, now - 1);
    const soon = { cmd: "publish", topic: "ttl/soon", payload: Buffer.from("soon"), qos: 0, retain: true };
    setRetainedExpiry(soon, now + 60_000);
    const forever = { cmd: "publish", topic: "ttl/forever", payload: Buffer.from("x"), qos: 0, retain: true };
    const viaField = { cmd: "publish", topic: "ttl/field", payload: Buffer.from("f"), qos: 0, retain: true, messageExpiry: now - 5 };
    // overwritten without TTL: the old TTL must not delete the new value
    const rewritten1 = { cmd: "publish", topic: "ttl/rewritten", payload: Buffer.from("1"), qos: 0, retain: true };
    setRetainedExpiry(rewritten1, now + 1_000);
    for (const pk of [stale, soon, forever, viaField, rewritten1]) await p.storeRetained(pk);
    await p.storeRetained({ cmd: "publish", topic: "ttl/rewritten", payload: Buffer.from("2"), qos: 0, retain: true });

    const topics = async () => (await list(p.createRetainedStream("ttl/#"))).map((r) => r.topic).sort();
    assert.deepEqual(await topics(), ["ttl/forever", "ttl/rewritten", "ttl/soon"]);
    // purge on read happened: the records are gone from LMDB
    await p.root.flushed;
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(p.asyncPersistence.dbs.retained.getKeysCount(), 3, "stale + field-expired purged");

    const swept = await p.sweepExpired(now + 120_000);
    assert.deepEqual(swept, { retained: 1, queued: 0 });
    assert.deepEqual(await topics(), ["ttl/forever", "ttl/rewritten"]);
    assert.equal(p.asyncPersistence.dbs.retainedTtl.getKeysCount(), 0, "ttl index cleaned");

    // an expiry survives a restart
    const later = { cmd: "publish", topic: "ttl/later", payload: Buffer.from("l"), qos: 0, retain: true };
    setRetainedExpiry(later, now + 1_000);
    await p.storeRetained(later);
    await close(p);
    p = await openP(dir);
    assert.deepEqual(await p.sweepExpired(now + 2_000), { retained: 1, queued: 0 });
    assert.deepEqual(await topics(), ["ttl/forever", "ttl/rewritten"]);
    await close(p);
  });

  test("expired queued messages are not delivered and are purged; in-flight ones are kept", async () => {
    const dir = freshDir();
    let p = await openP(dir);
    const client = { id: "offline" };
    const now = Date.now();
    const expired = pub("q", "expired");
    setQueueExpiry(expired, now - 1);
    const fresh = pub("q", "fresh");
    const inflight = pub("q", "inflight");
    setQueueExpiry(inflight, now - 1);
    const later = pub("q", "later");
    setQueueExpiry(later, now + 1_000);
    for (const pk of [expired, fresh, inflight, later]) await p.outgoingEnqueueCombi([{ clientId: client.id }], pk);
    await p.outgoingUpdate(client, { ...inflight, messageId: 5 }); // delivery started

    const payloads = async () => (await list(p.outgoingStream(client))).map((q) => String(q.payload));
    assert.deepEqual(await payloads(), ["fresh", "inflight", "later"]);
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(p.asyncPersistence.dbs.outgoing.getKeysCount(), 3, "expired entry purged from LMDB");
    await close(p);

    // sweep reaches queues of clients that are not loaded in memory
    p = await openP(dir);
    assert.deepEqual(await p.sweepExpired(now + 2_000), { retained: 0, queued: 1 });
    assert.deepEqual(await payloads(), ["fresh", "inflight"]);
    assert.equal(p.asyncPersistence.dbs.outgoingTtl.getKeysCount(), 0);
    await close(p);
  });

  test("sweep updates loaded queues and the periodic timer does not hold the process", async () => {
    const p = await openP(freshDir(), { sweepIntervalMs: 10 });
    const client = { id: "loaded" };
    const pk = pub("q", "x");
    const expiresAt = Date.now() + 300;
    setQueueExpiry(pk, expiresAt);
    await p.outgoingEnqueue({ clientId: client.id }, pk);
    if (Date.now() < expiresAt) assert.equal((await list(p.outgoingStream(client))).length, 1);
    // The periodic sweep (not a read) must purge it: wait for that, however loaded the machine.
    const deadline = Date.now() + 20_000;
    while (p.asyncPersistence.dbs.outgoing.getKeysCount() > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.equal(p.asyncPersistence.dbs.outgoing.getKeysCount(), 0);
    assert.equal((await list(p.outgoingStream(client))).length, 0);
    await close(p);
  });

  test("memory mode honours the same helpers", async () => {
    const p = createMemoryPersistence({ sweepIntervalMs: 0 });
    await p.setup(broker);
    const now = Date.now();
    const stale = { cmd: "publish", topic: "m/stale", payload: Buffer.from("old"), qos: 0, retain: true };
    setRetainedExpiry(stale, now - 1);
    const soon = { cmd: "publish", topic: "m/soon", payload: Buffer.from("soon"), qos: 0, retain: true };
    setRetainedExpiry(soon, now + 50_000);
    await p.storeRetained(stale);
    await p.storeRetained(soon);
    assert.deepEqual((await list(p.createRetainedStreamCombi(["m/#"]))).map((r) => r.topic), ["m/soon"]);
    assert.deepEqual(await p.sweepExpired(now + 60_000), { retained: 1, queued: 0 });
    assert.deepEqual(await list(p.createRetainedStream("m/#")), []);

    const client = { id: "mem" };
    const expired = pub("q", "expired");
    setQueueExpiry(expired, now - 1);
    await p.outgoingEnqueueCombi([{ clientId: client.id }], expired);
    await p.outgoingEnqueueCombi([{ clientId: client.id }], pub("q", "fresh"));
    assert.deepEqual((await list(p.outgoingStream(client))).map((q) => String(q.payload)), ["fresh"]);
    assert.deepEqual((await list(p.outgoingStream(client))).map((q) => String(q.payload)), ["fresh"], "purged, not resurrected");
    await p.destroy();
  });
});

describe("aedes end to end", () => {
  async function startBroker(dir: string) {
    const persistence = createLmdbPersistence({ path: dir, sweepIntervalMs: 0 });
    const aedes = await Aedes.createBroker({ persistence, id: "wasmq-test" });
    const server = net.createServer(aedes.handle);
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    const port = (server.address() as net.AddressInfo).port;
    // aedes emits 'publish' once a message went through storeRetained,
    // enqueueOffline and routing; aedes.close() does not wait for that.
    const published = (topic: string) =>
      new Promise<void>((resolve) => {
        const onPublish = (packet: { topic: string }) => {
          if (packet.topic === topic) {
            aedes.off("publish", onPublish);
            resolve();
          }
        };
        aedes.on("publish", onPublish);
      });
    const stop = async () => {
      await new Promise<void>((r) => aedes.close(() => r()));
      await new Promise<void>((r) => server.close(() => r()));
      await persistence.destroy();
    };
    return { port, stop, published };
  }

  test("a persistent session's subscription and offline QoS 1 message survive a broker restart", async (t) => {
    const dir = freshDir();
    const clients: mqtt.MqttClient[] = [];
    let running: { stop(): Promise<void> } | undefined;
    t.after(async () => {
      for (const c of clients) c.end(true);
      await running?.stop();
    });
    let b1 = await startBroker(dir);
    running = b1;
    const url = () => `mqtt://127.0.0.1:${b1.port}`;
    const sub = await mqtt.connectAsync(url(), { clientId: "sub-1", clean: false, reconnectPeriod: 0 });
    clients.push(sub);
    await sub.subscribeAsync("fleet/+/status", { qos: 1 });
    await sub.endAsync();

    const pubber = await mqtt.connectAsync(url(), { clientId: "pub-1", reconnectPeriod: 0 });
    clients.push(pubber);
    // aedes 1.2 sends a QoS 1 PUBACK before it persists the message, so wait
    // for the broker to finish the publish before shutting it down
    const routed = Promise.all([b1.published("fleet/7/status"), b1.published("fleet/8/status")]);
    await pubber.publishAsync("fleet/7/status", Buffer.from([1, 2, 3]), { qos: 1 });
    await pubber.publishAsync("fleet/8/status", "retained!", { qos: 1, retain: true });
    await routed;
    await pubber.endAsync();
    running = undefined;
    await b1.stop();

    b1 = await startBroker(dir);
    running = b1;
    const received: Array<{ topic: string; payload: Buffer }> = [];
    const sub2 = mqtt.connect(url(), { clientId: "sub-1", clean: false, reconnectPeriod: 0 });
    clients.push(sub2);
    await new Promise<void>((resolve, reject) => {
      sub2.on("message", (topic, payload) => {
        received.push({ topic, payload });
        if (received.length === 2) resolve();
      });
      sub2.once("error", reject);
    });
    assert.deepEqual(received.map((r) => r.topic).sort(), ["fleet/7/status", "fleet/8/status"]);
    assert.deepEqual(received.find((r) => r.topic === "fleet/7/status")!.payload, Buffer.from([1, 2, 3]));
    await sub2.endAsync();

    // the retained message is delivered to a new subscriber
    const fresh = await mqtt.connectAsync(url(), { clientId: "fresh", reconnectPeriod: 0 });
    clients.push(fresh);
    const retainedMsg = new Promise<{ topic: string; retain: boolean }>((resolve) =>
      fresh.on("message", (topic, _payload, packet) => resolve({ topic, retain: packet.retain })),
    );
    await fresh.subscribeAsync("fleet/#", { qos: 1 });
    assert.deepEqual(await retainedMsg, { topic: "fleet/8/status", retain: true });
    await fresh.endAsync();
  });
});
