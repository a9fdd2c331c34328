/**
 * One process of the fuel A/B (hook-fuel-ab.ts): loads `instances` metered and
 * `instances` unmetered copies of one plugin (and the baseline's, with a baseline),
 * each from bytes of its own so that V8 compiles and places each apart
 * (layout-copies.ts), warms them, runs the rounds and prints the rounds as JSON.
 * Usage (bench/hook-fuel-ab.ts spawns it): node dist/bench/hook-fuel-child.js JOB_JSON
 */
import { MemoryKvStore, PluginChain } from "../host/index.js";
import { measureFuelAbRounds, type FuelAbChildResult, type FuelAbGroup, type FuelAbJob } from "./hook-fuel-ab.js";
import type { MessageHook } from "./hook-goals.js";
import { buildMessage, caller, warm, type RunChain } from "./hook-message.js";
import { openHookBaseline } from "./hooks-baseline.js";
import { LayoutCopies } from "./layout-copies.js";
import { BENCH_FUEL, wasmPath } from "./plugins.js";

const job = JSON.parse(process.argv[2] ?? "null") as FuelAbJob | null;
if (!job) {
  console.error("usage: node dist/bench/hook-fuel-child.js JOB_JSON (spawned by bench:hooks)");
  process.exit(2);
}
const hook = job.hook as MessageHook;
const template = buildMessage(hook, job.size);
const chains: { close(): void }[] = [];
const trapped: string[] = [];
const copies = new LayoutCopies();

function watch(chain: RunChain & { close(): void; on(event: "trap", listener: (name: string, hook: string, kind: string, error: unknown) => void): unknown }, what: string): () => number {
  chains.push(chain);
  chain.on("trap", (_name, h, kind, error) => trapped.push(`${what} trapped in ${h}: ${kind}: ${error instanceof Error ? error.message : String(error)}`));
  return caller(chain, hook, template);
}

/**
 * `instances` metered and as many unmetered copies, each loaded from its own bytes
 * (`wasm`: null when the build has no such plugin). Which side loads first alternates
 * from pair to pair and, through `job.flip`, from process to process, so neither side
 * is always the earlier compilation (worth about a point: bench/README.md, "Fuel,
 * part 7").
 */
async function group(
  wasm: string | null,
  load: (meterFuel: boolean, copy: string) => Promise<(RunChain & { close(): void; on: PluginChain["on"] }) | null>,
  what: string,
): Promise<FuelAbGroup> {
  if (!wasm) throw new Error(`${what} has no build of ${job!.plugin}`);
  const g: FuelAbGroup = { metered: [], unmetered: [] };
  for (let i = 0; i < job!.instances; i++) {
    for (const meterFuel of (i % 2 === 0) !== job!.flip ? [true, false] : [false, true]) {
      const copy = copies.copy(wasm);
      const chain = await load(meterFuel, copy);
      copies.release(copy);
      if (!chain) throw new Error(`${what} has no build of ${job!.plugin}`);
      (meterFuel ? g.metered : g.unmetered).push(watch(chain, `${job!.plugin} (${what}${meterFuel ? "" : ", unmetered"})`));
    }
  }
  return g;
}

try {
  const groups = [
    await group(
      wasmPath(job.plugin),
      (meterFuel, wasm) =>
        PluginChain.load([{ name: job.plugin, wasm, config: job.config, limits: { fuel: BENCH_FUEL } }], {
          kv: new MemoryKvStore(),
          publish: () => {},
          meterFuel,
        }),
      "current build",
    ),
  ];
  const layouts = [copies.made];
  if (job.baseline) {
    const baseline = await openHookBaseline(job.baseline);
    groups.push(await group(baseline.wasmPath(job.plugin), (meterFuel, wasm) => baseline.load(job.plugin, job.config, BENCH_FUEL, meterFuel, wasm) as never, "baseline"));
    layouts.push(copies.made - layouts[0]!);
  }
  const verdicts = new Set(groups.flatMap((g) => [...g.metered, ...g.unmetered].map((call) => call())));
  if (verdicts.size !== 1) throw new Error(`the copies of ${job.plugin} disagree on the ${hook} verdict: ${[...verdicts].join(", ")}`);
  // V8 runs Wasm with its baseline compiler first and tiers hot functions up in the background.
  for (const g of groups) for (const call of [...g.metered, ...g.unmetered]) warm(call, 50);
  const [current, base] = measureFuelAbRounds(groups, job);
  current!.layouts = layouts[0]!;
  if (base) base.layouts = layouts[1]!;
  const result: FuelAbChildResult = { current: current!, base: base ?? null, traps: trapped.slice(0, 20) };
  process.stdout.write(JSON.stringify(result));
} catch (err) {
  console.error(err instanceof Error ? err.message : String(err));
  process.exitCode = 1;
} finally {
  copies.remove();
  for (const c of chains) c.close();
}
