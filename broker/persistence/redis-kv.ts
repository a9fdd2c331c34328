/**
 * Plugin key-value state in Redis (cluster mode): the same KvStore API,
 * namespaces and limits as the LMDB store (plugin-kv.ts), shared by every node.
 *
 * Host imports are synchronous (no JSPI on Node 20), so a plugin reads from a
 * full local copy of the store and never waits for Redis. Cache semantics:
 *
 *  - Read-your-writes on the writing node: a put/delete changes the local copy
 *    at once and is written to Redis in the background.
 *  - Other nodes see a write when its notice arrives: each write is one
 *    MULTI (HSET/HDEL + PUBLISH), so Redis orders writes and notices alike and
 *    every node applies them in that order. Until then another node reads the
 *    previous value (typically well under a millisecond on a LAN).
 *  - Concurrent writes to one key from two nodes: last writer in Redis order
 *    wins everywhere. A node ignores others' notices for a key while its own
 *    writes to that key are in flight; its own notice, which comes later in
 *    Redis order, settles the key.
 *  - No atomic read-modify-write across nodes: two nodes incrementing a
 *    counter at the same moment can lose one increment.
 *  - While Redis is unreachable, reads and writes keep working locally; writes
 *    are sent when it is back, and then every node reloads the store from
 *    Redis (notices sent meanwhile may have been missed).
 *  - Limits (value, key, namespace bytes) are checked against the local copy.
 *
 * Layout: one hash per namespace, `wasmq:kv:<namespace>`, field = key bytes.
 */
import type { Redis } from "ioredis";
import type { Logger } from "pino";
import { admitPut, DEFAULT_KV_LIMITS, keyString, type KvLimits, type KvStore } from "../../host/kv.js";
import { CHANNELS, type Notices } from "../cluster/notices.js";

const PREFIX = "wasmq:kv:";

interface Space {
  bytes: number;
  entries: Map<string, Buffer>;
}

interface KvNotice {
  n: string;
  s: string;
  k: string;
  v: string | null;
}


export class RedisKvStore implements KvStore {
  private readonly spaces = new Map<string, Space>();
  /** Own writes sent and not yet seen back, per namespace\0key. */
  private readonly pending = new Map<string, number>();
  /** Own writes Redis has not answered yet, per namespace\0key. */
  private readonly unanswered = new Map<string, number>();
  private readonly redis: Redis;
  private readonly notices: Notices;
  private readonly node: string;
  private readonly logger: Logger;
  private readonly limits: KvLimits;
  private held: Buffer[] | null = null;
  /** Writes Redis refused (the local copy then differs until the next reload). */
  failedWrites = 0;

  constructor(opts: { redis: Redis; notices: Notices; node: string; logger: Logger; limits?: KvLimits }) {
    this.redis = opts.redis;
    this.notices = opts.notices;
    this.node = opts.node;
    this.logger = opts.logger;
    this.limits = opts.limits ?? DEFAULT_KV_LIMITS;
  }

  /** Subscribe to other nodes' writes, then read the whole store. */
  async load(): Promise<void> {
    await this.notices.on(CHANNELS.kv, (m) => this.onNotice(m));
    await this.resync();
  }

  /** Replace the local copy with Redis' (after start and after the link was lost). */
  async resync(): Promise<void> {
    // Notices that arrive while the store is being read are applied after it, in order.
    this.held ??= [];
    try {
      await this.reload();
    } finally {
      const held = this.held ?? [];
      this.held = null;
      for (const m of held) this.onNotice(m);
    }
  }

  private async reload(): Promise<void> {
    const fresh = new Map<string, Space>();
    let cursor = "0";
    do {
      const [next, keys] = await this.redis.scan(cursor, "MATCH", `${PREFIX}*`, "COUNT", 200);
      cursor = next;
      for (const redisKey of keys) {
        const ns = redisKey.slice(PREFIX.length);
        // Raw reply, fields as bytes (hgetallBuffer would decode field names as UTF-8).
        const flat = (await this.redis.callBuffer("HGETALL", redisKey)) as Buffer[];
        const space: Space = { bytes: 0, entries: new Map() };
        for (let i = 0; i + 1 < flat.length; i += 2) setEntry(space, flat[i]!.toString("latin1"), flat[i + 1]!);
        fresh.set(ns, space);
      }
    } while (cursor !== "0");
    // Own writes Redis already applied are in what was just read; their notices
    // may have been lost with the link, so stop waiting for them.
    for (const id of [...this.pending.keys()]) if (!this.unanswered.has(id)) this.pending.delete(id);
    // Keys with own writes still unanswered keep their local value: it is newer.
    for (const id of this.pending.keys()) {
      const [ns, k] = splitId(id);
      const local = this.spaces.get(ns)?.entries.get(k);
      const space = fresh.get(ns) ?? { bytes: 0, entries: new Map<string, Buffer>() };
      fresh.set(ns, space);
      setEntry(space, k, local);
    }
    this.spaces.clear();
    for (const [ns, space] of fresh) this.spaces.set(ns, space);
  }

