/**
 * What a plugin slot is given (its spec, a reload's source) and what it
 * reports (stats, a build check, events to its listener), with the limits
 * derived from a spec. plugin-slot.ts runs the plugin; this module names its
 * inputs and outputs.
 */
import type { HookName } from "./abi.js";
import type { BreakerOptions, BreakerState } from "./breaker.js";
import type { FailurePolicy } from "./call-outcome.js";
import { DEFAULT_HOST_CALL_LIMITS, type HostCallLimits } from "./host-calls.js";
import { PluginError } from "./instance.js";
import type { Admission } from "./admission.js";
import type { TrustPolicy } from "./signing.js";
import type { TrapKind } from "./wasm-plugin.js";
import type { PluginSlot } from "./plugin-slot.js";

export interface PluginSpec {
  name: string;
  /** Path of a `.wasm` build, or of a native module; exactly one. */
  wasm?: string;
  native?: string;
  config?: Record<string, unknown>;
  onError?: FailurePolicy;
  /** fuel and memoryPages: Wasm only; the per-call host-call caps apply to native plugins too. */
  limits?: { fuel?: number | null; memoryPages?: number } & Partial<HostCallLimits>;
  breaker?: Partial<BreakerOptions>;
  enabled?: boolean;
  /** Pin: refuse any build whose sha256 (of the whole .wasm file, hex) differs. */
  sha256?: string;
  /** Signature policy (the chain passes its own when the spec has none). */
  trust?: TrustPolicy;
}

/** Where a reload takes the new build from. */
export interface ReloadSource {
  /** The build's bytes (an upload or a cluster deploy) instead of the plugin's file. */
  bytes?: Uint8Array;
  /** After a successful swap, write `bytes` over the plugin's file (atomically), so a restart runs it too. */
  save?: boolean;
  /** Skip the reload when the file holds the build already running (the file watcher's own writes). */
  onlyIfChanged?: boolean;
  /** Sees the new build's hooks just before the swap and may refuse it (its answer is the reason). */
  vet?: (hooks: ReadonlySet<HookName>) => string | null;
}

/** What a build is, checked without running it in the chain. */
export interface BuildCheck {
  sha256: string;
  size: number;
  hooks: HookName[];
  signature: Admission["trust"];
  manifest: { name: string; version: string } | null;
}

export interface SlotListener {
  trap(slot: PluginSlot, hook: HookName, kind: TrapKind, error: unknown): void;
  breaker(slot: PluginSlot, state: BreakerState): void;
  log(slot: PluginSlot, level: number, message: string): void;
  /** The running instance's idle hooks changed outside a reload (a restart): rebuild the index. */
  hooksChanged?(slot: PluginSlot): void;
}

export interface SlotStats {
  calls: Record<HookName, number>;
  verdicts: { continue: number; drop: number; deny: number; modified: number };
  traps: Partial<Record<TrapKind, number>>;
  /** Calls answered by the failure policy (trap, breaker open, instance restarting). */
  failures: number;
  reloads: number;
  reloadFailures: number;
  restarts: number;
  fuelUsedLast: number;
}

export const DEFAULT_FUEL = 100_000_000;
/** Fuel is an i32 counter inside the module. */
export const MAX_FUEL = 0x7fffffff;
export const DEFAULT_PAGES = 256;

export function zeroCalls(): Record<HookName, number> {
  return { connect: 0, subscribe: 0, publish: 0, deliver: 0, persist: 0, tick: 0, auth: 0 };
}

/**
 * Count one call. The per-message hooks by name: a keyed increment with a
 * variable key (`calls[hook]++`) was a measurable share of each call (bench/chain-cost).
 */
export function countCall(calls: Record<HookName, number>, hook: HookName): void {
  if (hook === "publish") calls.publish++;
  else if (hook === "deliver") calls.deliver++;
  else calls[hook]++;
}

/** The plugin's per-call host-call caps; a bad value refuses the plugin naming the key. */
export function hostCallLimits(spec: PluginSpec): HostCallLimits {
  const limits = { ...DEFAULT_HOST_CALL_LIMITS };
  for (const key of Object.keys(DEFAULT_HOST_CALL_LIMITS) as (keyof HostCallLimits)[]) {
    const value = spec.limits?.[key];
    if (value === undefined) continue;
    if (!Number.isInteger(value) || value < 0) {
      throw new PluginError(spec.name, `refused: limits.${key} must be a non-negative integer, got ${value}`);
    }
    limits[key] = value;
  }
  return limits;
}
