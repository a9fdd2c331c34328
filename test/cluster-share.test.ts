/**
 * Issue #13, `$share/{group}/{filter}` across a cluster: each message reaches
 * ONE member of the group in the whole cluster ([MQTT-4.8.2]), round robin
 * over the members of every node; persistent members that are away queue QoS
 * 1/2 messages; a node killed mid-stream loses nothing for persistent members;
 * Redis unreachable degrades to this node's own members. Real redis-server,
 * broker processes through the CLI, mqtt.js clients (3.1.1 and 5) and
 * mosquitto_sub.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { after, afterEach, before, describe, test } from "node:test";
import type { MqttClient } from "mqtt";
import { connect, connectCollecting, end, scratchDir, subscribe } from "./helpers.js";
import { startNode, startRedis, stopAllNodes, waitFor, type Node, type RedisServer } from "./cluster-support.js";
import { outgoingKey } from "../broker/persistence/redis.js";

type Collected = Awaited<ReturnType<typeof connectCollecting>>;

/** Until every node routes the group and Redis records `members` members of it. */
async function groupReady(nodes: Node[], redis: RedisServer, group: string, members: number): Promise<void> {
  const r = redis.client();
  // Generous: after a Redis outage the nodes reconnect with a backoff of up to 5 s, and this machine is shared.
  await waitFor(async () => (await r.hlen(`wasmq:share:m:${group}`)) === members, `${members} member(s) of ${group} recorded in Redis`, 30_000);
  for (const n of nodes) {
    await waitFor(async () => {
      const view = await n.api<{ shared: { groups: { topic: string }[] } }>("/cluster");
      return view.body.shared.groups.some((g) => g.topic === group);
    }, `node ${n.id} to route ${group}`, 30_000);
  }
}

async function publishAll(pub: MqttClient, topic: string, count: number, qos: 0 | 1 | 2, prefix = ""): Promise<string[]> {
  const sent: string[] = [];
  for (let i = 0; i < count; i++) {
    await pub.publishAsync(topic, `${prefix}${i}`, { qos });
    sent.push(`${prefix}${i}`);
  }
  return sent;
}

const payloads = (c: Collected) => c.got.messages.map((m) => m.payload.toString());

/** Wait until the members together received `expected` messages, then check nothing more trickles in (a round trip on each member's node). */
async function exactly(members: Collected[], expected: string[]): Promise<void> {
  const all = () => members.flatMap(payloads);
  await waitFor(() => all().length >= expected.length, `${expected.length} deliveries (got ${all().length})`, 30_000);
  for (const m of members) await m.client.publishAsync("share-test/flush", "", { qos: 1 });
  assert.deepEqual(all().sort(), [...expected].sort(), "each message once, in the whole cluster");
}

