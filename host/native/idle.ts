// Idle hooks for native plugins (host/abi-idle.ts). Twin of plugins-as/sdk/idle.ts:
// the same names, the same checks.
import { HookId } from "../abi-idle.js";
import { declareIdleHook } from "../idle-calls.js";
import { activeCall } from "./context.js";

/** Hook numbers (the host's HOOKS order). */
export const Hook = HookId;

/** init only: for this config, `hook` always answers Continue unchanged, so the host need not call it. */
export function declareIdle(hook: number): void {
  const { services, calls } = activeCall();
  declareIdleHook(calls, services.name, hook);
}
