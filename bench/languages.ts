/**
 * The acl plugin in four builds on the same ABI — the native TypeScript twin,
 * AssemblyScript, C (examples/c-plugin) and Rust (examples/rust-plugin) — each
 * driven through `PluginChain.run` exactly like the main hook bench, the Wasm
 * builds fuel-metered. Part of `npm run bench:hooks` (compiles the C and Rust
 * builds first when needed, see examples/build.ts).
 */
import { Bench } from "tinybench";
import { buildC, buildRust } from "../examples/build.js";
import { MemoryKvStore, PluginChain, Verdict, type HookMessage, type HookName } from "../host/index.js";
import { BENCH_FUEL, nativePath, wasmPath } from "./plugins.js";
import { median } from "./stats.js";

export const BUILDS = ["native", "assemblyscript", "c", "rust"] as const;
export type Build = (typeof BUILDS)[number];
type MessageHook = Exclude<HookName, "tick">;

export interface LanguageRow {
  hook: MessageHook;
  size: number | null;
  /** Median ns per call over the rounds. */
  ns: Record<Build, number>;
  verdict: Record<Build, string>;
}

async function load(build: Build, config: Record<string, unknown>, paths: { c: string; rust: string }): Promise<PluginChain> {
  const limits = { fuel: BENCH_FUEL };
  const spec =
    build === "native"
      ? { name: "acl", native: nativePath("acl"), config }
      : { name: "acl", wasm: build === "assemblyscript" ? wasmPath("acl") : paths[build], config, limits };
  return PluginChain.load([spec], { kv: new MemoryKvStore(), publish: () => {} });
}

export async function measureLanguages(
  config: Record<string, unknown>,
  cases: { hook: MessageHook; size: number | null; message: HookMessage }[],
  opts: { rounds: number; time: number; iterations: number },
): Promise<LanguageRow[]> {
  const paths = { c: buildC(), rust: buildRust() };
  const chains = {} as Record<Build, PluginChain>;
  for (const b of BUILDS) chains[b] = await load(b, config, paths);
  try {
    const rows: LanguageRow[] = [];
    for (const { hook, size, message } of cases) {
      const calls = {} as Record<Build, () => number>;
      const verdict = {} as Record<Build, string>;
      for (const b of BUILDS) {
        const msg = { ...message };
        calls[b] = () => {
          msg.topic = message.topic;
          msg.payload = message.payload;
          return chains[b].run(hook, msg).verdict;
        };
        const v = calls[b]();
        verdict[b] = v === Verdict.Continue ? "continue" : v === Verdict.Drop ? "drop" : "deny";
        for (let i = 0; i < 2000; i++) calls[b](); // let V8 tier the Wasm up before measuring
      }
      const batch = 200;
      const perRound = Object.fromEntries(BUILDS.map((b) => [b, [] as number[]])) as Record<Build, number[]>;
      for (let round = 0; round < opts.rounds; round++) {
        const bench = new Bench({ time: opts.time, iterations: opts.iterations, warmupTime: Math.max(1, opts.time / 5), throws: true });
        for (let i = 0; i < BUILDS.length; i++) {
          const b = BUILDS[(i + round) % BUILDS.length]!;
          bench.add(b, () => {
            for (let k = 0; k < batch; k++) calls[b]();
          });
        }
        await bench.run();
        for (const task of bench.tasks) {
          const r = task.result;
          if (r.state !== "completed") throw new Error(`measurement acl ${task.name} did not complete (${r.state})`);
          perRound[task.name as Build].push((r.latency.p50 * 1e6) / batch);
        }
      }
      rows.push({ hook, size, ns: Object.fromEntries(BUILDS.map((b) => [b, median(perRound[b])])) as Record<Build, number>, verdict });
    }
    return rows;
  } finally {
    for (const b of BUILDS) chains[b].close();
  }
}
