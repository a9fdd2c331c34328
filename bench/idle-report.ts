/**
 * The idle-connection scenarios' report: per (scenario, target) the memory per
 * connection (RSS delta after GC / connections), the RSS, the connect rate
 * (CONNECT → CONNACK + SUBSCRIBE → SUBACK completed per second) and the
 * broker's CPU per connection, as medians with their range; ratios against
 * bare aedes paired by repetition; and issue #17's targets.
 */
import type { IdleRecord } from "./idle-run.js";
import { fmtNum, table, type RunFailure, type TargetCheck } from "./report.js";
import type { TargetName } from "./scenarios.js";
import { median, spread } from "./stats.js";
import { PREDATES } from "./baseline.js";

export const kbPerConn = (r: IdleRecord) => ((r.after.rssMB - r.before.rssMB) * 1024) / r.conns;
/** The same from each reading's first round (two GCs; bench/settled-memory.ts): the bench's figure before rss5. Records of older runs have none. */
export const kbPerConnTwoGc = (r: IdleRecord) => (r.afterTwoGc && r.beforeTwoGc ? ((r.afterTwoGc.rssMB - r.beforeTwoGc.rssMB) * 1024) / r.conns : NaN);
const heapKbPerConn = (r: IdleRecord) => (r.after.heapUsedMB === null || r.before.heapUsedMB === null ? NaN : ((r.after.heapUsedMB - r.before.heapUsedMB) * 1024) / r.conns);
const externalKbPerConn = (r: IdleRecord) =>
  r.after.externalMB === null || r.before.externalMB === null ? NaN : ((r.after.externalMB - r.before.externalMB) * 1024) / r.conns;
export const connectRate = (r: IdleRecord) => r.conns / (r.connectMs / 1000);
const cpuUsPerConn = (r: IdleRecord) => (r.connectCpuSec * 1e6) / r.conns;

export interface IdleAggregate {
  scenario: string;
  target: TargetName;
  reps: number;
  conns: number | null;
  kbPerConn: number | null;
  kbPerConnRange: [number, number] | null;
  /** KB per connection from the first (two-GC) readings. */
  kbPerConnTwoGc: number | null;
  /** JS heap and off-heap (external) KB per connection (Node targets). */
  heapKbPerConn: number | null;
  externalKbPerConn: number | null;
  rssMB: number | null;
  connectsPerSec: number | null;
  connectsPerSecRange: [number, number] | null;
  connectSec: number | null;
  cpuUsPerConn: number | null;
  dropped: number;
  unexpected: number;
  plugins: string[];
  version: string;
  errors?: string[];
  /** Not run, and why (a baseline older than the scenario). */
  notRun?: string;
}

const num = (v: number) => (Number.isFinite(v) ? v : null);
const range = (vs: number[]): [number, number] | null => {
  if (!vs.length) return null;
  const s = spread(vs);
  return [s.min, s.max];
};

export function aggregateIdle(records: IdleRecord[], failures: RunFailure[]): IdleAggregate[] {
  const keys = new Map<string, { scenario: string; target: TargetName }>();
  for (const r of [...records, ...failures]) keys.set(`${r.scenario}\u0000${r.target}`, { scenario: r.scenario, target: r.target });
  return [...keys.values()].map(({ scenario, target }) => {
    const rs = records.filter((r) => r.scenario === scenario && r.target === target);
    const fs = failures.filter((f) => f.scenario === scenario && f.target === target);
    const pick = (f: (r: IdleRecord) => number) => rs.map(f).filter(Number.isFinite);
    const row: IdleAggregate = {
      scenario,
      target,
      reps: rs.length,
      conns: num(median(rs.map((r) => r.conns))),
      kbPerConn: num(median(pick(kbPerConn))),
      kbPerConnRange: range(pick(kbPerConn)),
      kbPerConnTwoGc: num(median(pick(kbPerConnTwoGc))),
      heapKbPerConn: num(median(pick(heapKbPerConn))),
      externalKbPerConn: num(median(pick(externalKbPerConn))),
      rssMB: num(median(rs.map((r) => r.after.rssMB))),
      connectsPerSec: num(median(pick(connectRate))),
      connectsPerSecRange: range(pick(connectRate)),
      connectSec: num(median(rs.map((r) => r.connectMs / 1000))),
      cpuUsPerConn: num(median(pick(cpuUsPerConn))),
      dropped: rs.reduce((n, r) => n + r.dropped, 0),
      unexpected: rs.reduce((n, r) => n + r.unexpected, 0),
      plugins: rs[0]?.plugins ?? [],
      version: rs[0]?.version ?? "",
    };
    if (fs.length) row.errors = fs.map((f) => `rep ${f.rep}: ${f.error}`);
    return row;
  });
}

/** The row of a base target whose build predates an idle scenario. */
export function predatedIdleRow(scenario: string, target: TargetName): IdleAggregate {
  return {
    scenario, target, reps: 0, conns: null, kbPerConn: null, kbPerConnRange: null, kbPerConnTwoGc: null, heapKbPerConn: null, externalKbPerConn: null, rssMB: null,
    connectsPerSec: null, connectsPerSecRange: null, connectSec: null, cpuUsPerConn: null, dropped: 0, unexpected: 0, plugins: [], version: "", notRun: PREDATES,
  };
}

