/**
 * Enhanced authentication (abi-auth.ts) on the host: the checks behind the
 * plugin's auth calls, shared by the Wasm imports (authImports) and the native
 * SDK's `auth` namespace, and how one onAuth call becomes an AuthOutcome.
 * Fuel is charged by the Wasm import before it calls in here. No node: imports
 * (the dashboard's playground loads the Wasm host in a browser).
 */
import { AuthResult, ChannelBinding, MAX_AUTH_DATA_BYTES, MAX_AUTH_IDENTITY_BYTES, NO_CHANNEL_BINDING, UNKNOWN_CHANNEL_BINDING, MAX_AUTH_STATE_BYTES, MAX_RANDOM_BYTES } from "./abi-auth.js";
import { verdictCode, verdictKind } from "./abi.js";
import type { HostCalls } from "./host-calls.js";
import type { CallState, PluginServices } from "./instance.js";
import { InvalidOutputError } from "./output-rules.js";
import { checkReasonCode, isReasonCode, ReasonCode } from "./reason-codes.js";
import type { FailurePolicy } from "./call-outcome.js";
import { decodeText } from "./v5-changes.js";

/** What one step of an exchange decided. */
export interface AuthOutcome {
  result: "continue" | "success" | "failure";
  /** Authentication Data to send with the answer (AUTH 0x18, CONNACK, AUTH 0x00), or null for none. */
  data: Uint8Array | null;
  /** The exchange state to keep for the next step (null: keep the one there is; empty: clear it). */
  state: Uint8Array | null;
  /** failure: the CONNACK reason code (0x80 and above). */
  reasonCode: number;
  reasonString: string | null;
  /** The plugin that decided. */
  plugin: string;
  /** failure: the plugin trapped (or could not be called) and its failure policy answered. */
  failed: boolean;
  /** success (v2-r4): the user the client authenticated as (set_auth_identity), or null when the plugin named none. */
  identity: string | null;
}

/** `auth_method`: declare a method during init; anywhere else it is refused. */
export function declareAuthMethod(calls: HostCalls, plugin: string, method: Uint8Array): void {
  if (!calls.initializing) throw new InvalidOutputError(plugin, "an authentication method is declared in init, not in a hook");
  const name = decodeText(plugin, "authentication method", method);
  if (name.length === 0) throw new InvalidOutputError(plugin, "an empty authentication method");
  if (!calls.authMethods.includes(name)) calls.authMethods.push(name);
}

function checkAuthHook(plugin: string, state: CallState, what: string): void {
  if (state.hook !== "auth") throw new InvalidOutputError(plugin, `${what} outside the auth hook (called in ${state.hook})`);
}

/** `set_auth_data`: MQTT Binary Data, so at most 65535 bytes. */
export function setAuthData(plugin: string, state: CallState, data: Uint8Array): void {
  checkAuthHook(plugin, state, "set_auth_data");
  if (data.length > MAX_AUTH_DATA_BYTES) throw new InvalidOutputError(plugin, `authentication data of ${data.length} bytes exceeds ${MAX_AUTH_DATA_BYTES}`);
  state.authData = Uint8Array.from(data);
}

/** `set_auth_state`: kept by the host for this connection's next step. */
export function setAuthState(plugin: string, state: CallState, data: Uint8Array): void {
  checkAuthHook(plugin, state, "set_auth_state");
  if (data.length > MAX_AUTH_STATE_BYTES) throw new InvalidOutputError(plugin, `an authentication state of ${data.length} bytes exceeds ${MAX_AUTH_STATE_BYTES}`);
  state.authState = Uint8Array.from(data);
}

/**
 * `set_auth_identity` (v2-r4): who the client authenticated as. It becomes the
 * client's username when the step returns Success, so it is held to what a
 * CONNECT User Name is held to: well-formed UTF-8 without U+0000 [MQTT-1.5.4-1/2],
 * at most 65535 bytes; and it must not be empty (an identity names someone).
 */
export function setAuthIdentity(plugin: string, state: CallState, identity: Uint8Array): void {
  checkAuthHook(plugin, state, "set_auth_identity");
  if (identity.length === 0) throw new InvalidOutputError(plugin, "an empty authenticated identity");
  if (identity.length > MAX_AUTH_IDENTITY_BYTES) throw new InvalidOutputError(plugin, `an authenticated identity of ${identity.length} bytes exceeds ${MAX_AUTH_IDENTITY_BYTES}`);
  state.authIdentity = decodeText(plugin, "authenticated identity", identity);
}

