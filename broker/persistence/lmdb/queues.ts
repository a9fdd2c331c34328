/**
 * Offline and in-flight QoS 1/2 queues (the `outgoing` database): the
 * surface aedes calls. Each loaded client's queue keeps its entries'
 * metadata in memory; payloads stay in LMDB (queue-records.ts).
 *
 * Per persistent QoS 1 delivery the disk sees one put (the enqueue, durable
 * before the publisher's PUBACK) and one remove (the subscriber's PUBACK,
 * committed with the next batch: DeferredRemovals). The packet identifier the
 * delivery got is memory's: written ID_WRITE_DELAY_MS later only if still
 * unacknowledged, and at close (DeferredIds). Losing it in a crash makes the
 * redelivery a new delivery with a new identifier, which for QoS 1 is the
 * duplicate at-least-once allows; QoS 2 identifiers and PUBREL states are
 * written before they are sent.
 *
 * A QoS 1 message whose publisher waits on an AckTicket (../ack-gate.ts) is
 * enqueued for a connected session without a write (held-puts.ts): the put
 * is held back for `writeHoldMs` and dropped if the subscriber's PUBACK comes
 * first (with `writeHold: "adaptive"`, only for sessions whose acks usually
 * beat it; the others are written first). With `writeHoldMs` 0 the store has no gate: every enqueue is written
 * before it resolves, i.e. before aedes routes the message.
 */
import { Readable } from "node:stream";
import type { ClientLike, StoredPacket } from "./aedes-parts.js";
import { noop, type StoreContext } from "./environment.js";
import { getQueueExpiry } from "./expiry.js";
import type { AckGate } from "../ack-gate.js";
import { DeferredIds, DeferredRemovals, withId } from "./deferred-writes.js";
import { HeldPuts, type HoldFigures, type WriteHoldMode } from "./held-puts.js";
import { QueueRecords } from "./queue-records.js";
import { settle } from "./unwritten.js";
import { indexFind, indexInvalidate } from "./counter-index.js";
import { plainPacket, ttlKey, type ClientQueue, type OutMeta } from "./keys.js";

export { ID_WRITE_DELAY_MS, REMOVAL_DELAY_MS } from "./deferred-writes.js";

export class QueueStore {
  readonly #records: QueueRecords;
  readonly #holds: HeldPuts;
  readonly #ids: DeferredIds;
  readonly #removals: DeferredRemovals;

  constructor(
    private readonly ctx: StoreContext,
    /** Absent (no publisher waits on a ticket): every enqueue is written first. */
    private readonly gate: AckGate | undefined,
    holdMs: number,
    holdMode: WriteHoldMode = "fixed",
  ) {
    this.#records = new QueueRecords(ctx, (meta) => this.#holds.materialize(meta));
    this.#ids = new DeferredIds(this.#records);
    this.#removals = new DeferredRemovals(ctx, this.#records);
    this.#holds = new HeldPuts(ctx, this.#records, this.#removals, holdMs, holdMode);
  }

  /** What the hold did (held-puts.ts). */
  holdFigures(): HoldFigures {
    return this.#holds.figures();
  }

  /** Issue every held put now (destroy(), before the final flush). */
  flushUnwritten(): Promise<unknown> {
    return this.#holds.flushAll();
  }

  /** Write every deferred packet identifier now (destroy(), before the final flush). */
  writeDeferredIds(): Promise<unknown> {
    return this.#ids.writeAll();
  }

  /** Issue the deferred removals now (destroy(), before the final flush). */
  issueRemovals(): Promise<unknown> {
    return this.#removals.issue();
  }

  /** A queue already in memory (for the expiry sweep), or undefined. */
  loaded(clientId: string): ClientQueue | undefined {
    return this.#records.loaded(clientId);
  }

  /** Drop every queue that is empty and idle from memory. */
  forgetIdle(): void {
    this.#records.forgetIdle();
    this.#holds.pruneIdle();
  }

  clear(): void {
    this.#holds.clear();
    this.#records.clear();
    this.#ids.clear();
    this.#removals.clear();
  }

