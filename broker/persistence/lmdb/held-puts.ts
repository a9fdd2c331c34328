/**
 * Held puts: a QoS 1 message whose publisher waits on an AckTicket
 * (../ack-gate.ts) is enqueued for a connected session without a write. The
 * put is held back for `writeHoldMs` (unwritten.ts) and dropped if the
 * subscriber's PUBACK comes first, so a subscriber that keeps up costs the
 * disk nothing. The ticket completes (and the publisher gets its PUBACK) once
 * each such delivery was either acknowledged or written and flushed.
 *
 * It also counts what the hold does, as plain numbers read when an operator
 * asks (metrics, $SYS, the admin API): see HoldFigures.
 */
import type { AckTicket } from "../ack-gate.js";
import type { StoredPacket } from "./aedes-parts.js";
import { noop, type StoreContext } from "./environment.js";
import type { DeferredRemovals } from "./deferred-writes.js";
import type { OutMeta } from "./keys.js";
import type { QueueRecords } from "./queue-records.js";
import { settle, UnwrittenPuts, type Unwritten } from "./unwritten.js";

/** What the hold did since the store opened (broker/OPERATIONS.md "Deliveries acknowledged before they are written"). */
export interface HoldFigures {
  /** The configured hold (`writeHoldMs`). */
  holdMs: number;
  /** Deliveries to connected persistent sessions whose put was held back. */
  held: number;
  /** Held deliveries acknowledged by their subscriber within the hold: never written. */
  droppedUnwritten: number;
  /** Held deliveries written: the hold ran out, another write needed the entry, or the broker shut down. */
  written: number;
  /** Held now (held − dropped unwritten − written). */
  current: number;
  /**
   * Seconds the written ones spent held before their put was issued, summed:
   * the PUBACK latency the hold added to their publishers (the flush comes on
   * top, with or without a hold). Divided by `written`, the mean.
   */
  writtenWaitSeconds: number;
}

export class HeldPuts {
  readonly #fifo: UnwrittenPuts;
  // Plain counters: the hot path only increments them.
  #held = 0;
  #dropped = 0;
  #written = 0;
  #writtenWaitMs = 0;

  constructor(
    private readonly ctx: StoreContext,
    private readonly records: QueueRecords,
    private readonly removals: DeferredRemovals,
    readonly holdMs: number,
  ) {
    this.#fifo = new UnwrittenPuts(holdMs, (list) => this.#issue(list, true), () => ctx.busy());
  }

  figures(): HoldFigures {
    return {
      holdMs: this.holdMs,
      held: this.#held,
      droppedUnwritten: this.#dropped,
      written: this.#written,
      current: this.#held - this.#dropped - this.#written,
      writtenWaitSeconds: this.#writtenWaitMs / 1000,
    };
  }

  /**
   * Enqueue for a publisher waiting on `ticket`: held for connected sessions,
   * issued now for the others; returns without waiting for the disk (the
   * ticket does). Deliveries stay in publish order: the held entries' seqs
   * were taken now, and aedes routes the message once the enqueue resolves.
   */
  enqueue(subs: Array<{ clientId: string }>, packet: StoredPacket, expiresAt: number | undefined, ticket: AckTicket): void {
    let now: Unwritten[] | undefined;
    const at = performance.now();
    for (const sub of subs) {
      const [q, meta, rec] = this.records.newEntry(sub.clientId, packet, expiresAt);
      meta.pending = rec;
      const u: Unwritten = { q, meta, rec, ticket, at, done: false, settled: false };
      meta.unwritten = u;
      ticket.add();
      if (ticket.isOnline(sub.clientId)) {
        this.#held++;
        this.#fifo.hold(u);
      } else (now ??= []).push(u); // offline: no PUBACK can come, write it at once
    }
    if (now) void this.#issue(now, false);
  }

  /**
   * Issue puts (in enqueue order): their tickets settle once the batch is
   * flushed. Issued in the same synchronous run, so any write that follows
   * for the same entry lands after them. `wasHeld`: they come out of the hold
   * (counted), not from an offline session's enqueue.
   */
  #issue(list: Unwritten[], wasHeld: boolean): Promise<void> {
    this.removals.issueIfAny(); // same transaction, same fdatasync
    if (wasHeld) {
      const now = performance.now();
      this.#written += list.length;
      for (const u of list) this.#writtenWaitMs += now - u.at;
    }
    const writes: Array<Promise<unknown>> = [];
    for (const u of list) {
      u.done = true;
      u.meta.unwritten = undefined;
      u.meta.awaiting = u; // until flushed, the subscriber's PUBACK may settle it first
      this.records.putEntry(u.q, u.meta, u.rec, writes);
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
  materialize(meta: OutMeta): void {
    if (meta.unwritten) void this.#issue([meta.unwritten], true);
  }

  /** Issue every held put now (destroy(), before the final flush). */
  flushAll(): Promise<unknown> {
    const list = this.#fifo.takeAll();
    return list.length > 0 ? this.#issue(list, true) : Promise.resolve();
  }

  /**
   * The subscriber acknowledged `meta`. If its put is still held, it is
   * dropped (never written) and returned: the caller takes the entry out of
   * memory, then settles it (unwritten.ts settle) for its ticket.
   */
  dropHeld(meta: OutMeta): Unwritten | undefined {
    const u = meta.unwritten;
    if (!u) return undefined;
    u.done = true;
    meta.unwritten = undefined;
    this.#dropped++;
    return u;
  }

  clear(): void {
    this.#fifo.clear();
  }
}
