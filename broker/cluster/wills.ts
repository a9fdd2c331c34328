/**
 * Wills of a node that died (kill -9, power loss, netsplit longer than the
 * bound): the survivors publish them within `willDelayMs`.
 *
 * aedes' own mechanism waits for 3 missed heartbeats and sweeps every 4
 * (default 60 s: 3–7 minutes), and two survivors may both publish a will. Here
 * every node, every `heartbeatMs`, looks for incarnations whose alive key
 * (membership.ts) expired. For each, it claims every will that incarnation left
 * with GETDEL — exactly one survivor gets each will — and publishes it through
 * the publish hook like any will. It also releases the dead incarnation's
 * session ownerships. Bound: the alive key lives willDelayMs - heartbeatMs
 * after the last beat, and the next sweep comes within heartbeatMs.
 *
 * A node that was cut off from Redis longer than that has its clients' wills
 * published while they may still be connected to it (as when any broker is
 * partitioned from its clients' peers); when its link comes back it stores
 * its live clients' wills again (restoreWills).
 */
import type { Aedes, Client } from "aedes";
import type { Redis } from "ioredis";
import { createRequire } from "node:module";
import type { Logger } from "pino";
import { aliveKey, INCARNATIONS } from "./membership.js";
import { ownedKey, ownerKey, RELEASE } from "./ownership.js";

const requireFromPersistence = createRequire(createRequire(import.meta.url).resolve("aedes-persistence-redis"));
// The encoding aedes-persistence-redis stores wills in.
const msgpack = requireFromPersistence("msgpack-lite") as { decode(buf: Buffer): unknown };

/** aedes-persistence-redis' will list and keys (asyncPersistence.js). */
const WILLS = "will";

interface StoredWill {
  topic: string;
  payload: Buffer;
  qos: 0 | 1 | 2;
  retain: boolean;
  clientId: string;
}

export class WillTakeover {
  published = 0;
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;

  constructor(
    private readonly redis: Redis,
    private readonly aedes: Aedes,
    private readonly opts: { incarnation: string; heartbeatMs: number; logger: Logger; isUp: () => boolean; onNodeGone?: (incarnation: string) => Promise<void> },
  ) {
    redis.defineCommand("wasmqRelease", { numberOfKeys: 2, lua: RELEASE });
  }

  start(): void {
    this.timer = setInterval(() => void this.sweep(), this.opts.heartbeatMs);
    this.timer.unref();
    void this.sweep();
  }

  stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    return this.running ?? Promise.resolve();
  }

  sweep(): Promise<void> {
    if (this.running || !this.opts.isUp()) return this.running ?? Promise.resolve();
    this.running = this.sweepOnce()
      .catch((err: Error) => this.opts.logger.warn({ err: err.message }, "cluster: will sweep failed"))
      .finally(() => (this.running = null));
    return this.running;
  }

  private async sweepOnce(): Promise<void> {
    const incarnations = (await this.redis.smembers(INCARNATIONS)).filter((i) => i !== this.opts.incarnation);
    if (incarnations.length === 0) return;
    const alive = await this.redis.pipeline(incarnations.map((i) => ["exists", aliveKey(i)])).exec();
    const dead = incarnations.filter((_, i) => alive?.[i]?.[1] === 0);
    for (const incarnation of dead) await this.takeOver(incarnation);
  }

  private async takeOver(incarnation: string): Promise<void> {
    const prefix = `will:${incarnation}:`;
    const keys = (await this.redis.lrange(WILLS, 0, -1)).filter((k) => k.startsWith(prefix));
    let count = 0;
    for (const key of keys) {
      const raw = (await this.redis.callBuffer("GETDEL", key)) as Buffer | null;
      await this.redis.lrem(WILLS, 0, key);
      if (!raw) continue; // another survivor got it
      const will = msgpack.decode(raw) as StoredWill;
      await this.publish(will);
      count++;
    }
    const owned = await this.redis.smembers(ownedKey(incarnation));
    const release = (this.redis as unknown as { wasmqRelease(a: string, b: string, c: string, d: string): Promise<number> }).wasmqRelease.bind(this.redis);
    for (const clientId of owned) await release(ownerKey(clientId), ownedKey(incarnation), incarnation, clientId);
    // Before it is forgotten: what else the dead node left waiting (its shared-subscription hand-overs).
    await this.opts.onNodeGone?.(incarnation);
    await this.redis.pipeline().del(ownedKey(incarnation)).srem(INCARNATIONS, incarnation).exec();
    this.published += count;
    this.opts.logger.info({ node: incarnation, wills: count, sessions: owned.length }, `cluster: node ${incarnation} is gone: published ${count} will(s), released ${owned.length} session(s)`);
  }

  private publish(will: StoredWill): Promise<void> {
    const packet = { cmd: "publish" as const, topic: will.topic, payload: Buffer.from(will.payload), qos: will.qos, retain: will.retain, dup: false, clientId: will.clientId };
    return new Promise((resolve) => {
      // As aedes does for its own will sweep: the publish hook decides, with no client.
      this.aedes.authorizePublish(null as unknown as Client, packet, (err) => {
        if (err) {
          this.opts.logger.info({ clientId: will.clientId, topic: will.topic, err: err.message }, "cluster: will of a dead node's client refused by the publish hook");
          return resolve();
        }
        this.aedes.publish(packet, () => resolve());
      });
    });
  }

  /** Store the wills of this node's live clients again (after the link came back: survivors may have taken them). */
  async restoreWills(persistence: { putWill(client: Client, will: object): Promise<void> }): Promise<void> {
    const clients = (this.aedes as unknown as { clients: Record<string, Client & { will?: object }> }).clients;
    for (const id in clients) {
      const c = clients[id]!;
      if (c.will) await persistence.putWill(c, c.will).catch(() => {});
    }
  }
}
