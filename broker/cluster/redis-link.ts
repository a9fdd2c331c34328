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
import { EventEmitter } from "node:events";
import { redactedUrl, type ClusterConfig } from "./config.js";
import { probeRedis } from "./redis-probe.js";
import { redisOptions } from "./redis-options.js";
import { guardSentinels, guardStreams } from "./redis-streams.js";

export { ClusterError, reconnectDelay, redisOptions } from "./redis-options.js";
export { checkServer } from "./redis-probe.js";

export type LinkState = "up" | "down";

export interface LinkStatus {
  state: LinkState;
  /** ISO time of the last change. */
  since: string;
  /** How many times a connection to Redis was lost since start. */
  disconnects: number;
  lastError: string | null;
}

export interface Outage {
  cause: string | null;
  errors: number;
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
  /** The last error ioredis reported while the link was up: what took it down. */
  private recentError: string | null = null;
  private current: Outage = { cause: null, errors: 0 };

  constructor(private readonly config: ClusterConfig) {
    super();
    this.url = redactedUrl(config.redis);
  }

  /**
   * Make a connection (retrying forever); `name` shows in CLIENT LIST. It is
   * made lazy and connected here, once its sockets are guarded (redis-streams.ts).
   */
  connect(name: string, extra: RedisOptions = {}): Redis {
    const conn = new Redis({ ...redisOptions(this.config), connectionName: name, ...extra, lazyConnect: true });
    this.track(conn);
    if (!extra.lazyConnect) conn.connect().catch(() => {}); // failures arrive as 'error' events and reconnects
    return conn;
  }

  private track(conn: Redis): void {
    this.connections.push(conn);
    // For the connection's whole life: without a listener, an 'error' would take the process down.
    conn.on("error", (err: Error) => this.noteError(err));
    guardStreams(conn, (err) => this.noteError(err, true));
    // A sentinel connection's error cannot take the link down itself (the master connection's can): counted, never the cause.
    guardSentinels(conn, (err) => this.noteError(err, true));
    conn.on("close", () => this.update());
    conn.on("ready", () => this.update());
  }

  /** `late`: a socket's error after its first, on a socket ioredis has already given up (it cannot be what takes the link down). */
  private noteError(err: Error, late = false): void {
    this.lastError = err.message;
    if (this.state !== "up") this.current.errors++;
    else if (!late) this.recentError = err.message;
  }

  private update(): void {
    const allReady = this.connections.every((c) => c.status === "ready" || c.status === "end");
    const next: LinkState = allReady ? "up" : "down";
    if (next === this.state) return;
    this.state = next;
    this.since = Date.now();
    if (next === "down" && this.everUp) this.disconnects++;
    if (next === "down") {
      this.current = { cause: this.recentError, errors: this.recentError ? 1 : 0 };
      this.recentError = null;
    }
    if (next === "up") {
      this.everUp = true;
      this.recentError = null; // errors before this belong to the outage that just ended
    }
    this.emit(next);
  }

  get up(): boolean {
    return this.state === "up";
  }

  status(): LinkStatus {
    return { state: this.state, since: new Date(this.since).toISOString(), disconnects: this.disconnects, lastError: this.lastError };
  }

  /**
   * The link's current (or last) outage: the error that took it down, if one
   * did, and how many errors its connections reported since — what is logged
   * once per outage instead of every failed reconnection attempt.
   */
  outage(): Outage {
    return { ...this.current };
  }

  /** Start-up check, before anything else is opened (redis-probe.ts). */
  probe(): Promise<string> {
    return probeRedis(this.config, this.url);
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
