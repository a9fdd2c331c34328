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

/*
 * Shared functions, with the state on the stream itself: per-connection
 * closures (a bound cork, flush, end of turn) and their scope lived as long as
 * the connection, for every idle client (bench: idle19k-conns).
 */
const HELD = Symbol("wasmq.corkHeld");
const SCHEDULED = Symbol("wasmq.flushScheduled");
const CORK = Symbol("wasmq.cork");

interface Batched extends Writable {
  [HELD]: boolean;
  [SCHEDULED]: boolean;
  [CORK]: () => void;
}

function flush(conn: Batched): void {
  if (conn[HELD]) {
    conn[HELD] = false;
    conn.uncork();
  }
}

function endOfTurn(conn: Batched): void {
  conn[SCHEDULED] = false;
  flush(conn);
}

/** Hold the connection's writes until the end of this turn (or flush what waits past FLUSH_BYTES first). */
function hold(conn: Batched): void {
  if (conn[HELD] && conn.writableLength >= FLUSH_BYTES) flush(conn);
  if (!conn[HELD] && !conn.destroyed) {
    conn[HELD] = true;
    conn[CORK]();
    if (!conn[SCHEDULED]) {
      conn[SCHEDULED] = true;
      setImmediate(endOfTurn, conn);
    }
  }
}

function batchedCork(this: Batched): void {
  hold(this);
  this[CORK]();
}

export function batchWrites(conn: Writable): void {
  const c = conn as Batched;
  c[HELD] = false;
  c[SCHEDULED] = false;
  c[CORK] = conn.cork; // the stream's own (prototype) cork, called with the stream as `this`
  conn.cork = batchedCork;
  writeWhole(conn, hold as (stream: object) => void);
}
