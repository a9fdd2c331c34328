/**
 * When a write is safe to acknowledge: the completion side of the LMDB
 * store's group commit (see broker/OPERATIONS.md "Durability model").
 *
 * lmdb-js puts every write issued in one event-loop turn into one
 * transaction (`eventTurnBatching`) and hands all plain writes of that batch
 * the same commit promise. With `overlappingSync` the transaction becomes
 * visible first and is fdatasync'ed afterwards on the write thread; the next
 * batch commits meanwhile and its own fdatasync covers every earlier one (one
 * data file). So a batch is durable once its flush promise resolves, and one
 * fdatasync serves every client whose writes landed in the batch.
 *
 * Two lmdb-js details shape this module:
 * - `root.flushed` looks up the *current* batch when its `then` runs. Taken
 *   after the commit (as before 2026-12-06) it was, under load, a later
 *   batch's flush: one more commit + fdatasync per write than needed. Here it
 *   is taken in the same synchronous run as the writes.
 * - The flush promises of consecutive batches resolve out of order now and
 *   then (a batch's resolvers can ride on a later write-thread run), although
 *   the data is flushed in commit order. Callers act in completion order —
 *   a message is routed once its offline enqueue settled — so completions
 *   are chained batch after batch: they resolve in issue order, which keeps
 *   per-publisher order [MQTT-4.6.0-6], and no later than the caller's own
 *   batch is flushed plus the (already flushed) earlier ones.
 */
import type { RootDatabase } from "lmdb";

const noop = () => {};

/**
 * The promise that the batch the caller's writes were just added to is
 * flushed to disk. Must be called in the same synchronous run as the writes
 * (a Promise executor runs synchronously).
 */
export function flushedNow(root: RootDatabase): Promise<void> {
  return new Promise((resolve, reject) => {
    root.flushed.then(() => resolve(), reject);
  });
}

export class GroupCommit {
  /** The batch of the last settle: its commit promise (lmdb-js' per-batch object) and when it may be acknowledged. */
  #batch: { commit: Promise<unknown>; done: Promise<void> } | undefined;
  /** The last batch's completion, never rejecting: the next batch waits for it. */
  #tail: Promise<void> = Promise.resolve();
  /** Batches settled but not yet complete (committed and, with "sync", flushed). */
  #inFlight = 0;

  constructor(
    private readonly root: RootDatabase,
    private readonly durability: "sync" | "async",
  ) {}

  /**
   * While a batch is still being committed or flushed: a promise that
   * resolves when the last one is done (never rejects). undefined when the
   * disk is idle. A write issued meanwhile could not be durable sooner than
   * that anyway, so held puts (unwritten.ts) wait for it.
   */
  busy(): Promise<void> | undefined {
    return this.#inFlight > 0 ? this.#tail : undefined;
  }

  /**
   * Resolves once `writes` committed and, with durability "sync", their batch
   * is flushed — and never before an earlier settle resolved. Rejects if a
   * write failed. Call it in the same synchronous run as the writes.
   */
  settle(writes: Array<Promise<unknown>>): Promise<void> {
    if (writes.length === 0) return Promise.resolve();
    const commit = writes[0]!;
    let done: Promise<void>;
    if (this.#batch?.commit === commit) {
      done = this.#batch.done; // same batch: one flush, one link in the chain
    } else {
      const flushed = this.durability === "sync" ? flushedNow(this.root) : commit;
      done = this.#tail.then(() => Promise.all([commit, flushed])).then(noop);
      this.#inFlight++;
      this.#tail = done.then(
        () => void this.#inFlight--,
        () => void this.#inFlight--,
      );
      const batch = { commit, done };
      this.#batch = batch;
      // A batch lives for one event-loop turn; forget it after, so an
      // already-resolved promise lmdb-js hands out (nested batches) can never
      // stand for a later batch.
      setImmediate(() => {
        if (this.#batch === batch) this.#batch = undefined;
      });
    }
    // Writes with a promise of their own (lmdb-js gives conditional writes one) decide too.
    let others: Array<Promise<unknown>> | undefined;
    for (let i = 1; i < writes.length; i++) if (writes[i] !== commit) (others ??= []).push(writes[i]!);
    return others ? Promise.all([done, ...others]).then(noop) : done;
  }
}
