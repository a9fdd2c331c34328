/**
 * Connections to Redis and what the node knows about their state.
 *
 * Every connection retries forever with capped, jittered exponential backoff
 * (ioredis `retryStrategy`); commands issued while a connection is down wait in
 * its offline queue (`maxRetriesPerRequest: null`) instead of failing, so an
 * operation that needs Redis (a QoS 1 message for a persistent session, a
 * retained message, a new subscription) completes late rather than being lost
 * or acknowledged wrongly. The link state — up, or down since when — is what
 * metrics, GET /cluster and $SYS report.
 */
import { Redis, type RedisOptions } from "ioredis";
import { readFileSync } from "node:fs";
import { EventEmitter } from "node:events";
import { redactedUrl, type ClusterConfig } from "./config.js";

export class ClusterError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ClusterError";
  }
}

/** Backoff between reconnection attempts: 100 ms doubling to 5 s, ±20 % jitter. */
export function reconnectDelay(attempt: number): number {
  const base = Math.min(100 * 2 ** Math.min(attempt, 10), 5000);
  return Math.round(base * (0.8 + Math.random() * 0.4));
}

export function redisOptions(config: ClusterConfig): RedisOptions {
  const url = new URL(config.redis);
  const tlsWanted = url.protocol === "rediss:" || config.tls !== null;
  const db = url.pathname.length > 1 ? Number(url.pathname.slice(1)) : 0;
  return {
    host: url.hostname.replace(/^\[|\]$/g, ""),
    port: url.port ? Number(url.port) : 6379,
    db: Number.isInteger(db) ? db : 0,
    ...(url.username || config.username ? { username: config.username ?? decodeURIComponent(url.username) } : {}),
    ...(url.password || config.password ? { password: config.password ?? decodeURIComponent(url.password) } : {}),
    ...(tlsWanted
      ? {
          tls: {
            ...(config.tls?.ca ? { ca: readFileSync(config.tls.ca) } : {}),
            ...(config.tls?.cert ? { cert: readFileSync(config.tls.cert) } : {}),
            ...(config.tls?.key ? { key: readFileSync(config.tls.key) } : {}),
            rejectUnauthorized: config.tls?.rejectUnauthorized ?? true,
          },
        }
      : {}),
    ...(config.sentinels
      ? {
          // Sentinel: ask them for the master of the group the URL's host names (and again after a failover).
          sentinels: config.sentinels,
          name: url.hostname,
          ...(config.sentinelPassword ? { sentinelPassword: config.sentinelPassword } : {}),
          ...(tlsWanted ? { enableTLSForSentinelMode: true } : {}),
          sentinelRetryStrategy: reconnectDelay,
        }
      : {}),
    retryStrategy: reconnectDelay,
    maxRetriesPerRequest: null,
    enableOfflineQueue: true,
    connectTimeout: config.connectTimeoutMs,
  };
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
export function checkServer(url: string, version: string, clusterMode: boolean): string {
  if (clusterMode) {
    throw new ClusterError(
      `Redis at ${url} (cluster.redis) runs in cluster mode (cluster_enabled:1): not supported — wasmq's fan-out is Redis pub/sub, which a Redis Cluster broadcasts to every shard, and its records are updated by multi-key scripts; point cluster.redis at a standalone primary (with replicas: cluster.sentinels, or a failover endpoint)`,
    );
  }
  const [major, minor] = version.split(".").map(Number);
  if (major !== undefined && minor !== undefined && (major < 6 || (major === 6 && minor < 2))) {
    throw new ClusterError(`Redis at ${url} (cluster.redis) is version ${version}: wasmq needs 6.2 or later (GETDEL, BLMOVE)`);
  }
  return version;
}

export type LinkState = "up" | "down";

export interface LinkStatus {
  state: LinkState;
  /** ISO time of the last change. */
  since: string;
  /** How many times a connection to Redis was lost since start. */
  disconnects: number;
  lastError: string | null;
}

/**
 * All of the node's Redis connections. The link is "up" only while every one
 * of them is ready; it emits "down" on the first loss and "up" when all are
 * ready again (then each part resynchronises what pub/sub may have lost).
 */
export class RedisLink extends EventEmitter<{ up: []; down: [] }> {
  readonly url: string;
  private readonly connections: Redis[] = [];
  private state: LinkState = "down";
  private everUp = false;
  private since = Date.now();
  private disconnects = 0;
  private lastError: string | null = null;

  constructor(private readonly config: ClusterConfig) {
    super();
    this.url = redactedUrl(config.redis);
  }

  /** Make a connection (retrying forever); `name` shows in CLIENT LIST. */
  connect(name: string, extra: RedisOptions = {}): Redis {
    const conn = new Redis({ ...redisOptions(this.config), connectionName: name, ...extra });
    this.track(conn);
    return conn;
  }

  /** Track a connection made elsewhere (the emitter's). */
  track(conn: Redis): void {
    this.connections.push(conn);
    conn.on("error", (err: Error) => {
      this.lastError = err.message;
    });
    conn.on("close", () => this.update());
    conn.on("ready", () => this.update());
  }

  private update(): void {
    const allReady = this.connections.every((c) => c.status === "ready" || c.status === "end");
    const next: LinkState = allReady ? "up" : "down";
    if (next === this.state) return;
    this.state = next;
    this.since = Date.now();
    if (next === "down" && this.everUp) this.disconnects++;
    if (next === "up") this.everUp = true;
    this.emit(next);
  }

  get up(): boolean {
    return this.state === "up";
  }

  status(): LinkStatus {
    return { state: this.state, since: new Date(this.since).toISOString(), disconnects: this.disconnects, lastError: this.lastError };
  }

  /**
   * Start-up check, before anything else is opened: one connection, no retries.
   * Resolves with the server's version or rejects with a ClusterError naming the URL.
   */
  async probe(): Promise<string> {
    const options = redisOptions(this.config);
    // The database is selected by hand: a SELECT ioredis sends itself while connecting fails silently and the probe would hang.
    const conn = new Redis({ ...options, db: 0, lazyConnect: true, retryStrategy: () => null, sentinelRetryStrategy: () => null, maxRetriesPerRequest: 0, enableOfflineQueue: false });
    let cause: NodeJS.ErrnoException | null = null;
    let version = "unknown";
    let clusterMode = false;
    conn.on("error", (err: NodeJS.ErrnoException) => (cause ??= err));
    try {
      await conn.connect();
      if (options.db) await conn.select(options.db);
      const info = await conn.info("server");
      version = /redis_version:(\S+)/.exec(info)?.[1] ?? "unknown";
      clusterMode = /cluster_enabled:1/.test(await conn.info("cluster"));
    } catch (err) {
      const e = cause ?? (err as NodeJS.ErrnoException);
      // One line: OpenSSL's messages span several.
      const message = (e.message ?? "").replace(/\s+/g, " ").trim();
      const via = this.config.sentinels ? ` through cluster.sentinels ${this.config.sentinels.map((s) => `${s.host}:${s.port}`).join(",")}` : "";
      throw new ClusterError(`cannot reach Redis at ${this.url} (cluster.redis)${via}: ${e.code ?? message}${e.code && message && !message.includes(e.code) ? ` (${message})` : ""}`);
    } finally {
      conn.disconnect();
    }
    return checkServer(this.url, version, clusterMode);
  }

  async close(): Promise<void> {
    await Promise.all(
      this.connections.map(async (c) => {
        if (c.status === "end") return;
        // quit() waits for queued commands; a link that is down would never answer.
        if (c.status === "ready") await c.quit().catch(() => c.disconnect());
        else c.disconnect();
      }),
    );
  }
}
