/**
 * The Wasm side of ABI v2: the MQTT 5 part of the record (header bytes 32..71
 * and the byte fields after the payload, host/abi-v2.ts) and the v2 host
 * imports. Each import charges fuel per byte before it copies or decodes
 * anything and validates like client input (v5-changes.ts).
 */
import { FieldV2, HEADER_SIZE_V2, SubscriptionOption, V5Presence } from "./abi-v2.js";
import { FieldAuth } from "./abi-auth.js";
import type { HostCalls } from "./host-calls.js";
import type { CallState } from "./instance.js";
import type { MessageV5 } from "./message-v5.js";
import { decodeTopic, type OutputRules } from "./output-rules.js";
import * as v5 from "./v5-changes.js";
import { writeUtf8 } from "./utf8.js";

export { HEADER_SIZE_V2, SubscriptionOption };

/** Upper bound of the bytes the v5 fields take after the payload (UTF-16 units × 3 for UTF-8). */
export function v5RecordBytes(m: MessageV5 | undefined): number {
  if (!m) return 0;
  let n = 3 * ((m.contentType?.length ?? 0) + (m.responseTopic?.length ?? 0)) + (m.correlationData?.length ?? 0);
  // Indexed, not for-of with destructuring: that allocated an iterator on every call (per message, per plugin).
  const up = m.userProperties;
  for (let i = 0; i < up.length; i++) n += 4 + 3 * (up[i]![0].length + up[i]![1].length);
  return n;
}

/** Zero the v2 header (a message without v5 fields) but for the protocol level. */
function writeEmpty(buf: Buffer, ptr: number, version: number): void {
  for (let i = ptr + FieldV2.contentTypeLen; i < ptr + HEADER_SIZE_V2; i++) buf[i] = 0;
  buf[ptr + FieldV2.protocolVersion] = version;
}

/** A message without any v5 field: its v2 header is zero but for the protocol level. */
export function isBareV5(m: MessageV5): boolean {
  return m.userProperties.length === 0 && m.contentType === null && m.responseTopic === null && m.correlationData === null && m.messageExpiry === null && m.payloadFormat === null && m.sessionExpiry === 0 && m.subscriptionOptions === 0 && m.subscriptionIdentifier === 0;
}

/** Write the v2 header fields at `ptr` and the v5 byte fields at `off` (just after the payload); returns where they end. */
export function writeV5Record(buf: Buffer, ptr: number, off: number, m: MessageV5 | undefined): number {
  if (!m) {
    writeEmpty(buf, ptr, 4);
    return off;
  }
  if (isBareV5(m)) {
    writeEmpty(buf, ptr, m.protocolVersion);
    return off;
  }
  return writeFields(buf, ptr, off, m);
}

/**
 * A separate function so that the common call above (a message without v5
 * fields) does not allocate the closure context `text` needs: V8 creates it
 * on entry to the function that declares the closure, before any early return.
 */
function writeFields(buf: Buffer, ptr: number, off: number, m: MessageV5): number {
  let presence = 0;
  const text = (s: string | null, field: number, bit: number): void => {
    const n = s === null ? 0 : writeUtf8(buf, s, off);
    if (s !== null) presence |= bit;
    buf.writeUInt32LE(n, ptr + field);
    off += n;
  };
  text(m.contentType, FieldV2.contentTypeLen, V5Presence.contentType);
  text(m.responseTopic, FieldV2.responseTopicLen, V5Presence.responseTopic);
  const data = m.correlationData;
  if (data !== null) {
    presence |= V5Presence.correlationData;
    buf.set(data, off);
    off += data.length;
  }
  buf.writeUInt32LE(data?.length ?? 0, ptr + FieldV2.correlationDataLen);
  const start = off;
  for (const [name, value] of m.userProperties) {
    const nameLen = writeUtf8(buf, name, off + 4);
    const valueLen = writeUtf8(buf, value, off + 4 + nameLen);
    buf.writeUInt16LE(nameLen, off);
    buf.writeUInt16LE(valueLen, off + 2);
    off += 4 + nameLen + valueLen;
  }
  buf.writeUInt32LE(off - start, ptr + FieldV2.userPropertiesLen);
  if (m.messageExpiry !== null) presence |= V5Presence.messageExpiry;
  buf.writeUInt32LE(m.messageExpiry ?? 0, ptr + FieldV2.messageExpiry);
  buf.writeUInt32LE(m.sessionExpiry, ptr + FieldV2.sessionExpiry);
  buf.writeUInt32LE(m.subscriptionIdentifier, ptr + FieldV2.subscriptionIdentifier);
  buf.writeUInt16LE(m.userProperties.length, ptr + FieldV2.userPropertyCount);
  buf[ptr + FieldV2.protocolVersion] = m.protocolVersion;
  if (m.payloadFormat !== null) presence |= V5Presence.payloadFormat;
  buf[ptr + FieldV2.payloadFormat] = m.payloadFormat ?? 0;
  buf[ptr + FieldV2.v5Presence] = presence;
  buf[ptr + FieldV2.subscriptionOptions] = m.subscriptionOptions;
  // recordFlags and callScratch start at zero every call (the host sets flags after), then reserved.
  for (let i = ptr + FieldV2.recordFlags; i < ptr + HEADER_SIZE_V2; i++) buf[i] = 0;
  return off;
}