/**
 * `channel_binding` (v2-r4): the connection's channel binding data of `kind`
 * (ChannelBinding), NO_CHANNEL_BINDING when it has none — not TLS 1.3, not
 * the auth hook — or UNKNOWN_CHANNEL_BINDING for a kind this host does not know.
 */
export function channelBinding(state: CallState, kind: number): Uint8Array | number {
  if (kind !== ChannelBinding.tlsExporter) return UNKNOWN_CHANNEL_BINDING;
  if (state.hook !== "auth") return NO_CHANNEL_BINDING;
  return state.message?.tlsExporter ?? NO_CHANNEL_BINDING;
}

/** `random_bytes`: n bytes of the services' random source (the platform CSPRNG unless pinned); null when n is out of range. */
export function randomBytes(services: PluginServices, n: number): Uint8Array | null {
  if (!Number.isInteger(n) || n < 1 || n > MAX_RANDOM_BYTES) return null;
  const bytes = services.random ? services.random(n) : globalThis.crypto.getRandomValues(new Uint8Array(n));
  if (bytes.length !== n) throw new Error(`random source returned ${bytes.length} bytes for ${n}`);
  return bytes;
}

/**
 * onAuth's return value and the call's auth state as an outcome. A failure's
 * code must be one a CONNACK can carry (the broker maps it for DISCONNECT on
 * re-authentication); an unfit code traps as invalid-output.
 */
export function authOutcome(plugin: string, verdict: number, state: CallState): AuthOutcome {
  const kind = verdictKind(verdict);
  const out: AuthOutcome = { result: "failure", data: state.authData, state: state.authState, reasonCode: ReasonCode.NotAuthorized, reasonString: null, plugin, failed: false, identity: null };
  if (kind === AuthResult.Success) {
    out.result = "success";
    out.identity = state.authIdentity; // only a Success names who authenticated
  }
  else if (kind === AuthResult.Continue) out.result = "continue";
  else {
    const code = verdictCode(verdict);
    if (isReasonCode(code)) {
      checkReasonCode(plugin, "connect", code);
      out.reasonCode = code;
    }
    out.reasonString = state.reasonString;
  }
  return out;
}

/**
 * A step the plugin could not judge (trap, breaker open, restarting): always
 * a failure — an exchange cannot be opened without the plugin. fail-closed
 * answers 0x87 Not authorized, fail-open 0x80 Unspecified error (the client's
 * credentials were not judged).
 */
export function failedAuthOutcome(plugin: string, policy: FailurePolicy): AuthOutcome {
  const reasonCode = policy === "fail-open" ? ReasonCode.UnspecifiedError : ReasonCode.NotAuthorized;
  return { result: "failure", data: null, state: null, reasonCode, reasonString: null, plugin, failed: true, identity: null };
}

interface ImportContext {
  plugin: string;
  services: PluginServices;
  calls(): HostCalls;
  state(): CallState;
  /** A view of the plugin's memory (bounds-checked). */
  bytes(ptr: number, len: number): Uint8Array;
}

/** The enhanced-authentication host imports, module "wasmq". */
export function authImports(ctx: ImportContext): Record<string, (...args: number[]) => number | void> {
  const { plugin } = ctx;
  return {
    auth_method(ptr, len) {
      ctx.calls().charge("auth_method", len);
      declareAuthMethod(ctx.calls(), plugin, ctx.bytes(ptr, len));
    },
    set_auth_data(ptr, len) {
      ctx.calls().charge("set_auth_data", Math.max(0, len));
      setAuthData(plugin, ctx.state(), ctx.bytes(ptr, len));
    },
    set_auth_state(ptr, len) {
      ctx.calls().charge("set_auth_state", Math.max(0, len));
      setAuthState(plugin, ctx.state(), ctx.bytes(ptr, len));
    },
    set_auth_identity(ptr, len) {
      ctx.calls().charge("set_auth_identity", Math.max(0, len));
      setAuthIdentity(plugin, ctx.state(), ctx.bytes(ptr, len));
    },
    channel_binding(kind, ptr, cap) {
      const data = channelBinding(ctx.state(), kind);
      if (typeof data === "number") return data;
      if (data.length > cap) return data.length;
      ctx.calls().charge("channel_binding", data.length);
      ctx.bytes(ptr, data.length).set(data);
      return data.length;
    },
    random_bytes(ptr, len) {
      if (len < 1 || len > MAX_RANDOM_BYTES) return -1;
      ctx.calls().charge("random_bytes", len);
      const target = ctx.bytes(ptr, len);
      target.set(randomBytes(ctx.services, len)!);
      return 0;
    },
  };
}
