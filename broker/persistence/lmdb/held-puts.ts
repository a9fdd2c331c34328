/**
 * Held puts: a QoS 1 message whose publisher waits on an AckTicket
 * (../ack-gate.ts) is enqueued for a connected session without a write. The
 * put is held back for `writeHoldMs` (unwritten.ts) and dropped if the
 * subscriber's PUBACK comes first, so a subscriber that keeps up costs the
 * disk nothing. The ticket completes (and the publisher gets its PUBACK) once
 * each such delivery was either acknowledged or written and flushed.
 *
 * With `writeHold: "adaptive"` (ack-pace.ts) each session's recent
 * delivery→PUBACK latency decides whether its next delivery is held at all and
 * for how long (≤ `writeHoldMs`): a session that would not beat the hold is
 * written first, so its publisher's PUBACK waits for the flush only (or the
 * subscriber's PUBACK, whichever comes first), never for a hold that does not
 * pay. `"fixed"` holds every such delivery for `writeHoldMs`.
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
import { settle, UnwrittenPuts, type Unwritten, type WriteHoldMode } from "./unwritten.js";
import { AckPaces, WRITE_FIRST } from "./ack-pace.js";

export type { WriteHoldMode };

/** Paces of sessions that got no delivery for this long are dropped by the store's sweep. */
const PACE_IDLE_MS = 60_000;

/** What the hold did since the store opened (broker/OPERATIONS.md "Deliveries acknowledged before they are written"). */
export interface HoldFigures {
  /** The configured hold (`writeHoldMs`): with "adaptive", the longest. */
  holdMs: number;
  /** `writeHold`: "adaptive" (per session, from its ack latency) or "fixed" (every delivery for `holdMs`). */
  mode: WriteHoldMode;
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
  /**
   * "adaptive": deliveries to connected sessions written at once, not held,
   * because their subscriber usually acknowledges later than the cap. Always 0
   * with "fixed".
   */
  writtenFirst: number;
  /** "adaptive": connected sessions whose deliveries are held now (measured or not yet). */
  sessionsHolding: number;
  /** "adaptive": connected sessions whose deliveries are written first now. */
  sessionsWritingFirst: number;
}

export class HeldPuts {
  /** The hold lengths in use (ms): [writeHoldMs] with "fixed", the steps up to it with "adaptive". */
  readonly #steps: readonly number[];
  /** One FIFO per hold length (each FIFO's entries are due in enqueue order), created on first use. */
  readonly #fifos: Array<UnwrittenPuts | undefined>;
  /** "adaptive" only. */
  readonly #paces: AckPaces | undefined;
  // Plain counters: the hot path only increments them.
  #held = 0;
  #dropped = 0;
  #written = 0;
  #writtenFirst = 0;
  #writtenWaitMs = 0;

  constructor(
    private readonly ctx: StoreContext,
    private readonly records: QueueRecords,
    private readonly removals: DeferredRemovals,
    readonly holdMs: number,
    readonly mode: WriteHoldMode = "fixed",
  ) {
    this.#paces = mode === "adaptive" && holdMs > 0 ? new AckPaces(holdMs) : undefined;
    this.#steps = this.#paces ? this.#paces.steps : [holdMs];
    this.#fifos = new Array<UnwrittenPuts | undefined>(this.#steps.length).fill(undefined);
  }

  figures(): HoldFigures {
    const sessions = this.#paces?.size ?? 0;
    const writingFirst = this.#paces?.writingFirst ?? 0;
    return {
      holdMs: this.holdMs,
      mode: this.mode,
      held: this.#held,
      droppedUnwritten: this.#dropped,
      written: this.#written,
      current: this.#held - this.#dropped - this.#written,
      writtenWaitSeconds: this.#writtenWaitMs / 1000,
      writtenFirst: this.#writtenFirst,
      sessionsHolding: sessions - writingFirst,
      sessionsWritingFirst: writingFirst,
    };
  }

