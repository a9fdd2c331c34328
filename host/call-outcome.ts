/**
 * How one plugin call's result becomes the message's fate: shared by the
 * chain's plugin slots (plugin-slot.ts) and the dashboard's playground, so a
 * verdict means the same in both. No node: imports.
 */
import { ReturnCode, Verdict, type HookName } from "./abi.js";
import type { CallState } from "./instance.js";
import type { HookMessage } from "./message.js";

export type FailurePolicy = "fail-open" | "fail-closed";

/** The verdict a failure policy gives a message the plugin could not judge. */
export function failureVerdict(onError: FailurePolicy, hook: HookName): number {
  if (onError === "fail-open") return Verdict.Continue;
  switch (hook) {
    case "connect":
      return Verdict.Deny | (ReturnCode.ServerUnavailable << 8);
    case "subscribe":
      return Verdict.Deny;
    default:
      return Verdict.Drop;
  }
}

/** After a Continue: apply the changes the plugin asked for to the message; true when it changed anything. */
export function applyChanges(state: CallState, msg: HookMessage): boolean {
  if (!state.modified) return false;
  if (state.topic !== null) msg.topic = state.topic;
  if (state.payload !== null) msg.payload = state.payload;
  if (state.qos >= 0) msg.qos = state.qos;
  if (state.retain >= 0) msg.retain = state.retain === 1;
  return true;
}