/** auth hook: the exchange state after the v5 fields, its length in the reserved header bytes (abi-auth.ts). */
export function writeAuthState(buf: Buffer, ptr: number, off: number, state: Uint8Array | null | undefined): void {
  const n = state?.length ?? 0;
  if (n > 0) buf.set(state!, off);
  buf.writeUInt32LE(n, ptr + FieldAuth.authStateLen);
}

interface ImportContext {
  plugin: string;
  rules: OutputRules;
  calls(): HostCalls;
  state(): CallState;
  /** A view of the plugin's memory (bounds-checked). */
  bytes(ptr: number, len: number): Buffer;
}

/** The v2 host imports, module "wasmq". */
export function v5Imports(ctx: ImportContext): Record<string, (...args: number[]) => number | void> {
  const { plugin } = ctx;
  const text = (what: string, ptr: number, len: number) => v5.decodeText(plugin, what, ctx.bytes(ptr, len));
  return {
    user_property_add(np, nl, vp, vl) {
      ctx.calls().charge("user_property_add", nl + vl);
      v5.addUserProperty(plugin, ctx.state(), text("user property name", np, nl), text("user property value", vp, vl));
    },
    user_property_set(np, nl, vp, vl) {
      ctx.calls().charge("user_property_set", nl + vl);
      v5.setUserProperty(plugin, ctx.state(), text("user property name", np, nl), text("user property value", vp, vl));
    },
    user_property_remove(np, nl) {
      ctx.calls().charge("user_property_remove", nl);
      return v5.removeUserProperty(plugin, ctx.state(), text("user property name", np, nl));
    },
    set_content_type(ptr, len) {
      ctx.calls().charge("set_content_type", Math.max(0, len));
      v5.setContentType(plugin, ctx.state(), len < 0 ? null : text("content type", ptr, len));
    },
    set_response_topic(ptr, len) {
      ctx.calls().charge("set_response_topic", Math.max(0, len));
      v5.setResponseTopic(plugin, ctx.rules, ctx.state(), len < 0 ? null : decodeTopic(plugin, ctx.bytes(ptr, len)));
    },
    set_correlation_data(ptr, len) {
      ctx.calls().charge("set_correlation_data", Math.max(0, len));
      v5.setCorrelationData(plugin, ctx.state(), len < 0 ? null : ctx.bytes(ptr, len));
    },
    set_message_expiry(seconds) {
      ctx.calls().charge("set_message_expiry");
      v5.setMessageExpiry(plugin, ctx.state(), seconds);
    },
    set_payload_format(format) {
      ctx.calls().charge("set_payload_format");
      v5.setPayloadFormat(plugin, ctx.state(), format);
    },
    publish_with_properties(tp, tl, pp, pl, qos, retain) {
      if (qos < 0 || qos > 2) return -1;
      ctx.calls().charge("publish_with_properties", tl + pl);
      const topic = decodeTopic(plugin, ctx.bytes(tp, tl));
      v5.publishWithProperties(ctx.calls(), plugin, ctx.state(), topic, tl, ctx.bytes(pp, pl), qos, retain !== 0);
      return 0;
    },
    set_reason_string(ptr, len) {
      ctx.calls().charge("set_reason_string", len);
      v5.setReasonString(plugin, ctx.state(), text("reason string", ptr, len));
    },
  };
}