describe("$share groups across three nodes", () => {
  let redis: RedisServer;
  let a: Node, b: Node, c: Node;
  before(async () => {
    redis = await startRedis();
    [a, b, c] = await Promise.all(["a", "b", "c"].map((id) => startNode(redis, id)));
  });
  after(async () => {
    await stopAllNodes();
    await redis.stop();
  });

  test("one member per node: 30 QoS 1 messages → 30 deliveries, 10 to each member (3.1.1 and v5 members)", async () => {
    const members = await Promise.all([
      connectCollecting(a.url, { clientId: "w-a" }),
      connectCollecting(b.url, { clientId: "w-b", protocolVersion: 5 }),
      connectCollecting(c.url, { clientId: "w-c" }),
    ]);
    for (const m of members) await subscribe(m.client, "$share/workers/jobs/+", 1);
    await groupReady([a, b, c], redis, "$share/workers/jobs/+", 3);
    const pub = await connect(a.url, { clientId: "job-source" });
    const sent = await publishAll(pub, "jobs/x", 30, 1);
    await exactly(members, sent);
    // Round robin over the members of every node, not "the publisher's node first".
    assert.deepEqual(members.map((m) => payloads(m).length), [10, 10, 10]);
    await end(pub, ...members.map((m) => m.client));
  });

  test("QoS 0 and QoS 2 are delivered once per group too; two groups on one filter each get every message", async () => {
    const g1 = await Promise.all([connectCollecting(a.url, {}), connectCollecting(b.url, { protocolVersion: 5 })]);
    const g2 = await Promise.all([connectCollecting(b.url, {}), connectCollecting(c.url, {})]);
    for (const m of g1) await subscribe(m.client, "$share/one/multi/#", 2);
    for (const m of g2) await subscribe(m.client, "$share/two/multi/#", 2);
    await groupReady([a, b, c], redis, "$share/one/multi/#", 2);
    await groupReady([a, b, c], redis, "$share/two/multi/#", 2);
    const pub = await connect(c.url, { protocolVersion: 5 });
    const sent = [...(await publishAll(pub, "multi/q0", 10, 0, "z")), ...(await publishAll(pub, "multi/q2", 10, 2, "t"))];
    await exactly(g1, sent);
    await exactly(g2, sent);
    for (const m of [...g1, ...g2]) assert.ok(payloads(m).length > 0, "both members of each group get a share");
    await end(pub, ...[...g1, ...g2].map((m) => m.client));
  });

  test("members on one node only: messages published on the other nodes reach them, once each", async () => {
    const members = await Promise.all([connectCollecting(b.url, {}), connectCollecting(b.url, { protocolVersion: 5 })]);
    for (const m of members) await subscribe(m.client, "$share/onlyb/solo/#", 1);
    await groupReady([a, b, c], redis, "$share/onlyb/solo/#", 2);
    const pubs = await Promise.all([connect(a.url), connect(c.url)]);
    const sent = [...(await publishAll(pubs[0]!, "solo/1", 10, 1, "a")), ...(await publishAll(pubs[1]!, "solo/2", 10, 1, "c"))];
    await exactly(members, sent);
    assert.deepEqual(members.map((m) => payloads(m).length), [10, 10]);
    await end(...pubs, ...members.map((m) => m.client));
  });

  test("a mosquitto_sub member and an mqtt.js member on different nodes share the messages exactly once", async () => {
    const child = spawn("mosquitto_sub", ["-h", "127.0.0.1", "-p", String(c.port), "-V", "mqttv5", "-q", "1", "-t", "$share/mixed/mix/#", "-i", "mosq-member"], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (out += d));
    try {
      const js = await connectCollecting(a.url, { clientId: "js-member" });
      await subscribe(js.client, "$share/mixed/mix/#", 1);
      await groupReady([a, b, c], redis, "$share/mixed/mix/#", 2);
      const pub = await connect(b.url);
      const sent = await publishAll(pub, "mix/m", 20, 1, "m");
      const lines = () => out.split("\n").filter(Boolean);
      await waitFor(() => lines().length + payloads(js).length >= 20, "20 deliveries to the two members");
      await js.client.publishAsync("share-test/flush", "", { qos: 1 });
      assert.deepEqual([...lines(), ...payloads(js)].sort(), [...sent].sort());
      assert.equal(lines().length, 10);
      await end(pub, js.client);
    } finally {
      child.kill();
    }
  });

  test("no member connected anywhere: QoS 1 messages queue for an away persistent member, which gets them on another node", async () => {
    const member = await connectCollecting(b.url, { clientId: "away-member", clean: false });
    await subscribe(member.client, "$share/later/later/#", 1);
    await groupReady([a, b, c], redis, "$share/later/later/#", 1);
    await end(member.client);
    const r = redis.client();
    await waitFor(async () => (await r.hget("wasmq:share:m:$share/later/later/#", "away-member"))?.startsWith("A ") ?? false, "the member recorded as away");
    const pub = await connect(a.url);
    const sent = await publishAll(pub, "later/x", 10, 1);
    // each PUBACK came after the member's queue had the message (the node's own routing is waited for, not only Redis' reply)
    assert.equal(await r.llen(outgoingKey("away-member")), 10);
    await publishAll(pub, "later/x", 5, 0, "lost"); // QoS 0 for nobody connected: dropped, as on a single node
    const back = await connectCollecting(c.url, { clientId: "away-member", clean: false });
    await waitFor(() => payloads(back).length >= 10, "the queued messages on reconnect");
    await back.client.publishAsync("share-test/flush", "", { qos: 1 });
    assert.deepEqual(payloads(back).sort(), [...sent].sort());
    // Back on c it is a connected member again: live traffic reaches it through c.
    await groupReady([a, b, c], redis, "$share/later/later/#", 1);
    await pub.publishAsync("later/x", "live", { qos: 1 });
    await waitFor(() => payloads(back).includes("live"), "a live message after the return");
    await end(pub, back.client);
  });

  test("a member that unsubscribes, and a clean member that disconnects, leave the group everywhere", async () => {
    const stay = await connectCollecting(a.url, { clientId: "stays" });
    const quits = await connectCollecting(b.url, { clientId: "quits" });
    const drops = await connectCollecting(c.url, { clientId: "drops" });
    for (const m of [stay, quits, drops]) await subscribe(m.client, "$share/shrink/shrink/#", 1);
    await groupReady([a, b, c], redis, "$share/shrink/shrink/#", 3);
    await quits.client.unsubscribeAsync("$share/shrink/shrink/#");
    await end(drops.client);
    await groupReady([a, b, c], redis, "$share/shrink/shrink/#", 1);
    const pub = await connect(b.url);
    const sent = await publishAll(pub, "shrink/x", 10, 1);
    await exactly([stay, quits], sent);
    assert.equal(payloads(stay).length, 10);
    await end(pub, stay.client, quits.client);
  });
});

