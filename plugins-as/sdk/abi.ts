// wasmq plugin ABI v2, plugin side. Mirrors host/abi.ts and host/abi-v2.ts; change both together.
// v2 = v1's 32-byte header + 40 bytes of MQTT 5 fields (HEADER_SIZE 72), v5 byte fields after the payload.

export const ABI_VERSION: i32 = 2;
export const HEADER_SIZE: usize = 72;

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
  /** The client completed MQTT 5 enhanced authentication (onAuth) before this CONNECT. */
  export const enhancedAuth: i32 = 2;
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

/**
 * Drop the message; with an MQTT 5 reason code, a v5 publisher's PUBACK/PUBREC
 * carries it (e.g. ReasonCode.PayloadFormatInvalid), a 3.1.1 publisher is acknowledged as usual.
 */
export function drop(code: i32 = 0): i32 {
  return Verdict.Drop | ((code & 0xff) << 8);
}

/**
 * MQTT 5 reason codes a refusal may carry (deny(code) / drop(code)); the host
 * checks the packet can carry it and maps it to the nearest 3.1.1 return code
 * for old clients (host/reason-codes.ts).
 */
export namespace ReasonCode {
  export const UnspecifiedError: i32 = 0x80;
  export const MalformedPacket: i32 = 0x81;
  export const ProtocolError: i32 = 0x82;
  export const ImplementationSpecificError: i32 = 0x83;
  export const UnsupportedProtocolVersion: i32 = 0x84;
  export const ClientIdentifierNotValid: i32 = 0x85;
  export const BadUserNameOrPassword: i32 = 0x86;
  export const NotAuthorized: i32 = 0x87;
  export const ServerUnavailable: i32 = 0x88;
  export const ServerBusy: i32 = 0x89;
  export const Banned: i32 = 0x8a;
  export const BadAuthenticationMethod: i32 = 0x8c;
  export const TopicFilterInvalid: i32 = 0x8f;
  export const TopicNameInvalid: i32 = 0x90;
  export const PacketIdentifierInUse: i32 = 0x91;
  export const PacketTooLarge: i32 = 0x95;
  export const QuotaExceeded: i32 = 0x97;
  export const PayloadFormatInvalid: i32 = 0x99;
  export const RetainNotSupported: i32 = 0x9a;
  export const QoSNotSupported: i32 = 0x9b;
  export const UseAnotherServer: i32 = 0x9c;
  export const ServerMoved: i32 = 0x9d;
  export const SharedSubscriptionsNotSupported: i32 = 0x9e;
  export const ConnectionRateExceeded: i32 = 0x9f;
  export const SubscriptionIdentifiersNotSupported: i32 = 0xa1;
  export const WildcardSubscriptionsNotSupported: i32 = 0xa2;
}

/** Which optional v5 fields the record carries (host/abi-v2.ts V5Presence). */
export namespace V5Presence {
  export const contentType: u8 = 1;
  export const responseTopic: u8 = 2;
  export const correlationData: u8 = 4;
  export const messageExpiry: u8 = 8;
  export const payloadFormat: u8 = 16;
}

/** `recordFlags` bits the host sets per call (host/abi-v2.ts RecordFlag). */
export namespace RecordFlag {
  /** The payload's bytes are not in the record until payload_fetch() writes them. */
  export const payloadDeferred: u8 = 1;
}

/** What `wasmq_features()` says this module handles (host/abi-v2.ts Feature). */
export namespace Feature {
  export const deferredPayload: i32 = 1;
}

/** subscribe hook: subscription option bits (host/abi-v2.ts). */
export namespace SubscriptionOption {
  export const noLocal: i32 = 1;
  export const retainAsPublished: i32 = 2;
  export const retainHandlingShift: i32 = 2;
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

/** Enhanced authentication (host/abi-auth.ts): the step an onAuth record stands for (its flags). */
export namespace AuthStep {
  /** CONNECT with an Authentication Method. */
  export const start: i32 = 0;
  /** AUTH 0x18 Continue authentication. */
  export const continue_: i32 = 1;
  /** AUTH 0x19 Re-authenticate (after CONNACK). */
  export const reauthenticate: i32 = 2;
}

/** onAuth's answer (low byte); Failure carries a CONNACK reason code in bits 8..15. */
export namespace AuthResult {
  export const Success: i32 = 0;
  export const Failure: i32 = 2;
  export const Continue: i32 = 3;
}

/** Channel binding kinds for auth.channelBinding (host/abi-auth.ts, v2-r4). */
export namespace ChannelBinding {
  /** RFC 9266 tls-exporter: 32 bytes, TLS 1.3 connections only. */
  export const tlsExporter: i32 = 0;
}

/** What random_bytes returns at most per call. */
export const MAX_RANDOM_BYTES: i32 = 1024;
