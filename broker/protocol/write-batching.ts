/**
 * One socket write per event-loop turn per client, instead of one per packet.
 *
 * mqtt-packet corks a stream for each packet it writes and uncorks it on the
 * next tick, so packets written in one synchronous run share a syscall. aedes
 * writes a QoS 1 PUBACK right after parsing, in the same run as its
 * neighbours; wasmq writes it once the message is stored and routed (so PUBACK
 * means stored), which completes message by message, each in its own tick: a
 * publisher with 256 messages in flight got 256 separate writes where bare
 * aedes made one. Holding the cork until the turn ends (setImmediate) puts
 * them back together, and likewise a subscriber's deliveries, which aedes
 * issues one per setImmediate. Measured with the bench's standard chain
 * (2026-11-27): QoS 1 throughput 0.51–0.62× bare aedes' before, 1.03–1.25×
 * after.
 *
 * A batch is flushed early once FLUSH_BYTES wait: corked bytes count against
 * the stream's high-water mark, and a batch that crossed it would look like
 * a slow consumer to the send-queue limits (limits.ts).
 *
 * Each packet is also written whole (whole-packet.ts) rather than in the five
 * or six pieces mqtt-packet writes, so a batch holds one chunk per packet.
 */
import type { Writable } from "node:stream";
import { writeWhole } from "./wire-tap.js";

const FLUSH_BYTES = 8 * 1024;
/**
 * Large PUBLISHes — a payload at least the stream's high-water mark (16 KB
 * on Node 20) — keep sharing a batch while it holds less than this. Each of
 * them fills the high-water mark on its own, so its write reports a full
 * buffer whether or not it is batched and the send-queue limits count it
 * the same either way (connection-limits.ts); flushing before each one split a
 * turn's 16 KB deliveries into one writev each. One writev of ~64 KB (about
 * one socket read of a publisher's data) is one send for the kernel instead
 * of four (0.92 → 0.22 writev per message, bench/README.md "p16k"). A
 * smaller packet after them still flushes first, as above.
 */
const LARGE_BATCH_BYTES = 64 * 1024;

/*
 * Shared functions, with the state on the stream itself: per-connection
 * closures (a bound cork, flush, end of turn) and their scope lived as long as
 * the connection, for every idle client (bench: idle19k-conns). Held
 * connections are listed only until the sweep.
 */
const HELD = Symbol("wasmq.corkHeld");
const CORK = Symbol("wasmq.cork");

interface Batched extends Writable {
  [HELD]: boolean;
  [CORK]: () => void;
}

function flush(conn: Batched): void {
  if (conn[HELD]) {
    conn[HELD] = false;
    conn.uncork();
  }
}

/*
 * When a held batch leaves. Every connection held this turn is on `held`, and
 * one shared sweep (a setImmediate) flushes them all. A sweep queued by the
 * first hold of a turn runs in that turn's check phase — but aedes writes
 * each delivery from a setImmediate of its own, queued while it routed the
 * message, and a hold made there (the check phase) could only queue a sweep
 * for the next turn: the deliveries then waited for the next turn's poll
 * phase, which parses and routes whatever arrived meanwhile first. Measured
 * in the bench's latency10k scenarios with a probe on the broker's sockets:
 * 3.8% (QoS 0) and 5.4% (QoS 1) of deliveries left only after the broker had
 * read new input, where bare aedes (no batching) flushes within a tick. So
 * routing also queues a sweep
 * (`flushAfterRouting`), from a microtask at the end of the callback that
 * routed — after the delivery setImmediates aedes queued — and the
 * deliveries leave at the end of the same check phase, still one write per
 * connection per turn. (Not per delivery: aedes' router releases messages it
 * held back one completion at a time, each in its own callback, and a sweep
 * armed by each would flush each alone — batches 10× smaller, measured.)
 */
const held: Batched[] = [];
let sweepQueued = false;
let routedSweepPending = false;

function sweep(): void {
  sweepQueued = false;
  const n = held.length;
  for (let i = 0; i < n; i++) flush(held[i]!);
  // (uncork writes synchronously and calls back later: nothing is held during the loop)
  held.splice(0, n);
}

function queueSweep(): void {
  routedSweepPending = false;
  sweepQueued = true;
  setImmediate(sweep);
}

/** Hold the connection's writes until the sweep (or flush what waits past FLUSH_BYTES first); `next` is the payload size about to be written. */
function hold(conn: Batched, next = 0): void {
  if (conn[HELD]) {
    const waiting = conn.writableLength;
    if (waiting >= FLUSH_BYTES && !(next >= conn.writableHighWaterMark && waiting < LARGE_BATCH_BYTES)) flush(conn);
  }
  if (!conn[HELD] && !conn.destroyed) {
    conn[HELD] = true;
    conn[CORK]();
    held.push(conn);
    if (!sweepQueued) {
      sweepQueued = true;
      setImmediate(sweep);
    }
  }
}

/**
 * After the broker routes a message, flush the deliveries it queued at the
 * end of this turn's check phase rather than the next turn's (see above).
 * Wraps the message router's `emit` once per broker; one microtask per
 * routing callback, not per delivery.
 */
export function flushAfterRouting(broker: object): void {
  const mq = (broker as { mq: { emit: (message: object, callback?: unknown) => unknown } }).mq;
  const emit = mq.emit;
  // mqemitter's emit(message, callback): named parameters, as a rest array would be allocated per message
  mq.emit = function emitThenSweep(this: unknown, message: object, callback?: unknown) {
    if (!routedSweepPending) {
      routedSweepPending = true;
      queueMicrotask(queueSweep);
    }
    return emit.call(this, message, callback);
  };
}

function batchedCork(this: Batched): void {
  hold(this);
  this[CORK]();
}

export function batchWrites(conn: Writable): void {
  const c = conn as Batched;
  c[HELD] = false;
  c[CORK] = conn.cork; // the stream's own (prototype) cork, called with the stream as `this`
  conn.cork = batchedCork;
  writeWhole(conn, hold as (stream: object, bytes: number) => void);
}
