/**
 * `npm run bench:hooks`: the cost of one plugin hook call in ns per message, for
 * each example plugin built both ways, native twin vs Wasm (fuel metered) vs
 * Wasm without fuel, at 64 B, 1 KB and 16 KB payloads. Each plugin is driven
 * through `PluginChain.run` — the exact call the broker makes per message,
 * including writing the message into the plugin's memory and reading the
 * verdict — with the plugin's bench configuration (bench/plugins.ts).
 *
 * A tinybench sample is a batch of K calls (K sized so a batch takes ~50 µs,
 * far above the timer's resolution); the figure is the median batch time / K,
 * and the median of that over the rounds (variants rotated each round). The fuel
 * column has its own A/B over several processes (bench/hook-fuel-ab.ts).
 * When acl is measured, its C and Rust builds (examples/) are measured next to
 * the AssemblyScript build and the native twin (bench/languages.ts).
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { parseArgs } from "node:util";
import { Bench } from "tinybench";
import { MemoryKvStore, PluginChain } from "../host/index.js";
import { describeMachine, machineInfo } from "./machine.js";
import { DEFAULT_PLUGIN_LIMITS } from "../broker/config.js";
import { BENCH_FUEL, benchSetup, builtPlugins, exampleConfig, nativePath, wasmPath } from "./plugins.js";
import { buildMessage, caller, verdictName, warm } from "./hook-message.js";
import { table } from "./report.js";
import { BUILDS, measureLanguages, type LanguageRow } from "./languages.js";
import { median } from "./stats.js";
import { DISTRIBUTION_HEADER, distributionRows, measureDistribution, timerOverhead, type DistributionRow } from "./hook-distribution.js";
import { openHookBaseline, type BaseChain, type HookBaseline } from "./hooks-baseline.js";
import { BASE_VARIANTS, fmtNs, fuelShare, judge, sizeLabel, VARIANTS, type Case, type CaseResult, type MessageHook, type Variant } from "./hook-goals.js";
import { DEFAULT_FUEL_AB, fmtProcesses, fmtShare, measureFuelAb, QUICK_FUEL_AB } from "./hook-fuel-ab.js";

/** Plugins whose publish hook at the smallest size gets the per-call distribution (--calls). */
const DISTRIBUTION_PLUGINS = ["acl", "filter", "router"];

/** The variants this run measures (VARIANTS, plus BASE_VARIANTS with --baseline). */
let active: readonly Variant[] = VARIANTS;
/** Hooks whose input includes the payload are measured at every size; the others once. */
const PAYLOAD_HOOKS: readonly MessageHook[] = ["publish", "deliver", "persist"];
const MESSAGE_HOOKS: readonly MessageHook[] = ["connect", "subscribe", "publish", "deliver", "persist"];

const USAGE = `usage: npm run bench:hooks -- [options]
  --quick               1 round of 60 ms per measurement
  --plugins a,b,...     plugins to measure (default: every plugin built as .wasm and native)
  --sizes 64,1024,...   payload sizes in bytes (default 64,1024,16384)
  --rounds N            repeat every measurement N times, variants rotated (default 7)
  --time MS             time per measurement and round (default 100)
  --iterations N        minimum batches per measurement (default 64)
  --fuel-processes N    the fuel column's A/B (bench/README.md, "Method (per hook)"): child
                        processes, each a fresh code layout (default ${DEFAULT_FUEL_AB.processes}, quick ${QUICK_FUEL_AB.processes})
  --fuel-instances N    metered and unmetered copies per build and process (default ${DEFAULT_FUEL_AB.instances}, quick ${QUICK_FUEL_AB.instances})
  --fuel-rounds N       rounds per process, one window per copy, interleaved and rotated,
                        paired per round (default ${DEFAULT_FUEL_AB.rounds}, quick ${QUICK_FUEL_AB.rounds})
  --fuel-window MS      length of one window (default ${DEFAULT_FUEL_AB.windowMs})
  --calls N             per-call distribution (p50/p99/p99.9/max) of acl, filter and router
                        publish at the smallest size: N timed calls per variant
                        (default 1000000, quick 20000; 0 = skip)
  --baseline DIR        also measure DIR's build (a built older checkout: its host and .wasm),
                        metered and unmetered, in the same rounds: fuel before/after in one run
  --out FILE            write the results as JSON`;


/** Traps seen while measuring: a trapping plugin is measuring its failure policy, not its work. */
const traps: string[] = [];

