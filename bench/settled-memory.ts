/**
 * The idle scenarios' "settled" memory reading: ask a target for its memory
 * (a Node target runs two full GCs before reading RSS, bench/memory.ts) again
 * and again until RSS stops falling, and keep the last answer.
 *
 * Why: after a connect burst, V8's old space holds pages left fragmented by
 * connect state that died there, and each full GC evacuates only part of them
 * (measured: committed-but-free old space after 1, 2, 3… GCs of one run halves
 * each time, 173 → 94 → … MB in bare aedes). Two GCs stop half-way, at a point
 * set by how much garbage the burst promoted (which follows the machine's load)
 * and by whether V8 happened to uncommit the young generation's from-space
 * (16 MB at --min-semi-space-size=16) at that GC — not by what the broker keeps
 * per connection. Repeating until the reading is stable measures what stays
 * resident once the collector has released what it can: the same procedure for
 * every target, over the wire every target's process already speaks (an older
 * `--baseline` build included; Mosquitto's reading is instant and stable).
 * The first answer — the two-GC figure the bench reported before — is kept too.
 */
import type { MemoryStats } from "./protocol.js";

/** Stable when one more round released less than this (MB): a few pages of a 100–400 MB process. */
export const SETTLED_DELTA_MB = 1;
/** Rounds of two GCs at most (each ~1 s); a burst's fragmentation halves per GC, so 6 rounds is 1/4096 of it. */
export const SETTLE_MAX_ROUNDS = 6;

export interface SettledMemory {
  /** The first reading (two GCs): the figure the bench reported before the settled one. */
  first: MemoryStats;
  /** The reading once one more round released < SETTLED_DELTA_MB. */
  settled: MemoryStats;
  /** Readings taken, the first included. */
  rounds: number;
}

export async function readSettled(read: () => Promise<MemoryStats>): Promise<SettledMemory> {
  const first = await read();
  let settled = first;
  let rounds = 1;
  while (rounds < SETTLE_MAX_ROUNDS) {
    const next = await read();
    rounds++;
    const released = settled.rssMB - next.rssMB;
    settled = next;
    if (released < SETTLED_DELTA_MB) break;
  }
  return { first, settled, rounds };
}
