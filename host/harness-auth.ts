/**
 * The auth hook in the harness (enhanced authentication, abi-auth.ts): a
 * message `{ "hook": "auth", "topic": <method>, "payload": <data>, "flags":
 * <AuthStep> }` runs one step of an exchange. As in the broker, the state a
 * plugin keeps is carried per client id from one step to the next (a message
 * may give `authState` to start from another). No node: imports.
 */
import type { AuthOutcome } from "./auth-calls.js";
import type { HookMessage } from "./message.js";

/** What the harness reports for an auth step. */
export interface HarnessAuthResult {
  result: AuthOutcome["result"];
  /** The Authentication Data sent with the answer (printable form), absent when none. */
  data?: string;
  /** The state kept for the next step (printable form); absent when unchanged, "" when cleared. */
  state?: string;
  /** failure: the CONNACK reason code. */
  reasonCode?: number;
  /** success (v2-r4): the identity the plugin named, which the broker makes the client's username. */
  identity?: string;
}

/** Runs one auth step; null when no plugin declared the method (the broker answers 0x8C). */
export type AuthRunner = (msg: HookMessage) => AuthOutcome | null;

export function runAuthStep(run: AuthRunner | undefined, msg: HookMessage, kept: Map<string, Uint8Array | null>, show: (b: Uint8Array) => string): HarnessAuthResult {
  if (!run) throw new Error("this harness cannot run the auth hook");
  if (msg.authState === undefined) msg.authState = kept.get(msg.clientId) ?? null;
  const out = run(msg);
  if (out === null) return { result: "failure", reasonCode: 0x8c };
  if (out.state !== null) kept.set(msg.clientId, out.state.length ? out.state : null);
  const result: HarnessAuthResult = { result: out.result };
  if (out.data !== null) result.data = show(out.data);
  if (out.state !== null) result.state = show(out.state);
  if (out.result === "failure") result.reasonCode = out.reasonCode;
  if (out.identity !== null) result.identity = out.identity;
  return result;
}
