// Enhanced authentication for native plugins (host/abi-auth.ts). Twin of
// `auth` in plugins-as/sdk/auth.ts: the same names, the same checks.
import { AuthResult, AuthStep, ChannelBinding } from "../abi-auth.js";
import { channelBinding, declareAuthMethod, setAuthData, setAuthIdentity, setAuthState } from "../auth-calls.js";
import { activeCall } from "./context.js";

export { AuthResult, AuthStep, ChannelBinding };

const encoder = new TextEncoder();
const bytesOf = (value: Uint8Array | string): Uint8Array => (typeof value === "string" ? encoder.encode(value) : value);

export const auth = {
  /** init only: this plugin runs the MQTT 5 Authentication Method `method` (e.g. "SCRAM-SHA-256"). */
  declareMethod(method: string): void {
    const { services, calls } = activeCall();
    declareAuthMethod(calls, services.name, encoder.encode(method));
  },
  /** Keep `state` for this connection's next auth step (msg.authState); empty clears it. */
  keepState(state: Uint8Array | string): void {
    const { services, state: call } = activeCall();
    setAuthState(services.name, call, bytesOf(state));
  },
  /** Another round: AUTH 0x18 Continue authentication carrying `data`. */
  challenge(data: Uint8Array | string): number {
    const { services, state } = activeCall();
    setAuthData(services.name, state, bytesOf(data));
    return AuthResult.Continue;
  },
  /**
   * (v2-r4) The user the client authenticated as: when this step returns
   * success, the broker makes it the client's username (ACL %u, the admin
   * API, logs) and refuses a CONNECT User Name that differs (0x86).
   */
  setIdentity(username: string): void {
    const { services, state } = activeCall();
    setAuthIdentity(services.name, state, encoder.encode(username));
  },
  /**
   * (v2-r4) The connection's channel binding data of `kind` (RFC 9266
   * tls-exporter by default: 32 bytes on a TLS 1.3 connection), or null when it
   * has none (plain TCP, TLS 1.2, a kind the host does not know).
   */
  channelBinding(kind: number = ChannelBinding.tlsExporter): Uint8Array | null {
    const data = channelBinding(activeCall().state, kind);
    return typeof data === "number" ? null : Uint8Array.from(data);
  },
  /** Authenticated: CONNACK 0x00 (or AUTH 0x00 on re-authentication), with `data` when given. */
  success(data: Uint8Array | string | null = null): number {
    if (data !== null) {
      const { services, state } = activeCall();
      setAuthData(services.name, state, bytesOf(data));
    }
    return AuthResult.Success;
  },
  /** Refused: CONNACK with `code` (re-authentication: DISCONNECT, 0x87 where the code is CONNACK-only). */
  failure(code: number = 0x87): number {
    return AuthResult.Failure | ((code & 0xff) << 8);
  },
};