  get(namespace: string, key: Uint8Array): Uint8Array | undefined {
    return this.spaces.get(namespace)?.entries.get(keyString(key));
  }

  put(namespace: string, key: Uint8Array, value: Uint8Array): void {
    const space = this.space(namespace);
    const k = keyString(key);
    admitPut(this.limits, namespace, space, k, key, value);
    const stored = Buffer.from(value);
    setEntry(space, k, stored);
    this.send(namespace, k, stored);
  }

  delete(namespace: string, key: Uint8Array): boolean {
    const space = this.spaces.get(namespace);
    const k = keyString(key);
    if (!space?.entries.has(k)) return false;
    setEntry(space, k, undefined);
    this.send(namespace, k, null);
    return true;
  }

  private space(namespace: string): Space {
    let space = this.spaces.get(namespace);
    if (!space) {
      space = { bytes: 0, entries: new Map() };
      this.spaces.set(namespace, space);
    }
    return space;
  }

  private send(ns: string, k: string, value: Buffer | null): void {
    const id = `${ns}\0${k}`;
    this.pending.set(id, (this.pending.get(id) ?? 0) + 1);
    this.unanswered.set(id, (this.unanswered.get(id) ?? 0) + 1);
    const field = Buffer.from(k, "latin1");
    const notice: KvNotice = { n: this.node, s: ns, k: field.toString("base64"), v: value ? value.toString("base64") : null };
    const tx = this.redis.multi();
    if (value) tx.hset(PREFIX + ns, field, value);
    else tx.hdel(PREFIX + ns, field);
    tx.publish(CHANNELS.kv, JSON.stringify(notice));
    const answered = () => {
      const n = (this.unanswered.get(id) ?? 1) - 1;
      if (n <= 0) this.unanswered.delete(id);
      else this.unanswered.set(id, n);
    };
    tx.exec().then(
      (results) => {
        answered();
        const failed = results?.find(([err]) => err);
        if (failed) this.writeFailed(id, failed[0]!);
      },
      (err: Error) => {
        answered();
        this.writeFailed(id, err);
      },
    );
  }

  private writeFailed(id: string, err: Error): void {
    this.failedWrites++;
    this.settle(id);
    this.logger.warn({ err: err.message, namespace: splitId(id)[0] }, "plugin KV: write to Redis failed; this node's copy differs until the next reload");
  }

  private settle(id: string): void {
    const n = (this.pending.get(id) ?? 1) - 1;
    if (n <= 0) this.pending.delete(id);
    else this.pending.set(id, n);
  }

  private onNotice(message: Buffer): void {
    if (this.held) {
      this.held.push(message);
      return;
    }
    let notice: KvNotice;
    try {
      notice = JSON.parse(message.toString()) as KvNotice;
    } catch {
      return;
    }
    const k = Buffer.from(notice.k, "base64").toString("latin1");
    const id = `${notice.s}\0${k}`;
    if (notice.n === this.node) return this.settle(id);
    if (this.pending.has(id)) return; // our own later write supersedes it
    setEntry(this.space(notice.s), k, notice.v === null ? undefined : Buffer.from(notice.v, "base64"));
  }
}

function splitId(id: string): [string, string] {
  const i = id.indexOf("\0");
  return [id.slice(0, i), id.slice(i + 1)];
}

function setEntry(space: Space, k: string, value: Buffer | undefined): void {
  const keyBytes = Buffer.byteLength(k, "latin1");
  const previous = space.entries.get(k);
  if (previous) space.bytes -= keyBytes + previous.length;
  if (value) {
    space.entries.set(k, value);
    space.bytes += keyBytes + value.length;
  } else space.entries.delete(k);
}
