/**
 * `npm run bench -- --baseline DIR`: the same bench against an older build of wasmq,
 * in the same run, so every speed claim can show before/after ratios measured side by
 * side under the same load (issue #17's rule).
 *
 * DIR is a built checkout of an older commit (`git worktree add /tmp/base <sha> && cd
 * /tmp/base && npm ci`). Its targets `wasm-base` and `native-base` run DIR's own
 * `dist/bench/target.js` — its broker, its host, its plugin builds — with this
 * checkout's scenarios, plugin configs (bench/plugins.ts) and load generator, so the
 * baseline and the current build are driven identically. They are interleaved with the
 * other targets and paired per repetition in the ratio table (`wasm/wasm-base`).
 *
 * The wire: an older target.js knows only the target names of its time, so a base
 * target is addressed by its counterpart's name (`wasm`, `native`) in `preload` and
 * `start`. The messages are those of protocol.ts as of 3dcc86e (preload → preloaded,
 * start → ready, stats → stats, close → closed, stop); a field added to TargetOptions
 * since is ignored by an older target. A new message type would not be: keep the
 * orchestrator from depending on one when a baseline target is in the run.
 */
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import type { WireTarget } from "./protocol.js";
import type { TargetName } from "./scenarios.js";

/** Base target → the target of the baseline's own target.js it stands for. */
export const BASE_TARGETS = { "wasm-base": "wasm", "native-base": "native" } as const satisfies Partial<Record<TargetName, WireTarget>>;
export type BaseTarget = keyof typeof BASE_TARGETS;

export function isBaseTarget(t: string): t is BaseTarget {
  return Object.hasOwn(BASE_TARGETS, t);
}

/** The name a target process is addressed by over the wire (a base target: its counterpart's). */
export function wireTarget(t: TargetName): WireTarget {
  return isBaseTarget(t) ? BASE_TARGETS[t] : t;
}

export interface Baseline {
  dir: string;
  /** The baseline checkout's target.js. */
  targetScript: string;
  /** For the report: commit and subject, or the directory when it is not a git checkout. */
  describe: string;
}

/** Checks DIR and describes it; throws a message naming what is missing. */
export function openBaseline(dirArg: string): Baseline {
  const dir = resolve(dirArg);
  const targetScript = join(dir, "dist", "bench", "target.js");
  if (!existsSync(dir)) throw new Error(`--baseline ${dirArg}: no such directory`);
  if (!existsSync(targetScript)) {
    throw new Error(`--baseline ${dirArg}: ${targetScript} not found; build that checkout first (cd ${dir} && npm ci)`);
  }
  let describe = dir;
  try {
    const head = execFileSync("git", ["-C", dir, "log", "-1", "--format=%h %s"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
    if (head) describe = `${head} (${dir})`;
  } catch {
    // not a git checkout: the directory names it
  }
  return { dir, targetScript, describe };
}

/**
 * The scenario ids the baseline's own bench knows, or null when it has no
 * readable scenario list (then every scenario is tried). An idle-connection
 * scenario needs the target's "memory" message, which an older target.js
 * never answers: such runs are reported as predating the scenario instead of
 * waiting out a timeout.
 */
export async function baselineScenarioIds(b: Baseline): Promise<Set<string> | null> {
  const file = join(b.dir, "dist", "bench", "scenarios.js");
  if (!existsSync(file)) return null;
  try {
    const mod = (await import(pathToFileURL(file).href)) as { SCENARIOS?: readonly { id: string }[] };
    return Array.isArray(mod.SCENARIOS) ? new Set(mod.SCENARIOS.map((s) => s.id)) : null;
  } catch {
    return null;
  }
}

/** Whether a base target can run scenario `s` (known: the baseline's list names it; non-idle scenarios need nothing new). */
export function baselineRuns(known: Set<string> | null, s: { id: string; conns?: number }): boolean {
  return known === null || !s.conns || known.has(s.id);
}

export const PREDATES = "n/a (baseline predates scenario)";
