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
import { AuthResult, ReasonCode } from "./abi";
import { auth_method, set_auth_data, set_auth_identity, set_auth_state } from "./imports";

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
