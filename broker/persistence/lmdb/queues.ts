/**
 * Offline and in-flight QoS 1/2 queues (the `outgoing` database). Each loaded
 * client's queue keeps its entries' metadata in memory; payloads stay in LMDB.
 *
 * Per persistent QoS 1 delivery the disk sees one put (the enqueue, durable
 * before the publisher's PUBACK) and one remove (the subscriber's PUBACK,
 * committed with the next batch). The packet identifier the delivery got is
 * memory's: written ID_WRITE_DELAY_MS later only if still unacknowledged, and
 * at close. Losing it in a crash makes the redelivery a new delivery with a
 * new identifier, which for QoS 1 is the duplicate at-least-once allows; QoS 2
 * identifiers and PUBREL states are written before they are sent.
 *
 * A QoS 1 message whose publisher waits on an AckTicket (../ack-gate.ts) is
 * enqueued for a connected session without a write: the put is held back for
 * HOLD_MS (unwritten.ts) and dropped if the subscriber's PUBACK comes first,
 * so a subscriber that keeps up costs the disk nothing. The ticket completes
 * (and the publisher gets its PUBACK) once each such delivery was either
 * acknowledged or written and flushed.
 */
import { Readable } from "node:stream";
import { Packet, type ClientLike, type StoredPacket } from "./aedes-parts.js";
import { noop, type StoreContext } from "./environment.js";
import { getQueueExpiry } from "./expiry.js";
import { HeldRecords } from "./held-records.js";
import type { AckGate, AckTicket } from "../ack-gate.js";
import { settle, UnwrittenPuts, type Unwritten } from "./unwritten.js";
import { indexAdd, indexDelete, indexFind, indexInvalidate } from "./counter-index.js";
import { clientPrefix, plainPacket, prefixEnd, readU64, ttlKey, type ClientQueue, type OutMeta, type OutRecord } from "./keys.js";

/**
 * How long the packet identifier of a QoS 1 delivery in flight may live in
 * memory only. A PUBACK within this time means it is never written.
 */
export const ID_WRITE_DELAY_MS = 1000;

/** At the latest this long after a subscriber's PUBACK its delivery's record removal is issued. */
export const REMOVAL_DELAY_MS = 20;

/** The packet as stored, with the identifier memory knows (see outgoingUpdate). */
function withId(p: StoredPacket, messageId: unknown): StoredPacket {
  if (messageId === undefined || messageId === null || p.messageId === messageId) return p;
  return { ...p, messageId: messageId as number };
}

