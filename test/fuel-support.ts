// Hand-written Wasm under fuel metering, for the cost-model suites
// (fuel-cost-model, fuel-loop-merge): assemble WAT text, instantiate an
// instrumented binary, call an export with a budget and read the fuel it used.
// And the filter plugin through the host (fuel-cost-model, fuel-host-charge).
import assert from "node:assert/strict";
import binaryen from "binaryen";
import { FUEL_BUDGET_GLOBAL, FUEL_GLOBAL, FUEL_IMPORT_MODULE, FUEL_IMPORT_NAME, FuelExhaustedError, isFuelExhausted } from "../host/fuel.js";
import { emptyMessage, MemoryKvStore, PluginChain, type HookMessage } from "../host/index.js";
import { wasm as wasmPath } from "./helpers.js";

/** A budget no test function comes near. */
export const BIG = 1_000_000_000;

/** WAT text → a validated binary (mutable globals, sign extension and reference types enabled). */
export function wat(text: string): Uint8Array {
  const mod = binaryen.parseText(text);
  try {
    mod.setFeatures(binaryen.Features.MutableGlobals | binaryen.Features.SignExt | binaryen.Features.ReferenceTypes);
    assert.ok(mod.validate(), "test module must validate");
    return mod.emitBinary();
  } finally {
    mod.dispose();
  }
}

export interface Metered {
  /** Call export `name` with `budget` fuel. */
  call(name: string, budget: number, ...args: number[]): number;
  /** Fuel the last call used. */
  used(): number;
  fuel: WebAssembly.Global;
}

/** Instantiate an instrumented binary; running out of fuel throws FuelExhaustedError. */
export async function instantiate(binary: Uint8Array): Promise<Metered> {
  const imports = { [FUEL_IMPORT_MODULE]: { [FUEL_IMPORT_NAME]: () => { throw new FuelExhaustedError(); } } };
  const { instance } = await WebAssembly.instantiate(binary as BufferSource, imports);
  const exports = instance.exports as Record<string, unknown>;
  const fuel = exports[FUEL_GLOBAL] as WebAssembly.Global;
  const budget = exports[FUEL_BUDGET_GLOBAL] as WebAssembly.Global;
  let last = 0;
  return {
    fuel,
    call(name, b, ...args) {
      last = b;
      budget.value = b;
      return (exports[name] as (...a: number[]) => number)(...args);
    },
    used: () => last - (fuel.value as number),
  };
}

/**
 * Call `name(args)` once to learn the fuel it uses, then check that exactly
 * that budget returns `result` and leaves 0, and that one less traps as fuel
 * with the counter pinned at -1.
 */
export async function assertExactBudget(binary: Uint8Array, name: string, args: readonly number[], result: number): Promise<void> {
  const metered = await instantiate(binary);
  metered.call(name, BIG, ...args);
  const exact = metered.used();
  assert.equal(metered.call(name, exact, ...args), result, `${name}(${args.join(", ")}) with its exact budget ${exact}`);
  assert.equal(metered.fuel.value, 0);
  const fresh = await instantiate(binary);
  assert.throws(() => fresh.call(name, exact - 1, ...args), isFuelExhausted, `${name}(${args.join(", ")}) with ${exact - 1}`);
  assert.equal(fresh.fuel.value, -1, "pinned to -1 on exhaustion");
}

/**
 * The filter plugin (Wasm) as the host runs it, for the suites that check its
 * fuel through the host: a chain with that one plugin (default limits, or a
 * fuel budget) and a reading on a topic its rule checks, with `payload`.
 */
export const FILTER_RULES = { rules: [{ topic: "sensors/+/reading", field: "value", min: 0, max: 100 }] };

export function loadFilter(fuel?: number): Promise<PluginChain> {
  return PluginChain.load([{ name: "filter", wasm: wasmPath("filter"), config: FILTER_RULES, ...(fuel ? { limits: { fuel } } : {}) }], { kv: new MemoryKvStore(), publish: () => {} });
}

export function reading(payload: object): HookMessage {
  const msg = emptyMessage();
  msg.topic = "sensors/a/reading";
  msg.clientId = "c";
  msg.payload = Buffer.from(JSON.stringify(payload));
  return msg;
}

/** One unit less than a call needs: the plugin traps as fuel (and the message gets the failure policy). */
export async function assertTrapsOneUnitShort(used: number, msg: HookMessage): Promise<void> {
  const tight = await loadFilter(used - 1);
  try {
    const traps: string[] = [];
    tight.on("trap", (_name, _hook, kind) => traps.push(kind));
    tight.run("publish", { ...msg });
    assert.deepEqual(traps, ["fuel"]);
  } finally {
    tight.close();
  }
}
