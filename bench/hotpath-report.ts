/**
 * Issue #17's throughput, latency-tail and MQTT 5 goals as the bench reports
 * them (never asserted), and the evidence table for the latency tail: per
 * repetition p99 and p99.9 next to the broker's and the generator's event
 * loop delay and GC pauses over the same window (bench/tail.ts).
 */
import type { RunRecord } from "./orchestrate.js";
import { fmtMs, fmtRatio, pairedRatio, table, type Ratio, type TargetCheck } from "./report.js";
import type { TargetName } from "./scenarios.js";
import type { TailFigures } from "./protocol.js";
import { median, spread } from "./stats.js";
import { pooledPercentile, type LatencyHistogram } from "./latency-histogram.js";

/** One target's runs of a scenario, all windows pooled (p in 0..1, ms); null when the runs carry no histogram. */
export function pooled(records: RunRecord[], scenario: string, target: TargetName, p: number): number | null {
  const runs = records.filter((r) => r.scenario === scenario && r.target === target);
  const hs = runs.map((r) => r.load.latencyHistogram);
  if (!hs.length || hs.some((h) => !h)) return null;
  return pooledPercentile(hs as LatencyHistogram[], p, Math.max(...runs.map((r) => r.load.maxMs)));
}

const throughput = (r: RunRecord) => r.load.msgsPerSec;
const cpuPerMsg = (r: RunRecord) => (r.cpuSec * 1e6) / r.load.deliveries;

/** Ratio of one target's metric between two scenarios, paired by repetition (the v5/3.1.1 ratio). */
export function crossScenarioRatio(records: RunRecord[], target: TargetName, a: string, b: string, metric: (r: RunRecord) => number): Ratio | null {
  const ratios: number[] = [];
  for (const ra of records.filter((r) => r.scenario === a && r.target === target)) {
    const rb = records.find((r) => r.scenario === b && r.target === target && r.rep === ra.rep);
    if (rb && metric(rb) > 0) ratios.push(metric(ra) / metric(rb));
  }
  if (!ratios.length) return null;
  const s = spread(ratios);
  return { scenario: a, label: `${target} ${a}/${b}`, median: median(ratios), min: s.min, max: s.max, pairs: ratios.length };
}

function ratioCheck(goal: string, r: Ratio | null, pass: (m: number) => boolean, extra = ""): TargetCheck {
  return { goal, status: r ? (pass(r.median) ? "PASS" : "MISS") : "n/a", measured: r ? `${fmtRatio(r)}${extra}` : "not measured in this run" };
}

export function hotpathChecks(records: RunRecord[]): TargetCheck[] {
  const checks: TargetCheck[] = [];
  for (const scenario of ["p2p-qos0-64B", "p2p-qos1-64B"]) {
    const cpu = pairedRatio(records, scenario, "wasm", "aedes", cpuPerMsg);
    checks.push(
      ratioCheck(`wasm ≥ 1.5× aedes throughput (${scenario})`, pairedRatio(records, scenario, "wasm", "aedes", throughput), (m) => m >= 1.5, cpu ? `; CPU per message ${fmtRatio(cpu)} aedes'` : ""),
    );
    const cpuM = pairedRatio(records, scenario, "wasm", "mosquitto", cpuPerMsg);
    checks.push(
      ratioCheck(`wasm ≥ 2× Mosquitto throughput (${scenario})`, pairedRatio(records, scenario, "wasm", "mosquitto", throughput), (m) => m >= 2, cpuM ? `; CPU per message ${fmtRatio(cpuM)} Mosquitto's` : ""),
    );
  }
  for (const scenario of ["latency10k-qos0-64B", "latency10k-qos1-64B"]) {
    const wasm = records.filter((r) => r.scenario === scenario && r.target === "wasm");
    const ratio = pairedRatio(records, scenario, "wasm", "mosquitto", (r) => r.load.p99Ms);
    const p99s = wasm.map((r) => r.load.p99Ms);
    const s = spread(p99s);
    const p999 = median(wasm.map((r) => r.load.p999Ms));
    const mosq = median(records.filter((r) => r.scenario === scenario && r.target === "mosquitto").map((r) => r.load.p99Ms));
    checks.push(
      ratioCheck(
        `p99 at 10k msg/s ≤ 1.5× Mosquitto's (${scenario}, wasm/mosquitto p99 paired by repetition)`,
        ratio,
        (m) => m <= 1.5,
        wasm.length ? `; wasm p99 ${fmtMs(median(p99s))} ms, p99.9 ${fmtMs(p999)} ms; mosquitto p99 ${fmtMs(mosq)} ms` : "",
      ),
    );
    const wasmAll = pooled(records, scenario, "wasm", 0.99);
    const mosqAll = pooled(records, scenario, "mosquitto", 0.99);
    if (wasmAll !== null && mosqAll !== null) {
      const echo = pooled(records, scenario, "echo", 0.99);
      const ratioAll = wasmAll / mosqAll;
      checks.push({
        goal: `p99 of all windows pooled ≤ 1.5× Mosquitto's (${scenario})`,
        status: ratioAll <= 1.5 ? "PASS" : "MISS",
        measured:
          `${ratioAll.toFixed(2)}×: wasm p99 ${fmtMs(wasmAll)} ms, p99.9 ${fmtMs(pooled(records, scenario, "wasm", 0.999))} ms; ` +
          `mosquitto p99 ${fmtMs(mosqAll)} ms, p99.9 ${fmtMs(pooled(records, scenario, "mosquitto", 0.999))} ms; per-window median p99 wasm ${fmtMs(median(p99s))} ms, mosquitto ${fmtMs(mosq)} ms` +
          (echo !== null ? `; the floor (echo relay) p99 ${fmtMs(echo)} ms, p99.9 ${fmtMs(pooled(records, scenario, "echo", 0.999))} ms` : ""),
      });
    }
    checks.push({
      goal: `p99 stable across repetitions, max/min ≤ 2 (${scenario}, wasm)`,
      status: wasm.length < 2 ? "n/a" : s.max / s.min <= 2 ? "PASS" : "MISS",
      measured: wasm.length === 0 ? "not measured in this run" : wasm.length < 2 ? "fewer than 2 repetitions" : `${(s.max / s.min).toFixed(2)} (p99 ${p99s.map((v) => fmtMs(v)).join(", ")} ms)`,
    });
  }
  for (const [v5, base] of [
    ["p2p-qos1-64B-v5", "p2p-qos1-64B"],
    ["p2p-qos1-64B-v5-alias", "p2p-qos1-64B"],
  ] as const) {
    for (const target of ["wasm", "mosquitto"] as const) {
      const r = crossScenarioRatio(records, target, v5, base, throughput);
      const c = crossScenarioRatio(records, target, v5, base, cpuPerMsg);
      checks.push({ goal: `${target} MQTT 5 / 3.1.1 throughput (${v5} / ${base})`, status: "n/a", measured: r ? `${fmtRatio(r)}${c ? `; CPU per message ${fmtRatio(c)}` : ""}` : "not measured in this run" });
    }
  }
  for (const scenario of ["chain0-qos0-64B", "p2p-qos0-64B", "p2p-qos1-64B"]) {
    const r = pairedRatio(records, scenario, "wasm", "wasm-no-v5", throughput);
    const c = pairedRatio(records, scenario, "wasm", "wasm-no-v5", cpuPerMsg);
    checks.push({
      goal: `what the MQTT 5 layer costs 3.1.1 traffic (${scenario}, wasm / wasm-no-v5)`,
      status: "n/a",
      measured: r ? `throughput ${fmtRatio(r)}${c ? `; CPU per message ${fmtRatio(c)}` : ""}` : "not measured in this run",
    });
  }
  return checks;
}

