/**
 * The two writes of a persistent QoS 1 delivery that nothing waits for, so
 * they are issued later, batched with other writes or not at all (queues.ts
 * says when each is needed):
 * - the packet identifier a delivery went out with (DeferredIds): written
 *   ID_WRITE_DELAY_MS later, only if the subscriber has not acknowledged it;
 * - the removal of an acknowledged delivery's record (DeferredRemovals):
 *   issued with the next enqueue (same transaction, same fdatasync) or
 *   REMOVAL_DELAY_MS later.
 */
import type { StoredPacket } from "./aedes-parts.js";
import { noop, type StoreContext } from "./environment.js";
import { ttlKey, type ClientQueue, type OutMeta } from "./keys.js";
import type { QueueRecords } from "./queue-records.js";

/**
 * How long the packet identifier of a QoS 1 delivery in flight may live in
 * memory only. A PUBACK within this time means it is never written.
 */
export const ID_WRITE_DELAY_MS = 1000;

/** At the latest this long after a subscriber's PUBACK its delivery's record removal is issued. */
export const REMOVAL_DELAY_MS = 20;

/** The packet as stored, with the identifier memory knows (see QueueStore.outgoingUpdate). */
export function withId(p: StoredPacket, messageId: unknown): StoredPacket {
  if (messageId === undefined || messageId === null || p.messageId === messageId) return p;
  return { ...p, messageId: messageId as number };
}

/**
 * QoS 1 packet identifiers of deliveries in flight, not yet written: the
 * delivery → its queue. Written by writeAll ID_WRITE_DELAY_MS later unless
 * the PUBACK came first (the usual case: then nothing is written at all).
 */
export class DeferredIds {
  readonly #pending = new Map<OutMeta, ClientQueue>();
  #timer: NodeJS.Timeout | undefined;

  constructor(private readonly records: QueueRecords) {}

  defer(q: ClientQueue, meta: OutMeta): void {
    this.#pending.set(meta, q);
    if (!this.#timer) {
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        this.writeAll();
      }, ID_WRITE_DELAY_MS);
      this.#timer.unref();
    }
  }

  /** The delivery was acknowledged, removed or rewritten with its identifier: nothing to write for it. */
  cancel(meta: OutMeta): void {
    this.#pending.delete(meta);
  }

  /** Write every deferred identifier now (the timer, and destroy() before the final flush). Returns the writes. */
  writeAll(): Promise<unknown> {
    const writes: Array<Promise<unknown>> = [];
    for (const [meta, q] of this.#pending) {
      if (q.entries.get(meta.seq) !== meta) continue;
      const rec = this.records.read(q, meta);
      if (rec && rec.p.messageId !== meta.messageId) {
        this.records.write(q, meta, { ...rec, p: withId(rec.p, meta.messageId) }, writes);
      }
    }
    this.#pending.clear();
    return Promise.all(writes).catch(noop);
  }

  clear(): void {
    this.#pending.clear();
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}

/**
 * Deliveries acknowledged by their subscriber, gone from memory, whose
 * records are still to be removed: issued with the next enqueue (same
 * transaction, same fdatasync) or REMOVAL_DELAY_MS later. Nothing is
 * promised on a removal (a crash before it commits redelivers the message,
 * as a crash just before the PUBACK arrived would), and a transaction of
 * removals alone would cost an fdatasync the next enqueue then waits behind.
 */
export class DeferredRemovals {
  #list: Array<{ q: ClientQueue; seq: number; e: number | undefined }> = [];
  #timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly ctx: StoreContext,
    private readonly records: QueueRecords,
  ) {}

  /** `meta`, already gone from memory, still has a record in LMDB: remove it soon. */
  add(q: ClientQueue, meta: OutMeta): void {
    // the record is still in LMDB: keep the queue loaded (a reload would bring it back)
    q.writes++;
    this.#list.push({ q, seq: meta.seq, e: meta.e });
    if (!this.#timer) {
      this.#timer = setTimeout(() => this.issue(), REMOVAL_DELAY_MS);
      this.#timer.unref();
    }
  }

  /** Issue them now if there are any: a write about to be issued carries them into its transaction. */
  issueIfAny(): void {
    if (this.#list.length > 0) void this.issue();
  }

  /** Issue the deferred removals now (the next enqueue, the timer, destroy()). Returns their writes. */
  issue(): Promise<unknown> {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#list.length === 0) return Promise.resolve();
    const list = this.#list;
    this.#list = [];
    const writes: Array<Promise<unknown>> = [];
    for (const { q, seq, e } of list) {
      const key = this.records.outKey(q, seq);
      writes.push(this.records.track(q, this.ctx.dbs.outgoing.remove(key)));
      if (e !== undefined) writes.push(this.records.track(q, this.ctx.dbs.outgoingTtl.remove(ttlKey(e, key))));
      q.writes--; // track holds the queue until the removal committed
    }
    return Promise.all(writes).catch(noop);
  }

  clear(): void {
    this.#list = [];
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
