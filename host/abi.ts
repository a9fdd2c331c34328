/**
 * wasmq plugin ABI, versions 1 and 2 (v2 adds MQTT 5 fields and reason codes:
 * host/abi-v2.ts). This file is the single source of truth for the
 * host side; `plugins-as/sdk/abi.ts` mirrors it for plugins.
 *
 * Per call, the host writes one message record into the plugin's input region
 * (obtained from the plugin's `wasmq_reserve(size)` export) and calls the hook
 * export with the record's address. The record is a 32-byte header of
 * little-endian fields followed by the variable-length byte fields in a fixed
 * order (BODY_ORDER). Verdicts come back as the hook's i32 return value; modifications,
 * extra publishes, logs and state go through the `wasmq` host imports below.
 */
export const ABI_VERSION = 2;
/** Versions this host loads: v1 binaries keep their v1 record and behave as before. */
export const SUPPORTED_ABI_VERSIONS: readonly number[] = [1, 2];
export * from "./abi-v2.js";
export * from "./abi-auth.js";
import { V2_HOST_IMPORTS } from "./abi-v2.js";
import { AUTH_EXPORT, AUTH_HOST_IMPORTS } from "./abi-auth.js";

/** Header field byte offsets. */
export const Field = {
  topicLen: 0,
  payloadLen: 4,
  clientIdLen: 8,
  usernameLen: 12,
  passwordLen: 16,
  peerLen: 20,
  qos: 24,
  retain: 25,
  dup: 26,
  flags: 27,
  /** Presence bits: which optional fields the client sent (see Presence). */
  presence: 28,
  /** Reserved for later ABI versions; zero today. */
  reserved: 29,
} as const;

/** `presence` bits: distinguishes an absent username/password from an empty one. */
export const Presence = { username: 1, password: 2 } as const;

export const HEADER_SIZE = 32;

/**
 * Byte fields follow the header in this order, packed with no padding. The
 * per-client fields come first so the host can leave them in place while
 * consecutive messages of one client only rewrite topic and payload.
 */
export const BODY_ORDER = ["clientId", "username", "password", "peer", "topic", "payload"] as const;

/** `flags` bits for the connect hook. */
export const ConnectFlag = {
  cleanSession: 1,
  /** v2-r2: the client completed MQTT 5 enhanced authentication with a plugin (abi-auth.ts) before this CONNECT reached the chain. */
  enhancedAuth: 2,
} as const;

/** `flags` value for the persist hook: what is about to be stored. */
export const PersistKind = { retained: 0, offlineQueue: 1 } as const;

/** Low byte of a hook's return value. Deny carries an MQTT return code in bits 8..15. */
export const Verdict = { Continue: 0, Drop: 1, Deny: 2 } as const;
export type VerdictKind = (typeof Verdict)[keyof typeof Verdict];

/** CONNACK return codes of MQTT 3.1.1. */
export const ReturnCode = {
  Accepted: 0,
  UnacceptableProtocol: 1,
  IdentifierRejected: 2,
  ServerUnavailable: 3,
  BadUsernameOrPassword: 4,
  NotAuthorized: 5,
} as const;

export function verdictKind(v: number): number {
  return v & 0xff;
}
export function verdictCode(v: number): number {
  return (v >>> 8) & 0xff;
}

export const HOOKS = ["connect", "subscribe", "publish", "deliver", "persist", "tick", "auth"] as const;
export type HookName = (typeof HOOKS)[number];

/** Export name of each hook entry point. All take the record address and return a verdict, except tick. */
export const HOOK_EXPORTS: Record<HookName, string> = {
  connect: "onConnect",
  subscribe: "onSubscribe",
  publish: "onPublish",
  deliver: "onDeliver",
  persist: "onPersist",
  tick: "onTick",
  // v2, enhanced authentication (abi-auth.ts)
  auth: AUTH_EXPORT,
};

