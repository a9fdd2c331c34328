/**
 * The queues' records: which clients' queues are loaded (their entries'
 * metadata in memory, payloads in LMDB), the entry keys, and the reads and
 * writes of single entries. What is written when is decided elsewhere
 * (queues.ts, held-puts.ts, deferred-writes.ts); every write goes through
 * here so a queue stays loaded while a write for it is in flight (a reload
 * from LMDB would miss it).
 */
import { Packet, type StoredPacket } from "./aedes-parts.js";
import type { StoreContext } from "./environment.js";
import { HeldRecords } from "./held-records.js";
import { indexAdd, indexDelete } from "./counter-index.js";
import { clientPrefix, prefixEnd, readU64, ttlKey, type ClientQueue, type OutMeta, type OutRecord } from "./keys.js";

export class QueueRecords {
  /** Loaded offline queues (metadata, and records while held; payloads stay in LMDB). */
  readonly #queues = new Map<string, ClientQueue>();
  readonly #held = new HeldRecords();

  constructor(
    private readonly ctx: StoreContext,
    /** Runs before any write touches an entry: its held put, if any, must be issued first (held-puts.ts). */
    private readonly beforeWrite: (meta: OutMeta) => void,
  ) {}

  /** A queue already in memory (for the expiry sweep), or undefined. */
  loaded(clientId: string): ClientQueue | undefined {
    return this.#queues.get(clientId);
  }

  /** Drop every queue that is empty and idle from memory. */
  forgetIdle(): void {
    for (const q of [...this.#queues.values()]) this.maybeForget(q);
  }

  clear(): void {
    this.#queues.clear();
    this.#held.clear();
  }

  /** The client's queue, loaded from LMDB (metadata only) on first use. */
  queue(clientId: string): ClientQueue {
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
  maybeForget(q: ClientQueue): void {
    if (q.entries.size === 0 && q.writes === 0 && this.#queues.get(q.clientId) === q) this.#queues.delete(q.clientId);
  }

  /** Keep `q` loaded until `write` settled; a committed put of `rec` may keep the record in memory (held-records.ts). */
  track(q: ClientQueue, write: Promise<unknown>, meta?: OutMeta, rec?: OutRecord): Promise<unknown> {
    q.writes++;
    write.then(
      () => {
        q.writes--;
        if (meta && rec) this.#held.committed(meta, rec);
        this.maybeForget(q);
      },
      () => {
        q.writes--;
        if (meta && meta.pending === rec) meta.pending = undefined;
        this.maybeForget(q);
      },
    );
    return write;
  }

  /** meta's in-memory record is being replaced or dropped. */
  release(meta: OutMeta): void {
    this.#held.release(meta);
  }

  /** Take the entry out of its queue in memory (its record, if written, stays in LMDB until removed). */
  forget(q: ClientQueue, meta: OutMeta): void {
    q.entries.delete(meta.seq);
    indexDelete(q, meta);
  }

  /**
   * The key of a queue entry, in the queue's one key buffer: lmdb-js copies a
   * key when a read or write is issued, so a key is only valid until the next
   * outKey call on the same queue (no allocation per message).
   */
  outKey(q: ClientQueue, seq: number): Buffer {
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

  read(q: ClientQueue, meta: OutMeta): OutRecord | undefined {
    return meta.pending ?? this.ctx.dbs.outgoing.get(this.outKey(q, meta.seq));
  }

  write(q: ClientQueue, meta: OutMeta, rec: OutRecord, writes: Array<Promise<unknown>>): void {
    this.beforeWrite(meta);
    this.#held.release(meta);
    meta.pending = rec;
    writes.push(this.track(q, this.ctx.dbs.outgoing.put(this.outKey(q, meta.seq), rec), meta, rec));
  }

  /** Remove the entry from memory and its record (and expiry index entry) from LMDB. */
  remove(q: ClientQueue, meta: OutMeta, writes: Array<Promise<unknown>>): void {
    this.beforeWrite(meta);
    this.forget(q, meta);
    this.#held.release(meta);
    meta.pending = undefined;
    const key = this.outKey(q, meta.seq);
    writes.push(this.track(q, this.ctx.dbs.outgoing.remove(key)));
    if (meta.e !== undefined) writes.push(this.track(q, this.ctx.dbs.outgoingTtl.remove(ttlKey(meta.e, key))));
  }

  /** A new entry at the end of the client's queue, in memory only (putEntry writes it). */
  newEntry(clientId: string, packet: StoredPacket, expiresAt: number | undefined): [ClientQueue, OutMeta, OutRecord] {
    const q = this.queue(clientId);
    const seq = ++q.lastSeq;
    const p = new Packet(packet);
    const rec: OutRecord = expiresAt === undefined ? { c: clientId, p } : { c: clientId, p, e: expiresAt };
    // pace/since present from the start (the adaptive hold sets them): one object shape on the hot path
    const meta: OutMeta = { seq, brokerId: p.brokerId, brokerCounter: p.brokerCounter, messageId: p.messageId, e: expiresAt, pace: undefined, since: 0 };
    q.entries.set(seq, meta);
    indexAdd(q, meta, this.ctx.brokerId);
    return [q, meta, rec];
  }

  /** The puts of a queue entry: its record, and its expiry index entry. */
  putEntry(q: ClientQueue, meta: OutMeta, rec: OutRecord, writes: Array<Promise<unknown>>): void {
    this.write(q, meta, rec, writes);
    if (rec.e !== undefined) {
      writes.push(this.track(q, this.ctx.dbs.outgoingTtl.put(ttlKey(rec.e, this.outKey(q, meta.seq)), 1)));
    }
  }
}