describe("$share groups under failure", () => {
  let redis: RedisServer;
  afterEach(async () => {
    await stopAllNodes();
    await redis?.stop();
  });

  test("kill -9 of a member's node mid-stream: every acknowledged QoS 1 message reaches a member (persistent members)", async (t) => {
    redis = await startRedis();
    const FAST = { heartbeatMs: 300, willDelayMs: 2000 };
    const [a, b, c] = await Promise.all(["a", "b", "c"].map((id) => startNode(redis, id, { cluster: FAST })));
    const onB = await connectCollecting(b!.url, { clientId: "member-b", clean: false });
    const onC = await connectCollecting(c!.url, { clientId: "member-c", clean: false, protocolVersion: 5, properties: { sessionExpiryInterval: 3600 } });
    for (const m of [onB, onC]) await subscribe(m.client, "$share/crash/crash/#", 1);
    await groupReady([a!, b!, c!], redis, "$share/crash/crash/#", 2);
    const pub = await connect(a!.url, { clientId: "crash-source" });
    const acked = new Set<string>();
    for (let i = 0; i < 300; i++) {
      await pub.publishAsync("crash/x", String(i), { qos: 1 });
      acked.add(String(i));
      // Frozen first, so messages chosen for member-c may still be waiting in c's Redis list when it dies.
      if (i === 100) c!.child.kill("SIGSTOP");
      if (i === 140) await c!.kill9();
    }
    const beforeKill = new Set(payloads(onC));
    // member-c comes back on b and gets what its session held; what waited for c was given to member-b.
    const back = await connectCollecting(b!.url, { clientId: "member-c", clean: false, protocolVersion: 5, properties: { sessionExpiryInterval: 3600 } });
    const got = () => new Set([...beforeKill, ...payloads(onB), ...payloads(back)]);
    await waitFor(() => [...acked].every((p) => got().has(p)), `every acknowledged message at a member (missing ${[...acked].filter((p) => !got().has(p)).slice(0, 10).join(",")})`, 30_000);
    // Once per group while both nodes lived (old behaviour: every node delivered to its own member, so both got all).
    const twice = payloads(onB).filter((p) => beforeKill.has(p));
    assert.ok(twice.length <= 10, `delivered to both members: ${twice.length}`);
    // How many waited for c when it died and were chosen again depends on timing (a
    // diagnostic, not an assertion); that none of them was lost is asserted above.
    const rechosen = await Promise.all([a!, b!].map(async (n) => Number(/wasmq_cluster_shared_rechosen\{[^}]*\} (\d+)/.exec((await n.api<string>("/metrics")).body)?.[1] ?? 0)));
    const deliveries = beforeKill.size + payloads(onB).length + payloads(back).length;
    t.diagnostic(`${rechosen[0]! + rechosen[1]!} re-chosen after the kill; 300 acknowledged; member-b ${payloads(onB).length}, member-c ${beforeKill.size} before the kill + ${payloads(back).length} after; ${deliveries - 300} delivered twice (at-least-once)`);
    await end(pub, onB.client, onC.client, back.client);
  });

  test("a member that disconnects while Redis is down leaves the group in Redis when the link is back", async () => {
    // Redis keeps its data across the outage here (append-only file, fsync always), as a production Redis would.
    redis = await startRedis(["--appendonly", "yes", "--appendfsync", "always", "--dir", scratchDir()]);
    const [a, b] = await Promise.all(["a", "b"].map((id) => startNode(redis, id)));
    const gone = await connectCollecting(a!.url, { clientId: "gone-while-down" });
    const stays = await connectCollecting(b!.url, { clientId: "stays-on-b" });
    for (const m of [gone, stays]) await subscribe(m.client, "$share/outage/outage/#", 1);
    await groupReady([a!, b!], redis, "$share/outage/outage/#", 2);
    await redis.down();
    await waitFor(async () => (await a!.api<{ redis: { state: string } }>("/cluster")).body.redis.state === "down", "node a to see Redis down");
    await end(gone.client);
    await redis.up();
    await groupReady([a!, b!], redis, "$share/outage/outage/#", 1);
    assert.deepEqual(Object.keys(await redis.client().hgetall("wasmq:share:m:$share/outage/outage/#")), ["stays-on-b"]);
    const pub = await connect(a!.url);
    const sent = await publishAll(pub, "outage/x", 6, 1);
    await exactly([stays], sent);
    await end(pub, stays.client);
  });

  test("Redis unreachable: each node delivers to its own members, counted; the group is whole again when Redis is back", async () => {
    redis = await startRedis();
    const [a, b] = await Promise.all(["a", "b"].map((id) => startNode(redis, id)));
    const onA = await connectCollecting(a!.url, { clientId: "m-a" });
    const onB = await connectCollecting(b!.url, { clientId: "m-b" });
    for (const m of [onA, onB]) await subscribe(m.client, "$share/split/split/#", 1);
    await groupReady([a!, b!], redis, "$share/split/split/#", 2);
    const pub = await connect(a!.url);
    await redis.down();
    await waitFor(async () => (await a!.api<{ redis: { state: string } }>("/cluster")).body.redis.state === "down", "node a to see Redis down");
    const sent = await publishAll(pub, "split/x", 6, 1, "down");
    await waitFor(() => payloads(onA).length >= 6, "a's own member gets every message while Redis is down");
    assert.deepEqual(payloads(onA).sort(), [...sent].sort());
    const metrics = (await a!.api<string>("/metrics")).body;
    assert.match(metrics, /wasmq_cluster_shared_local_only\{node="a"\} 6/);
    // Redis comes back empty (no persistence): the nodes record their members again.
    await redis.up();
    await groupReady([a!, b!], redis, "$share/split/split/#", 2);
    const after = await publishAll(pub, "split/x", 10, 1, "up");
    await exactly([onA, onB], [...sent, ...after]);
    assert.ok(payloads(onB).length > 0, "b's member is chosen again");
    await end(pub, onA.client, onB.client);
  });
});
