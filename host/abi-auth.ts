/**
 * wasmq plugin ABI v2, enhanced authentication (MQTT 5.0 section 4.12): what a
 * plugin exports and imports to run a challenge/response exchange such as
 * SCRAM-SHA-256. Additive: a v1 or v2 module that exports no `onAuth` and
 * imports none of AUTH_HOST_IMPORTS loads and behaves as before.
 * `plugins-as/sdk/abi.ts` mirrors it for plugins.
 *
 * A plugin declares the Authentication Methods it runs from `init`
 * (`auth_method`); a CONNECT (or a re-authentication) naming one of them goes to
 * the first plugin in chain order that declared it, through `onAuth(record)`.
 * The record is the v2 record of the connect hook, with:
 *   topic    the Authentication Method
 *   payload  the Authentication Data of the CONNECT or AUTH packet (may be empty)
 *   flags    the step (AuthStep)
 *   the exchange state: the bytes the plugin kept with `set_auth_state` during
 *   an earlier step of this connection (empty at first), after the user
 *   properties; its length at header offset 68 (FieldAuth.authStateLen,
 *   reserved and zero in every other hook).
 * The host keeps the state per connection, outside the plugin: it survives a
 * plugin reload or a trapped instance, and dies with the connection.
 *
 * v2-r4: a step that returns Success may name the identity the client
 * authenticated as (`set_auth_identity`); the broker makes it the client's
 * username (what ACLs, deliver records, the admin API and logs see).
 */
export const AUTH_EXPORT = "onAuth";

/** `flags` of an auth record: which packet started this step. */
export const AuthStep = {
  /** CONNECT with an Authentication Method. */
  start: 0,
  /** AUTH, reason code 0x18 Continue authentication. */
  continue: 1,
  /** AUTH, reason code 0x19 Re-authenticate (after CONNACK). */
  reauthenticate: 2,
} as const;

/**
 * Low byte of onAuth's return value. Failure carries the reason code in bits
 * 8..15 (a CONNACK code, 0 = 0x87 Not authorized); any other low byte is a
 * Failure with 0x87.
 */
export const AuthResult = {
  /** Authenticated: CONNACK 0x00 (re-authentication: AUTH 0x00), with the data set by set_auth_data. */
  Success: 0,
  Failure: 2,
  /** Another round: AUTH 0x18 Continue authentication with the data set by set_auth_data. */
  Continue: 3,
} as const;

/** Header offset (u32) of the exchange state's length in an auth record; reserved (zero) in the other hooks. */
export const FieldAuth = { authStateLen: 68 } as const;

/** Host imports for enhanced authentication (module "wasmq"). */
export const AUTH_HOST_IMPORTS = [
  "auth_method", // (ptr, len) -> void: init only; declares an Authentication Method this plugin runs
  "set_auth_data", // (ptr, len) -> void: the Authentication Data sent with this step's answer
  "set_auth_state", // (ptr, len) -> void: the state given back in this connection's next auth record (len 0 clears it)
  "random_bytes", // (ptr, len) -> i32: len bytes from the host's CSPRNG at ptr; 0 ok, -1 len outside 1..MAX_RANDOM_BYTES
  "set_auth_identity", // (ptr, len) -> void (v2-r4): on Success, the user the client authenticated as (UTF-8, non-empty)
  "channel_binding", // (kind, outPtr, outCap) -> i32 (v2-r4): the connection's channel binding data (ChannelBinding); its length, copied when it fits; -1 none, -2 unknown kind
] as const;

export const AUTH_HOST_CALL_FUEL = {
  auth_method: 1_000,
  set_auth_data: 1_000,
  set_auth_state: 1_000,
  random_bytes: 1_000,
  set_auth_identity: 1_000,
  channel_binding: 500,
} as const;

/** `channel_binding` kinds (RFC 5056 channel binding types). */
export const ChannelBinding = {
  /** RFC 9266: 32 bytes exported with label "EXPORTER-Channel-Binding" and an empty context; TLS 1.3 connections only. */
  tlsExporter: 0,
} as const;
/** channel_binding's answer when the connection has no such binding (not TLS 1.3, or outside the auth hook). */
export const NO_CHANNEL_BINDING = -1;
/** channel_binding's answer for a kind this host does not know (a plugin built for a later host). */
export const UNKNOWN_CHANNEL_BINDING = -2;

/** Most random bytes one random_bytes call returns. */
export const MAX_RANDOM_BYTES = 1024;
/** Largest exchange state a plugin may keep per connection. */
export const MAX_AUTH_STATE_BYTES = 65535;
/** Authentication Data is MQTT Binary Data (two-byte length). */
export const MAX_AUTH_DATA_BYTES = 65535;
/** The authenticated identity becomes the client's username: an MQTT UTF-8 string. */
export const MAX_AUTH_IDENTITY_BYTES = 65535;
