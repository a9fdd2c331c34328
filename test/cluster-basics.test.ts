/**
 * Issue #13, cluster mode: start-up, node identity, cross-node publish,
 * persistent sessions across nodes, cluster-wide queue limits, takeover and
 * the operator's view (GET /cluster, node label on metrics, $SYS). Real
 * redis-server, three broker processes started through the CLI.
 */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import mqtt from "mqtt";
import { parseRawConfig, resolveConfig } from "../broker/config.js";
import { collect, connect, connectCollecting, end, freePort, settle, startTestBroker, subscribe, tempDir } from "./helpers.js";
import { runCli, startNode, startRedis, stopAllNodes, waitFor, type Node, type RedisServer } from "./cluster-support.js";

describe("cluster start-up", () => {
  test("an unreachable Redis fails start-up with one error naming it", async () => {
    const port = await freePort();
    const dir = tempDir();
    const file = join(dir, "c.json");
    writeFileSync(file, JSON.stringify({ port: 0, ws: false, data: dir, cluster: { redis: `redis://127.0.0.1:${port}`, id: "x", connectTimeoutMs: 1000 } }));
    const r = await runCli(["--config", file]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, new RegExp(`cannot reach Redis at redis://127\\.0\\.0\\.1:${port}/? \\(key "cluster\\.redis" in ${file.replace(/[.]/g, "\\.")}\\): ECONNREFUSED`));
    assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
  });

  test("a bad Redis URL names the key and the file; a bad --redis names the flag", async () => {
    const dir = tempDir();
    const file = join(dir, "c.json");
    writeFileSync(file, JSON.stringify({ port: 0, ws: false, data: dir, cluster: { redis: "http://nope" } }));
    const r = await runCli(["--config", file]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /c\.json: key "cluster\.redis": expected a redis:\/\/ or rediss:\/\/ URL/);
    const good = join(dir, "good.json");
    writeFileSync(good, JSON.stringify({ port: 0, ws: false, data: dir }));
    const flag = await runCli(["--config", good, "--redis", "localhost:6379"]);
    assert.equal(flag.code, 2);
    assert.match(flag.stderr, /--redis: expected a redis:\/\/ or rediss:\/\/ URL/);
  });
});

describe("cluster config", () => {
  test("defaults: wills of a dead node within 10 s, heartbeat 1 s; keys are checked and named", () => {
    const config = resolveConfig(parseRawConfig({ cluster: { redis: "redis://127.0.0.1:6379" } }, "t.json"), null);
    assert.deepEqual(
      { id: config.cluster?.id, heartbeatMs: config.cluster?.heartbeatMs, willDelayMs: config.cluster?.willDelayMs },
      { id: null, heartbeatMs: 1000, willDelayMs: 10_000 },
    );
    assert.equal(resolveConfig(parseRawConfig({}, "t.json"), null).cluster, null, "cluster mode is off by default");
    assert.throws(() => parseRawConfig({ cluster: { redis: "redis://h", heartbeatMs: 5000, willDelayMs: 6000 } }, "t.json"), /key "cluster\.willDelayMs": willDelayMs must be more than twice heartbeatMs/);
    assert.throws(() => parseRawConfig({ cluster: { redis: "redis://h", id: "a:b" } }, "t.json"), /key "cluster\.id"/);
    assert.throws(() => parseRawConfig({ cluster: { redis: "redis://h", bogus: 1 } }, "t.json"), /unknown key "cluster\.bogus"/);
    const flags = resolveConfig(parseRawConfig({}, "t.json"), null, { redis: "rediss://r:6380", nodeId: "n1" });
    assert.equal(flags.cluster?.redis, "rediss://r:6380");
    assert.equal(flags.cluster?.id, "n1");
  });
});

describe("Redis with a password", () => {
  test("cluster.password authenticates; a wrong one fails start-up naming Redis and the reason", async () => {
    const redis = await startRedis(["--requirepass", "s3cret-pass"], "s3cret-pass");
    try {
      const node = await startNode(redis, "pw", { cluster: { password: "s3cret-pass" } });
      const view = await node.api<{ redis: { state: string; url: string } }>("/cluster");
      assert.equal(view.body.redis.state, "up");
      await node.stop();
      const dir = tempDir();
      const file = join(dir, "c.json");
      writeFileSync(file, JSON.stringify({ port: 0, ws: false, data: dir, cluster: { redis: `redis://:wrong@127.0.0.1:${redis.port}`, id: "x" } }));
      const r = await runCli(["--config", file]);
      assert.equal(r.code, 2);
      assert.match(r.stderr, new RegExp(`Redis at redis://:\\*\\*\\*@127\\.0\\.0\\.1:${redis.port}/? \\(key "cluster\\.redis" in [^)]*c\\.json\\) refused the node: WRONGPASS`));
      assert.ok(!r.stderr.includes("wrong@"), "the password is not printed");
    } finally {
      await redis.stop();
    }
  });
});

