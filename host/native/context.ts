import type { HostCalls } from "../host-calls.js";
import type { CallState, PluginServices } from "../instance.js";

/**
 * The plugin a native call belongs to. Native plugins are plain modules that call
 * `log`, `kv`, `publish` as free functions, just as Wasm plugins call host
 * imports; the host points this at the calling plugin before every call, which
 * is safe because calls are synchronous and never re-entrant.
 */
export interface ActiveCall {
  services: PluginServices;
  state: CallState;
  /** The same per-call caps and output checks as Wasm plugins (no fuel: native code is not metered). */
  calls: HostCalls;
}

let active: ActiveCall | null = null;

export function setActiveCall(call: ActiveCall | null): void {
  active = call;
}

export function activeCall(): ActiveCall {
  if (!active) throw new Error("wasmq native SDK used outside a plugin call");
  return active;
}