/** Exports every plugin must provide. */
export const REQUIRED_EXPORTS = ["wasmq_abi_version", "wasmq_reserve"] as const;
/** Optional: `init(configRecordPtr) -> i32` (non-zero = accepted). */
export const INIT_EXPORT = "init";
/** Optional: `wasmq_scrub() -> void`, called after connect and auth calls to zero the plugin's copies of the password. */
export const SCRUB_EXPORT = "wasmq_scrub";

/**
 * The host imports a plugin may use, module "wasmq". Each is charged fuel and
 * checked against the plugin's per-call caps before it does any work, and what
 * it hands back is validated like client input (host/host-calls.ts).
 */
export const HOST_IMPORTS = [
  "log", // (level: i32, ptr: usize, len: i32) -> void
  "now_ms", // () -> f64
  "publish", // (topicPtr, topicLen, payloadPtr, payloadLen, qos: i32, retain: i32) -> i32 (0 ok, -1 bad qos); invalid topic/size traps
  "set_topic", // (ptr, len) -> void; an invalid topic traps
  "set_payload", // (ptr, len) -> void; over maxPacketSize traps
  "set_qos", // (qos: i32) -> void
  "set_retain", // (retain: i32) -> void
  "set_ttl", // (seconds: i32) -> void
  "kv_get", // (keyPtr, keyLen, outPtr, outCap) -> i32 value length, -1 missing
  "kv_put", // (keyPtr, keyLen, valPtr, valLen) -> i32 0 ok, -1 over a limit, -2 failed
  "kv_delete", // (keyPtr, keyLen) -> i32 1 removed, 0 absent
  "sha256", // (dataPtr, dataLen, outPtr) -> void: the 32-byte digest at outPtr
  "hmac_sha256", // (keyPtr, keyLen, dataPtr, dataLen, outPtr) -> void: 32 bytes at outPtr
  "pbkdf2_sha256", // (passwordPtr, passwordLen, saltPtr, saltLen, iterations, outPtr, outLen) -> i32 0 ok, -1 bad arguments
  // Added to v1 without a version bump: binaries that do not import it load as before.
  "client_cert", // (field: CertField, outPtr, outCap) -> i32 field length (copied when <= outCap), -1 no certificate, -2 unknown field
  ...V2_HOST_IMPORTS,
  ...AUTH_HOST_IMPORTS,
] as const;

/**
 * Fields of the connect hook's client certificate (`client_cert`). Text fields
 * are UTF-8; SANs are joined by "\n"; notBefore/notAfter are an f64 (ms since
 * the epoch, little-endian, 8 bytes). See host/message.ts ClientCertificate.
 */
export const CertField = {
  subject: 0,
  subjectCommonName: 1,
  issuer: 2,
  issuerCommonName: 3,
  subjectAltNames: 4,
  notBefore: 5,
  notAfter: 6,
  fingerprint: 7,
  serialNumber: 8,
} as const;

/**
 * Fuel the host charges per SHA-256 block (64 bytes) it hashes for a plugin,
 * before doing the work. Calibrated to time: the metered AssemblyScript code
 * runs ~25,000 fuel per µs on the reference machine and node:crypto hashes a
 * block in ~0.15 µs, so host hashing costs a plugin's budget about what the
 * same time spent in Wasm would (PBKDF2 at 10,000 iterations: 80 M of the
 * default 100 M).
 */
export const CRYPTO_FUEL_PER_BLOCK = 4000;

/** PBKDF2 limits the host enforces (-1 otherwise). */
export const PBKDF2_MAX_KEY = 1024;
export const PBKDF2_MAX_ITERATIONS = 10_000_000;

/** Imports AssemblyScript's runtime may need, module "env". */
export const ENV_IMPORTS = ["memory", "abort", "trace", "seed"] as const;

export const LogLevel = { trace: 0, debug: 1, info: 2, warn: 3, error: 4 } as const;
