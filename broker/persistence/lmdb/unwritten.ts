/**
 * Queue entries for connected sessions whose put is held back from LMDB for
 * `writeHoldMs` (see ../ack-gate.ts, held-puts.ts): if the subscriber acknowledges the delivery
 * within that time the put is dropped (queues.ts), otherwise it is issued, in
 * the order the entries were enqueued — or, if the disk is still busy with an
 * earlier batch then, as soon as that batch is done (a put issued earlier
 * would not be durable any sooner, and more PUBACKs arrive meanwhile). The publisher's PUBACK waits for one
 * or the other, so holding never weakens what a PUBACK means; it only moves
 * the disk out of the path when subscribers keep up.
 */
import type { AckTicket } from "../ack-gate.js";
import type { ClientQueue, OutMeta, OutRecord } from "./keys.js";

/**
 * How long a delivery to a connected session may wait for its PUBACK before
 * its put is issued, unless configured (`writeHoldMs`). A subscriber that
 * keeps up answers well within it (the 64 B QoS 1 bench: p50 ≈ 2 ms end to
 * end under load); one that does not costs its publisher this much more
 * PUBACK latency, on top of the flush.
 */
export const DEFAULT_WRITE_HOLD_MS = 5;

/**
 * The longest hold the configuration accepts. A publisher whose subscriber
 * does not acknowledge waits this long more for each PUBACK (a client that
 * sends one message at a time gets at most 1000 / writeHoldMs per second),
 * and held records stay in memory meanwhile (message rate × hold). A
 * subscriber slower than a second is better served by the disk.
 */
export const MAX_WRITE_HOLD_MS = 1000;

/** How deliveries to connected persistent sessions are held (`writeHold`; held-puts.ts, ack-pace.ts). */
export type WriteHoldMode = "adaptive" | "fixed";
export const WRITE_HOLD_MODES: readonly WriteHoldMode[] = ["adaptive", "fixed"];

/**
 * The default: "adaptive" holds only where a session's acks usually beat the
 * hold (bench/README.md "hold5": with slow-acking subscribers "fixed" made
 * their publishers wait the hold and wrote anyway).
 */
export const DEFAULT_WRITE_HOLD_MODE: WriteHoldMode = "adaptive";

export interface Unwritten {
  q: ClientQueue;
  meta: OutMeta;
  rec: OutRecord;
  ticket: AckTicket;
  /** performance.now() when held. */
  at: number;
  /** Issued or dropped already (it stays in the FIFO until the timer passes it). */
  done: boolean;
  /** Its ticket was told (acknowledged, or written and flushed): told once only. */
  settled: boolean;
}

/** Tell the entry's ticket it is settled, once (whichever comes first: the PUBACK or the flush). */
export function settle(u: Unwritten, err?: unknown): void {
  if (u.settled) return;
  u.settled = true;
  if (u.meta.awaiting === u) u.meta.awaiting = undefined;
  if (err === undefined) u.ticket.settleOne();
  else u.ticket.fail(err);
}

export class UnwrittenPuts {
  #fifo: Unwritten[] = [];
  #head = 0;
  #timer: NodeJS.Timeout | undefined;

  /** Waiting for the disk to finish its current batch before issuing what is due. */
  #waiting = false;

  constructor(
    /** Above 0: with writeHoldMs 0 the store takes no tickets and holds nothing (queues.ts). */
    private readonly holdMs: number,
    private readonly issue: (list: Unwritten[]) => void,
    /** A promise while a batch is being committed/flushed (GroupCommit.busy). */
    private readonly diskBusy: () => Promise<void> | undefined = () => undefined,
  ) {}

  hold(u: Unwritten): void {
    this.#fifo.push(u);
    if (!this.#timer && !this.#waiting) this.#schedule(this.holdMs);
  }

  /** Every entry not yet issued or dropped (destroy), in enqueue order; the FIFO is emptied. */
  takeAll(): Unwritten[] {
    const list = this.#fifo.slice(this.#head).filter((u) => !u.done);
    this.clear();
    return list;
  }

  clear(): void {
    this.#fifo = [];
    this.#head = 0;
    this.#waiting = false;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #schedule(ms: number): void {
    // Not unref'd: a publisher waits on what it issues (it runs writeHoldMs at most).
    this.#timer = setTimeout(() => this.#due(), Math.max(1, Math.ceil(ms)));
  }

  #due(afterWait = false): void {
    this.#timer = undefined;
    this.#waiting = false;
    const cutoff = performance.now() - this.holdMs;
    if (!afterWait && this.#head < this.#fifo.length && this.#fifo[this.#head]!.at <= cutoff) {
      // Due, but the disk is still flushing an earlier batch: a put issued now
      // would be durable no sooner than after it, so wait for it and let more
      // PUBACKs arrive meanwhile. Once only (no starvation under steady writes).
      const busy = this.diskBusy();
      if (busy) {
        this.#waiting = true;
        void busy.then(() => this.#due(true));
        return;
      }
    }
    const fifo = this.#fifo;
    let i = this.#head;
    const list: Unwritten[] = [];
    for (; i < fifo.length && fifo[i]!.at <= cutoff; i++) if (!fifo[i]!.done) list.push(fifo[i]!);
    // skip entries already dropped at the front, so the next wake-up is for a live one
    while (i < fifo.length && fifo[i]!.done) i++;
    if (i === fifo.length) {
      this.#fifo = [];
      this.#head = 0;
    } else if (i > 1024 && i * 2 > fifo.length) {
      this.#fifo = fifo.slice(i);
      this.#head = 0;
    } else {
      this.#head = i;
    }
    if (list.length > 0) this.issue(list);
    if (this.#head < this.#fifo.length) this.#schedule(this.#fifo[this.#head]!.at + this.holdMs - performance.now());
  }
}
