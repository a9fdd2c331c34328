/**
 * The distribution of one plugin call (issue #17's "realtime view"): every call timed
 * on its own, so the tail — GC pauses, tier-up, a preempted process — shows instead of
 * averaging away as it does in bench:hooks' batched medians.
 *
 * Each variant's calls are timed with performance.now() (sub-µs resolution on Node, no
 * allocation, unlike hrtime.bigint) into a perf_hooks histogram (ns). The variants take
 * turns in slices of SLICE calls, so a burst of load on the shared machine lands on all
 * of them alike. The timer's own cost is measured the same way (an empty function,
 * same loop) and reported as its own row: subtract its p50 from a call's p50 for the
 * call alone; the tail percentiles are not corrected (a timer read can be preempted too).
 */
import { createHistogram, type RecordableHistogram } from "node:perf_hooks";

/** Calls per variant before handing over to the next one. */
const SLICE = 10_000;

export interface Distribution {
  calls: number;
  p50: number;
  p99: number;
  p999: number;
  max: number;
  mean: number;
}

export interface DistributionRow {
  plugin: string;
  hook: string;
  size: number | null;
  variant: string;
  dist: Distribution;
}

function summary(h: RecordableHistogram): Distribution {
  return { calls: h.count, p50: h.percentile(50), p99: h.percentile(99), p999: h.percentile(99.9), max: h.max, mean: h.mean };
}

function newHistogram(): RecordableHistogram {
  // 1 ns .. 60 s, 3 significant figures.
  return createHistogram({ lowest: 1, highest: 60e9, figures: 3 });
}

function timeSlice(call: () => unknown, h: RecordableHistogram, n: number): void {
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    call();
    const ns = Math.round((performance.now() - t0) * 1e6);
    h.record(ns < 1 ? 1 : ns);
  }
}

/** `calls` timed calls of each variant, interleaved by slices. */
export function measureDistribution(variants: Record<string, () => unknown>, calls: number): Record<string, Distribution> {
  const names = Object.keys(variants);
  const hists = Object.fromEntries(names.map((n) => [n, newHistogram()]));
  // Warm each variant (tier-up), untimed.
  for (const n of names) for (let i = 0; i < Math.min(calls, 20_000); i++) variants[n]!();
  for (let done = 0, turn = 0; done < calls; done += SLICE, turn++) {
    const n = Math.min(SLICE, calls - done);
    for (let k = 0; k < names.length; k++) {
      const name = names[(k + turn) % names.length]!;
      timeSlice(variants[name]!, hists[name]!, n);
    }
  }
  return Object.fromEntries(names.map((n) => [n, summary(hists[n]!)]));
}

/** The cost of the timing itself: the same loop around an empty function. */
export function timerOverhead(calls: number): Distribution {
  const h = newHistogram();
  const empty = (): number => 0;
  timeSlice(empty, h, Math.min(calls, 20_000));
  h.reset();
  timeSlice(empty, h, calls);
  return summary(h);
}

function ns(v: number): string {
  if (v >= 1e6) return `${(v / 1e6).toFixed(2)} ms`;
  if (v >= 10_000) return `${(v / 1000).toFixed(1)} µs`;
  return v.toFixed(0);
}

/** Rows for report.table: one per plugin/hook/variant, then the timer. */
export function distributionRows(rows: DistributionRow[], timer: Distribution, sizeLabel: (s: number | null) => string): string[][] {
  const line = (plugin: string, hook: string, size: string, variant: string, d: Distribution) => [
    plugin,
    hook,
    size,
    variant,
    d.calls.toLocaleString("en-US"),
    ns(d.p50),
    ns(d.p99),
    ns(d.p999),
    ns(d.max),
    ns(d.mean),
  ];
  return [...rows.map((r) => line(r.plugin, r.hook, sizeLabel(r.size), r.variant, r.dist)), line("(timer)", "-", "-", "empty call", timer)];
}

export const DISTRIBUTION_HEADER = ["plugin", "hook", "size", "variant", "calls", "p50 ns", "p99 ns", "p99.9 ns", "max ns", "mean ns"];
