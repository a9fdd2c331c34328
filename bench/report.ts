/**
 * From per-run records to what the bench reports: medians with their spread per
 * (scenario, target), ratios paired by repetition (runs of the same repetition
 * are adjacent in time, so pairing cancels most of the machine's drift), and
 * the issue's targets with PASS/MISS.
 */
import type { RunRecord } from "./orchestrate.js";
import type { TargetName } from "./scenarios.js";
import { median, spread, type Spread } from "./stats.js";

export interface RunFailure {
  scenario: string;
  target: TargetName;
  rep: number;
  error: string;
}

/** One row of the JSON's `results`: the contract fields first, extras after. */
export interface Aggregate {
  scenario: string;
  target: TargetName;
  msgsPerSec: number | null;
  p50Ms: number | null;
  p99Ms: number | null;
  p999Ms: number | null;
  cpuSec: number | null;
  rssMB: number | null;
  reps: number;
  /** Deliveries counted in the measurement window (median over repetitions). */
  deliveries: number | null;
  spread: { msgsPerSec: Spread; p99Ms: Spread };
  /** Broker CPU microseconds per delivered message: an efficiency figure independent of the window length. */
  cpuUsPerMsg: number | null;
  /** Broker and generator CPU as a share of one core over the window. */
  brokerCpuShare: number | null;
  genCpuShare: number | null;
  lostQos1: number;
  lostQos0: number;
  duplicates: number;
  offeredRate: number | null;
  behindSchedule: boolean;
  persistence: string;
  plugins: string[];
  version: string;
  errors?: string[];
}

const num = (v: number) => (Number.isFinite(v) ? v : null);

export function aggregate(records: RunRecord[], failures: RunFailure[], rates: Map<string, number | null>): Aggregate[] {
  const keys = new Map<string, { scenario: string; target: TargetName }>();
  for (const r of [...records, ...failures]) keys.set(`${r.scenario}\u0000${r.target}`, { scenario: r.scenario, target: r.target });
  const out: Aggregate[] = [];
  for (const { scenario, target } of keys.values()) {
    const rs = records.filter((r) => r.scenario === scenario && r.target === target);
    const fs = failures.filter((f) => f.scenario === scenario && f.target === target);
    const pick = (f: (r: RunRecord) => number) => rs.map(f);
    const row: Aggregate = {
      scenario,
      target,
      msgsPerSec: num(median(pick((r) => r.load.msgsPerSec))),
      p50Ms: num(median(pick((r) => r.load.p50Ms))),
      p99Ms: num(median(pick((r) => r.load.p99Ms))),
      p999Ms: num(median(pick((r) => r.load.p999Ms))),
      cpuSec: num(median(pick((r) => r.cpuSec))),
      rssMB: num(median(pick((r) => r.rssMB))),
      reps: rs.length,
      deliveries: num(median(pick((r) => r.load.deliveries))),
      spread: { msgsPerSec: spread(pick((r) => r.load.msgsPerSec)), p99Ms: spread(pick((r) => r.load.p99Ms)) },
      cpuUsPerMsg: num(median(pick((r) => (r.cpuSec * 1e6) / r.load.deliveries))),
      brokerCpuShare: num(median(pick((r) => r.cpuSec / r.load.windowSec))),
      genCpuShare: num(median(pick((r) => r.load.genCpuShare))),
      lostQos1: rs.reduce((n, r) => n + r.load.lostQos1, 0),
      lostQos0: rs.reduce((n, r) => n + r.load.lostQos0, 0),
      duplicates: rs.reduce((n, r) => n + r.load.duplicates, 0),
      offeredRate: rates.get(scenario) ?? null,
      behindSchedule: rs.some((r) => r.load.behindSchedule),
      persistence: rs[0]?.persistence ?? "",
      plugins: rs[0]?.plugins ?? [],
      version: rs[0]?.version ?? "",
    };
    if (fs.length) row.errors = fs.map((f) => `rep ${f.rep}: ${f.error}`);
    out.push(row);
  }
  return out;
}

