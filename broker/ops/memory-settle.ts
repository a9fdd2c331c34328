/**
 * Memory settle: after a burst of connections, once the broker has gone quiet,
 * one compacting full GC gives back the memory the burst left behind.
 *
 * Why (bench/README.md, "RSS per connection, part 5"): while thousands of
 * clients connect, connect-time objects still in flight at two scavenges are
 * promoted and die in old space, interleaved with each session's long-lived
 * state. The pages they leave are half full, and V8 does not compact them: an
 * idle broker allocates too little to trigger another full GC, and a regular
 * full GC only evacuates nearly empty pages (measured at 19,000 clients: 90 MB
 * committed-but-free old space still held after six full GCs). One GC that
 * compacts every page returns it (old space committed ≈ used afterwards).
 *
 * When: at least `afterConnects` connections accepted since the last settle,
 * then `idleMs` with no connection accepted and no PUBLISH received or sent
 * (the broker's own counters, read by a timer: nothing on the message path).
 * The GC is one pause (measured 0.8–1.0 s for ~135 MB of live heap at 19,000
 * clients, 2 cores at load 11), taken only while nothing is flowing; a PUBLISH arriving
 * during it waits for it. `memorySettle: false` turns it off.
 *
 * How: V8 has no API for "compact now" reachable from JavaScript, so the
 * settle sets V8's `--compact-on-every-full-gc` for one `gc()` and clears it
 * again (`v8.setFlagsFromString`, which Node documents as setting V8 flags at
 * run time); `gc` is the process's own when started with --expose-gc, or one
 * obtained once from a fresh context with the flag set then cleared.
 */
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import type { Logger } from "pino";
import type { ConnectionTracker } from "../net/connections.js";
import type { BrokerStats } from "./stats.js";

export interface MemorySettleOptions {
  /** Connections accepted since the last settle before the next may run. */
  afterConnects: number;
  /** Quiet time (no connection accepted, no PUBLISH in or out) before it runs. */
  idleMs: number;
}

export const DEFAULT_MEMORY_SETTLE: MemorySettleOptions = { afterConnects: 1000, idleMs: 2000 };

type Gc = () => void;
let gcFn: Gc | null = null;

/** A regular full GC (the process's `gc`, or one obtained as above). */
export function fullGc(): Gc {
  if (gcFn) return gcFn;
  const own = (globalThis as { gc?: Gc }).gc;
  if (typeof own === "function") return (gcFn = own);
  setFlagsFromString("--expose-gc");
  try {
    gcFn = runInNewContext("gc") as Gc;
  } finally {
    // Only the context made above gets `gc`; contexts made later (plugins' vm sandboxes, if any) do not.
    setFlagsFromString("--no-expose-gc");
  }
  return gcFn;
}

/** One full GC that compacts every old-space page it can. */
export function compactingGc(): void {
  const gc = fullGc();
  setFlagsFromString("--compact-on-every-full-gc");
  try {
    gc();
  } finally {
    setFlagsFromString("--no-compact-on-every-full-gc");
  }
}

/**
 * V8 unmaps the pages a compaction emptied on background threads, after the
 * GC returns: right after it RSS can even be higher than before (measured:
 * 414 MB 0.1 s before the unmapping finished, 235 MB after). The RSS released
 * is therefore read this long after the GC.
 */
const RELEASE_READ_MS = 1000;

export interface MemorySettle {
  stop(): void;
}

/** The quiet-state fingerprint: any change means the broker was not idle. */
function activity(stats: BrokerStats, tracker: ConnectionTracker): number {
  return tracker.accepted + stats.publishReceivedTotal() + stats.publishSentTotal();
}

export function startMemorySettle(stats: BrokerStats, tracker: ConnectionTracker, opts: MemorySettleOptions, logger: Logger): MemorySettle {
  let acceptedAtSettle = tracker.accepted;
  let seen = activity(stats, tracker);
  let quietSince = Date.now();
  // Four looks per quiet window: the settle runs between idleMs and 1.25 × idleMs after the last activity.
  const timer = setInterval(() => {
    const now = Date.now();
    const a = activity(stats, tracker);
    if (a !== seen) {
      seen = a;
      quietSince = now;
      return;
    }
    if (tracker.accepted - acceptedAtSettle < opts.afterConnects || now - quietSince < opts.idleMs) return;
    acceptedAtSettle = tracker.accepted;
    const rss0 = process.memoryUsage.rss();
    const t0 = performance.now();
    compactingGc();
    const ms = performance.now() - t0;
    stats.memorySettles++;
    stats.memorySettleSeconds += ms / 1000;
    release = setTimeout(() => {
      release = null;
      const released = Math.max(0, rss0 - process.memoryUsage.rss());
      stats.memorySettleReleasedBytes += released;
      logger.info({ releasedMB: Math.round(released / 2 ** 20), pauseMs: Math.round(ms), clients: tracker.open }, "memory settled after a connection burst (compacting GC)");
    }, RELEASE_READ_MS);
    release.unref();
  }, Math.max(10, Math.floor(opts.idleMs / 4)));
  timer.unref();
  let release: NodeJS.Timeout | null = null;
  return {
    stop() {
      clearInterval(timer);
      if (release) clearTimeout(release);
    },
  };
}
