/**
 * The fuel column of `npm run bench:hooks`: what fuel metering costs one hook call,
 * as an A/B of many short paired windows, repeated over fresh code layouts.
 *
 * Why not the ns columns' rounds: those are 7 × 100 ms per variant, and the fuel
 * figure is the difference of two ~1 µs figures (a few tens of ns at 16 KB), so a
 * burst of someone else's load in one 100 ms window moves it by several points.
 * Here, for one build, `instances` metered and `instances` unmetered copies of the
 * plugin (each from bytes of its own, so that V8 compiles and places each apart:
 * layout-copies.ts) run `rounds` rounds; in each round every
 * copy runs one window of K calls (K sized so a window takes `windowMs`), all copies
 * interleaved (listed metered, unmetered, metered, ..., so each pair sits together),
 * their order rotated every round and reversed every other cycle, so over 2n rounds
 * each runs in every position and both before and after its neighbours. A round's share is
 * (metered − unmetered) / metered, from the mean of the round's metered windows and
 * the mean of its unmetered ones, milliseconds apart: load that spans the round
 * cancels.
 *
 * Why several processes: what metering costs depends on where V8 puts the code. In
 * one process the paired share of a given pair of compiled copies holds still
 * (interquartile range ±1 point over 1,000 rounds), but another process — other
 * addresses for the same code — gives another figure: filter at 16 KB read 3.4%,
 * 8.9% and 10.7% in three processes averaging 8 copies each (bench/README.md,
 * "fuel5"). So the A/B runs in `processes` child processes one after another, each
 * with its own layout, and the figure is the median of all their rounds' shares, the
 * spread the interquartile range of those shares and the range of the per-process
 * medians. Every variant is treated identically: same K, same windows, same rotation,
 * same processes.
 *
 * Why 8 copies a side: V8 gives identical bytes one compilation per process, so only
 * copies with bytes of their own (layout-copies.ts) are placed apart, and one copy's
 * time moves by up to ±15% with its placement; 8 a side average that out within a
 * process. 128 rounds, a multiple of 2n for 16 and 32 copies, suffice: a copy's own
 * rounds agree within about a point (bench/README.md, "Fuel, part 7").
 */
import { execFile } from "node:child_process";
import { join } from "node:path";
import { percentile } from "./stats.js";

export interface FuelAbOptions {
  /** Child processes (fresh code layouts), run one after another. */
  processes: number;
  /** Metered and unmetered copies of the plugin per build and process. */
  instances: number;
  /** Rounds per process (one window per copy each). */
  rounds: number;
  /** Target length of one window, ms (K calls, K sized on the first metered copy). */
  windowMs: number;
}

export const DEFAULT_FUEL_AB: FuelAbOptions = { processes: 8, instances: 8, rounds: 128, windowMs: 0.5 };
export const QUICK_FUEL_AB: FuelAbOptions = { processes: 1, instances: 1, rounds: 50, windowMs: 0.5 };

/** The copies of one build to compare. */
export interface FuelAbGroup {
  metered: (() => number)[];
  unmetered: (() => number)[];
}

/** One build's rounds in one process. */
export interface FuelAbRounds {
  /** Per round: (metered − unmetered) / metered. */
  shares: number[];
  /** Per round: metered − unmetered, ns per call. */
  diffs: number[];
  metered: number[];
  unmetered: number[];
  calls: number;
  /** Distinct compilations (copy files) the rounds ran on; set by the child. */
  layouts: number;
}

export interface FuelAbResult {
  /** Median over every round of every process of the paired share, as a fraction. */
  share: number;
  /** 25th and 75th percentile of those shares (the middle half lies between). */
  q1: number;
  q3: number;
  /** Each process's median share: the spread that comes from code layout. */
  perProcess: number[];
  /** Median of metered − unmetered over the same rounds, ns per call. */
  ns: number;
  /** Median ns per call of each side. */
  meteredNs: number;
  unmeteredNs: number;
  rounds: number;
  /** Distinct compilations over every process, both sides. */
  layouts: number;
}

/** Calls per window so that one window of `call` takes about `windowMs`. */
export function callsPerWindow(call: () => number, windowMs: number): number {
  for (let i = 0; i < 20; i++) call();
  const t0 = performance.now();
  let n = 0;
  while (performance.now() - t0 < 5 && n < 100_000) {
    call();
    n++;
  }
  const perCallMs = (performance.now() - t0) / n;
  return Math.max(1, Math.min(100_000, Math.round(windowMs / perCallMs)));
}

/** The order of `n` variants in round `r`: rotated by r, reversed on every other cycle of n rounds. */
export function roundOrder(n: number, r: number): number[] {
  const order = Array.from({ length: n }, (_, i) => (i + r) % n);
  return Math.floor(r / n) % 2 === 1 ? order.reverse() : order;
}

function timeWindow(call: () => number, calls: number): number {
  let sink = 0;
  const t0 = process.hrtime.bigint();
  for (let k = 0; k < calls; k++) sink += call();
  const t1 = process.hrtime.bigint();
  if (sink === -1) throw new Error("unreachable"); // keeps the calls' results live
  return Number(t1 - t0) / calls;
}

