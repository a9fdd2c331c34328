/**
 * Issue #13, cluster mode under failure: a node killed with SIGKILL (its
 * clients' wills, QoS 1 traffic in flight), Redis restarted under traffic, a
 * node's Redis connection killed (CLIENT KILL) mid-stream. Real redis-server,
 * broker processes started through the CLI.
 *
 * Delivery contract checked here (broker/OPERATIONS.md "Cluster"): a
 * persistent session loses no acknowledged QoS 1 message — what Redis pub/sub
 * drops stays in its queue in Redis and arrives when it reconnects; clean
 * sessions get no such guarantee, and their losses are counted and reported
 * (t.diagnostic), not asserted.
 */
import assert from "node:assert/strict";
import { after, afterEach, describe, test } from "node:test";
import type { MqttClient } from "mqtt";
import { connect, connectCollecting, end, subscribe } from "./helpers.js";
import { startNode, startRedis, stopAllNodes, waitFor, type Node, type RedisServer } from "./cluster-support.js";

const FAST = { heartbeatMs: 300, willDelayMs: 2000 };

/** Publish `count` numbered QoS 1 messages one after another; resolves to the payloads that were acknowledged. */
async function stream(pub: MqttClient, topic: string, from: number, count: number, onAck?: (n: number) => Promise<void> | void): Promise<Set<string>> {
  const acked = new Set<string>();
  for (let i = from; i < from + count; i++) {
    try {
      await pub.publishAsync(topic, String(i), { qos: 1 });
      acked.add(String(i));
      await onAck?.(acked.size);
    } catch {
      break; // the publisher's node is gone
    }
  }
  return acked;
}

function metric(text: string, name: string): number {
  const m = new RegExp(`^${name}\\{[^}]*\\} (\\S+)$`, "m").exec(text);
  return m ? Number(m[1]) : NaN;
}

