/**
 * An index for outgoingUpdate's lookup of a queue entry by (brokerId,
 * brokerCounter), keeping the reference's first-match semantics exactly.
 *
 * The reference (aedes-persistence) scans the queue in order and takes the
 * first entry that either has the packet's brokerId and brokerCounter, or has
 * another brokerId and the packet's messageId (a PUBREL replacing it). With a
 * window of deliveries in flight the scan for the newest one walks the whole
 * window on every delivery. The index answers in O(1) only where the answer
 * is the same as the scan's:
 * - the packet is this broker's, and no entry of the queue is another
 *   broker's (so no entry can match by messageId), and
 * - no two entries share a counter (then "first with that counter" is "the
 *   one with that counter").
 * Anything else (entries restored from an earlier run, a replaced entry, a
 * duplicate counter) marks the queue unindexed until it is empty again, and
 * the caller scans as before.
 */
import type { ClientQueue, OutMeta } from "./keys.js";

export interface CounterIndex {
  byCounter: Map<unknown, OutMeta>;
  /** The index cannot answer for this queue until it empties (see above). */
  off: boolean;
}

function indexOf(q: ClientQueue): CounterIndex {
  return (q.index ??= { byCounter: new Map(), off: false });
}

/** `meta` was added to the queue (after every entry already in it). */
export function indexAdd(q: ClientQueue, meta: OutMeta, ownBrokerId: string | undefined): void {
  const ix = indexOf(q);
  if (ix.off) return;
  if (ownBrokerId === undefined || meta.brokerId !== ownBrokerId || ix.byCounter.has(meta.brokerCounter)) {
    ix.off = true;
    ix.byCounter.clear();
    return;
  }
  ix.byCounter.set(meta.brokerCounter, meta);
}

/** `meta` left the queue. */
export function indexDelete(q: ClientQueue, meta: OutMeta): void {
  const ix = q.index;
  if (!ix) return;
  if (!ix.off && ix.byCounter.get(meta.brokerCounter) === meta) ix.byCounter.delete(meta.brokerCounter);
  if (q.entries.size === 0) {
    ix.off = false;
    ix.byCounter.clear();
  }
}

/** An entry's broker id / counter are about to change (replaced by a PUBREL): the index stops answering. */
export function indexInvalidate(q: ClientQueue): void {
  const ix = indexOf(q);
  ix.off = true;
  ix.byCounter.clear();
}

/**
 * What the reference's scan would find for `packet`: the entry, or null for
 * "no such entry". undefined when the index cannot tell (scan instead).
 */
export function indexFind(q: ClientQueue, packet: { brokerId?: unknown; brokerCounter?: unknown }, ownBrokerId: string | undefined): OutMeta | null | undefined {
  const ix = q.index;
  if (!ix || ix.off || ownBrokerId === undefined || packet.brokerId !== ownBrokerId) return undefined;
  return ix.byCounter.get(packet.brokerCounter) ?? null;
}
