/**
 * Issue #13, the Redis options a Redis user expects, against real
 * redis-servers: TLS (rediss://, CA, client certificate), an ACL user name
 * and password, a database index, Redis Sentinel with a failover; and what is refused at start-up with an
 * error naming `cluster.redis`: a Redis Cluster node, a database index out of
 * range, a URL path that is not an index.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { copyFileSync, writeFileSync } from "node:fs";
import { Redis } from "ioredis";
import { join } from "node:path";
import { describe, test } from "node:test";
import { parseRawConfig } from "../broker/config.js";
import { connect, connectCollecting, end, freePort, scratchDir, subscribe } from "./helpers.js";
import { runCli, startNode, startRedis, waitFor } from "./cluster-support.js";
import { TestCa } from "./pki.js";

/**
 * Start a node config through the CLI, expecting it to refuse: exit code 2 and
 * one line naming where the URL was given (the key and the file, or --redis); stderr back.
 * `safetyMs` only stops a hang (then the exit code is null and the test fails).
 */
async function refused(cluster: Record<string, unknown>, args: string[] = [], safetyMs?: number): Promise<string> {
  const dir = scratchDir();
  const file = join(dir, "c.json");
  writeFileSync(file, JSON.stringify({ port: 0, ws: false, data: dir, cluster: { id: "x", connectTimeoutMs: 2000, ...cluster } }));
  const r = await runCli(["--config", file, ...args], safetyMs);
  assert.equal(r.code, 2, r.stdout + r.stderr);
  assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
  const origin = args.includes("--redis") ? "(--redis)" : `(key "cluster.redis" in ${file})`;
  if (/Redis at/.test(r.stderr)) assert.ok(r.stderr.includes(origin), `${origin} in: ${r.stderr}`);
  return r.stderr;
}

/**
 * A test CA and an unrelated one, a server and a client certificate from the first, and a
 * redis-server whose TLS port requires a client certificate from the CA it trusts. It reads
 * that CA from a file at each start: `trust(other)` before a restart makes it refuse the node.
 */
async function tlsRedis() {
  const dir = scratchDir();
  const ca = new TestCa(dir, "redis-ca", "Redis Test CA");
  const rogue = new TestCa(dir, "rogue-ca", "Other CA");
  const server = ca.issue("localhost", { server: true });
  const client = ca.issue("wasmq-node");
  const trusted = join(dir, "redis-trusts.pem");
  const trust = (which: TestCa) => copyFileSync(which.certFile, trusted);
  trust(ca);
  const tlsPort = await freePort();
  const redis = await startRedis(["--tls-port", String(tlsPort), "--tls-cert-file", server.certFile, "--tls-key-file", server.keyFile, "--tls-ca-cert-file", trusted, "--tls-auth-clients", "yes"]);
  return { ca, rogue, client, tlsPort, redis, trust };
}

