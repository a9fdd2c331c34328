/**
 * Which nodes are alive, and what each one reports about itself.
 *
 * Every `heartbeatMs` a node writes, in one pipeline:
 *   wasmq:alive:<incarnation>  PX (willDelayMs - heartbeatMs)  — wills.ts reads it
 *   wasmq:node:<node id>       its status record (JSON), same expiry — GET /cluster reads it
 *   wasmq:incarnations, wasmq:nodes   sets of everyone that ever joined
 * A node whose keys expired is dead for the cluster: its wills are published
 * (wills.ts) and GET /cluster lists it as down.
 */
import type { Redis } from "ioredis";
import type { RedisLink } from "./redis-link.js";

export const aliveKey = (incarnation: string) => `wasmq:alive:${incarnation}`;
export const nodeKey = (id: string) => `wasmq:node:${id}`;
export const INCARNATIONS = "wasmq:incarnations";
export const NODES = "wasmq:nodes";

export interface NodeRecord {
  id: string;
  incarnation: string;
  startedAt: string;
  updatedAt: string;
  clients: number;
  mqtt: string | null;
  admin: string | null;
  /** plugin name → sha256 of the running build (null for native plugins). */
  plugins: Record<string, string | null>;
  redis: ReturnType<RedisLink["status"]>;
  takenOver: number;
  willsPublished: number;
  /** The node's own $SYS figures, summed into the cluster-wide ones. */
  sys?: Record<string, number>;
}

export interface NodeView extends Partial<NodeRecord> {
  id: string;
  state: "up" | "down";
}

export class Membership {
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly redis: Redis,
    private readonly link: RedisLink,
    private readonly opts: { id: string; incarnation: string; heartbeatMs: number; willDelayMs: number; record: () => NodeRecord },
  ) {}

  get ttlMs(): number {
    return this.opts.willDelayMs - this.opts.heartbeatMs;
  }

  async start(): Promise<void> {
    await this.beat();
    this.timer = setInterval(() => {
      if (this.link.up) this.beat().catch(() => {});
    }, this.opts.heartbeatMs);
    this.timer.unref();
  }

  beat(): Promise<unknown> {
    const { id, incarnation } = this.opts;
    return this.redis
      .pipeline()
      .set(aliveKey(incarnation), "1", "PX", this.ttlMs)
      .set(nodeKey(id), JSON.stringify(this.opts.record()), "PX", this.ttlMs)
      .sadd(INCARNATIONS, incarnation)
      .sadd(NODES, id)
      .exec();
  }

  async nodes(): Promise<NodeView[]> {
    const ids = (await this.redis.smembers(NODES)).sort();
    if (ids.length === 0) return [];
    const records = await this.redis.mget(ids.map(nodeKey));
    return ids.map((id, i) => {
      const text = records[i];
      return text ? { ...(JSON.parse(text) as NodeRecord), state: "up" as const } : { id, state: "down" as const };
    });
  }

  /** On a clean shutdown: gone at once, not after the expiry. */
  async leave(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    if (!this.link.up) return;
    // A node that left cleanly is no longer listed; a crashed one stays listed as down until it returns.
    await this.redis.pipeline().del(aliveKey(this.opts.incarnation)).del(nodeKey(this.opts.id)).srem(NODES, this.opts.id).exec();
  }
}