export interface Ratio {
  scenario: string;
  label: string;
  /** Median of the per-repetition ratios, and their range. */
  median: number;
  min: number;
  max: number;
  pairs: number;
}

/** Ratio of a metric between two targets, paired by repetition. */
export function pairedRatio(records: RunRecord[], scenario: string, a: TargetName, b: TargetName, metric: (r: RunRecord) => number): Ratio | null {
  const ratios: number[] = [];
  const reps = new Set(records.filter((r) => r.scenario === scenario).map((r) => r.rep));
  for (const rep of reps) {
    const ra = records.find((r) => r.scenario === scenario && r.target === a && r.rep === rep);
    const rb = records.find((r) => r.scenario === scenario && r.target === b && r.rep === rep);
    if (ra && rb && metric(rb) > 0) ratios.push(metric(ra) / metric(rb));
  }
  if (!ratios.length) return null;
  const s = spread(ratios);
  return { scenario, label: `${a}/${b}`, median: median(ratios), min: s.min, max: s.max, pairs: ratios.length };
}

export const RATIO_PAIRS: [TargetName, TargetName][] = [
  ["wasm", "aedes"],
  ["wasm", "native"],
  ["wasm", "wasm-nofuel"],
  ["native", "aedes"],
  ["wasm", "mosquitto"],
  ["wasm", "wasm-no-v5"],
  // --baseline: the current build against the older one, same run.
  ["wasm", "wasm-base"],
  ["native", "native-base"],
];

export function allRatios(records: RunRecord[], scenarios: string[]): { throughput: Ratio[]; cpuPerMsg: Ratio[] } {
  const throughput: Ratio[] = [];
  const cpuPerMsg: Ratio[] = [];
  for (const s of scenarios) {
    for (const [a, b] of RATIO_PAIRS) {
      const t = pairedRatio(records, s, a, b, (r) => r.load.msgsPerSec);
      if (t) throughput.push(t);
      const c = pairedRatio(records, s, a, b, (r) => (r.cpuSec * 1e6) / r.load.deliveries);
      if (c) cpuPerMsg.push(c);
    }
  }
  return { throughput, cpuPerMsg };
}

// -- formatting ---------------------------------------------------------------

export function fmtNum(v: number | null, digits = 0): string {
  if (v === null || !Number.isFinite(v)) return "-";
  return v.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

export function fmtMs(v: number | null): string {
  if (v === null || !Number.isFinite(v)) return "-";
  return v < 10 ? v.toFixed(2) : v < 100 ? v.toFixed(1) : v.toFixed(0);
}

export function fmtRatio(r: Ratio | null): string {
  if (!r) return "-";
  return r.pairs > 1 ? `${r.median.toFixed(2)}× (${r.min.toFixed(2)}–${r.max.toFixed(2)})` : `${r.median.toFixed(2)}×`;
}

/** A plain-text table with right-aligned numeric columns. */
export function table(header: string[], rows: string[][], leftAligned = 2): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i < leftAligned ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)))
      .join("  ")
      .trimEnd();
  return [line(header), widths.map((w) => "-".repeat(w)).join("  "), ...rows.map(line)].join("\n");
}

export function resultsTable(rows: Aggregate[]): string {
  const header = ["scenario", "target", "msg/s", "(min–max)", "p50 ms", "p99 ms", "p999 ms", "CPU s", "µs CPU/msg", "RSS MB", "broker CPU", "gen CPU", "lost QoS1"];
  const body = rows.map((r) =>
    r.msgsPerSec === null
      ? [r.scenario, r.target, "FAILED", "", "", "", "", "", "", "", "", "", ""]
      : [
          r.scenario,
          r.target,
          fmtNum(r.msgsPerSec),
          r.reps > 1 ? `${fmtNum(r.spread.msgsPerSec.min)}–${fmtNum(r.spread.msgsPerSec.max)}` : "",
          fmtMs(r.p50Ms),
          fmtMs(r.p99Ms),
          fmtMs(r.p999Ms),
          fmtNum(r.cpuSec, 2),
          fmtNum(r.cpuUsPerMsg, 1),
          fmtNum(r.rssMB),
          r.brokerCpuShare === null ? "-" : `${Math.round(r.brokerCpuShare * 100)}%`,
          r.genCpuShare === null ? "-" : `${Math.round(r.genCpuShare * 100)}%`,
          String(r.lostQos1),
        ],
  );
  return table(header, body);
}