describe("Redis options", () => {
  test("rediss:// with a CA and a client certificate; a missing client certificate or an unknown CA is refused naming cluster.redis", async () => {
    const { ca, rogue, client, tlsPort, redis } = await tlsRedis();
    try {
      const url = `rediss://localhost:${tlsPort}`;
      const node = await startNode(url, "tls", { cluster: { tls: { ca: ca.certFile, cert: client.certFile, key: client.keyFile } } });
      const view = await node.api<{ redis: { state: string; url: string } }>("/cluster");
      assert.equal(view.body.redis.state, "up");
      // The node's connections are the TLS ones (CLIENT LIST shows the port each came in on).
      const names = (await redis.client().client("LIST")) as string;
      assert.match(names, new RegExp(`laddr=127\\.0\\.0\\.1:${tlsPort} fd=\\d+ name=wasmq-records:tls`));
      const { client: sub, got } = await connectCollecting(node.url, {});
      await subscribe(sub, "over/tls", 1);
      const pub = await connect(node.url);
      await pub.publishAsync("over/tls", "x", { qos: 1, retain: true });
      await got.waitFor(1);
      assert.equal(await redis.client().hexists("retained", "over/tls"), 1, "the retained message went to Redis over TLS");
      await end(sub, pub);
      await node.stop();
      assert.match(await refused({ redis: url, tls: { ca: ca.certFile } }), /cannot reach Redis at rediss:\/\/localhost:\d+\/? \(key "cluster\.redis" in .*c\.json\): (ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED|ECONNRESET)/);
      assert.match(await refused({ redis: url, tls: { ca: rogue.certFile, cert: client.certFile, key: client.keyFile } }), /c\.json\): .*(certificate|CERT)/i);
    } finally {
      await redis.stop();
    }
  });

  test("over TLS, a Redis that drops and comes back distrusting the node's certificate: the node keeps serving, reports why, and is back once Redis trusts it again", async () => {
    const { ca, rogue, client, tlsPort, redis, trust } = await tlsRedis();
    try {
      const node = await startNode(`rediss://localhost:${tlsPort}`, "tls-drop", { cluster: { tls: { ca: ca.certFile, cert: client.certFile, key: client.keyFile } } });
      const link = async () => (await node.api<{ redis: { state: string; disconnects: number; lastError: string | null } }>("/cluster")).body.redis;
      assert.equal((await link()).state, "up");
      await redis.down();
      trust(rogue);
      // Once a reconnection was refused for want of a server, what the node reports next comes from the restarted Redis.
      await waitFor(async () => /ECONNREFUSED/.test((await link()).lastError ?? ""), "the node to find Redis gone");
      await redis.up();
      // Every reconnection is now refused in the TLS handshake: Redis answers with an alert, or resets the connection.
      await waitFor(async () => /certificate|alert|ECONNRESET/i.test((await link()).lastError ?? ""), "the node to report the refused handshake");
      assert.equal((await link()).state, "down");
      // Still serving its own clients while Redis refuses it.
      const { client: sub, got } = await connectCollecting(node.url, {});
      await subscribe(sub, "local/while-refused", 0);
      const pub = await connect(node.url);
      await pub.publishAsync("local/while-refused", "x");
      await got.waitFor(1);
      await end(sub, pub);
      await redis.down();
      trust(ca);
      await redis.up();
      await waitFor(async () => (await link()).state === "up", "the link back once Redis trusts the node again");
      assert.equal(node.child.exitCode, null, node.log().slice(-2000));
      assert.doesNotMatch(node.log(), /Unhandled|uncaught/i);
      await node.stop();
    } finally {
      await redis.stop();
    }
  });

  test("a Redis that accepts the connection and never answers stops start-up after cluster.connectTimeoutMs, naming the key and the file (or --redis)", async () => {
    const redis = await startRedis();
    try {
      redis.freeze();
      // The 60 s only stops a hang (the bug this guards against: start-up waited forever).
      assert.match(await refused({ redis: redis.url, connectTimeoutMs: 500 }, [], 60_000), /cannot reach Redis at redis:\/\/127\.0\.0\.1:\d+\/? \(key "cluster\.redis" in .*c\.json\): ETIMEDOUT \(no answer within 500 ms \(cluster\.connectTimeoutMs\)\)/);
      assert.match(await refused({ redis: "redis://127.0.0.1:1", connectTimeoutMs: 500 }, ["--redis", redis.url], 60_000), /cannot reach Redis at redis:\/\/127\.0\.0\.1:\d+\/? \(--redis\): ETIMEDOUT/);
    } finally {
      redis.thaw();
      await redis.stop();
    }
  });

  test("an ACL user: cluster.username + cluster.password authenticate; a wrong user is refused naming cluster.redis", async () => {
    const redis = await startRedis(["--user", "default", "off", "--user", "wasmq", "on", ">node-secret", "~*", "&*", "+@all"], "node-secret", "wasmq");
    try {
      const node = await startNode(redis, "acl", { cluster: { username: "wasmq", password: "node-secret" } });
      assert.equal((await node.api<{ redis: { state: string } }>("/cluster")).body.redis.state, "up");
      const names = (await redis.client().client("LIST")) as string;
      assert.match(names, /user=wasmq .*name=wasmq-records:acl|name=wasmq-records:acl.* user=wasmq/);
      await node.stop();
      assert.match(await refused({ redis: redis.url, username: "intruder", password: "node-secret" }), /c\.json\) refused the node: WRONGPASS/);
    } finally {
      await redis.stop();
    }
  });

  test("an ACL user that may not run scripts is refused at start-up naming cluster.redis (it used to start and then fail every session claim with NOPERM)", async () => {
    const redis = await startRedis(["--user", "default", "off", "--user", "wasmq", "on", ">node-secret", "~*", "&*", "+@all", "-@scripting"], "node-secret", "wasmq");
    try {
      // The 60 s only stops the old behaviour (a node that starts) from holding the suite.
      assert.match(await refused({ redis: redis.url, username: "wasmq", password: "node-secret" }, [], 60_000), /c\.json\) refused the node: NOPERM .*'eval'/);
    } finally {
      await redis.stop();
    }
  });

  test("a database index in the URL path keeps every key in that database", async () => {
    const redis = await startRedis();
    try {
      const node = await startNode(`${redis.url}/3`, "db3");
      const durable = await connectCollecting(node.url, { clientId: "in-db-3", clean: false });
      await subscribe(durable.client, "db/#", 1);
      const pub = await connect(node.url);
      await pub.publishAsync("db/x", "r", { qos: 1, retain: true });
      await durable.got.waitFor(1);
      const db3 = redis.client();
      await db3.select(3);
      await waitFor(async () => (await db3.hexists("retained", "db/x")) === 1, "the retained message in database 3");
      assert.ok((await db3.exists("wasmq:node:db3")) === 1, "the node record in database 3");
      assert.equal(await redis.client().dbsize(), 0, "nothing in database 0");
      await end(durable.client, pub);
      await node.stop();
      assert.match(await refused({ redis: `${redis.url}/99` }), /c\.json\) refused the node: ERR DB index is out of range/);
    } finally {
      await redis.stop();
    }
  });

  test("Redis Sentinel: nodes find the master through cluster.sentinels and follow a failover; unreachable sentinels are refused naming the key", async () => {
    const dir = scratchDir();
    // No 5 s wait for more replicas before the first sync (Redis' default).
    const master = await startRedis(["--repl-diskless-sync-delay", "0", "--dir", dir]);
    const replica = await startRedis(["--replicaof", "127.0.0.1", String(master.port), "--dir", dir]);
    const sentinelPort = await freePort();
    const conf = join(dir, "sentinel.conf");
    writeFileSync(conf, [`port ${sentinelPort}`, "bind 127.0.0.1", `dir ${dir}`, `sentinel monitor wasmqmaster 127.0.0.1 ${master.port} 1`, "sentinel down-after-milliseconds wasmqmaster 500", "sentinel failover-timeout wasmqmaster 3000", ""].join("\n"));
    const sentinel = spawn("redis-server", [conf, "--sentinel"], { stdio: "ignore" });
    const ask = new Redis({ port: sentinelPort, host: "127.0.0.1", retryStrategy: () => 100, enableOfflineQueue: false, lazyConnect: true }); // a call while the sentinel is unreachable is refused (not yet), never queued forever
    ask.on("error", () => {});
    try {
      await ask.connect().catch(() => {});
      await waitFor(async () => /master_link_status:up/.test(await replica.client().info("replication")), "the replica in sync", 30_000);
      // A failover needs the sentinel to know the replica (it learns it from the master's INFO).
      await waitFor(async () => ((await ask.call("SENTINEL", "REPLICAS", "wasmqmaster").catch(() => [])) as unknown[]).length === 1, "the sentinel to discover the replica", 30_000);
      const sentinels = [`127.0.0.1:${sentinelPort}`];
      const [a, b] = await Promise.all(["sa", "sb"].map((id) => startNode("redis://wasmqmaster", id, { cluster: { sentinels } })));
      const sub = await connectCollecting(b!.url, { clientId: "after-failover", clean: false });
      await subscribe(sub.client, "ha/#", 1);
      const pub = await connect(a!.url, { reconnectPeriod: 0 });
      await pub.publishAsync("ha/before", "1", { qos: 1, retain: true });
      await waitFor(() => sub.got.messages.length === 1, "the message before the failover");
      // Redis replicates asynchronously: what the test claims survives must have reached the replica first.
      await waitFor(async () => (await replica.client().hexists("retained", "ha/before")) === 1, "the retained message on the replica", 30_000);
      await master.down();
      await waitFor(async () => ((await ask.call("SENTINEL", "GET-MASTER-ADDR-BY-NAME", "wasmqmaster")) as string[])[1] === String(replica.port), "the sentinel to promote the replica", 30_000);
      for (const n of [a!, b!]) {
        await waitFor(async () => (await n.api<{ redis: { state: string; disconnects: number } }>("/cluster")).body.redis.state === "up", `node ${n.id} back on the new master`, 30_000);
      }
      // Cross-node traffic flows through the promoted replica; the retained message survived on it.
      await waitFor(async () => {
        await pub.publishAsync("ha/after", "2", { qos: 1 });
        return sub.got.messages.some((m) => m.topic === "ha/after");
      }, "a message across nodes after the failover", 30_000);
      assert.equal(await replica.client().hexists("retained", "ha/before"), 1, "the retained message replicated before the failover");
      const late = await connectCollecting(b!.url, {});
      await subscribe(late.client, "ha/before", 0);
      await waitFor(() => late.got.messages.length === 1, "the retained message after the failover");
      assert.equal(late.got.messages[0]!.payload.toString(), "1");
      assert.equal(await replica.client().hexists("retained", "ha/before"), 1);
      await end(pub, sub.client, late.client);
      await a!.stop();
      await b!.stop();
      assert.match(await refused({ redis: "redis://wasmqmaster", sentinels: [`127.0.0.1:${await freePort()}`] }), /cannot reach Redis at redis:\/\/wasmqmaster\/? \(key "cluster\.redis" in .*c\.json\) through cluster\.sentinels 127\.0\.0\.1:\d+: /);
    } finally {
      ask.disconnect();
      sentinel.kill("SIGKILL");
      await once(sentinel, "exit");
      await replica.stop();
      await master.stop();
    }
  });

  test("a Redis Cluster node is refused at start-up, naming cluster.redis and why", async () => {
    const dir = scratchDir();
    const redis = await startRedis(["--cluster-enabled", "yes", "--cluster-config-file", join(dir, "nodes.conf"), "--dir", dir]);
    try {
      const stderr = await refused({ redis: redis.url });
      assert.match(stderr, /Redis at redis:\/\/127\.0\.0\.1:\d+\/? \(key "cluster\.redis" in .*c\.json\) runs in cluster mode \(cluster_enabled:1\): not supported/);
    } finally {
      await redis.stop();
    }
  });

  test("a URL path that is not a database index, query options, or a client certificate without its key, name the key", () => {
    assert.throws(() => parseRawConfig({ cluster: { redis: "redis://h:6379/zero" } }, "t.json"), /key "cluster\.redis": the path must be a database index/);
    assert.throws(() => parseRawConfig({ cluster: { redis: "redis://h:6379/0?tls=true" } }, "t.json"), /key "cluster\.redis": query options are not read/);
    parseRawConfig({ cluster: { redis: "rediss://user:pw@h:6380/15" } }, "t.json");
    assert.throws(() => parseRawConfig({ cluster: { redis: "rediss://h", tls: { cert: "c.pem" } } }, "t.json"), /t\.json: key "cluster\.tls\.cert": cert and key go together/);
    assert.throws(() => parseRawConfig({ cluster: { redis: "rediss://h", tls: { key: "k.pem" } } }, "t.json"), /t\.json: key "cluster\.tls\.cert": cert and key go together/);
    parseRawConfig({ cluster: { redis: "rediss://h", tls: { ca: "ca.pem", cert: "c.pem", key: "k.pem" } } }, "t.json");
  });

  test("a TLS file key that names a missing file or a directory is refused naming the key and the file", async () => {
    const dir = scratchDir();
    assert.match(await refused({ redis: "rediss://127.0.0.1:1", tls: { ca: join(dir, "missing.pem") } }), /c\.json: key "cluster\.tls\.ca": file .*missing\.pem does not exist/);
    assert.match(await refused({ redis: "rediss://127.0.0.1:1", tls: { ca: dir } }), new RegExp(`c\\.json: key "cluster\\.tls\\.ca": ${dir.replace(/[.]/g, "\\.")} is not a file`));
  });
});
