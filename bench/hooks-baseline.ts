/**
 * `npm run bench:hooks -- --baseline DIR`: an older build's host and plugin builds
 * measured in the same process and the same rounds as the current ones, so a change to
 * the Wasm host (fuel metering above all) shows as a before/after ratio under the same
 * load (issue #17's rule). DIR is a built checkout (`git worktree add /tmp/base <sha>
 * && cd /tmp/base && npm ci`), as for `npm run bench -- --baseline DIR` (baseline.ts).
 *
 * Two extra variants per case: `wasm-base` (DIR's host, fuel metered, DIR's .wasm) and
 * `wasm-base-nofuel` (the same unmetered), so the baseline's own fuel share is
 * (wasm-base − wasm-base-nofuel) / wasm-base, next to the current one. DIR's host is
 * loaded with a dynamic import of DIR/dist/host/index.js; it is driven through the
 * `PluginChain.load(specs, opts)` / `chain.run(hook, message)` calls every build since
 * 3dcc86e has, with this checkout's bench configs and messages (fields an older host
 * does not know are ignored by it).
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { openBaseline } from "./baseline.js";

/** The part of an older host's PluginChain the bench uses. */
export interface BaseChain {
  run(hook: string, message: object): { verdict: number };
  close(): void;
  on(event: "trap", listener: (name: string, hook: string, kind: string, error: unknown) => void): unknown;
  readonly slots: readonly { stats: { fuelUsedLast: number } }[];
}

interface BaseHost {
  PluginChain: { load(specs: object[], opts: object): Promise<BaseChain> };
  MemoryKvStore: new () => object;
}

export interface HookBaseline {
  /** For the report: commit and subject (or the directory). */
  describe: string;
  /** The baseline's build of `plugin`, or null when it has none. */
  wasmPath(plugin: string): string | null;
  /** Loads `plugin` from the baseline's build (or from `wasm`, a copy of it), metered or not; null when the baseline has no such plugin. */
  load(plugin: string, config: Record<string, unknown>, fuel: number, meterFuel: boolean, wasm?: string): Promise<BaseChain | null>;
}

/** Opens DIR's build; throws a message naming what is missing. */
export async function openHookBaseline(dirArg: string): Promise<HookBaseline> {
  const base = openBaseline(dirArg);
  const hostIndex = join(base.dir, "dist", "host", "index.js");
  if (!existsSync(hostIndex)) throw new Error(`--baseline ${dirArg}: ${hostIndex} not found; build that checkout first (cd ${base.dir} && npm ci)`);
  const host = (await import(pathToFileURL(hostIndex).href)) as BaseHost;
  const wasmPath = (plugin: string) => {
    const wasm = join(base.dir, "dist", "plugins", `${plugin}.wasm`);
    return existsSync(wasm) ? wasm : null;
  };
  return {
    describe: base.describe,
    wasmPath,
    async load(plugin, config, fuel, meterFuel, wasm = wasmPath(plugin) ?? undefined) {
      if (!wasm) return null;
      return host.PluginChain.load([{ name: plugin, wasm, config, limits: { fuel } }], { kv: new host.MemoryKvStore(), publish: () => {}, meterFuel });
    },
  };
}
