/**
 * `npm run bench`: broker-level throughput and latency of wasmq (native twins,
 * Wasm, Wasm without fuel) against bare aedes and Mosquitto, over loopback,
 * broker and load generator in separate processes. Targets are interleaved
 * within each repetition and every comparison is a ratio paired by repetition.
 * Progress goes to stderr; the report to stdout. See bench/README.md.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { parseArgs } from "node:util";
import { renderChart } from "./chart.js";
import { describeMachine, machineInfo } from "./machine.js";
import { mosquittoInstalled, MOSQUITTO_BIN } from "./mosquitto.js";
import { runOne, TargetPool, windowOf, type RunRecord, type RunSettings } from "./orchestrate.js";
import { chainOfLength, standardChain } from "./plugins.js";
import { aggregateIdle, checkIdleTargets, idleRatioTable, idleTable, predatedIdleRow } from "./idle-report.js";
import { MAX_IDLE_CONNS, runIdle, type IdleRecord } from "./idle-run.js";
import { aggregate, allRatios, checkTargets, fmtMs, fmtNum, ratioTable, resultsTable, targetsText, type RunFailure } from "./report.js";
import { isTarget, SCENARIOS, scenarioById, TARGETS, type Scenario, type TargetName } from "./scenarios.js";
import { hotpathChecks, tailTable } from "./hotpath-report.js";
import { BASE_TARGETS, baselineRuns, baselineScenarioIds, isBaseTarget, openBaseline, PREDATES, type Baseline } from "./baseline.js";
import { BROKER_NODE_FLAGS } from "../broker/runtime-flags.js";

const USAGE = `usage: npm run bench -- [options]
  --quick                 a subset of scenarios, 1 repetition, short windows (under a minute)
  --targets a,b,...       ${TARGETS.join(", ")} (default: all; mosquitto only when installed;
                          wasm-base and native-base only with --baseline;
                          echo, the latency floor, only when named)
  --baseline DIR          also run DIR's build (a built checkout of an older commit) as the
                          targets wasm-base and native-base, interleaved, with ratios
                          wasm/wasm-base and native/native-base (bench/baseline.ts)
  --scenarios a,b,...     scenario ids (default: all, or the quick subset); --list shows them
  --reps N                repetitions, targets interleaved in each (default 3, quick 1)
  --duration SEC          measurement window per run (default 1, quick 0.5)
  --warmup SEC            warm-up before each window (default 0.5, quick 0.4)
  --prime SEC             unmeasured traffic through each Node target's process before its
                          first run (default 1.2; 0 = none)
  --count N               measure exactly N published messages per run instead of a window
  --persistence P         memory (default) or lmdb, for scenarios that do not fix their own
  --conns N               clients per idle-connection scenario (idle19k-*; default 19000, at most ${MAX_IDLE_CONNS})
  --out FILE              write the results as JSON
  --chart FILE.svg        write a chart of throughput and p99 per target
  --list                  list the scenarios and exit`;

interface Options {
  primeSec: number;
  scenarios: Scenario[];
  targets: TargetName[];
  reps: number;
  /** --reps given: scenarios' minReps do not add repetitions. */
  repsExplicit: boolean;
  settings: RunSettings;
  /** Overrides the idle scenarios' client count. */
  conns: number | null;
  out: string | null;
  chart: string | null;
  baseline: Baseline | null;
}

class UsageError extends Error {}

function positive(name: string, v: string | undefined, fallback: number, integer = false): number {
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n))) throw new UsageError(`--${name} must be a positive ${integer ? "integer" : "number"}, got "${v}"`);
  return n;
}

