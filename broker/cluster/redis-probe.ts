/**
 * The start-up check of `cluster.redis`: one connection, no retries, a bounded
 * wait, and a one-line ClusterError for every way it can fail — a refused or
 * reset connection, a TLS handshake the server or the node rejects (unknown CA,
 * missing client certificate), a wrong ACL user or one that may not run scripts,
 * a database index out of range,
 * a server that accepts the connection and never answers, a Redis Cluster node,
 * a Redis too old. The error names where the URL was given (`key "cluster.redis"
 * in FILE` or `--redis`), so the CLI can stop with exit code 2 and say what to
 * fix; nothing of it may escape as an unhandled 'error' event.
 */
import { Redis } from "ioredis";
import type { ClusterConfig } from "./config.js";
import { ClusterError, redisOptions } from "./redis-options.js";
import { guardSentinels, guardStreams } from "./redis-streams.js";

/** Where the URL came from, for messages (`key "cluster.redis" in c.json`, `--redis`). */
export function originOf(config: ClusterConfig): string {
  return config.origin ?? 'key "cluster.redis"';
}

/**
 * What the node needs of the server, checked at start-up rather than failing on the first message.
 *  - Redis Cluster is refused: the fan-out is Redis pub/sub, which a Redis Cluster broadcasts to
 *    every shard (classic PUBLISH goes over the cluster bus to all nodes), so shards add no
 *    capacity for the dominant cost; and wasmq's records are updated by Lua scripts that touch
 *    several keys in one atomic step (ownership, $share choice, wills), which would all need one
 *    hash slot. A primary with replicas (failover by Sentinel or a managed service's endpoint) is
 *    the supported shape.
 *  - 6.2 or later: GETDEL (wills) and BLMOVE ($share hand-over).
 */
export function checkServer(url: string, version: string, clusterMode: boolean, origin = 'key "cluster.redis"'): string {
  if (clusterMode) {
    throw new ClusterError(
      `Redis at ${url} (${origin}) runs in cluster mode (cluster_enabled:1): not supported — wasmq's fan-out is Redis pub/sub, which a Redis Cluster broadcasts to every shard, and its records are updated by multi-key scripts; point cluster.redis at a standalone primary (with replicas: cluster.sentinels, or a failover endpoint)`,
    );
  }
  const [major, minor] = version.split(".").map(Number);
  if (major !== undefined && minor !== undefined && (major < 6 || (major === 6 && minor < 2))) {
    throw new ClusterError(`Redis at ${url} (${origin}) is version ${version}: wasmq needs 6.2 or later (GETDEL, BLMOVE)`);
  }
  return version;
}

/** Resolves with the server's version, or rejects with a ClusterError naming the URL, where it was given, and why. */
export async function probeRedis(config: ClusterConfig, url: string): Promise<string> {
  const origin = originOf(config);
  const options = redisOptions(config);
  // The database is selected by hand: a SELECT ioredis sends itself while connecting fails silently and the probe would hang.
  const conn = new Redis({ ...options, db: 0, lazyConnect: true, retryStrategy: () => null, sentinelRetryStrategy: () => null, maxRetriesPerRequest: 0, enableOfflineQueue: false });
  let cause: NodeJS.ErrnoException | null = null;
  let version = "unknown";
  let clusterMode = false;
  conn.on("error", (err: NodeJS.ErrnoException) => (cause ??= err));
  guardStreams(conn, (err) => (cause ??= err));
  guardSentinels(conn, () => {}); // a sentinel's own error surfaces as the connection's ("All sentinels are unreachable")
  // ioredis' connectTimeout ends at the TCP (or TLS) connect: a server that accepts and never
  // answers (a hung Redis, another service on the port) would hold start-up forever. The whole
  // check gets the same bound; closing the connection fails whatever is still waiting.
  const deadline = setTimeout(() => {
    cause ??= Object.assign(new Error(`no answer within ${config.connectTimeoutMs} ms (cluster.connectTimeoutMs)`), { code: "ETIMEDOUT" });
    conn.disconnect();
  }, config.connectTimeoutMs);
  try {
    await conn.connect();
    if (options.db) await conn.select(options.db);
    const info = await conn.info("server");
    version = /redis_version:(\S+)/.exec(info)?.[1] ?? "unknown";
    clusterMode = /cluster_enabled:1/.test(await conn.info("cluster"));
    // Ownership, $share choices and wills are Lua scripts: an ACL user without scripting
    // (-@scripting, or a service that forbids EVAL) would let the node start and then fail
    // every claim with NOPERM. Asked here so it stops start-up instead.
    await conn.eval("return 1", 0);
  } catch (err) {
    const e = cause ?? (err as NodeJS.ErrnoException);
    // A reply (WRONGPASS, NOPERM, an out-of-range database) means Redis was reached and said no.
    const what = e.name === "ReplyError" ? `Redis at ${url} (${origin})${viaSentinels(config)} refused the node` : `cannot reach Redis at ${url} (${origin})${viaSentinels(config)}`;
    throw new ClusterError(`${what}: ${reason(e)}`);
  } finally {
    clearTimeout(deadline);
    conn.disconnect();
  }
  return checkServer(url, version, clusterMode, origin);
}

function viaSentinels(config: ClusterConfig): string {
  return config.sentinels ? ` through cluster.sentinels ${config.sentinels.map((s) => `${s.host}:${s.port}`).join(",")}` : "";
}

/** The code and the message, on one line (OpenSSL's messages span several). */
function reason(e: NodeJS.ErrnoException): string {
  const message = (e.message ?? "").replace(/\s+/g, " ").trim();
  if (!e.code) return message;
  return message && !message.includes(e.code) ? `${e.code} (${message})` : e.code;
}