/** Per run of the fixed-rate scenarios: the tail and what stalled the broker's and the generator's loops in that window. */
export function tailTable(records: RunRecord[], scenarios: { id: string; rate: number | null }[]): string | null {
  const fixed = new Set(scenarios.filter((s) => s.rate !== null).map((s) => s.id));
  const rows = records
    .filter((r) => fixed.has(r.scenario))
    .sort((a, b) => (a.scenario === b.scenario ? (a.target === b.target ? a.rep - b.rep : a.target.localeCompare(b.target)) : a.scenario.localeCompare(b.scenario)));
  if (!rows.length) return null;
  const ms = (v: number | undefined) => (v === undefined ? "-" : fmtMs(v));
  const header = ["scenario", "target", "rep", "p50", "p99", "p99.9", "max", "broker loop p99/max", "GCs (scav./full)", "GC max", "gen loop p99/max", "gen GCs (scav./full)", "gen GC max"];
  // the GC entries a window saw: scavenges, full collections, and the rest (incremental-marking steps, weak callbacks)
  const gcs = (t: TailFigures) => `${t.gcCount} (${t.scavenges}/${t.fullGcs ?? "?"})`;
  const body = rows.map((r) => {
    const b = r.brokerTail;
    const g = r.load.genTail;
    return [
      r.scenario,
      r.target,
      String(r.rep),
      fmtMs(r.load.p50Ms),
      fmtMs(r.load.p99Ms),
      fmtMs(r.load.p999Ms),
      fmtMs(r.load.maxMs),
      b ? `${ms(b.loopP99Ms)} / ${ms(b.loopMaxMs)}` : "-",
      b ? gcs(b) : "-",
      b ? ms(b.gcMaxMs) : "-",
      g ? `${ms(g.loopP99Ms)} / ${ms(g.loopMaxMs)}` : "-",
      // a full collection here is a stall of the instrument itself (bench/generator-flags.ts)
      g ? gcs(g) : "-",
      g ? ms(g.gcMaxMs) : "-",
    ];
  });
  // each target's windows pooled (bench/latency-histogram.ts): the row to compare targets by
  const groups = new Map<string, RunRecord[]>();
  for (const r of rows) groups.set(`${r.scenario}\u0000${r.target}`, [...(groups.get(`${r.scenario}\u0000${r.target}`) ?? []), r]);
  for (const runs of groups.values()) {
    const { scenario, target } = runs[0]!;
    if (runs.length < 2 || runs.some((r) => !r.load.latencyHistogram)) continue;
    const at = (p: number) => fmtMs(pooled(records, scenario, target, p));
    body.push([scenario, target, "all", at(0.5), at(0.99), at(0.999), fmtMs(Math.max(...runs.map((r) => r.load.maxMs))), "", "", "", "", "", ""]);
  }
  return [
    "Latency tail, per run (ms; the GC counts are entries: all (scavenges/full collections)): the window's latencies, and over the same window the event-loop delay (monitorEventLoopDelay) and GC pauses of the broker and of the generator; rep \"all\": every window of the target pooled",
    table(header, body, 2),
  ].join("\n");
}