async function loadChain(plugin: string, variant: Variant, config: Record<string, unknown>): Promise<PluginChain> {
  const spec =
    variant === "native" ? { name: plugin, native: nativePath(plugin), config } : { name: plugin, wasm: wasmPath(plugin), config, limits: { fuel: BENCH_FUEL } };
  const chain = await PluginChain.load([spec], { kv: new MemoryKvStore(), publish: () => {}, meterFuel: variant !== "wasm-nofuel" });
  chain.on("trap", (name, hook, kind, error) => {
    if (traps.length < 20) traps.push(`${name} (${variant}) trapped in ${hook}: ${kind}: ${error instanceof Error ? error.message : String(error)}`);
  });
  return chain;
}

/** Calls per batch so that one batch takes about 50 µs. */
function batchSize(call: () => number): number {
  for (let i = 0; i < 20; i++) call();
  const t0 = performance.now();
  let n = 0;
  while (performance.now() - t0 < 2 && n < 10_000) {
    call();
    n++;
  }
  const perCallMs = (performance.now() - t0) / n;
  return Math.max(1, Math.min(2000, Math.round(0.05 / perCallMs)));
}

interface Measured {
  ns: CaseResult["ns"];
  wasmOverNative: number;
}

async function measure(calls: Partial<Record<Variant, () => number>>, batch: number, opts: { time: number; iterations: number; rounds: number; warmMs: number }): Promise<Measured> {
  const perRound = Object.fromEntries(active.map((v) => [v, [] as number[]])) as Record<Variant, number[]>;
  for (let round = 0; round < opts.rounds; round++) {
    const bench = new Bench({ time: opts.time, iterations: opts.iterations, warmupTime: Math.max(1, opts.time / 5), warmupIterations: Math.min(16, opts.iterations), throws: true });
    for (let i = 0; i < active.length; i++) {
      const variant = active[(i + round) % active.length]!;
      const call = calls[variant]!;
      bench.add(variant, () => {
        for (let k = 0; k < batch; k++) call();
      });
    }
    await bench.run();
    for (const task of bench.tasks) {
      const r = task.result;
      if (r.state !== "completed") throw new Error(`measurement ${task.name} did not complete (${r.state})`);
      perRound[task.name as Variant].push((r.latency.p50 * 1e6) / batch);
    }
  }
  return {
    ns: Object.fromEntries(active.map((v) => [v, median(perRound[v])])) as CaseResult["ns"],
    wasmOverNative: median(perRound.wasm.map((w, i) => w / perRound.native[i]!)),
  };
}