/** Runs every group's copies in the same rounds (all interleaved); one FuelAbRounds per group. */
export function measureFuelAbRounds(groups: readonly FuelAbGroup[], opts: Pick<FuelAbOptions, "rounds" | "windowMs">): FuelAbRounds[] {
  if (groups.length === 0) return [];
  const calls = callsPerWindow(groups[0]!.metered[0]!, opts.windowMs);
  const copies = groups.flatMap((g, gi) =>
    g.metered.flatMap((call, i) => [
      { gi, metered: true, call },
      { gi, metered: false, call: g.unmetered[i]! },
    ]),
  );
  const ns = copies.map(() => new Float64Array(opts.rounds));
  for (let r = 0; r < opts.rounds; r++) {
    for (const c of roundOrder(copies.length, r)) ns[c]![r] = timeWindow(copies[c]!.call, calls);
  }
  return groups.map((_, gi) => {
    const mean = (metered: boolean, r: number) => {
      let sum = 0;
      let n = 0;
      copies.forEach((c, i) => {
        if (c.gi === gi && c.metered === metered) {
          sum += ns[i]![r]!;
          n++;
        }
      });
      return sum / n;
    };
    const out: FuelAbRounds = { shares: [], diffs: [], metered: [], unmetered: [], calls, layouts: 0 };
    for (let r = 0; r < opts.rounds; r++) {
      const m = mean(true, r);
      const u = mean(false, r);
      out.metered.push(m);
      out.unmetered.push(u);
      out.diffs.push(m - u);
      out.shares.push((m - u) / m);
    }
    return out;
  });
}

const sorted = (a: number[]) => Float64Array.from(a).sort();

/** Pools one build's rounds from every process into the figure. */
export function summarize(perProcess: readonly FuelAbRounds[]): FuelAbResult {
  const all = (k: "shares" | "diffs" | "metered" | "unmetered") => sorted(perProcess.flatMap((p) => p[k]));
  const shares = all("shares");
  return {
    share: percentile(shares, 0.5),
    q1: percentile(shares, 0.25),
    q3: percentile(shares, 0.75),
    perProcess: perProcess.map((p) => percentile(sorted(p.shares), 0.5)),
    ns: percentile(all("diffs"), 0.5),
    meteredNs: percentile(all("metered"), 0.5),
    unmeteredNs: percentile(all("unmetered"), 0.5),
    rounds: shares.length,
    layouts: perProcess.reduce((n, p) => n + p.layouts, 0),
  };
}

/** What one child process measures (bench/hook-fuel-child.ts). */
export interface FuelAbJob {
  plugin: string;
  hook: string;
  size: number | null;
  config: Record<string, unknown>;
  /** A built older checkout measured in the same rounds (hooks-baseline.ts), or null. */
  baseline: string | null;
  instances: number;
  rounds: number;
  windowMs: number;
  /** Load the unmetered copy of the first pair first (every other process). */
  flip: boolean;
}

/** The child's answer: the current build's rounds, and the baseline's when asked. */
export interface FuelAbChildResult {
  current: FuelAbRounds;
  base: FuelAbRounds | null;
  /** Traps seen while measuring (the figures then measure the failure path; bench:hooks reports them). */
  traps: string[];
}

const CHILD = join(import.meta.dirname, "hook-fuel-child.js");

function runChild(job: FuelAbJob): Promise<FuelAbChildResult> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [CHILD, JSON.stringify(job)], { maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`fuel A/B child for ${job.plugin} ${job.hook} failed: ${stderr.trim() || err.message}`));
      try {
        resolve(JSON.parse(stdout) as FuelAbChildResult);
      } catch {
        reject(new Error(`fuel A/B child for ${job.plugin} ${job.hook} printed no result: ${stdout.slice(0, 200)} ${stderr.slice(0, 200)}`));
      }
    });
  });
}

/** The fuel figure of one case: `processes` children in turn, pooled. */
export async function measureFuelAb(
  job: Omit<FuelAbJob, "instances" | "rounds" | "windowMs" | "flip">,
  opts: FuelAbOptions,
): Promise<{ current: FuelAbResult; base: FuelAbResult | null; traps: string[] }> {
  const runs: FuelAbChildResult[] = [];
  for (let p = 0; p < opts.processes; p++) runs.push(await runChild({ ...job, instances: opts.instances, rounds: opts.rounds, windowMs: opts.windowMs, flip: p % 2 === 1 }));
  return {
    current: summarize(runs.map((r) => r.current)),
    base: job.baseline ? summarize(runs.map((r) => r.base!)) : null,
    traps: runs.flatMap((r) => r.traps),
  };
}

/** "7.3% (5.1–9.0)": the median share and the middle half of the rounds' shares. */
export function fmtShare(r: Pick<FuelAbResult, "share" | "q1" | "q3">): string {
  const pct = (x: number) => (x * 100).toFixed(1);
  return `${pct(r.share)}% (${pct(r.q1)}–${pct(r.q3)})`;
}

/** "3.4–10.7%": the range of the per-process medians. */
export function fmtProcesses(r: Pick<FuelAbResult, "perProcess">): string {
  const v = [...r.perProcess].sort((a, b) => a - b);
  return v.length === 1 ? `${(v[0]! * 100).toFixed(1)}%` : `${(v[0]! * 100).toFixed(1)}–${(v[v.length - 1]! * 100).toFixed(1)}%`;
}
