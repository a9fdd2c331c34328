/**
 * The names and error of fuel metering, without the instrumenter: the host
 * needs these on every start, binaryen (seconds of CPU to load) only when a
 * Wasm plugin is actually metered.
 */

/** Exported mutable i32 global holding the remaining fuel. */
export const FUEL_GLOBAL = "__wasmq_fuel";
/**
 * Exported mutable i32 global: the budget each call from the host starts with.
 * Every exported function is wrapped so that entering it from outside resets
 * the fuel to this budget; the host sets it once per instance instead of
 * writing the fuel global before every call (a JS-side Global write costs more
 * than the whole metered call of a small hook). Internal calls go to the
 * unwrapped function, so a plugin cannot refill its fuel by calling itself.
 */
export const FUEL_BUDGET_GLOBAL = "__wasmq_fuel_budget";
/**
 * Exported `(amount: f64) -> i32`, added by the instrumenter: takes `amount` fuel
 * for a host import's work and returns what is left, or -1 (the global pinned to
 * -1) when that would go below zero. The host charges through it instead of
 * reading and writing the global from JS (a WebAssembly.Global get and set cost
 * ~30 ns; a call into this ~7 ns). Not wrapped: calling it does not reset the
 * budget, and the module's own code cannot reach it.
 */
export const FUEL_TAKE_EXPORT = "__wasmq_fuel_take";
/** Import module of the exhaustion callback. */
export const FUEL_IMPORT_MODULE = "wasmq";
/** Imported `() -> void`, called when fuel < 0; the host throws from it. */
export const FUEL_IMPORT_NAME = "fuel_exhausted";

/** What the host's `fuel_exhausted` import throws. */
export class FuelExhaustedError extends Error {
  constructor(message = "plugin ran out of fuel (CPU budget exhausted)") {
    super(message);
    this.name = "FuelExhaustedError";
  }
}

/**
 * Imports ("module.name") the host promises never read or charge the fuel global:
 * fuel metering treats a call to one as a plain instruction, with no write-back of a
 * cached counter around it. `env.abort` (AssemblyScript's assertion failure) only
 * throws.
 */
export const FUEL_NEUTRAL_IMPORTS: readonly string[] = ["env.abort"];