async function main(): Promise<number> {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: {
      quick: { type: "boolean" },
      plugins: { type: "string" },
      sizes: { type: "string" },
      rounds: { type: "string" },
      time: { type: "string" },
      iterations: { type: "string" },
      "fuel-processes": { type: "string" },
      "fuel-instances": { type: "string" },
      "fuel-rounds": { type: "string" },
      "fuel-window": { type: "string" },
      calls: { type: "string" },
      out: { type: "string" },
      baseline: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const intOpt = (name: string, v: string | undefined, fallback: number) => {
    if (v === undefined) return fallback;
    const n = Number(v);
    if (!Number.isInteger(n) || n <= 0) throw new Error(`--${name} must be a positive integer, got "${v}"`);
    return n;
  };
  const quick = values.quick ?? false;
  const opts = {
    // Many short rounds rather than a few long ones: on a shared machine a burst
    // of someone else's load then spoils one round of seven, not one of three.
    rounds: intOpt("rounds", values.rounds, quick ? 1 : 7),
    time: intOpt("time", values.time, quick ? 60 : 100),
    iterations: intOpt("iterations", values.iterations, quick ? 16 : 64),
    warmMs: 0,
  };
  const abDefaults = quick ? QUICK_FUEL_AB : DEFAULT_FUEL_AB;
  const fuelAb = {
    processes: intOpt("fuel-processes", values["fuel-processes"], abDefaults.processes),
    instances: intOpt("fuel-instances", values["fuel-instances"], abDefaults.instances),
    rounds: intOpt("fuel-rounds", values["fuel-rounds"], abDefaults.rounds),
    windowMs: values["fuel-window"] === undefined ? abDefaults.windowMs : Number(values["fuel-window"]),
  };
  if (!(fuelAb.windowMs > 0 && fuelAb.windowMs <= 1000)) throw new Error(`--fuel-window must be a number of ms in (0, 1000], got "${values["fuel-window"]}"`);
  const distCalls = values.calls === "0" ? 0 : intOpt("calls", values.calls, quick ? 20_000 : 1_000_000);
  const distribution: DistributionRow[] = [];
  // Warm each variant for up to 50 ms before its first round (less when --time asks for less).
  opts.warmMs = Math.min(50, opts.time);
  const sizes = values.sizes ? values.sizes.split(",").map((s) => intOpt("sizes", s.trim(), 0)) : [64, 1024, 16 * 1024];
  const built = builtPlugins();
  const plugins = values.plugins ? values.plugins.split(",").map((p) => p.trim()) : built;
  for (const p of plugins) if (!built.includes(p)) throw new Error(`plugin "${p}" is not built as both dist/plugins/${p}.wasm and dist/plugins-as/${p}/native.js (run npm run build)`);
  if (plugins.length === 0) throw new Error("no plugin is built (run npm run build)");

  let baseline: HookBaseline | null = null;
  if (values.baseline !== undefined) {
    baseline = await openHookBaseline(values.baseline);
    active = [...VARIANTS, ...BASE_VARIANTS];
  }
  const machine = machineInfo();
  process.stderr.write(`wasmq hook bench: ${plugins.join(", ")} · ${describeMachine(machine)}\n`);
  if (baseline) process.stderr.write(`baseline (wasm-base, wasm-base-nofuel): ${baseline.describe}\n`);
  const results: CaseResult[] = [];
  let distributionOut: unknown = null;
  const configs: Record<string, string> = {};
  const skipped: { plugin: string; reason: string }[] = [];
  const unloadable: string[] = [];
  for (const plugin of plugins) {
    const setup = benchSetup(plugin);
    const config = setup?.config ?? exampleConfig(plugin);
    configs[plugin] = setup ? "bench config (bench/plugins.ts)" : "config.example.json";
    const chains = {} as Record<(typeof VARIANTS)[number], PluginChain>;
    const baseChains: Partial<Record<Variant, BaseChain>> = {};
    try {
      for (const v of VARIANTS) chains[v] = await loadChain(plugin, v, config);
      if (baseline) {
        for (const v of BASE_VARIANTS) {
          const chain = await baseline.load(plugin, config, BENCH_FUEL, v === "wasm-base");
          if (!chain) throw new Error(`the baseline has no build of ${plugin} (dist/plugins/${plugin}.wasm)`);
          chain.on("trap", (name, hook, kind, error) => {
            if (traps.length < 20) traps.push(`${name} (${v}) trapped in ${hook}: ${kind}: ${error instanceof Error ? error.message : String(error)}`);
          });
          baseChains[v] = chain;
        }
      }
    } catch (err) {
      for (const c of [...Object.values(chains), ...Object.values(baseChains)]) c.close();
      const reason = `cannot load with ${configs[plugin]}: ${err instanceof Error ? err.message : String(err)}`;
      skipped.push({ plugin, reason });
      unloadable.push(plugin);
      process.stderr.write(`${plugin}: ${reason}\n`);
      continue;
    }
    try {
      const hooks = MESSAGE_HOOKS.filter((h) => chains.native.has(h));
      // A hook the plugin declared idle for its bench config is never called by the broker (host/ABI.md §3.2): nothing to measure.
      const idle = MESSAGE_HOOKS.filter((h) => chains.native.slots.some((s) => s.idleHooks.has(h)));
      if (idle.length) process.stderr.write(`${plugin}: ${idle.join(", ")} idle for this config (declareIdle), not called, not measured\n`);
      if (hooks.length === 0) {
        skipped.push({ plugin, reason: "no per-message hooks (tick only)" });
        process.stderr.write(`${plugin}: no per-message hooks (tick only), skipped\n`);
      }
      for (const hook of hooks) {
        for (const size of PAYLOAD_HOOKS.includes(hook) ? sizes : [null]) {
          const template = buildMessage(hook, size);
          const calls = {} as Record<Variant, () => number>;
          const verdict = {} as Record<Variant, string>;
          for (const v of active) {
            calls[v] = caller(v in chains ? chains[v as (typeof VARIANTS)[number]] : baseChains[v]!, hook, template);
            verdict[v] = verdictName(calls[v]());
          }
          const fuelUsed = chains.wasm.slots[0]!.stats.fuelUsedLast;
          const baseFuelUsed = baseChains["wasm-base"]?.slots[0]!.stats.fuelUsedLast;
          for (const v of active) warm(calls[v], opts.warmMs);
          const batch = batchSize(calls.wasm);
          const { ns, wasmOverNative } = await measure(calls, batch, opts);
          // The fuel column: its own A/B of short paired windows over fresh code layouts (hook-fuel-ab.ts).
          const ab = await measureFuelAb({ plugin, hook, size, config, baseline: values.baseline ?? null }, fuelAb);
          const fuel = ab.current;
          const baseFuel = ab.base ?? undefined;
          for (const t of ab.traps) if (traps.length < 20) traps.push(`${t} (fuel A/B)`);
          results.push({ plugin, hook, size, ns, fuelNs: fuel.ns, fuel, baseFuelNs: baseFuel?.ns, baseFuel, baseFuelUsed, wasmOverNative, verdict, fuelUsed, batch });
          if (distCalls > 0 && hook === "publish" && size === Math.min(...sizes) && DISTRIBUTION_PLUGINS.includes(plugin)) {
            const dists = measureDistribution(Object.fromEntries(VARIANTS.map((v) => [v, calls[v]])), distCalls);
            for (const v of VARIANTS) distribution.push({ plugin, hook, size, variant: v, dist: dists[v]! });
            process.stderr.write(`${plugin} ${hook} ${sizeLabel(size)} per call: ${VARIANTS.map((v) => `${v} p50 ${dists[v]!.p50} ns p99.9 ${dists[v]!.p999} ns`).join(", ")}\n`);
          }
          process.stderr.write(
            `${plugin} ${hook} ${sizeLabel(size)}: native ${fmtNs(ns.native)} ns, wasm ${fmtNs(ns.wasm)} ns, nofuel ${fmtNs(ns["wasm-nofuel"])} ns (${verdict.wasm}); ` +
              `fuel ${fmtShare(fuel)}, per process ${fmtProcesses(fuel)}${baseFuel ? `; base fuel ${fmtShare(baseFuel)}, per process ${fmtProcesses(baseFuel)}` : ""}\n`,
          );
        }
      }
    } finally {
      for (const v of VARIANTS) chains[v].close();
      for (const c of Object.values(baseChains)) c.close();
    }
  }

  // The acl plugin built from four languages on one ABI (C and Rust: examples/).
  let languages: LanguageRow[] = [];
  if (plugins.includes("acl") && !unloadable.includes("acl")) {
    const small = Math.min(...sizes);
    const cases = (["subscribe", "publish", "deliver"] as const).map((hook) => {
      const size = hook === "subscribe" ? null : small;
      return { hook, size, message: buildMessage(hook, size) };
    });
    languages = await measureLanguages(benchSetup("acl")?.config ?? exampleConfig("acl"), cases, opts);
    for (const r of languages) process.stderr.write(`acl ${r.hook} ${sizeLabel(r.size)}: ${BUILDS.map((b) => `${b} ${fmtNs(r.ns[b])} ns`).join(", ")}\n`);
  }

  const lines: string[] = [];
  lines.push(`wasmq hook bench — ${describeMachine(machine)}`);
  lines.push(`ns per call through PluginChain.run (median of ${opts.rounds} round(s) × ${opts.time} ms); wasm/native paired per round, then the median; wasm/native < 1 = Wasm faster`);
  lines.push(
    `fuel ns, fuel % = wasm − wasm-nofuel and (wasm − wasm-nofuel) / wasm, paired per round: ${fuelAb.processes} process(es) × ${fuelAb.rounds} rounds, each round one ${fuelAb.windowMs} ms window of each of ${fuelAb.instances} metered and ${fuelAb.instances} unmetered copies, interleaved and rotated; median (interquartile range of the rounds) [range of the per-process medians]`,
  );
  lines.push(`fuel used = fuel units one call consumed; the default budget per call is ${DEFAULT_PLUGIN_LIMITS.fuel.toLocaleString("en-US")} (the bench runs with ${BENCH_FUEL.toLocaleString("en-US")})`);
  if (baseline) lines.push(`base fuel % = (wasm-base − wasm-base-nofuel) / wasm-base, in the same A/B rounds, for the baseline ${baseline.describe}; base fuel used = what its metering charged for the same call`);
  lines.push(
    "",
    table(
      ["plugin", "hook", "size", "native ns", "wasm ns", "nofuel ns", "wasm/native", "fuel ns", "fuel %", "fuel used", ...(baseline ? ["base fuel %", "base fuel used"] : []), "verdict"],
      results.map((r) => {
        const fuel = r.fuelNs;
        const sameVerdict = active.every((v) => r.verdict[v] === r.verdict.wasm);
        const base =
          baseline && r.baseFuel
            ? [`${fmtShare(r.baseFuel)} [${fmtProcesses(r.baseFuel)}]`, (r.baseFuelUsed ?? 0).toLocaleString("en-US")]
            : [];
        return [
          r.plugin,
          r.hook,
          sizeLabel(r.size),
          fmtNs(r.ns.native),
          fmtNs(r.ns.wasm),
          fmtNs(r.ns["wasm-nofuel"]),
          r.wasmOverNative.toFixed(2),
          fuel.toFixed(0),
          r.fuel ? `${fmtShare(r.fuel)} [${fmtProcesses(r.fuel)}]` : `${(fuelShare(r) * 100).toFixed(1)}%`,
          `${r.fuelUsed.toLocaleString("en-US")}${r.fuelUsed > DEFAULT_PLUGIN_LIMITS.fuel ? " > default!" : ""}`,
          ...base,
          sameVerdict ? r.verdict.wasm! : `DIFFERS: ${active.map((v) => `${v} ${r.verdict[v]}`).join(", ")}`,
        ];
      }),
      3,
    ),
  );
  if (languages.length) {
    lines.push(
      "",
      "acl in four languages on the same ABI (ns per call; Wasm builds fuel-metered; ratio = build / AssemblyScript):",
      table(
        ["hook", "size", ...BUILDS.map((b) => `${b} ns`), "c/as", "rust/as", "verdict"],
        languages.map((r) => {
          const same = BUILDS.every((b) => r.verdict[b] === r.verdict.native);
          return [
            r.hook,
            sizeLabel(r.size),
            ...BUILDS.map((b) => fmtNs(r.ns[b])),
            (r.ns.c / r.ns.assemblyscript).toFixed(2),
            (r.ns.rust / r.ns.assemblyscript).toFixed(2),
            same ? r.verdict.native : `DIFFERS: ${BUILDS.map((b) => `${b} ${r.verdict[b]}`).join(", ")}`,
          ];
        }),
        2,
      ),
    );
  }
  if (distribution.length) {
    const timer = timerOverhead(distCalls);
    lines.push(
      "",
      `One call at a time (${distCalls.toLocaleString("en-US")} timed calls per variant, variants interleaved in slices; performance.now() around each call; the timer row is the same loop around an empty function, included in every figure):`,
      table(DISTRIBUTION_HEADER, distributionRows(distribution, timer, sizeLabel), 4),
    );
    distributionOut = { calls: distCalls, timer, rows: distribution };
  }
  const checks = judge(results, sizes);
  const overBudget = results.filter((r) => r.fuelUsed > DEFAULT_PLUGIN_LIMITS.fuel);
  if (overBudget.length) {
    checks.push({
      goal: `every measured call fits the default fuel budget (${DEFAULT_PLUGIN_LIMITS.fuel.toLocaleString("en-US")})`,
      status: "MISS",
      measured: `${overBudget.map((r) => `${r.plugin} ${r.hook} ${sizeLabel(r.size)} uses ${r.fuelUsed.toLocaleString("en-US")}`).join(", ")}: with default limits these messages exhaust the budget and get the plugin's failure policy`,
    });
  }
  for (const sk of skipped) lines.push(`${sk.plugin}: not measured, ${sk.reason}`);
  lines.push("", "Targets (issue #6; reported, never asserted):", ...checks.map((c) => `${c.status.padEnd(4)}  ${c.goal}: ${c.measured}`));
  console.log(lines.join("\n"));
  if (values.out) {
    mkdirSync(dirname(values.out), { recursive: true });
    writeFileSync(values.out, `${JSON.stringify({ machine, settings: { ...opts, fuelAb, sizes, baseline: baseline?.describe ?? null }, configs, results, distribution: distributionOut, skipped, targets: checks }, null, 2)}\n`);
    process.stderr.write(`results written to ${values.out}\n`);
  }
  const differing = results.filter((r) => active.some((v) => r.verdict[v] !== r.verdict.wasm));
  if (traps.length) console.log(`\nPLUGIN TRAPS while measuring (those figures measure the failure path):\n${traps.join("\n")}`);
  if (differing.length) console.log(`\nVERDICTS DIFFER between native and Wasm for: ${differing.map((r) => `${r.plugin} ${r.hook} ${sizeLabel(r.size)}`).join(", ")}`);
  if (unloadable.length) console.log(`\nNOT MEASURED, the plugin refused its bench config: ${unloadable.join(", ")} (update bench/plugins.ts)`);
  const languagesDiffer = languages.filter((r) => BUILDS.some((b) => r.verdict[b] !== r.verdict.native));
  if (languagesDiffer.length) console.log(`\nVERDICTS DIFFER between the acl builds for: ${languagesDiffer.map((r) => r.hook).join(", ")}`);
  return differing.length || traps.length || unloadable.length || languagesDiffer.length ? 1 : 0;
}


main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err instanceof Error ? err.message : String(err));
    process.exit(1);
  },
);
