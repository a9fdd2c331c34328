/**
 * Memory of a broker process for the idle-connection scenarios: resident set
 * size after a full garbage collection (Node targets run with --expose-gc), or
 * Mosquitto's current VmRSS from /proc. `WASMQ_BENCH_HEAPSNAPSHOT=DIR` also
 * writes a V8 heap snapshot of a Node target at each reading, to see where the
 * bytes are (open it in Chrome DevTools → Memory).
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { writeHeapSnapshot } from "node:v8";
import type { MemoryStats } from "./protocol.js";
import { memoryDetail, memoryWatchSec } from "./memory-detail.js";

const MB = 2 ** 20;

/** V8 returns freed pages to the system from background threads after a GC: read RSS once they have had time. */
const SETTLE_MS = 500;

export async function nodeMemory(label: string): Promise<MemoryStats> {
  const gc = (globalThis as { gc?: () => void }).gc;
  memoryDetail(label, "read");
  for (let i = 0; i < memoryWatchSec() * 2; i++) {
    await new Promise((r) => setTimeout(r, 500));
    memoryDetail(label, `idle+${(i + 1) * 500}ms`);
  }
  // Twice: the first pass can leave objects whose finalizers free more.
  for (let i = 0; i < 2; i++) {
    gc?.();
    await new Promise((r) => setTimeout(r, SETTLE_MS));
    memoryDetail(label, `gc${i + 1}`);
  }
  const m = process.memoryUsage();
  const dir = process.env.WASMQ_BENCH_HEAPSNAPSHOT;
  if (dir) writeHeapSnapshot(join(dir, `${label}-${process.pid}-${Date.now()}.heapsnapshot`));
  return { rssMB: m.rss / MB, heapUsedMB: m.heapUsed / MB, externalMB: m.external / MB };
}

/** Current resident set size (VmRSS) of another process, from /proc (Linux). */
export function procMemory(pid: number): MemoryStats {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const rss = /VmRSS:\s+(\d+) kB/.exec(status);
  return { rssMB: rss ? Number(rss[1]) / 1024 : 0, heapUsedMB: null, externalMB: null };
}
