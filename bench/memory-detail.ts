/**
 * `WASMQ_BENCH_MEMDETAIL=FILE`: where a Node target's resident memory is, at
 * each idle-scenario reading, appended to FILE as one JSON line per step —
 * `process.memoryUsage()` (heapTotal / heapUsed / external / arrayBuffers; RSS
 * minus heapTotal and external is native memory, code and stacks), V8's heap
 * spaces (committed vs used: old-space fragmentation; new-space size) and
 * /proc/self/smaps_rollup. `WASMQ_BENCH_MEMWATCH_S=N` also samples RSS every
 * 500 ms for N seconds before the reading's GCs, without collecting, to show
 * what V8 does on its own once the broker is idle (its memory reducer).
 * Diagnostic only: the figures the bench reports are unchanged by it.
 */
import { appendFileSync, readFileSync } from "node:fs";
import { getHeapSpaceStatistics } from "node:v8";

const MB = 2 ** 20;
const r1 = (n: number) => Math.round(n * 10) / 10;

function smapsRollup(): Record<string, number> {
  const out: Record<string, number> = {};
  try {
    for (const line of readFileSync("/proc/self/smaps_rollup", "utf8").split("\n")) {
      const m = /^(\w+):\s+(\d+) kB/.exec(line);
      if (m && ["Rss", "Anonymous", "Private_Dirty", "Shared_Clean", "Private_Clean"].includes(m[1]!)) out[m[1]!] = r1(Number(m[2]) / 1024);
    }
  } catch {
    // Not Linux: no rollup.
  }
  return out;
}

export function memoryDetail(label: string, step: string): void {
  const file = process.env.WASMQ_BENCH_MEMDETAIL;
  if (!file) return;
  const m = process.memoryUsage();
  const spaces: Record<string, [number, number]> = {};
  for (const s of getHeapSpaceStatistics()) spaces[s.space_name] = [r1(s.space_size / MB), r1(s.space_used_size / MB)];
  const line = {
    label,
    pid: process.pid,
    t: Date.now(),
    step,
    rss: r1(m.rss / MB),
    heapTotal: r1(m.heapTotal / MB),
    heapUsed: r1(m.heapUsed / MB),
    external: r1(m.external / MB),
    arrayBuffers: r1(m.arrayBuffers / MB),
    rest: r1((m.rss - m.heapTotal - m.external) / MB),
    spaces,
    smaps: smapsRollup(),
  };
  appendFileSync(file, JSON.stringify(line) + "\n");
}

/** Seconds to watch RSS without collecting before a reading (0: don't). */
export function memoryWatchSec(): number {
  return Number(process.env.WASMQ_BENCH_MEMWATCH_S ?? 0) || 0;
}