export class QueueStore {
  /** Loaded offline queues (metadata, and records while held; payloads stay in LMDB). */
  #queues = new Map<string, ClientQueue>();
  readonly #held = new HeldRecords();
  readonly #unwritten = new UnwrittenPuts(
    (list) => this.#issueUnwritten(list),
    () => this.ctx.busy(),
  );

  constructor(
    private readonly ctx: StoreContext,
    private readonly gate?: AckGate,
  ) {}

  /**
   * Issue held puts (in enqueue order): their tickets settle once the batch
   * is flushed. Issued in the same synchronous run, so any write that follows
   * for the same entry lands after them.
   */
  #issueUnwritten(list: Unwritten[]): Promise<void> {
    if (this.#removals.length > 0) void this.issueRemovals(); // same transaction, same fdatasync
    const writes: Array<Promise<unknown>> = [];
    for (const u of list) {
      u.done = true;
      u.meta.unwritten = undefined;
      u.meta.awaiting = u; // until flushed, the subscriber's PUBACK may settle it first
      this.#putEntry(u.q, u.meta, u.rec, writes);
    }
    const settled = this.ctx.settle(writes);
    settled.then(
      () => {
        for (const u of list) settle(u);
      },
      (err: unknown) => {
        for (const u of list) settle(u, err);
      },
    );
    return settled.catch(noop);
  }

  /** Issue an entry's held put now, before another write touches the entry. */
  #materialize(meta: OutMeta): void {
    if (meta.unwritten) void this.#issueUnwritten([meta.unwritten]);
  }

  /** Issue every held put now (destroy(), before the final flush). */
  flushUnwritten(): Promise<unknown> {
    const list = this.#unwritten.takeAll();
    return list.length > 0 ? this.#issueUnwritten(list) : Promise.resolve();
  }

  /** A queue already in memory (for the expiry sweep), or undefined. */
  loaded(clientId: string): ClientQueue | undefined {
    return this.#queues.get(clientId);
  }

  /** Drop every queue that is empty and idle from memory. */
  forgetIdle(): void {
    for (const q of [...this.#queues.values()]) this.#maybeForget(q);
  }

  clear(): void {
    this.#unwritten.clear();
    this.#queues.clear();
    this.#held.clear();
    this.#idWrites.clear();
    if (this.#idTimer) clearTimeout(this.#idTimer);
    this.#idTimer = undefined;
    this.#removals = [];
    if (this.#removalTimer) clearTimeout(this.#removalTimer);
    this.#removalTimer = undefined;
  }

  /**
   * Deliveries acknowledged by their subscriber, gone from memory, whose
   * records are still to be removed: issued with the next enqueue (same
   * transaction, same fdatasync) or REMOVAL_DELAY_MS later. Nothing is
   * promised on a removal (a crash before it commits redelivers the message,
   * as a crash just before the PUBACK arrived would), and a transaction of
   * removals alone would cost an fdatasync the next enqueue then waits behind.
   */
  #removals: Array<{ q: ClientQueue; seq: number; e: number | undefined }> = [];
  #removalTimer: NodeJS.Timeout | undefined;

  #deferRemoval(q: ClientQueue, meta: OutMeta): void {
    const u = meta.unwritten;
    if (u) {
      // Acknowledged while its put was held: nothing was written, nothing to remove.
      u.done = true;
      meta.unwritten = undefined;
      q.entries.delete(meta.seq);
      indexDelete(q, meta);
      meta.pending = undefined;
      this.#idWrites.delete(meta);
      settle(u);
      this.#maybeForget(q);
      return;
    }
    // Acknowledged while its put was being written: the subscriber has it, so
    // its publisher need not wait for the flush.
    if (meta.awaiting) settle(meta.awaiting);
    q.entries.delete(meta.seq);
    indexDelete(q, meta);
    this.#held.release(meta);
    meta.pending = undefined;
    // acknowledged before its identifier was written: nothing to write
    this.#idWrites.delete(meta);
    // the record is still in LMDB: keep the queue loaded (a reload would bring it back)
    q.writes++;
    this.#removals.push({ q, seq: meta.seq, e: meta.e });
    if (!this.#removalTimer) {
      this.#removalTimer = setTimeout(() => this.issueRemovals(), REMOVAL_DELAY_MS);
      this.#removalTimer.unref();
    }
  }

  /** Issue the deferred removals now (the next enqueue, the timer, destroy()). Returns their writes. */
  issueRemovals(): Promise<unknown> {
    if (this.#removalTimer) clearTimeout(this.#removalTimer);
    this.#removalTimer = undefined;
    if (this.#removals.length === 0) return Promise.resolve();
    const list = this.#removals;
    this.#removals = [];
    const writes: Array<Promise<unknown>> = [];
    for (const { q, seq, e } of list) {
      const key = this.#outKey(q, seq);
      writes.push(this.#track(q, this.ctx.dbs.outgoing.remove(key)));
      if (e !== undefined) writes.push(this.#track(q, this.ctx.dbs.outgoingTtl.remove(ttlKey(e, key))));
      q.writes--; // #track holds the queue until the removal committed
    }
    return Promise.all(writes).catch(noop);
  }

  /**
   * QoS 1 packet identifiers of deliveries in flight, not yet written: the
   * delivery → its queue. Written by writeDeferredIds ID_WRITE_DELAY_MS later unless
   * the PUBACK came first (the usual case: then nothing is written at all).
   */
  #idWrites = new Map<OutMeta, ClientQueue>();
  #idTimer: NodeJS.Timeout | undefined;

  #deferIdWrite(q: ClientQueue, meta: OutMeta): void {
    this.#idWrites.set(meta, q);
    if (!this.#idTimer) {
      this.#idTimer = setTimeout(() => {
        this.#idTimer = undefined;
        this.writeDeferredIds();
      }, ID_WRITE_DELAY_MS);
      this.#idTimer.unref();
    }
  }

  /** Write every deferred identifier now (the timer, and destroy() before the final flush). Returns the writes. */
  writeDeferredIds(): Promise<unknown> {
    const writes: Array<Promise<unknown>> = [];
    for (const [meta, q] of this.#idWrites) {
      if (q.entries.get(meta.seq) !== meta) continue;
      const rec = this.#readOut(q, meta);
      if (rec && rec.p.messageId !== meta.messageId) {
        this.#writeOut(q, meta, { ...rec, p: withId(rec.p, meta.messageId) }, writes);
      }
    }
    this.#idWrites.clear();
    return Promise.all(writes).catch(noop);
  }


  #queue(clientId: string): ClientQueue {
    let q = this.#queues.get(clientId);
    if (q) return q;
    const prefix = clientPrefix(clientId);
    q = { clientId, prefix, entries: new Map(), lastSeq: 0, writes: 0 };
    for (const { key, value } of this.ctx.dbs.outgoing.getRange({ start: prefix, end: prefixEnd(prefix) })) {
      const seq = readU64(key, prefix.length);
      const p = value?.p ?? {};
      const meta: OutMeta = { seq, brokerId: p.brokerId, brokerCounter: p.brokerCounter, messageId: p.messageId, e: value?.e };
      q.entries.set(seq, meta);
      indexAdd(q, meta, this.ctx.brokerId);
      if (seq > q.lastSeq) q.lastSeq = seq;
    }
    this.#queues.set(clientId, q);
    return q;
  }

  /** Drop an empty queue from memory once nothing is in flight for it. */
  #maybeForget(q: ClientQueue): void {
    if (q.entries.size === 0 && q.writes === 0 && this.#queues.get(q.clientId) === q) this.#queues.delete(q.clientId);
  }

  #track(q: ClientQueue, write: Promise<unknown>, meta?: OutMeta, rec?: OutRecord): Promise<unknown> {
    q.writes++;
    write.then(
      () => {
        q.writes--;
        if (meta && rec) this.#held.committed(meta, rec);
        this.#maybeForget(q);
      },
      () => {
        q.writes--;
        if (meta && meta.pending === rec) meta.pending = undefined;
        this.#maybeForget(q);
      },
    );
    return write;
  }

  /** Drop an expired entry (the sweep). */
  dropEntry(q: ClientQueue, meta: OutMeta): void {
    this.#materialize(meta);
    this.#held.release(meta);
    meta.pending = undefined;
    q.entries.delete(meta.seq);
    indexDelete(q, meta);
  }

  /**
   * The key of a queue entry, in the queue's one key buffer: lmdb-js copies a
   * key when a read or write is issued, so a key is only valid until the next
   * #outKey call on the same queue (no allocation per message).
   */
  #outKey(q: ClientQueue, seq: number): Buffer {
    let key = q.key;
    if (!key) {
      key = Buffer.allocUnsafe(q.prefix.length + 8);
      q.prefix.copy(key, 0);
      q.key = key;
    }
    const at = q.prefix.length;
    key.writeUInt32BE(Math.floor(seq / 0x100000000), at);
    key.writeUInt32BE(seq >>> 0, at + 4);
    return key;
  }

  #readOut(q: ClientQueue, meta: OutMeta): OutRecord | undefined {
    return meta.pending ?? this.ctx.dbs.outgoing.get(this.#outKey(q, meta.seq));
  }

  #writeOut(q: ClientQueue, meta: OutMeta, rec: OutRecord, writes: Array<Promise<unknown>>): void {
    this.#materialize(meta);
    this.#held.release(meta);
    meta.pending = rec;
    writes.push(this.#track(q, this.ctx.dbs.outgoing.put(this.#outKey(q, meta.seq), rec), meta, rec));
  }

  #removeOut(q: ClientQueue, meta: OutMeta, writes: Array<Promise<unknown>>): void {
    this.#materialize(meta);
    q.entries.delete(meta.seq);
    indexDelete(q, meta);
    this.#held.release(meta);
    meta.pending = undefined;
    // acknowledged before its identifier was written: nothing to write
    this.#idWrites.delete(meta);
    const key = this.#outKey(q, meta.seq);
    writes.push(this.#track(q, this.ctx.dbs.outgoing.remove(key)));
    if (meta.e !== undefined) writes.push(this.#track(q, this.ctx.dbs.outgoingTtl.remove(ttlKey(meta.e, key))));
  }

  #enqueue(clientId: string, packet: StoredPacket, expiresAt: number | undefined, writes: Array<Promise<unknown>>): void {
    if (this.#removals.length > 0) void this.issueRemovals();
    const [q, meta, rec] = this.#newEntry(clientId, packet, expiresAt);
    this.#putEntry(q, meta, rec, writes);
  }

  #newEntry(clientId: string, packet: StoredPacket, expiresAt: number | undefined): [ClientQueue, OutMeta, OutRecord] {
    const q = this.#queue(clientId);
    const seq = ++q.lastSeq;
    const p = new Packet(packet);
    const rec: OutRecord = expiresAt === undefined ? { c: clientId, p } : { c: clientId, p, e: expiresAt };
    const meta: OutMeta = { seq, brokerId: p.brokerId, brokerCounter: p.brokerCounter, messageId: p.messageId, e: expiresAt };
    q.entries.set(seq, meta);
    indexAdd(q, meta, this.ctx.brokerId);
    return [q, meta, rec];
  }

  /** The puts of a queue entry: its record, and its expiry index entry. */
  #putEntry(q: ClientQueue, meta: OutMeta, rec: OutRecord, writes: Array<Promise<unknown>>): void {
    this.#writeOut(q, meta, rec, writes);
    if (rec.e !== undefined) {
      writes.push(this.#track(q, this.ctx.dbs.outgoingTtl.put(ttlKey(rec.e, this.#outKey(q, meta.seq)), 1)));
    }
  }

  /**
   * Enqueue for a publisher waiting on `ticket`: held for connected sessions,
   * issued now for the others; resolves without waiting for the disk (the
   * ticket does). Deliveries stay in publish order: the held entries' seqs
   * were taken now, and aedes routes the message once this resolves.
   */
  #enqueueForTicket(subs: Array<{ clientId: string }>, packet: StoredPacket, expiresAt: number | undefined, ticket: AckTicket): void {
    let now: Unwritten[] | undefined;
    const at = performance.now();
    for (const sub of subs) {
      const [q, meta, rec] = this.#newEntry(sub.clientId, packet, expiresAt);
      meta.pending = rec;
      const u: Unwritten = { q, meta, rec, ticket, at, done: false, settled: false };
      meta.unwritten = u;
      ticket.add();
      if (ticket.isOnline(sub.clientId)) this.#unwritten.hold(u);
      else (now ??= []).push(u); // offline: no PUBACK can come, write it at once
    }
    if (now) void this.#issueUnwritten(now);
  }

  queuedCount(clientId: string): number {
    if (this.ctx.destroyed) return 0;
    const q = this.#queue(clientId);
    const n = q.entries.size;
    this.#maybeForget(q);
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
    if (ticket) return this.#enqueueForTicket(subs, packet, e, ticket);
    const writes: Array<Promise<unknown>> = [];
    for (const sub of subs) this.#enqueue(sub.clientId, packet, e, writes);
    await this.ctx.settle(writes);
  }

  async outgoingUpdate(client: ClientLike, packet: StoredPacket): Promise<void> {
    this.ctx.live();
    const q = this.#queue(client.id);
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
    this.#maybeForget(q);
    throw new Error("no such packet");
  }

  /** outgoingUpdate found the delivery itself: record its packet identifier. */
  async #updateFound(q: ClientQueue, meta: OutMeta, packet: StoredPacket): Promise<void> {
    meta.messageId = packet.messageId;
    if (packet.cmd === "publish" && packet.qos === 1) {
      // QoS 1 in flight: the identifier lives in memory and is written
      // later (see #deferIdWrite); the message itself is already stored.
      this.#deferIdWrite(q, meta);
      return;
    }
    this.#idWrites.delete(meta);
    const writes: Array<Promise<unknown>> = [];
    const rec = this.#readOut(q, meta);
    if (rec) {
      this.#writeOut(q, meta, { ...rec, p: { ...rec.p, messageId: packet.messageId } }, writes);
    }
    await this.ctx.settle(writes);
  }

  /** outgoingUpdate found another broker's entry with the identifier: replaced by e.g. a PUBREL. */
  async #replace(q: ClientQueue, meta: OutMeta, client: ClientLike, packet: StoredPacket): Promise<void> {
    // delivery has started, the expiry no longer applies
    this.#materialize(meta);
    indexInvalidate(q); // its broker id and counter change
    const writes: Array<Promise<unknown>> = [];
    const key = this.#outKey(q, meta.seq);
    if (meta.e !== undefined) writes.push(this.#track(q, this.ctx.dbs.outgoingTtl.remove(ttlKey(meta.e, key))));
    meta.brokerId = packet.brokerId;
    meta.brokerCounter = packet.brokerCounter;
    meta.messageId = packet.messageId;
    meta.e = undefined;
    this.#idWrites.delete(meta);
    this.#writeOut(q, meta, { c: client.id, p: plainPacket(packet) }, writes);
    await this.ctx.settle(writes);
  }

  async outgoingClearMessageId(client: ClientLike, packet: StoredPacket): Promise<StoredPacket | undefined> {
    this.ctx.live();
    if (packet === null || typeof packet !== "object") return undefined;
    const q = this.#queue(client.id);
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
      this.#maybeForget(q);
      return undefined;
    }
    const rec = this.#readOut(q, found);
    const messageId = found.messageId;
    this.#deferRemoval(q, found);
    return rec ? withId(rec.p, messageId) : undefined;
  }

  outgoingStream(client: ClientLike): Readable {
    if (this.ctx.destroyed) return Readable.from([]);
    const self = this;
    const q = this.#queue(client.id);
    const snapshot = [...q.entries.values()];
    const now = Date.now();
    return Readable.from(
      (function* () {
        const expired: OutMeta[] = [];
        try {
          for (const meta of snapshot) {
            if (self.ctx.destroyed) return;
            if (q.entries.get(meta.seq) !== meta) continue; // cleared meanwhile
            if (meta.e !== undefined && meta.e <= now && (meta.messageId === undefined || meta.messageId === null)) {
              expired.push(meta);
              continue;
            }
            const rec = self.#readOut(q, meta);
            if (rec) yield withId({ ...rec.p }, meta.messageId);
          }
        } finally {
          if (expired.length > 0 && !self.ctx.destroyed) {
            const writes: Array<Promise<unknown>> = [];
            for (const meta of expired) if (q.entries.get(meta.seq) === meta) self.#removeOut(q, meta, writes);
            Promise.all(writes).catch(noop);
          }
          self.#maybeForget(q);
        }
      })(),
    );
  }
}
