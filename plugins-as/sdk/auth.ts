// Enhanced authentication (MQTT 5 AUTH, host/abi-auth.ts). A plugin declares the
// methods it runs in init and answers each step in onAuth:
//
//   export function init(config: Config): bool { auth.declareMethod("SCRAM-SHA-256"); return true; }
//   export function onAuth(msg: Message): i32 {
//     if (msg.authStep == AuthStep.start) { auth.keepState(...); return auth.challenge(serverFirst); }
//     return ok ? auth.success(serverFinal) : auth.failure(ReasonCode.BadUserNameOrPassword);
//   }
//
// Mirrors `auth` in host/native/auth.ts.
import { AuthResult, ChannelBinding, ReasonCode } from "./abi";
import { auth_method, channel_binding, set_auth_data, set_auth_identity, set_auth_state } from "./imports";

export namespace auth {
  /** init only: this plugin runs the MQTT 5 Authentication Method `method` (e.g. "SCRAM-SHA-256"). */
  export function declareMethod(method: string): void {
    const b = String.UTF8.encode(method);
    auth_method(changetype<usize>(b), b.byteLength);
  }

  /** Keep `state` for this connection's next auth step (msg.authState); empty clears it. */
  export function keepState(state: Uint8Array): void {
    set_auth_state(state.dataStart, state.length);
  }

  /** Another round: AUTH 0x18 Continue authentication carrying `data`. */
  export function challenge(data: Uint8Array): i32 {
    set_auth_data(data.dataStart, data.length);
    return AuthResult.Continue;
  }

  /**
   * (v2-r4) The user the client authenticated as: when this step returns
   * success, the broker makes it the client's username (ACL %u, the admin
   * API, logs) and refuses a CONNECT User Name that differs (0x86).
   * Imported only by plugins that call it, so they need a v2-r4 host.
   */
  export function setIdentity(username: string): void {
    const b = String.UTF8.encode(username);
    set_auth_identity(changetype<usize>(b), b.byteLength);
  }

  /**
   * (v2-r4) The connection's channel binding data of `kind` (RFC 9266
   * tls-exporter by default: 32 bytes on a TLS 1.3 connection), or null when it
   * has none (plain TCP, TLS 1.2, a kind the host does not know).
   */
  export function channelBinding(kind: i32 = ChannelBinding.tlsExporter): Uint8Array | null {
    let out = new Uint8Array(64);
    let n = channel_binding(kind, out.dataStart, out.length);
    if (n < 0) return null;
    if (n > out.length) {
      out = new Uint8Array(n);
      n = channel_binding(kind, out.dataStart, out.length);
    }
    return out.subarray(0, n);
  }

  /** Authenticated: CONNACK 0x00 (or AUTH 0x00 on re-authentication), with `data` when given. */
  export function success(data: Uint8Array | null = null): i32 {
    if (data !== null) set_auth_data(data.dataStart, data.length);
    return AuthResult.Success;
  }

  /** Refused: CONNACK with `code` (re-authentication: DISCONNECT, 0x87 where the code is CONNACK-only). */
  export function failure(code: i32 = ReasonCode.NotAuthorized): i32 {
    return AuthResult.Failure | ((code & 0xff) << 8);
  }
}