export function ratioTable(throughput: Ratio[], cpuPerMsg: Ratio[]): string {
  const scenarios = [...new Set(throughput.map((r) => r.scenario))];
  const labels = RATIO_PAIRS.map(([a, b]) => `${a}/${b}`).filter((l) => throughput.some((r) => r.label === l));
  const header = ["scenario", "ratio", ...labels];
  const rows: string[][] = [];
  for (const s of scenarios) {
    rows.push([s, "throughput", ...labels.map((l) => fmtRatio(throughput.find((r) => r.scenario === s && r.label === l) ?? null))]);
    rows.push(["", "CPU per msg", ...labels.map((l) => fmtRatio(cpuPerMsg.find((r) => r.scenario === s && r.label === l) ?? null))]);
  }
  return table(header, rows);
}

// -- the issue's targets -------------------------------------------------------

export interface TargetCheck {
  goal: string;
  status: "PASS" | "MISS" | "n/a";
  measured: string;
}

export function checkTargets(rows: Aggregate[], ratios: { throughput: Ratio[]; cpuPerMsg: Ratio[] }, standardChain: string[]): TargetCheck[] {
  const checks: TargetCheck[] = [];
  const chainNote = `standard chain: ${standardChain.join(" + ") || "none built"}`;
  for (const [qos, scenario] of [
    [0, "p2p-qos0-64B"],
    [1, "p2p-qos1-64B"],
  ] as const) {
    const r = ratios.throughput.find((x) => x.scenario === scenario && x.label === "wasm/aedes");
    const cpu = ratios.cpuPerMsg.find((x) => x.scenario === scenario && x.label === "wasm/aedes");
    const native = ratios.throughput.find((x) => x.scenario === scenario && x.label === "native/aedes");
    checks.push({
      goal: `wasm ≥ 0.95× aedes throughput, QoS ${qos} (${scenario}, ${chainNote})`,
      status: r ? (r.median >= 0.95 ? "PASS" : "MISS") : "n/a",
      measured: r
        ? `${fmtRatio(r)}${cpu ? `; broker CPU per message ${fmtRatio(cpu)} aedes'` : ""}${native ? `; native twins reach ${fmtRatio(native)}` : ""}`
        : "not measured in this run",
    });
  }
  for (const scenario of ["latency10k-qos0-64B", "latency10k-qos1-64B"]) {
    const row = rows.find((x) => x.scenario === scenario && x.target === "wasm");
    const p99 = row?.p99Ms ?? null;
    const others = rows
      .filter((x) => x.scenario === scenario && (x.target === "aedes" || x.target === "mosquitto") && x.p99Ms !== null)
      .map((x) => `${x.target} ${fmtMs(x.p99Ms)} ms`);
    checks.push({
      goal: `p99 ≤ 1 ms at 10k msg/s with the Wasm chain (${scenario})`,
      status: p99 === null ? "n/a" : p99 <= 1 ? "PASS" : "MISS",
      measured:
        p99 === null
          ? "not measured in this run"
          : `p99 ${fmtMs(p99)} ms${row!.reps > 1 ? ` (${fmtMs(row!.spread.p99Ms.min)}–${fmtMs(row!.spread.p99Ms.max)})` : ""}, p50 ${fmtMs(row!.p50Ms)} ms` +
            `${others.length ? `; same run: ${others.join(", ")}` : ""}${row!.behindSchedule ? "; the generator fell behind the 10k/s schedule" : ""}`,
    });
  }
  return checks;
}

export function targetsText(checks: TargetCheck[]): string {
  return checks.map((c) => `${c.status.padEnd(4)}  ${c.goal}: ${c.measured}`).join("\n");
}