const fmtRange = (r: [number, number] | null, digits = 0) => (r ? `${fmtNum(r[0], digits)}–${fmtNum(r[1], digits)}` : "");

export function idleTable(rows: IdleAggregate[]): string {
  const header = ["scenario", "target", "conns", "KB/conn", "(min–max)", "2-GC KB", "heap KB", "ext KB", "RSS MB", "conn/s", "(min–max)", "connect s", "µs CPU/conn", "dropped"];
  const body = rows.map((r) =>
    r.kbPerConn === null
      ? [r.scenario, r.target, r.notRun ?? "FAILED", "", "", "", "", "", "", "", "", "", "", ""]
      : [
          r.scenario,
          r.target,
          fmtNum(r.conns),
          fmtNum(r.kbPerConn, 1),
          r.reps > 1 ? fmtRange(r.kbPerConnRange, 1) : "",
          fmtNum(r.kbPerConnTwoGc, 1),
          fmtNum(r.heapKbPerConn, 1),
          fmtNum(r.externalKbPerConn, 1),
          fmtNum(r.rssMB),
          fmtNum(r.connectsPerSec),
          r.reps > 1 ? fmtRange(r.connectsPerSecRange) : "",
          fmtNum(r.connectSec, 2),
          fmtNum(r.cpuUsPerConn),
          String(r.dropped + r.unexpected),
        ],
  );
  return table(header, body);
}

interface PairedIdle {
  median: number;
  min: number;
  max: number;
  pairs: number;
}

function paired(records: IdleRecord[], scenario: string, a: TargetName, b: TargetName, metric: (r: IdleRecord) => number): PairedIdle | null {
  const ratios: number[] = [];
  for (const ra of records.filter((r) => r.scenario === scenario && r.target === a)) {
    const rb = records.find((r) => r.scenario === scenario && r.target === b && r.rep === ra.rep);
    if (rb && metric(rb) > 0 && Number.isFinite(metric(ra))) ratios.push(metric(ra) / metric(rb));
  }
  if (!ratios.length) return null;
  const s = spread(ratios);
  return { median: median(ratios), min: s.min, max: s.max, pairs: ratios.length };
}

const fmtPaired = (p: PairedIdle | null) => (!p ? "-" : p.pairs > 1 ? `${p.median.toFixed(2)}× (${p.min.toFixed(2)}–${p.max.toFixed(2)})` : `${p.median.toFixed(2)}×`);

const IDLE_PAIRS: [TargetName, TargetName][] = [
  ["wasm", "aedes"],
  ["native", "aedes"],
  ["wasm", "native"],
  ["wasm", "mosquitto"],
  // before/after with --baseline (a baseline that knows the idle scenarios)
  ["wasm", "wasm-base"],
  ["native", "native-base"],
];

/** Ratios paired by repetition: memory per connection, connect time (aedes' rate / the target's), CPU per connection. Below 1 = the first target is cheaper. */
export function idleRatioTable(records: IdleRecord[]): string | null {
  const scenarios = [...new Set(records.map((r) => r.scenario))];
  const labels = IDLE_PAIRS.filter(([a, b]) => records.some((r) => r.target === a) && records.some((r) => r.target === b));
  if (!labels.length) return null;
  const header = ["scenario", "ratio", ...labels.map(([a, b]) => `${a}/${b}`)];
  const rows: string[][] = [];
  for (const s of scenarios) {
    rows.push([s, "KB per conn", ...labels.map(([a, b]) => fmtPaired(paired(records, s, a, b, kbPerConn)))]);
    // The bench's reading before rss5 (two GCs, before the old space settled): kept next to the settled one.
    rows.push(["", "KB/conn 2 GCs", ...labels.map(([a, b]) => fmtPaired(paired(records, s, a, b, kbPerConnTwoGc)))]);
    // The live part: V8 keeps pages it committed while clients connected, so RSS deltas swing from run to run.
    rows.push(["", "heap per conn", ...labels.map(([a, b]) => fmtPaired(paired(records, s, a, b, heapKbPerConn)))]);
    rows.push(["", "connect time", ...labels.map(([a, b]) => fmtPaired(paired(records, s, a, b, (r) => 1 / connectRate(r))))]);
    rows.push(["", "CPU per conn", ...labels.map(([a, b]) => fmtPaired(paired(records, s, a, b, cpuUsPerConn)))]);
  }
  return table(header, rows);
}

/** Issue #17: memory per connection and connect time ≤ 1.0× bare aedes. */
export function checkIdleTargets(records: IdleRecord[]): TargetCheck[] {
  const checks: TargetCheck[] = [];
  for (const s of [...new Set(records.map((r) => r.scenario))]) {
    const mem = paired(records, s, "wasm", "aedes", kbPerConn);
    const time = paired(records, s, "wasm", "aedes", (r) => 1 / connectRate(r));
    checks.push({
      goal: `wasm memory per idle connection ≤ 1.0× aedes (${s})`,
      status: mem ? (mem.median <= 1 ? "PASS" : "MISS") : "n/a",
      measured: mem ? fmtPaired(mem) : "not measured in this run",
    });
    checks.push({
      goal: `wasm connect time ≤ 1.0× aedes (${s})`,
      status: time ? (time.median <= 1 ? "PASS" : "MISS") : "n/a",
      measured: time ? fmtPaired(time) : "not measured in this run",
    });
  }
  return checks;
}
