// Differential runs for plugins whose behaviour depends on time and on their
// kv state (ratelimit, retention, aggregate): the Wasm build and the native
// twin see the same messages at the same clock readings, restart at the same
// points (a fresh instance over the same store, as after a trap or a reload),
// and must give the same results and leave the same bytes in their stores.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { createHarness, type HarnessMessage, type HarnessResult } from "../host/harness.js";
import { MemoryKvStore, type KvStore } from "../host/kv.js";
import { PluginSlot, type PluginSpec } from "../host/plugin-slot.js";
import { native, ROOT, wasm } from "./helpers.js";
import { prng } from "./prng.js";
import { withoutManifest } from "./differential.js";
export { prng };

function twinSpecs(name: string, config: Record<string, unknown>): [kind: "wasm" | "native", spec: PluginSpec][] {
  return [
    ["wasm", { name, wasm: wasm(name), config }],
    ["native", { name, native: native(name), config }],
  ];
}


export function pick<T>(random: () => number, items: readonly T[]): T {
  return items[Math.floor(random() * items.length)]!;
}

/** One input and the clock reading (ms) `now()` returns while it runs. */
export interface TimedMessage {
  at: number;
  message: HarnessMessage;
}

/** A real in-memory store that also remembers which keys were written, to compare two stores. */
export class ListingKvStore implements KvStore {
  private readonly store = new MemoryKvStore();
  private readonly keys = new Map<string, Set<string>>();

  get(namespace: string, key: Uint8Array): Uint8Array | undefined {
    return this.store.get(namespace, key);
  }
  put(namespace: string, key: Uint8Array, value: Uint8Array): void {
    this.store.put(namespace, key, value);
    let keys = this.keys.get(namespace);
    if (!keys) this.keys.set(namespace, (keys = new Set()));
    keys.add(Buffer.from(key).toString("latin1"));
  }
  delete(namespace: string, key: Uint8Array): boolean {
    return this.store.delete(namespace, key);
  }
  /** Every live key of a namespace with its value in hex, sorted by key. */
  snapshot(namespace: string): [string, string][] {
    const out: [string, string][] = [];
    for (const key of [...(this.keys.get(namespace) ?? [])].sort()) {
      const value = this.store.get(namespace, Buffer.from(key, "latin1"));
      if (value) out.push([key, Buffer.from(value).toString("hex")]);
    }
    return out;
  }
}

/**
 * Run one plugin over the messages with `Date.now` pinned to each message's
 * clock reading (the host's clock import reads Date.now at call time, for Wasm
 * and native alike). At each index in `restartAt` the harness is closed and a
 * new one started over the same store.
 */
export async function runTimed(spec: PluginSpec, steps: TimedMessage[], restartAt: number[] = []): Promise<{ results: HarnessResult[]; kv: ListingKvStore }> {
  const kv = new ListingKvStore();
  const realNow = Date.now;
  const results: HarnessResult[] = [];
  let harness = await createHarness(spec, { kv });
  try {
    for (let i = 0; i < steps.length; i++) {
      if (restartAt.includes(i)) {
        harness.close();
        harness = await createHarness(spec, { kv });
      }
      const { at, message } = steps[i]!;
      Date.now = () => at;
      try {
        results.push(harness.run(message, i));
      } finally {
        Date.now = realNow;
      }
    }
  } finally {
    harness.close();
  }
  return { results, kv };
}

/** Run the Wasm build and the native twin of plugin `name` and assert they agree on everything. */
export async function assertTwinsAgree(name: string, config: Record<string, unknown>, steps: TimedMessage[], restartAt: number[] = []): Promise<HarnessResult[]> {
  const fromWasm = await runTimed({ name, wasm: wasm(name), config }, steps, restartAt);
  const fromNative = await runTimed({ name, native: native(name), config }, steps, restartAt);
  assert.equal(fromWasm.results.length, steps.length);
  for (let i = 0; i < steps.length; i++) {
    assert.deepEqual(fromWasm.results[i], fromNative.results[i], `message ${i} (${JSON.stringify(steps[i])}): Wasm and native differ`);
  }
  for (const r of fromWasm.results) assert.equal(r.trap, undefined, `message ${r.index} trapped: ${r.trap}`);
  assert.deepEqual(fromWasm.kv.snapshot(name), fromNative.kv.snapshot(name), "the kv stores differ");
  return fromWasm.results;
}

/** Both twins refuse `config` at init, and log a line matching `expected` (which names the key). */
export async function assertConfigRefused(name: string, config: Record<string, unknown>, expected: RegExp): Promise<void> {
  // The plugin's own check is under test: the build without its manifest, whose schema would answer first.
  for (const [kind, spec] of twinSpecs(name, config)) {
    if (spec.wasm) spec.wasm = withoutManifest(name);
    const logs: string[] = [];
    const slot = new PluginSlot(spec, new MemoryKvStore(), { trap() {}, breaker() {}, log: (_slot, _level, message) => logs.push(message) });
    await assert.rejects(slot.load(), /init refused its config/, `${kind} ${name} accepted ${JSON.stringify(config)}`);
    assert.ok(logs.some((l) => expected.test(l)), `${kind} ${name}: ${JSON.stringify(config)} logged ${JSON.stringify(logs)}, expected ${expected}`);
  }
}

/** Both twins accept the plugin's plugins-as/<name>/config.example.json. */
export async function assertExampleConfigLoads(name: string): Promise<void> {
  const config = JSON.parse(readFileSync(join(ROOT, "plugins-as", name, "config.example.json"), "utf8")) as Record<string, unknown>;
  for (const [, spec] of twinSpecs(name, config)) (await createHarness(spec)).close();
}
