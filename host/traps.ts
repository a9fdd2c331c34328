/**
 * How a failed plugin call is named: the trap kinds that feed the slot's
 * statistics, `wasmq_plugin_traps_total{kind}` and the logs.
 */
import { FuelExhaustedError } from "./fuel-names.js";
import { HostCallLimitError } from "./host-calls.js";
import { InvalidOutputError } from "./output-rules.js";

/** Thrown by the plugin's `abort` (AssemblyScript assertions, explicit aborts). */
export class PluginAbortError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "PluginAbortError";
  }
}

/** The plugin tried to grow its memory past `limits.memoryPages`. */
export class PluginMemoryError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "PluginMemoryError";
  }
}

export type TrapKind = "fuel" | "memory" | "out-of-bounds" | "abort" | "unreachable" | "stack" | "host-limit" | "invalid-output" | "error";

export function classifyTrap(err: unknown): TrapKind {
  if (err instanceof FuelExhaustedError) return "fuel";
  if (err instanceof HostCallLimitError) return "host-limit";
  if (err instanceof InvalidOutputError) return "invalid-output";
  if (err instanceof PluginMemoryError) return "memory";
  if (err instanceof PluginAbortError) return /out of memory|allocation too large/i.test(err.message) ? "memory" : "abort";
  if (err instanceof WebAssembly.RuntimeError) {
    if (/out of bounds/i.test(err.message)) return "out-of-bounds";
    if (/unreachable/i.test(err.message)) return "unreachable";
    return "error";
  }
  if (err instanceof RangeError && /call stack/i.test(err.message)) return "stack";
  return "error";
}

export function describeTrap(err: unknown): string {
  const kind = classifyTrap(err);
  const message = err instanceof Error ? err.message : String(err);
  return kind === "error" ? message : `${kind} (${message})`;
}
