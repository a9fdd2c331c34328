// wasmq plugin ABI v1, plugin side. Mirrors host/abi.ts; change both together.

export const ABI_VERSION: i32 = 1;
export const HEADER_SIZE: usize = 32;

export namespace Verdict {
  export const Continue: i32 = 0;
  export const Drop: i32 = 1;
  export const Deny: i32 = 2;
}

/** MQTT 3.1.1 CONNACK return codes. */
export namespace ReturnCode {
  export const Accepted: i32 = 0;
  export const UnacceptableProtocol: i32 = 1;
  export const IdentifierRejected: i32 = 2;
  export const ServerUnavailable: i32 = 3;
  export const BadUsernameOrPassword: i32 = 4;
  export const NotAuthorized: i32 = 5;
}

/** `flags` bits for the connect hook. */
export namespace ConnectFlag {
  export const cleanSession: i32 = 1;
}

/** `flags` for the persist hook: what is about to be stored. */
export namespace PersistKind {
  export const retained: i32 = 0;
  export const offlineQueue: i32 = 1;
}

export namespace Presence {
  export const username: u8 = 1;
  export const password: u8 = 2;
}

/** Deny with an MQTT CONNACK return code (connect hook), or a plain deny elsewhere. */
export function deny(code: i32 = ReturnCode.NotAuthorized): i32 {
  return Verdict.Deny | ((code & 0xff) << 8);
}

/** What the host's pbkdf2_sha256 accepts (host/abi.ts). */
export const PBKDF2_MAX_KEY: i32 = 1024;
export const PBKDF2_MAX_ITERATIONS: i32 = 10_000_000;

/** Fields of the client_cert host import (host/abi.ts CertField). */
export namespace CertField {
  export const subject: i32 = 0;
  export const subjectCommonName: i32 = 1;
  export const issuer: i32 = 2;
  export const issuerCommonName: i32 = 3;
  export const subjectAltNames: i32 = 4;
  export const notBefore: i32 = 5;
  export const notAfter: i32 = 6;
  export const fingerprint: i32 = 7;
  export const serialNumber: i32 = 8;
}
