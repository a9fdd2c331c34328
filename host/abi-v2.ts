/**
 * wasmq plugin ABI, version 2: what MQTT 5 adds to version 1 (host/abi.ts).
 * `plugins-as/sdk/abi.ts` mirrors it for plugins.
 *
 * A v2 plugin (its `wasmq_abi_version()` returns 2) gets a 72-byte header: the
 * 32 bytes of v1 unchanged, then the fields below. The body is v1's (client
 * id, username, password, peer, topic, payload) followed by the v5 byte
 * fields in V2_BODY_ORDER. A v1 plugin keeps getting the v1 record, byte for
 * byte, and never sees a v5 field.
 *
 * User properties are one packed blob, in the order the client sent them:
 * per property a u16 name length, a u16 value length (little-endian), then
 * the name and value bytes (UTF-8). A plugin walks it in place, allocating
 * nothing (MQTT strings are at most 65535 bytes, so u16 lengths suffice).
 *
 * Verdicts: the deny/drop code in bits 8..15 is a 3.1.1 return code (1..5,
 * as in v1) or an MQTT 5 reason code (0x80 and above). The broker answers v5
 * clients with the reason code (PUBACK/PUBREC, SUBACK, CONNACK) and 3.1.1
 * clients with the nearest return code (host/reason-codes.ts).
 */
export const HEADER_SIZE_V2 = 72;

/** Header field byte offsets after v1's 32 bytes. Lengths are u32, little-endian. */
export const FieldV2 = {
  contentTypeLen: 32,
  responseTopicLen: 36,
  correlationDataLen: 40,
  /** Byte length of the packed user-property blob. */
  userPropertiesLen: 44,
  /** Message Expiry Interval left, seconds (u32); valid when V5Presence.messageExpiry. */
  messageExpiry: 48,
  /** connect: the Session Expiry Interval the broker granted, seconds (u32). */
  sessionExpiry: 52,
  /** subscribe: the Subscription Identifier, 0 when none. */
  subscriptionIdentifier: 56,
  /** Number of user properties in the blob (u16). */
  userPropertyCount: 60,
  /** MQTT protocol level of the client: 3 (3.1), 4 (3.1.1) or 5. */
  protocolVersion: 62,
  /** Payload Format Indicator (0 bytes, 1 UTF-8); valid when V5Presence.payloadFormat. */
  payloadFormat: 63,
  /** Which optional v5 fields are present (V5Presence bits). */
  v5Presence: 64,
  /** subscribe: SubscriptionOption bits. */
  subscriptionOptions: 65,
  /** RecordFlag bits the host sets for this call (zero for modules without Feature bits). */
  recordFlags: 66,
  /**
   * Zero when each call starts; the one byte of the record a plugin may write,
   * to remember something for the rest of the call (the SDK: "the payload was
   * validated as JSON already").
   */
  callScratch: 67,
  /** Reserved, zero (the auth hook puts its state's length here: abi-auth.ts FieldAuth). */
  reserved: 68,
} as const;

/** `recordFlags` bits. */
export const RecordFlag = {
  /**
   * The payload's bytes are not in the record yet (its length and its space
   * are): the plugin calls `payload_fetch` before reading them, which writes
   * them in place and clears this bit. Only for modules with Feature.deferredPayload.
   */
  payloadDeferred: 1,
} as const;

/**
 * Optional export `wasmq_features: () -> i32`: what the module handles beyond
 * its ABI version. Modules without it get every record exactly as before.
 */
export const FEATURES_EXPORT = "wasmq_features";
export const Feature = {
  /** It fetches a deferred payload (RecordFlag.payloadDeferred) before reading it. */
  deferredPayload: 1,
} as const;

export const V5Presence = {
  contentType: 1,
  responseTopic: 2,
  correlationData: 4,
  messageExpiry: 8,
  payloadFormat: 16,
} as const;

/** subscribe hook: the subscription's options ([MQTT-3.8.3.1]). Retain Handling in bits 2..3. */
export const SubscriptionOption = { noLocal: 1, retainAsPublished: 2, retainHandlingShift: 2 } as const;

export const V2_BODY_ORDER = ["contentType", "responseTopic", "correlationData", "userProperties"] as const;

/**
 * Host imports added in v2 (module "wasmq"). Each is charged fuel per byte and
 * validated like client input (host/v5-changes.ts); a v1 plugin does not import them.
 */
export const V2_HOST_IMPORTS = [
  "user_property_add", // (namePtr, nameLen, valuePtr, valueLen) -> void
  "user_property_set", // (namePtr, nameLen, valuePtr, valueLen) -> void: replaces every property of that name by this one
  "user_property_remove", // (namePtr, nameLen) -> i32 properties removed
  "set_content_type", // (ptr, len) -> void; len < 0 removes it
  "set_response_topic", // (ptr, len) -> void; len < 0 removes it; a wildcard or invalid topic traps
  "set_correlation_data", // (ptr, len) -> void; len < 0 removes it
  "set_message_expiry", // (seconds: f64) -> void; < 0 removes it; above 4294967295 traps
  "set_payload_format", // (format: i32) -> void; 0 or 1, < 0 removes it
  "set_reason_string", // (ptr, len) -> void: the reason string sent with a refusal to v5 clients
  // As publish, and the extra message carries the current message's MQTT 5 properties
  // (user properties, content type, payload format, response topic, correlation data, expiry).
  "publish_with_properties", // (topicPtr, topicLen, payloadPtr, payloadLen, qos, retain) -> i32 (0 ok, -1 bad qos)
  // Added to v2 without a version bump (modules that never call it do not import it):
  "payload_fetch", // () -> i32: writes a deferred payload into the record (RecordFlag.payloadDeferred); the bytes it copied
] as const;

/** Base fuel of each v2 import, charged before any work; bytes are charged on top (host-calls.ts FUEL_PER_BYTE). */
export const V2_HOST_CALL_FUEL = {
  user_property_add: 1_000,
  user_property_set: 1_000,
  user_property_remove: 1_000,
  set_content_type: 1_000,
  set_response_topic: 1_000,
  set_correlation_data: 1_000,
  set_message_expiry: 500,
  set_payload_format: 500,
  set_reason_string: 1_000,
  publish_with_properties: 25_000,
  payload_fetch: 500,
} as const;