  #fifo(step: number): UnwrittenPuts {
    return (this.#fifos[step] ??= new UnwrittenPuts(this.#steps[step]!, (list) => this.#holdRanOut(list, step), () => this.ctx.busy()));
  }

  /**
   * Enqueue for a publisher waiting on `ticket`: held for connected sessions
   * (or, adaptive, written first for those that would not beat the hold),
   * issued now for the others; returns without waiting for the disk (the
   * ticket does). Deliveries stay in publish order: the held entries' seqs
   * were taken now, and aedes routes the message once the enqueue resolves.
   */
  enqueue(subs: Array<{ clientId: string }>, packet: StoredPacket, expiresAt: number | undefined, ticket: AckTicket): void {
    let now: Unwritten[] | undefined;
    const at = performance.now();
    const paces = this.#paces;
    for (const sub of subs) {
      const [q, meta, rec] = this.records.newEntry(sub.clientId, packet, expiresAt);
      meta.pending = rec;
      const u: Unwritten = { q, meta, rec, ticket, at, done: false, settled: false };
      meta.unwritten = u;
      ticket.add();
      if (!ticket.isOnline(sub.clientId)) {
        paces?.forget(sub.clientId); // its next connection is learned afresh
        (now ??= []).push(u); // offline: no PUBACK can come, write it at once
      } else if (paces === undefined) {
        this.#held++;
        this.#fifo(0).hold(u);
      } else {
        // Adaptive: hold it or write it first, as the session's pace says (ack-pace.ts); either way its ack latency is sampled.
        const pace = paces.of(sub.clientId, at);
        meta.pace = pace;
        meta.since = at;
        if (pace.step === WRITE_FIRST) {
          this.#writtenFirst++;
          (now ??= []).push(u);
        } else {
          this.#held++;
          this.#fifo(pace.step).hold(u);
        }
      }
    }
    if (now) void this.#issue(now, false);
  }

  /** The subscriber acknowledged `meta` (held, written first, or written after its hold): sample its latency. */
  acked(meta: OutMeta): void {
    const pace = meta.pace;
    if (pace === undefined) return;
    meta.pace = undefined;
    this.#paces!.sample(pace, performance.now() - meta.since!, meta.since!);
  }

  /** Held puts whose hold of steps[step] ms ran out unacknowledged. */
  #holdRanOut(list: Unwritten[], step: number): void {
    const paces = this.#paces;
    if (paces) {
      for (const u of list) {
        const pace = u.meta.pace;
        if (pace === undefined) continue;
        u.meta.pace = undefined; // sampled now, as later than the hold; its ack is not counted again
        paces.timedOut(pace, step, u.at);
      }
    }
    void this.#issue(list, true);
  }

  /**
   * Issue puts (in enqueue order): their tickets settle once the batch is
   * flushed. Issued in the same synchronous run, so any write that follows
   * for the same entry lands after them. `wasHeld`: they come out of the hold
   * (counted), not from an offline session's enqueue or a written-first one.
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
    if (!meta.unwritten) return;
    this.unsampled(meta);
    void this.#issue([meta.unwritten], true);
  }

  /** `meta` will not be sampled (written early for another reason, or not sent at all: says nothing about its subscriber). */
  unsampled(meta: OutMeta): void {
    meta.pace = undefined;
  }

  /** Issue every held put now (destroy(), before the final flush), in enqueue order. */
  flushAll(): Promise<unknown> {
    const list: Unwritten[] = [];
    for (const f of this.#fifos) if (f) list.push(...f.takeAll());
    if (this.#fifos.length > 1) list.sort((a, b) => a.at - b.at);
    return list.length > 0 ? this.#issue(list, true) : Promise.resolve();
  }

  /** Forget the paces of sessions that got no delivery for a while (the store's sweep). */
  pruneIdle(): void {
    this.#paces?.pruneIdle(performance.now() - PACE_IDLE_MS);
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
    for (const f of this.#fifos) f?.clear();
    this.#paces?.clear();
  }
}
