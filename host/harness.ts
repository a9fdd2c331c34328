/**
 * Run a plugin (Wasm or native) against a list of messages without a broker and
 * report each verdict: what plugin authors use in their tests and from the
 * command line (`npm run harness`), and what the differential tests use to
 * compare a plugin with its native twin. The message format and the result
 * shape are in harness-core.ts, shared with the dashboard's playground.
 */
import { PluginChain } from "./chain.js";
import { runStep, newCollector, harnessLogLine, type HarnessMessage, type HarnessResult } from "./harness-core.js";
import { MemoryKvStore, type KvStore } from "./kv.js";
import type { PluginSpec } from "./plugin-slot.js";

export { parseMessages, showBytes, type HarnessMessage, type HarnessResult } from "./harness-core.js";

export interface Harness {
  run(message: HarnessMessage, index?: number): HarnessResult;
  /** Fuel the plugin's last call used (-1 for native plugins, unmetered runs, or a call that trapped). */
  lastFuelUsed(): number;
  close(): void;
}

/** Load one plugin for repeated runs; its state (and its key-value store) persists across them. */
export interface HarnessOptions {
  kv?: KvStore;
  meterFuel?: boolean;
  /** What random_bytes / crypto.randomBytes return (e.g. seeded, to compare a plugin with its twin); default the CSPRNG. */
  random?: (n: number) => Uint8Array;
}

export async function createHarness(spec: PluginSpec, opts: HarnessOptions = {}): Promise<Harness> {
  const collector = newCollector();
  const chain = await PluginChain.load([spec], {
    clock: () => collector.pinnedNow ?? Date.now(),
    kv: opts.kv ?? new MemoryKvStore(),
    publish: (m) => collector.published.push(m),
    meterFuel: opts.meterFuel ?? true,
    ...(opts.random ? { random: opts.random } : {}),
  });
  chain.on("log", (_plugin, level, message) => collector.logs.push(harnessLogLine(level, message)));
  chain.on("trap", (_plugin, _hook, kind) => {
    collector.trap = kind;
  });
  return {
    run: (message, index = 0) => runStep({ run: (h, m) => chain.run(h, m), tick: (n) => chain.tick(n), authenticate: (m) => chain.authenticator(m.topic)?.runAuth(m) ?? null }, collector, message, index),
    lastFuelUsed: () => chain.slots[0]!.stats.fuelUsedLast,
    close() {
      chain.close();
    },
  };
}

/** Run a plugin over a list of messages in order and return every verdict. */
export async function runPlugin(spec: PluginSpec, messages: HarnessMessage[], opts: HarnessOptions = {}): Promise<HarnessResult[]> {
  const harness = await createHarness(spec, opts);
  try {
    return messages.map((m, i) => harness.run(m, i));
  } finally {
    harness.close();
  }
}