describe("a three-node cluster", () => {
  let redis: RedisServer;
  let a: Node, b: Node, c: Node;
  before(async () => {
    redis = await startRedis();
    [a, b, c] = await Promise.all([
      startNode(redis, "a", { config: { limits: { maxQueuedMessages: 5 }, sys: { intervalSec: 1 } } }),
      startNode(redis, "b", { config: { limits: { maxQueuedMessages: 5 } } }),
      startNode(redis, "c", { config: { limits: { maxQueuedMessages: 5 } } }),
    ]);
  });
  after(async () => {
    await stopAllNodes();
    await redis.stop();
  });

  test("a publish on any node reaches subscribers on every node: QoS 0/1/2, wildcards", async () => {
    const subs = await Promise.all([a, b, c].map((n) => connect(n.url)));
    const got = subs.map(collect);
    await Promise.all(subs.map((s, i) => subscribe(s, i === 0 ? "fleet/+/temp" : i === 1 ? "fleet/#" : "fleet/d1/temp", 2)));
    const pub = await connect(b.url);
    await pub.publishAsync("fleet/d1/temp", "q0", { qos: 0 });
    await pub.publishAsync("fleet/d1/temp", "q1", { qos: 1 });
    await pub.publishAsync("fleet/d1/temp", "q2", { qos: 2 });
    for (const g of got) {
      const msgs = await g.waitFor(3);
      assert.deepEqual(msgs.map((m) => [m.payload.toString(), m.qos]).sort(), [["q0", 0], ["q1", 1], ["q2", 2]]);
    }
    await end(pub, ...subs);
  });

  test("messages from publishers on different nodes are all delivered: no false duplicates across broker counters", async () => {
    const { client: sub, got } = await connectCollecting(a.url, {});
    await subscribe(sub, "mix/#", 1);
    const pubs = await Promise.all([a, b, c].map((n) => connect(n.url)));
    // Every node numbers its messages from its own counter: the same numbers reach one subscriber from three nodes.
    for (let i = 0; i < 40; i++) await Promise.all(pubs.map((p, k) => p.publishAsync(`mix/${k}`, `${k}-${i}`, { qos: (i % 2) as 0 | 1 })));
    await waitFor(() => got.messages.length >= 120, `120 messages (got ${got.messages.length})`);
    await settle(sub);
    assert.equal(new Set(got.messages.map((m) => m.payload.toString())).size, 120);
    assert.equal(got.messages.length, 120);
    await end(sub, ...pubs);
  });

  test("a retained message set on one node is served by the others", async () => {
    const pub = await connect(a.url);
    await pub.publishAsync("site/1/status", "online", { qos: 1, retain: true });
    await end(pub);
    for (const n of [b, c]) {
      const { client, got } = await connectCollecting(n.url, {});
      await subscribe(client, "site/+/status", 1);
      const [m] = await got.waitFor(1);
      assert.equal(m!.payload.toString(), "online");
      assert.equal(m!.retain, true);
      await end(client);
    }
  });

  test("a persistent session subscribed on A gets, on C, every QoS 1/2 message published meanwhile on any node", async () => {
    const opts = { clientId: "roamer", clean: false };
    const first = await connect(a.url, opts);
    await subscribe(first, "roam/#", 1);
    await end(first);
    const pubs = await Promise.all([a, b, c].map((n) => connect(n.url)));
    for (let i = 0; i < 4; i++) for (const [k, p] of pubs.entries()) await p.publishAsync(`roam/${k}`, `m${k}-${i}`, { qos: (1 + (i % 2)) as 1 | 2 });
    await end(...pubs);
    const { client, got } = await connectCollecting(c.url, opts);
    const msgs = await got.waitFor(5);
    await settle(client);
    // maxQueuedMessages is 5, counted across the nodes: 12 were published, 5 queued.
    assert.equal(got.messages.length, 5, JSON.stringify(got.messages.map((m) => m.payload.toString())));
    assert.deepEqual(msgs.map((m) => m.payload.toString()), ["m0-0", "m1-0", "m2-0", "m0-1", "m1-1"]);
    await client.unsubscribeAsync("roam/#");
    await end(client);
  });

  test("under the limit nothing is lost: every message queued on any node arrives", async () => {
    const opts = { clientId: "roamer2", clean: false };
    const first = await connect(b.url, opts);
    await subscribe(first, "r2/#", 2);
    await end(first);
    const pubs = await Promise.all([a, c].map((n) => connect(n.url)));
    await pubs[0]!.publishAsync("r2/x", "one", { qos: 1 });
    await pubs[1]!.publishAsync("r2/y", "two", { qos: 2 });
    await end(...pubs);
    const { client, got } = await connectCollecting(a.url, opts);
    const msgs = await got.waitFor(2);
    assert.deepEqual(msgs.map((m) => m.payload.toString()), ["one", "two"]);
    await end(client);
  });

  test("takeover: the same client id on another node closes the old connection; the owner record names the new node", async () => {
    const old = await connect(a.url, { clientId: "dup-1" });
    const closed = new Promise<void>((resolve) => old.once("close", () => resolve()));
    const fresh = await connect(b.url, { clientId: "dup-1" });
    await closed;
    const owner = await a.api<{ node: string; connected: boolean }>("/cluster/clients/dup-1");
    assert.equal(owner.body.connected, true);
    assert.match(owner.body.node, /^b\./);
    const onA = await a.api<{ clients: { id: string }[] }>("/clients");
    assert.ok(!onA.body.clients.some((x) => x.id === "dup-1"));
    await end(old, fresh);
  });

  test("takeover race: the same id connecting on all three nodes at once leaves exactly one live session", async () => {
    for (let round = 0; round < 5; round++) {
      const id = `race-${round}`;
      const clients = [a, b, c].map((n) => mqtt.connect(n.url, { clientId: id, reconnectPeriod: 0, connectTimeout: 5000 }));
      for (const cl of clients) cl.on("error", () => {});
      await Promise.all(clients.map((cl) => new Promise<void>((resolve) => (cl.once("connect", () => resolve()), cl.once("close", () => resolve())))));
      await waitFor(async () => {
        const lists = await Promise.all([a, b, c].map((n) => n.api<{ clients: { id: string }[] }>("/clients")));
        return lists.reduce((sum, l) => sum + l.body.clients.filter((x) => x.id === id).length, 0) === 1;
      }, `one live session for ${id}`);
      await waitFor(() => clients.filter((cl) => cl.connected).length === 1, `one connected client for ${id}`);
      await end(...clients);
    }
  });

  test("GET /cluster lists every node with its clients and plugin digests; metrics carry the node label; $SYS/broker/cluster", async () => {
    const held = await connect(c.url, { clientId: "held-on-c" });
    await waitFor(async () => {
      const view = await a.api<{ nodes: { id: string; state: string; clients: number }[] }>("/cluster");
      const onC = view.body.nodes.find((n) => n.id === "c");
      return view.body.nodes.length === 3 && view.body.nodes.every((n) => n.state === "up") && (onC?.clients ?? 0) >= 1;
    }, "GET /cluster to show three live nodes and c's client");
    const onC = await a.api<{ clients: string[]; state: string }>("/cluster/nodes/c/clients");
    assert.equal(onC.body.state, "up");
    assert.ok(onC.body.clients.includes("held-on-c"), JSON.stringify(onC.body));
    assert.equal((await a.api("/cluster/nodes/nope/clients")).status, 404);
    const missing = await a.api<{ error: string }>("/plugins/nope/deploy", { method: "POST", headers: { "content-type": "application/wasm", "x-wasmq-request": "1" }, body: Buffer.from("\0asm") });
    assert.equal(missing.status, 404);
    const view = await b.api<{ node: string; redis: { state: string; version: string } }>("/cluster");
    assert.equal(view.body.node, "b");
    assert.equal(view.body.redis.state, "up");
    const metrics = (await a.api<string>("/metrics")).body;
    assert.match(metrics, /wasmq_cluster_redis_up\{node="a"\} 1/);
    assert.match(metrics, /wasmq_connected_clients\{node="a"\}|process_cpu_user_seconds_total\{node="a"\}/);
    const { client, got } = await connectCollecting(b.url, {});
    await subscribe(client, "$SYS/broker/cluster/#", 0);
    await got.waitFor(1);
    await waitFor(() => got.messages.some((m) => m.topic === "$SYS/broker/cluster/node/a/redis" && m.payload.toString() === "up"), "$SYS cluster topics of node a");
    await end(client, held);
  });
});

describe("cluster routes outside cluster mode", () => {
  test("GET /cluster and deploy answer 409 on a single node, naming how to turn cluster mode on", async () => {
    const broker = await startTestBroker({ persistence: "memory", metrics: { port: 0 } });
    try {
      const res = await fetch(`${broker.admin!.url}/cluster`);
      assert.equal(res.status, 409);
      assert.match(((await res.json()) as { error: string }).error, /not in cluster mode .*"cluster" config key or --redis/);
      assert.equal(broker.cluster, null);
    } finally {
      await broker.stop();
    }
  });
});

describe("node identity", () => {
  test("a missing node id is derived, logged, and the same after a restart on the same data dir", async () => {
    const redis = await startRedis();
    const dataDir = tempDir();
    try {
      const first = await startNode(redis, null, { dataDir });
      assert.match(first.log(), /node id derived from host name and port/);
      const id = first.id;
      await first.stop();
      const second = await startNode(redis, null, { dataDir });
      assert.equal(second.id, id);
      assert.match(second.log(), /node id read, kept in/);
      const view = await second.api<{ node: string }>("/cluster");
      assert.equal(view.body.node, id);
      await second.stop();
    } finally {
      await redis.stop();
    }
  });
});
