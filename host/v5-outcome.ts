/**
 * ABI v2's part of turning one plugin call into the message's fate, shared by
 * the chain (plugin-slot.ts, chain.ts) and the dashboard's playground so a v2
 * verdict means the same in both. No node: imports beyond what the host's
 * output checks already use.
 */
import { Verdict, verdictCode, verdictKind, type HookName } from "./abi.js";
import type { CallState } from "./instance.js";
import { applyV5Changes } from "./message-v5.js";
import type { HookMessage, HookOutcome } from "./message.js";
import type { OutputRules } from "./output-rules.js";
import { checkReasonCode, isReasonCode, returnCodeFor } from "./reason-codes.js";
import { checkFinalV5 } from "./v5-changes.js";

/**
 * Inside the call's try: validate what the verdict carries (a Continue's property
 * changes must fit one packet; a v2 refusal's reason code must fit its packet).
 * Throws InvalidOutputError; returns whether there are property changes to apply.
 */
export function checkV5Verdict(plugin: string, rules: OutputRules, hook: HookName, msg: HookMessage, state: CallState, verdict: number, abiVersion: number): boolean {
  if (verdictKind(verdict) === Verdict.Continue) return checkFinalV5(plugin, rules, hook, msg, state);
  if (abiVersion >= 2) checkReasonCode(plugin, hook, verdictCode(verdict));
  return false;
}

/** After a Continue whose property changes were checked: apply them. */
export function applyV5(msg: HookMessage, state: CallState, out: Pick<HookOutcome, "propertiesModified">): void {
  applyV5Changes(msg, state.v5!);
  out.propertiesModified = true;
}

/** A refusal's codes: v1 carries a 3.1.1 return code; v2 may carry an MQTT 5 reason code (0x80+) and a reason string. */
export function refusalCodes(out: Pick<HookOutcome, "returnCode" | "reasonCode" | "reasonString">, verdict: number, abiVersion: number, reasonString: string | null): void {
  const code = verdictCode(verdict);
  if (abiVersion >= 2 && isReasonCode(code)) {
    out.reasonCode = code;
    out.returnCode = returnCodeFor(code);
  } else {
    out.returnCode = code;
  }
  if (abiVersion >= 2) out.reasonString = reasonString;
}
