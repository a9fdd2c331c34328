/**
 * Queue records kept in memory after their put committed, within a budget, so
 * the usual life of a persistent QoS 1 delivery (enqueue → deliver →
 * PUBACK within milliseconds) never reads its record back from LMDB (a
 * msgpack decode of the whole packet per PUBACK). Offline backlogs beyond the
 * budget are read from LMDB as before: payloads of queues at rest stay on
 * disk.
 */
import type { OutMeta, OutRecord } from "./keys.js";
import { payloadLength } from "./keys.js";

/** Accounted per held record besides its payload (the objects around it). */
const RECORD_OVERHEAD = 256;

export class HeldRecords {
  #bytes = 0;
  #count = 0;

  constructor(
    private readonly maxBytes = 4 * 1024 * 1024,
    private readonly maxCount = 8192,
  ) {}

  /** `rec` (meta's record as last written) committed: keep it in memory if it is still meta's and the budget allows. */
  committed(meta: OutMeta, rec: OutRecord): void {
    if (meta.pending !== rec || meta.held !== undefined) return;
    const size = payloadLength(rec.p.payload) + RECORD_OVERHEAD;
    if (this.#count >= this.maxCount || this.#bytes + size > this.maxBytes) {
      meta.pending = undefined;
      return;
    }
    // A parsed payload is a view into the socket's read chunk (64 KB): keep a
    // copy of exactly its size, not the chunk.
    const payload = rec.p.payload;
    if (payload instanceof Uint8Array && payload.byteLength < payload.buffer.byteLength) {
      const copy = Buffer.allocUnsafeSlow(payload.byteLength);
      copy.set(payload);
      rec.p.payload = copy;
    }
    meta.held = size;
    this.#bytes += size;
    this.#count++;
  }

  /** meta's in-memory record is being replaced or dropped. */
  release(meta: OutMeta): void {
    if (meta.held === undefined) return;
    this.#bytes -= meta.held;
    this.#count--;
    meta.held = undefined;
  }

  clear(): void {
    this.#bytes = 0;
    this.#count = 0;
  }
}
