/**
 * How the host takes fuel for the work it does on a plugin's behalf
 * (host-calls.ts): through the instrumenter's take export when the module has
 * one, else (a module metered by an older instrumenter) by reading and writing
 * the fuel global from JS. Same result either way: `fuel - amount`, and below
 * zero the global is pinned to -1 and the call is out of fuel.
 */
import { FUEL_TAKE_EXPORT } from "./fuel-names.js";

/** Takes fuel from a running Wasm instance; absent for native plugins and unmetered builds. */
export interface FuelTank {
  /** Take `amount` (≥ 0); false when that leaves less than zero (the counter is then pinned to -1). */
  take(amount: number): boolean;
}

/** The tank of a metered instance: its take export, or its fuel global. */
export function fuelTank(exports: Record<string, unknown>, fuel: WebAssembly.Global): FuelTank {
  const take = exports[FUEL_TAKE_EXPORT];
  // One JS→Wasm call (~7 ns) instead of a Global get and set (~30 ns): a 16 KB payload_fetch is charged on every call.
  if (typeof take === "function") return { take: (amount) => (take as (amount: number) => number)(amount) >= 0 };
  return {
    take(amount) {
      const left = (fuel.value as number) - amount;
      if (left < 0) {
        fuel.value = -1;
        return false;
      }
      fuel.value = left;
      return true;
    },
  };
}