  /** The subscriber acknowledged the delivery (outgoingClearMessageId). */
  #acknowledged(q: ClientQueue, meta: OutMeta, refused: boolean): void {
    if (refused) this.#holds.unsampled(meta); // not sent: no ack latency to learn from
    else this.#holds.acked(meta);
    const u = this.#holds.dropHeld(meta);
    if (u) {
      // Acknowledged while its put was held: nothing was written, nothing to remove.
      this.#records.forget(q, meta);
      meta.pending = undefined;
      this.#ids.cancel(meta);
      settle(u);
      this.#records.maybeForget(q);
      return;
    }
    // Acknowledged while its put was being written: the subscriber has it, so
    // its publisher need not wait for the flush.
    if (meta.awaiting) settle(meta.awaiting);
    this.#records.forget(q, meta);
    this.#records.release(meta);
    meta.pending = undefined;
    // acknowledged before its identifier was written: nothing to write
    this.#ids.cancel(meta);
    this.#removals.add(q, meta);
  }

  /** Drop an expired entry (the sweep). */
  dropEntry(q: ClientQueue, meta: OutMeta): void {
    this.#holds.materialize(meta);
    this.#records.release(meta);
    meta.pending = undefined;
    this.#records.forget(q, meta);
  }

  #enqueue(clientId: string, packet: StoredPacket, expiresAt: number | undefined, writes: Array<Promise<unknown>>): void {
    this.#removals.issueIfAny();
    const [q, meta, rec] = this.#records.newEntry(clientId, packet, expiresAt);
    this.#records.putEntry(q, meta, rec, writes);
  }

  queuedCount(clientId: string): number {
    if (this.ctx.destroyed) return 0;
    const q = this.#records.queue(clientId);
    const n = q.entries.size;
    this.#records.maybeForget(q);
    return n;
  }

  async outgoingEnqueue(sub: { clientId: string }, packet: StoredPacket): Promise<void> {
    this.ctx.live();
    const writes: Array<Promise<unknown>> = [];
    this.#enqueue(sub.clientId, packet, getQueueExpiry(packet), writes);
    await this.ctx.settle(writes);
  }

  async outgoingEnqueueCombi(subs: Array<{ clientId: string }>, packet: StoredPacket): Promise<void> {
    this.ctx.live();
    if (!subs || subs.length === 0) return;
    const e = getQueueExpiry(packet);
    const ticket = packet.qos === 1 ? this.gate?.claim(packet) : undefined;
    if (ticket) return this.#holds.enqueue(subs, packet, e, ticket);
    const writes: Array<Promise<unknown>> = [];
    for (const sub of subs) this.#enqueue(sub.clientId, packet, e, writes);
    await this.ctx.settle(writes);
  }

  async outgoingUpdate(client: ClientLike, packet: StoredPacket): Promise<void> {
    this.ctx.live();
    const q = this.#records.queue(client.id);
    // Same search as aedes-persistence's reference: by (brokerId, brokerCounter),
    // else a packet from another broker with the same messageId is replaced (pubrel).
    // The index gives the scan's answer where it can (counter-index.ts).
    const indexed = indexFind(q, packet, this.ctx.brokerId);
    if (indexed) return this.#updateFound(q, indexed, packet);
    if (indexed === undefined) {
      for (const meta of q.entries.values()) {
        if (meta.brokerId === packet.brokerId) {
          if (meta.brokerCounter === packet.brokerCounter) return this.#updateFound(q, meta, packet);
        } else if (meta.messageId === packet.messageId) {
          return this.#replace(q, meta, client, packet);
        }
      }
    }
    this.#records.maybeForget(q);
    throw new Error("no such packet");
  }

  /** outgoingUpdate found the delivery itself: record its packet identifier. */
  async #updateFound(q: ClientQueue, meta: OutMeta, packet: StoredPacket): Promise<void> {
    meta.messageId = packet.messageId;
    if (packet.cmd === "publish" && packet.qos === 1) {
      // QoS 1 in flight: the identifier lives in memory and is written
      // later (see DeferredIds); the message itself is already stored.
      this.#ids.defer(q, meta);
      return;
    }
    this.#ids.cancel(meta);
    const writes: Array<Promise<unknown>> = [];
    const rec = this.#records.read(q, meta);
    if (rec) {
      this.#records.write(q, meta, { ...rec, p: { ...rec.p, messageId: packet.messageId } }, writes);
    }
    await this.ctx.settle(writes);
  }

  /** outgoingUpdate found another broker's entry with the identifier: replaced by e.g. a PUBREL. */
  async #replace(q: ClientQueue, meta: OutMeta, client: ClientLike, packet: StoredPacket): Promise<void> {
    // delivery has started, the expiry no longer applies
    this.#holds.materialize(meta);
    indexInvalidate(q); // its broker id and counter change
    const writes: Array<Promise<unknown>> = [];
    const key = this.#records.outKey(q, meta.seq);
    if (meta.e !== undefined) writes.push(this.#records.track(q, this.ctx.dbs.outgoingTtl.remove(ttlKey(meta.e, key))));
    meta.brokerId = packet.brokerId;
    meta.brokerCounter = packet.brokerCounter;
    meta.messageId = packet.messageId;
    meta.e = undefined;
    this.#ids.cancel(meta);
    this.#records.write(q, meta, { c: client.id, p: plainPacket(packet) }, writes);
    await this.ctx.settle(writes);
  }

  async outgoingClearMessageId(client: ClientLike, packet: StoredPacket): Promise<StoredPacket | undefined> {
    this.ctx.live();
    if (packet === null || typeof packet !== "object") return undefined;
    const q = this.#records.queue(client.id);
    let found: OutMeta | undefined;
    if (packet.messageId === undefined || packet.messageId === null) {
      // aedes calls this with a not-yet-numbered packet when a delivery is
      // denied/deduplicated: match that exact queued packet, never "the first
      // unnumbered one" (the reference's accidental behaviour).
      if (packet.brokerId !== undefined) {
        for (const meta of q.entries.values()) {
          if (
            meta.brokerId === packet.brokerId &&
            meta.brokerCounter === packet.brokerCounter &&
            (meta.messageId === undefined || meta.messageId === null)
          ) {
            found = meta;
            break;
          }
        }
      }
    } else {
      for (const meta of q.entries.values()) {
        if (meta.messageId === packet.messageId) {
          found = meta;
          break;
        }
      }
    }
    if (!found) {
      this.#records.maybeForget(q);
      return undefined;
    }
    const rec = this.#records.read(q, found);
    const messageId = found.messageId;
    this.#acknowledged(q, found, messageId === undefined || messageId === null);
    return rec ? withId(rec.p, messageId) : undefined;
  }

  outgoingStream(client: ClientLike): Readable {
    if (this.ctx.destroyed) return Readable.from([]);
    const { ctx } = this;
    const records = this.#records;
    const ids = this.#ids;
    const q = records.queue(client.id);
    const snapshot = [...q.entries.values()];
    const now = Date.now();
    return Readable.from(
      (function* () {
        const expired: OutMeta[] = [];
        try {
          for (const meta of snapshot) {
            if (ctx.destroyed) return;
            if (q.entries.get(meta.seq) !== meta) continue; // cleared meanwhile
            if (meta.e !== undefined && meta.e <= now && (meta.messageId === undefined || meta.messageId === null)) {
              expired.push(meta);
              continue;
            }
            const rec = records.read(q, meta);
            if (rec) yield withId({ ...rec.p }, meta.messageId);
          }
        } finally {
          if (expired.length > 0 && !ctx.destroyed) {
            const writes: Array<Promise<unknown>> = [];
            for (const meta of expired) {
              if (q.entries.get(meta.seq) !== meta) continue;
              records.remove(q, meta, writes);
              ids.cancel(meta);
            }
            Promise.all(writes).catch(noop);
          }
          records.maybeForget(q);
        }
      })(),
    );
  }
}