describe("cluster failures", () => {
  let redis: RedisServer;
  afterEach(async () => {
    await stopAllNodes();
    await redis?.stop();
  });
  after(stopAllNodes);

  test("kill -9 of a node: a survivor publishes its clients' wills, once, within willDelayMs", async () => {
    redis = await startRedis();
    const [a, b, c] = await Promise.all(["a", "b", "c"].map((id) => startNode(redis, id, { cluster: FAST })));
    const { client: watcher, got } = await connectCollecting(a!.url, {});
    await subscribe(watcher, "wills/#", 1);
    const dying = await connect(b!.url, { clientId: "will-holder", will: { topic: "wills/will-holder", payload: Buffer.from("gone"), qos: 1, retain: false } });
    dying.on("error", () => {});
    await b!.kill9();
    const [m] = await got.waitFor(1, 15_000);
    assert.equal(m!.topic, "wills/will-holder");
    assert.equal(m!.payload.toString(), "gone");
    // Both survivors sweep; GETDEL lets only one of them have it. Give the other a few sweeps.
    await new Promise((r) => setTimeout(r, 3 * FAST.heartbeatMs));
    assert.equal(got.messages.length, 1);
    const views = await Promise.all([a!, c!].map((n) => n.api<{ nodes: { id: string; state: string }[] }>("/cluster")));
    assert.equal(views[0]!.body.nodes.find((n) => n.id === "b")?.state, "down");
    const published = await Promise.all([a!, c!].map(async (n) => metric((await n.api<string>("/metrics")).body, "wasmq_cluster_dead_node_wills")));
    assert.equal(published[0]! + published[1]!, 1);
    await end(watcher, dying);
  });

  test("kill -9 of the subscriber's node under QoS 1 traffic: the persistent session loses nothing acknowledged", async (t) => {
    redis = await startRedis();
    const [a, b, c] = await Promise.all(["a", "b", "c"].map((id) => startNode(redis, id, { cluster: FAST })));
    const persistent = await connectCollecting(a!.url, { clientId: "durable", clean: false });
    await subscribe(persistent.client, "flow/#", 1);
    persistent.client.on("error", () => {});
    const clean = await connectCollecting(a!.url, { clientId: "fleeting" });
    await subscribe(clean.client, "flow/#", 1);
    clean.client.on("error", () => {});
    const pub = await connect(b!.url, { clientId: "producer" });
    const acked = await stream(pub, "flow/x", 0, 400, async (n) => {
      if (n === 150) await a!.kill9();
    });
    assert.equal(acked.size, 400, "the publisher's node stayed up");
    const before = new Set(persistent.got.messages.map((m) => m.payload.toString()));
    const back = await connectCollecting(c!.url, { clientId: "durable", clean: false });
    await waitFor(() => [...acked].every((p) => before.has(p) || back.got.messages.some((m) => m.payload.toString() === p)), "every acknowledged message at the persistent session", 30_000);
    const cleanGot = new Set(clean.got.messages.map((m) => m.payload.toString()));
    const cleanLost = [...acked].filter((p) => !cleanGot.has(p)).length;
    t.diagnostic(`persistent session: ${before.size} before the kill, ${back.got.messages.length} after reconnecting on c, 0 of ${acked.size} lost; clean session on the killed node: ${cleanLost} of ${acked.size} lost`);
    assert.ok(cleanLost > 0, "the clean session was on the killed node: it cannot have everything");
    await end(pub, back.client, persistent.client, clean.client);
  });

  test("kill -9 of the publisher's node under QoS 1 traffic: every message it acknowledged reaches the persistent session", async () => {
    redis = await startRedis();
    const [a, b] = await Promise.all(["a", "b"].map((id) => startNode(redis, id, { cluster: FAST })));
    const sub = await connectCollecting(a!.url, { clientId: "keeper", clean: false });
    await subscribe(sub.client, "src/#", 1);
    const pub = await connect(b!.url, { clientId: "source" });
    pub.on("error", () => {});
    // Pipelined, so the kill lands with messages in every stage; each PUBACK is recorded as it comes.
    const acked = new Set<string>();
    let killed = false;
    const sends: Promise<unknown>[] = [];
    let sent = 0;
    for (let i = 0; i < 20_000 && !killed; i++) {
      sent++;
      sends.push(
        pub.publishAsync("src/x", String(i), { qos: 1 }).then(
          () => acked.add(String(i)),
          () => {},
        ),
      );
      if (acked.size >= 100) {
        await b!.kill9();
        killed = true;
      }
      if (i % 10 === 0) await new Promise((r) => setTimeout(r, 2));
    }
    await Promise.race([Promise.all(sends), new Promise((r) => setTimeout(r, 2000))]);
    assert.ok(killed, "the node was killed mid-stream");
    assert.ok(acked.size >= 100 && acked.size < sent, `acknowledged ${acked.size} of ${sent}`);
    const live = new Set(sub.got.messages.map((m) => m.payload.toString()));
    await end(sub.client);
    const back = await connectCollecting(a!.url, { clientId: "keeper", clean: false });
    await waitFor(() => [...acked].every((p) => live.has(p) || back.got.messages.some((m) => m.payload.toString() === p)), `all ${acked.size} acknowledged messages`, 20_000);
    await end(pub, back.client);
  });

  test("Redis restarted under traffic: local clients keep being served, the state is exposed, traffic resumes, persistent queues refill", async (t) => {
    redis = await startRedis();
    const [a, b] = await Promise.all(["a", "b"].map((id) => startNode(redis, id)));
    const remote = await connectCollecting(a!.url, {});
    await subscribe(remote.client, "live/#", 1);
    const local = await connectCollecting(b!.url, {});
    await subscribe(local.client, "live/#", 1);
    const pub = await connect(b!.url);
    let sent = 0;
    let stop = false;
    const pump = (async () => {
      while (!stop) {
        await pub.publishAsync("live/t", String(sent), { qos: 1 });
        sent++;
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
    await waitFor(() => remote.got.messages.length > 20, "traffic across nodes");
    await redis.restart(1000);
    await waitFor(async () => (await b!.api<{ redis: { state: string; disconnects: number } }>("/cluster")).body.redis.disconnects >= 1, "node b to report the lost link");
    const afterRestart = sent;
    try {
      await waitFor(() => remote.got.messages.some((m) => Number(m.payload.toString()) > afterRestart), "cross-node traffic after the restart", 20_000);
    } catch (err) {
      const states = await Promise.all([a!, b!].map(async (n) => JSON.stringify((await n.api<{ redis: unknown }>("/cluster")).body.redis)));
      throw new Error(`${(err as Error).message}: sent ${sent} (${afterRestart} at the restart), remote got ${remote.got.messages.length}, local got ${local.got.messages.length}; links ${states.join(" ")}`);
    }
    stop = true;
    await pump;
    // Nothing lost for the subscriber on the publisher's own node, Redis or not.
    await waitFor(() => local.got.messages.length === sent, "every message at the local subscriber");
    const metrics = (await b!.api<string>("/metrics")).body;
    assert.ok(metric(metrics, "wasmq_cluster_local_only_publishes") > 0, `some publishes were served locally while Redis was down:\n${metrics.split("\n").filter((l) => l.startsWith("wasmq_cluster")).join("\n")}`);
    // Every connection reconnects on its own backoff: wait for all of them.
    for (const n of [a!, b!]) await waitFor(async () => (await n.api<{ redis: { state: string } }>("/cluster")).body.redis.state === "up", `node ${n.id}'s link to be up`);
    assert.equal(metric((await b!.api<string>("/metrics")).body, "wasmq_cluster_redis_up"), 1);
    t.diagnostic(`sent ${sent}; remote clean subscriber got ${remote.got.messages.length} (lost ${sent - remote.got.messages.length} while Redis was down); local subscriber got all`);
    // A persistent session made after the restart works again (Redis came back empty: persistence was off).
    const p = await connect(a!.url, { clientId: "after-restart", clean: false });
    await subscribe(p, "again/#", 1);
    await end(p);
    await pub.publishAsync("again/x", "queued", { qos: 1 });
    const back = await connectCollecting(b!.url, { clientId: "after-restart", clean: false });
    const [m] = await back.got.waitFor(1);
    assert.equal(m!.payload.toString(), "queued");
    await end(pub, remote.client, local.client, back.client);
  });

  test("while Redis is down a node admits clients and serves them locally; their sessions are claimed when Redis is back", async () => {
    redis = await startRedis();
    const a = await startNode(redis, "a", { config: { sys: { intervalSec: 1 } } });
    await redis.down();
    await waitFor(async () => (await a.api<{ redis: { state: string } }>("/cluster")).body.redis.state === "down", "node a to see Redis down");
    const sys = await connectCollecting(a.url, { clientId: "sys-watcher" });
    await subscribe(sys.client, "$SYS/broker/cluster/node/a/redis", 0);
    await waitFor(() => sys.got.messages.some((m) => m.payload.toString() === "down"), "$SYS/broker/cluster/node/a/redis to say down");
    const { client: sub, got } = await connectCollecting(a.url, { clientId: "offline-sub" });
    await subscribe(sub, "local/#", 1);
    const pub = await connect(a.url, { clientId: "offline-pub" });
    await pub.publishAsync("local/1", "q0", { qos: 0 });
    await pub.publishAsync("local/1", "q1", { qos: 1 });
    assert.deepEqual((await got.waitFor(2)).map((m) => m.payload.toString()), ["q0", "q1"]);
    const unconfirmed = metric((await a.api<string>("/metrics")).body, "wasmq_cluster_unconfirmed_sessions");
    assert.equal(unconfirmed, 3);
    await redis.up();
    await waitFor(async () => (await a.api<{ connected: boolean; node: string }>("/cluster/clients/offline-sub")).body.connected, "the session to be claimed");
    assert.match((await a.api<{ node: string }>("/cluster/clients/offline-pub")).body.node, /^a\./);
    assert.equal(metric((await a.api<string>("/metrics")).body, "wasmq_cluster_unconfirmed_sessions"), 0);
    await waitFor(() => sys.got.messages.some((m) => m.payload.toString() === "up"), "$SYS/broker/cluster/node/a/redis to say up");
    await end(sub, pub, sys.client);
  });

  test("a node stops cleanly (exit 0, not the 10 s forced exit) while Redis is down", async () => {
    redis = await startRedis();
    const a = await startNode(redis, "a");
    const client = await connect(a.url, { clientId: "stay", clean: false, will: { topic: "w/stay", payload: Buffer.from("x"), qos: 1, retain: false } });
    client.on("error", () => {});
    await subscribe(client, "s/#", 1);
    await redis.stop();
    await waitFor(async () => (await a.api<{ redis: { state: string } }>("/cluster")).body.redis.state === "down", "node a to see Redis down");
    const metrics = (await a.api<string>("/metrics")).body;
    assert.equal(metric(metrics, "wasmq_cluster_redis_up"), 0);
    const exited = new Promise<number | null>((resolve) => a.child.once("exit", (code) => resolve(code)));
    a.child.kill("SIGTERM");
    assert.equal(await exited, 0);
    await end(client);
  });

  test("a hung Redis (SIGSTOP: connections open, no answers) does not hang the admin API or a scrape", { timeout: 60_000 }, async () => {
    redis = await startRedis();
    const a = await startNode(redis, "a");
    const client = await connect(a.url, { clientId: "held", clean: false });
    redis.freeze();
    try {
      // Before the fix these waited in the Redis link's offline queue for as long as Redis stayed hung.
      const view = await a.api<{ node: string; nodes: { id: string }[] }>("/cluster");
      assert.equal(view.status, 200);
      assert.deepEqual(view.body.nodes.map((n) => n.id), ["a"]);
      const owner = await a.api<{ error: string }>("/cluster/clients/held");
      assert.equal(owner.status, 503);
      assert.match(owner.body.error, /Redis did not answer/);
      const metrics = await a.api<string>("/metrics");
      assert.equal(metrics.status, 200);
      assert.match(metrics.body, /wasmq_cluster_nodes_up/);
    } finally {
      redis.thaw();
    }
    await waitFor(async () => (await a.api<{ connected: boolean }>("/cluster/clients/held")).body.connected === true, "the owner record once Redis answers again");
    await end(client);
  });

  test("CLIENT KILL of a node's Redis connection mid-stream: it reconnects and the persistent session loses nothing", async (t) => {
    redis = await startRedis();
    const [a, b] = await Promise.all(["a", "b"].map((id) => startNode(redis, id)));
    const sub = await connectCollecting(a!.url, { clientId: "steady", clean: false });
    await subscribe(sub.client, "mid/#", 1);
    const pub = await connect(b!.url);
    const admin = redis.client();
    let killed = 0;
    const acked = await stream(pub, "mid/x", 0, 300, async (n) => {
      if (n !== 100) return;
      const list = await admin.client("LIST");
      for (const line of (list as string).split("\n")) {
        const id = /^id=(\d+) .* name=wasmq-emitter-sub:a\./.exec(line)?.[1];
        if (id) killed += Number(await admin.client("KILL", "ID", id));
      }
    });
    assert.equal(killed, 1, "node a's emitter subscription connection was killed");
    await waitFor(async () => (await a!.api<{ redis: { state: string; disconnects: number } }>("/cluster")).body.redis.disconnects >= 1, "node a to notice");
    await waitFor(async () => (await a!.api<{ redis: { state: string } }>("/cluster")).body.redis.state === "up", "node a to reconnect");
    const live = new Set(sub.got.messages.map((m) => m.payload.toString()));
    await end(sub.client);
    // What pub/sub dropped while the connection was down waits in the session's queue.
    const back = await connectCollecting(a!.url, { clientId: "steady", clean: false });
    await waitFor(() => [...acked].every((p) => live.has(p) || back.got.messages.some((m) => m.payload.toString() === p)), "every acknowledged message", 20_000);
    t.diagnostic(`live ${live.size} of ${acked.size}; ${back.got.messages.length} more from the queue on reconnect`);
    await end(pub, back.client);
  });
});