function parseOptions(argv: string[]): Options | null {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: "boolean" },
      targets: { type: "string" },
      scenarios: { type: "string" },
      reps: { type: "string" },
      duration: { type: "string" },
      warmup: { type: "string" },
      count: { type: "string" },
      prime: { type: "string" },
      persistence: { type: "string" },
      conns: { type: "string" },
      out: { type: "string" },
      chart: { type: "string" },
      baseline: { type: "string" },
      list: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
    strict: true,
  });
  if (values.help) {
    console.log(USAGE);
    return null;
  }
  if (values.list) {
    for (const s of SCENARIOS) console.log(`${s.id.padEnd(22)} ${s.quick ? "quick " : "      "}${s.about} [${s.targets.join(", ")}]`);
    return null;
  }
  const quick = values.quick ?? false;
  const scenarios = values.scenarios ? values.scenarios.split(",").map((s) => scenarioById(s.trim())) : SCENARIOS.filter((s) => !quick || s.quick);
  let targets: TargetName[];
  if (values.targets) {
    targets = values.targets.split(",").map((t) => {
      const name = t.trim();
      if (!isTarget(name)) throw new UsageError(`unknown target "${name}"; known: ${TARGETS.join(", ")}`);
      return name;
    });
  } else targets = TARGETS.filter((t) => t !== "echo" && (values.baseline !== undefined || !isBaseTarget(t)));
  const baseline = values.baseline === undefined ? null : openBaseline(values.baseline);
  const base = targets.filter(isBaseTarget);
  if (base.length && !baseline) throw new UsageError(`target ${base.join(", ")} needs --baseline DIR`);
  const persistence = values.persistence ?? "memory";
  if (persistence !== "memory" && persistence !== "lmdb") throw new UsageError(`--persistence must be memory or lmdb, got "${persistence}"`);
  const primeSec = values.prime === undefined ? DEFAULT_PRIME_SEC : Number(values.prime);
  if (!Number.isFinite(primeSec) || primeSec < 0) throw new UsageError(`--prime must be a number of seconds >= 0, got "${values.prime}"`);
  const conns = values.conns === undefined ? null : positive("conns", values.conns, 0, true);
  if (conns !== null && conns > MAX_IDLE_CONNS) throw new UsageError(`--conns must be at most ${MAX_IDLE_CONNS} (20,000 open files per process here, minus the warm-up clients and the process's own files)`);
  return {
    conns,
    primeSec,
    scenarios,
    targets,
    reps: positive("reps", values.reps, quick ? 1 : 3, true),
    repsExplicit: quick || values.reps !== undefined,
    settings: {
      warmupSec: positive("warmup", values.warmup, quick ? 0.4 : 0.5),
      durationSec: positive("duration", values.duration, quick ? 0.5 : 1),
      count: values.count === undefined ? null : positive("count", values.count, 0, true),
      persistence,
      fixedDuration: quick || values.duration !== undefined || values.count !== undefined,
    },
    out: values.out ?? null,
    chart: values.chart ?? null,
    baseline,
  };
}

/** Unmeasured traffic through each Node target's process before the first measured run. */
const DEFAULT_PRIME_SEC = 1.2;

function progress(line: string): void {
  process.stderr.write(`${line}\n`);
}

function fmtDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  return s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s` : `${s}s`;
}

async function main(): Promise<number> {
  let opts: Options | null;
  try {
    opts = parseOptions(process.argv.slice(2));
  } catch (err) {
    console.error(`${(err as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (!opts) return 0;

  const notes: string[] = [];
  let targets = opts.targets;
  if (targets.includes("mosquitto") && !mosquittoInstalled()) {
    targets = targets.filter((t) => t !== "mosquitto");
    notes.push(`mosquitto skipped: not installed at ${MOSQUITTO_BIN} (set MOSQUITTO_BIN to use another path)`);
  }
  const std = standardChain().map((e) => e.name);
  const missing = ["auth", "acl", "filter", "router"].filter((n) => !std.includes(n));
  if (missing.length) notes.push(`standard chain runs without ${missing.join(", ")} (not built or not configurable by the bench): ${std.join(" + ") || "no plugins"}`);
  if (opts.baseline) notes.push(`baseline (wasm-base, native-base): ${opts.baseline.describe}`);
  notes.push(`every Node broker (wasmq's targets and bare aedes alike) runs with ${BROKER_NODE_FLAGS.join(" ")}, the V8 flags wasmq ships (broker/runtime-flags.ts)`);
  for (const s of opts.scenarios) {
    if (s.chain.kind === "length" && s.chain.length > 0) {
      notes.push(`${s.id}: ${chainOfLength(s.chain.length).map((e) => e.name).join(" + ")}`);
    }
  }

  // The plan: each repetition runs every scenario, and within a scenario every
  // target, rotating which target goes first from one repetition to the next.
  // Scenarios that need more repetitions to be stable (minReps) get them unless --reps was given.
  const repsOf = (s: Scenario) => (opts.repsExplicit ? opts.reps : Math.max(opts.reps, s.minReps ?? 0));
  const maxReps = Math.max(...opts.scenarios.map(repsOf));
  for (const s of opts.scenarios) {
    if (repsOf(s) !== opts.reps || windowOf(s, opts.settings) !== opts.settings.durationSec) {
      notes.push(`${s.id}: ${repsOf(s)} repetitions of a ${windowOf(s, opts.settings)} s window (the scenario's minimum for a stable tail)`);
    }
    if (s.protocol === 5 && s.targets.includes("aedes") && targets.includes("aedes")) notes.push(`${s.id}: aedes 1.2 refuses MQTT 5 clients; its row is the same traffic with 3.1.1 clients`);
  }
  const plan: { rep: number; scenario: Scenario; target: TargetName }[] = [];
  // An older build's target.js cannot run scenarios that came after it (the idle ones): said so, not timed out.
  const baseKnows = opts.baseline ? await baselineScenarioIds(opts.baseline) : null;
  const predates: { scenario: string; target: TargetName }[] = [];
  for (let rep = 1; rep <= maxReps; rep++) {
    for (const scenario of opts.scenarios) {
      if (rep > repsOf(scenario)) continue;
      // A base target runs wherever its counterpart does.
      const applies = [...scenario.targets, ...(Object.keys(BASE_TARGETS) as (keyof typeof BASE_TARGETS)[]).filter((b) => scenario.targets.includes(BASE_TARGETS[b]))];
      const ts = applies.filter((t) => {
        if (!targets.includes(t)) return false;
        if (!isBaseTarget(t) || baselineRuns(baseKnows, scenario)) return true;
        if (rep === 1) predates.push({ scenario: scenario.id, target: t });
        return false;
      });
      for (let i = 0; i < ts.length; i++) plan.push({ rep, scenario, target: ts[(i + rep - 1) % ts.length]! });
    }
  }
  for (const p of predates) notes.push(`${p.scenario} ${p.target}: ${PREDATES}`);
  if (plan.length === 0 && predates.length === 0) {
    console.error("nothing to run: no selected target applies to the selected scenarios");
    return 2;
  }

  const machine = machineInfo();
  progress(`wasmq bench: ${plan.length} runs (${opts.scenarios.length} scenarios × ${opts.reps} rep${opts.reps > 1 ? "s" : ""}), ${describeMachine(machine)}`);
  for (const n of notes) progress(`note: ${n}`);

  const records: RunRecord[] = [];
  const failures: RunFailure[] = [];
  const idleRecords: IdleRecord[] = [];
  const idleFailures: RunFailure[] = [];
  const started = Date.now();
  const pool = new TargetPool(opts.baseline);
  const interrupted = () => {
    void pool.close().finally(() => process.exit(130));
  };
  process.once("SIGINT", interrupted);
  await pool.preload([...new Set(plan.map((p) => p.target))]);
  progress(`target processes loaded (${fmtDuration(Date.now() - started)})`);

  // Prime each Node target once, unmeasured: the first broker in a process pays
  // for loading and JIT-compiling aedes, the host and the plugins (about a second
  // of traffic), which a per-run warm-up of half a second would not absorb.
  const primer = scenarioById("p2p-qos0-64B");
  // (Idle-connection runs start a fresh process of their own.)
  for (const target of TARGETS.filter((t) => opts.primeSec > 0 && t !== "mosquitto" && t !== "echo" && plan.some((p) => p.target === t && !p.scenario.conns))) {
    try {
      await runOne(pool, primer, target, 0, { ...opts.settings, warmupSec: opts.primeSec, durationSec: 0.1, count: null });
      progress(`primed ${target} (${fmtDuration(Date.now() - started)})`);
    } catch (err) {
      progress(`priming ${target} failed: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  for (let i = 0; i < plan.length; i++) {
    const { rep, scenario, target } = plan[i]!;
    const prefix = `[${String(i + 1).padStart(String(plan.length).length)}/${plan.length}] rep ${rep} ${scenario.id} ${target}`;
    if (scenario.conns) {
      try {
        const r = await runIdle(pool, scenario, target, rep, opts.settings.persistence, opts.conns ?? scenario.conns);
        idleRecords.push(r);
        progress(
          `${prefix}: ${fmtNum(r.conns)} clients in ${fmtNum(r.connectMs / 1000, 2)} s (${fmtNum(r.conns / (r.connectMs / 1000))}/s), ` +
            `RSS ${fmtNum(r.before.rssMB)} → ${fmtNum(r.after.rssMB)} MB (${fmtNum(((r.after.rssMB - r.before.rssMB) * 1024) / r.conns, 1)} KB/conn)` +
            `${r.dropped || r.unexpected ? `, DROPPED ${r.dropped}, unexpected data ${r.unexpected}` : ""}`,
        );
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        idleFailures.push({ scenario: scenario.id, target, rep, error: message });
        progress(`${prefix}: FAILED: ${message}`);
      }
      continue;
    }
    try {
      const r = await runOne(pool, scenario, target, rep, opts.settings);
      records.push(r);
      const elapsed = Date.now() - started;
      const eta = (elapsed / (i + 1)) * (plan.length - i - 1);
      progress(
        `${prefix}: ${fmtNum(r.load.msgsPerSec)} msg/s, p99 ${fmtMs(r.load.p99Ms)} ms, broker CPU ${fmtNum(r.cpuSec, 2)} s, gen CPU ${Math.round(r.load.genCpuShare * 100)}%` +
          `${r.load.lostQos1 ? `, LOST QoS1 ${r.load.lostQos1}` : ""} (eta ${fmtDuration(eta)})`,
      );
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      failures.push({ scenario: scenario.id, target, rep, error: message });
      progress(`${prefix}: FAILED: ${message}`);
    }
  }

  await pool.close();
  process.off("SIGINT", interrupted);

  const rates = new Map(opts.scenarios.map((s) => [s.id, s.rate]));
  const order = (r: { scenario: string; target: TargetName }) =>
    opts.scenarios.findIndex((s) => s.id === r.scenario) * 10 + TARGETS.indexOf(r.target);
  const rows = aggregate(records, failures, rates).sort((a, b) => order(a) - order(b));
  const ratios = allRatios(records, opts.scenarios.map((s) => s.id));
  const checks = checkTargets(rows, ratios, std);

  const lines: string[] = [];
  lines.push(`wasmq bench — ${describeMachine(machine)}`);
  lines.push(
    `${opts.reps} repetition(s), ${opts.settings.count ? `${opts.settings.count} messages` : `${opts.settings.durationSec} s window`} per run after ${opts.settings.warmupSec} s warm-up; ` +
      `medians, (min–max) over repetitions; persistence ${opts.settings.persistence} unless the scenario says otherwise`,
  );
  for (const n of notes) lines.push(`note: ${n}`);
  if (rows.length) lines.push("", resultsTable(rows));
  const idleRows = [...aggregateIdle(idleRecords, idleFailures), ...predates.map((p) => predatedIdleRow(p.scenario, p.target))].sort((a, b) => order(a) - order(b));
  if (idleRows.length) {
    lines.push("", "Idle connections: KB/conn = (RSS after − RSS before, both settled: rounds of two full GCs until RSS stops falling) / conns; 2-GC KB = the same from each reading's first round (the method before rss5); heap/ext KB = the same for the V8 heap and off-heap memory; conn/s = CONNACK + SUBACK completed per second; µs CPU/conn = broker CPU over the connect phase / conns.");
    lines.push(idleTable(idleRows));
    const idleRatios = idleRatioTable(idleRecords);
    if (idleRatios) lines.push("", "Idle-connection ratios, paired by repetition (median, min–max); below 1 = the first target is cheaper.", idleRatios);
  }
  if (ratios.throughput.length) {
    lines.push("", "Ratios, paired by repetition (median, min–max). Throughput: >1 = first target faster. CPU per msg: <1 = first target cheaper.", ratioTable(ratios.throughput, ratios.cpuPerMsg));
  }
  lines.push("", "Targets (issue #6 and #17; reported, never asserted):", targetsText([...checks, ...checkIdleTargets(idleRecords)]));
  lines.push("  (per-hook targets — wasm vs native per hook, fuel ≤ 10% and ≤ 150 ns — are reported by npm run bench:hooks)");
  const hotpath = hotpathChecks(records).filter((c) => c.status !== "n/a" || !c.measured.startsWith("not measured"));
  if (hotpath.length) lines.push("", "Targets (issue #17: 64 B throughput, latency tail, MQTT 5; reported, never asserted):", targetsText(hotpath));
  const tail = tailTable(records, opts.scenarios);
  if (tail) lines.push("", tail);
  const headroom = headroomNote(rows);
  if (headroom) lines.push("", headroom);
  for (const r of [...rows, ...idleRows].filter((x) => x.errors)) lines.push(`FAILED ${r.scenario} ${r.target}: ${r.errors!.join("; ")}`);
  console.log(lines.join("\n"));

  if (opts.out) {
    mkdirSync(dirname(opts.out), { recursive: true });
    // Per run: the protocol used, the tail and what stalled the loops (bench/hotpath-report.ts)
    const runs = records.map((r) => ({
      scenario: r.scenario,
      target: r.target,
      rep: r.rep,
      protocol: opts.scenarios.find((s) => s.id === r.scenario)?.protocol === 5 && r.target !== "aedes" ? 5 : 4,
      publisherWindow: r.load.publisherWindow ?? null,
      aliasedDeliveries: r.load.aliasedDeliveries ?? 0,
      msgsPerSec: r.load.msgsPerSec,
      p99Ms: r.load.p99Ms,
      p999Ms: r.load.p999Ms,
      maxMs: r.load.maxMs,
      broker: r.brokerTail ?? null,
      generator: r.load.genTail ?? null,
      brokerCpuShare: r.cpuSec / r.load.windowSec,
      generatorCpuShare: r.load.genCpuShare,
      generatorUserShare: r.load.genUserSec === undefined ? null : r.load.genUserSec / r.load.windowSec,
      generatorReadsPerDelivery: r.load.genReads === undefined ? null : r.load.genReads / r.load.deliveries,
    }));
    writeFileSync(opts.out, `${JSON.stringify({ machine, settings: { reps: opts.reps, ...opts.settings }, notes, results: rows, ratios, targets: checks, targets17: hotpath, runs, ...(idleRows.length ? { idle: idleRows } : {}) }, null, 2)}\n`);
    progress(`results written to ${opts.out}`);
  }
  if (opts.chart) {
    mkdirSync(dirname(opts.chart), { recursive: true });
    writeFileSync(opts.chart, renderChart(rows, machine));
    progress(`chart written to ${opts.chart}`);
  }
  progress(`done in ${fmtDuration(Date.now() - started)}`);
  const lost = rows.reduce((n, r) => n + r.lostQos1, 0);
  if (lost > 0) console.log(`\nLOST QoS 1 MESSAGES: ${lost} acknowledged QoS 1 message(s) never reached a subscriber.`);
  const droppedIdle = idleRows.reduce((n, r) => n + r.dropped + r.unexpected, 0);
  if (droppedIdle > 0) console.log(`\nIDLE CLIENTS DISTURBED: ${droppedIdle} idle client(s) were closed or sent data by the broker while held.`);
  return failures.length || idleFailures.length || lost || droppedIdle ? 1 : 0;
}

/**
 * Evidence that the load generator is not the limit: its CPU share, and the
 * fastest target's rate in each scenario compared with wasm's.
 */
function headroomNote(rows: ReturnType<typeof aggregate>): string | null {
  const lines: string[] = [];
  const byScenario = [...new Set(rows.map((r) => r.scenario))];
  for (const s of byScenario) {
    const rs = rows.filter((r) => r.scenario === s && r.msgsPerSec !== null && r.offeredRate === null);
    const wasm = rs.find((r) => r.target === "wasm");
    if (!wasm || rs.length < 2) continue;
    const best = rs.reduce((a, b) => (b.msgsPerSec! > a.msgsPerSec! ? b : a));
    const genMax = Math.max(...rs.map((r) => r.genCpuShare ?? 0));
    lines.push(
      `  ${s}: generator CPU ≤ ${Math.round(genMax * 100)}% of a core; fastest target ${best.target} ${fmtNum(best.msgsPerSec)} msg/s` +
        (best.target !== "wasm" ? ` (${(best.msgsPerSec! / wasm.msgsPerSec!).toFixed(2)}× wasm)` : ""),
    );
  }
  return lines.length ? ["Load generator headroom (a generator near 100% of a core would cap every target alike):", ...lines].join("\n") : null;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err instanceof Error ? (err.stack ?? err.message) : String(err));
    process.exit(1);
  },
);
