/**
 * ABI v2's changes to MQTT 5 fields, validated exactly like a client's
 * properties would be ([MQTT-1.5.4-1..3] UTF-8 strings, §1.5.6 binary data,
 * [MQTT-3.3.2-13/14] the response topic is a topic name, §3.3.2.3.2 the
 * payload format is 0 or 1, §3.3.2.3.3 the expiry is a four-byte integer).
 * Used by the Wasm imports (v5-imports.ts) and the native SDK alike; fuel is
 * charged by the caller before it calls in here.
 */
import { isUtf8 } from "node:buffer";
import type { HookName } from "./abi.js";
import type { CallState } from "./instance.js";
import { carriesPayload, type HostCalls } from "./host-calls.js";
import { applyV5Changes, emptyV5, v5PropertyBytes, type UserProperty, type V5Changes } from "./message-v5.js";
import type { HookMessage } from "./message.js";
import { checkPacket, checkTopic, InvalidOutputError, type OutputRules } from "./output-rules.js";
import { MAX_REASON_STRING_BYTES } from "./reason-codes.js";

/** An MQTT UTF-8 string or binary field is at most this long (two-byte length prefix). */
export const MAX_FIELD_BYTES = 65535;
/** Largest Message Expiry Interval (a four-byte integer). */
export const MAX_MESSAGE_EXPIRY = 0xffff_ffff;

/** Decode a UTF-8 string field a plugin handed over; refused as a client's would be. */
export function decodeText(plugin: string, what: string, bytes: Uint8Array): string {
  if (bytes.length > MAX_FIELD_BYTES) throw new InvalidOutputError(plugin, `a ${what} of ${bytes.length} bytes exceeds ${MAX_FIELD_BYTES} (MQTT UTF-8 string)`);
  if (!isUtf8(bytes)) throw new InvalidOutputError(plugin, `a ${what} that is not well-formed UTF-8 [MQTT-1.5.4-1]`);
  const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("utf8");
  if (text.includes("\u0000")) throw new InvalidOutputError(plugin, `a ${what} containing U+0000 [MQTT-1.5.4-2]`);
  return text;
}

/**
 * Which hooks may change which v5 fields. publish, deliver and persist change
 * the PUBLISH. connect may change the CONNECT's user properties: later plugins
 * of the chain see them, and the broker keeps them as the connection's. Every
 * other change has no packet to go to — a SUBSCRIBE's properties end with it,
 * a CONNECT has no content type — and is refused where it is asked for
 * (invalid-output), rather than silently dropped. tick has no message: its
 * changes go nowhere and are ignored, as they always were.
 */
function checkEditable(plugin: string, state: CallState, what: string, userProperties: boolean): void {
  const hook = state.hook;
  if (hook === "publish" || hook === "deliver" || hook === "persist" || hook === "tick") return;
  if (hook === "connect" && userProperties) return;
  throw new InvalidOutputError(plugin, `the ${hook} hook cannot change ${what}: ${hook === "connect" ? "only user properties of a CONNECT can be changed" : `no packet carries it on from the ${hook} hook`}`);
}

/** The plugin's edits to the v5 fields, created on the first one. */
function changes(plugin: string, state: CallState, what: string, userProperties = false): V5Changes {
  checkEditable(plugin, state, what, userProperties);
  return (state.v5 ??= {});
}

/** The user properties as this call has left them so far (copied from the message on the first edit). */
function properties(plugin: string, state: CallState): UserProperty[] {
  const c = changes(plugin, state, "user properties", true);
  return (c.userProperties ??= (state.message?.v5?.userProperties ?? []).slice());
}

export function addUserProperty(plugin: string, state: CallState, name: string, value: string): void {
  properties(plugin, state).push([name, value]);
}

/** Replace every property called `name` by one with this value (added at the end when there was none). */
export function setUserProperty(plugin: string, state: CallState, name: string, value: string): void {
  const list = properties(plugin, state);
  const first = list.findIndex(([n]) => n === name);
  if (first === -1) {
    list.push([name, value]);
    return;
  }
  list[first] = [name, value];
  for (let i = list.length - 1; i > first; i--) if (list[i]![0] === name) list.splice(i, 1);
}

export function removeUserProperty(plugin: string, state: CallState, name: string): number {
  const list = properties(plugin, state);
  let removed = 0;
  for (let i = list.length - 1; i >= 0; i--) {
    if (list[i]![0] === name) {
      list.splice(i, 1);
      removed++;
    }
  }
  return removed;
}

export function setContentType(plugin: string, state: CallState, value: string | null): void {
  changes(plugin, state, "the content type").contentType = value;
}

export function setResponseTopic(plugin: string, rules: OutputRules, state: CallState, topic: string | null): void {
  // [MQTT-3.3.2-13/14] a UTF-8 topic name without wildcards
  if (topic !== null) checkTopic(plugin, rules, "publish", topic, Buffer.byteLength(topic), null);
  changes(plugin, state, "the response topic").responseTopic = topic;
}

export function setCorrelationData(plugin: string, state: CallState, data: Uint8Array | null): void {
  if (data !== null && data.length > MAX_FIELD_BYTES) throw new InvalidOutputError(plugin, `correlation data of ${data.length} bytes exceeds ${MAX_FIELD_BYTES}`);
  changes(plugin, state, "correlation data").correlationData = data === null ? null : Buffer.from(data);
}

export function setMessageExpiry(plugin: string, state: CallState, seconds: number): void {
  const c = changes(plugin, state, "the message expiry");
  if (seconds < 0) {
    c.messageExpiry = null;
    return;
  }
  if (!Number.isInteger(seconds) || seconds > MAX_MESSAGE_EXPIRY) throw new InvalidOutputError(plugin, `message expiry ${seconds} is not an integer from 0 to ${MAX_MESSAGE_EXPIRY}`);
  c.messageExpiry = seconds;
}

export function setPayloadFormat(plugin: string, state: CallState, format: number): void {
  const c = changes(plugin, state, "the payload format indicator");
  if (format < 0) {
    c.payloadFormat = null;
    return;
  }
  if (format !== 0 && format !== 1) throw new InvalidOutputError(plugin, `payload format indicator ${format} (must be 0 or 1)`);
  c.payloadFormat = format;
}

export function setReasonString(plugin: string, state: CallState, reason: string): void {
  if (Buffer.byteLength(reason) > MAX_REASON_STRING_BYTES) throw new InvalidOutputError(plugin, `a reason string over ${MAX_REASON_STRING_BYTES} bytes`);
  state.reasonString = reason;
}

/**
 * An extra publish carrying the current message's v5 properties
 * (publishWithProperties): capped and validated as `publish` is, its
 * properties counted in the packet size.
 */
export function publishWithProperties(calls: HostCalls, plugin: string, state: CallState, topic: string, topicBytes: number, payload: Uint8Array, qos: number, retain: boolean): void {
  const v5 = state.message?.v5;
  calls.publish(state, topicBytes, payload.length);
  calls.checkPublish(topic, topicBytes, payload.length + v5PropertyBytes(v5), qos);
  state.extras.push({ plugin, topic, payload: Buffer.from(payload), qos: qos as 0 | 1 | 2, retain, ...(v5 ? { v5 } : {}) });
}

/** Check a user property name or value, content type or reason string given as a JS string (native plugins). */
export function checkText(plugin: string, what: string, text: string): string {
  return decodeText(plugin, what, Buffer.from(text, "utf8"));
}

/**
 * Before a Continue's changes apply: the message with its changed properties
 * must still fit one PUBLISH (limits.maxPacketSize). connect: its user
 * properties apply as they are (checkEditable let nothing else through).
 */
export function checkFinalV5(plugin: string, rules: OutputRules, hook: HookName, msg: HookMessage, state: CallState): boolean {
  const c = state.v5;
  if (c === null) return false;
  if (hook === "connect") return c.userProperties !== undefined;
  if (!carriesPayload(hook)) return false;
  const probe = { v5: msg.v5 ?? emptyV5() };
  applyV5Changes(probe, c);
  const topic = state.topic ?? msg.topic;
  const payload = state.payload ?? msg.payload;
  checkPacket(plugin, rules, Buffer.byteLength(topic), payload.length + v5PropertyBytes(probe.v5), state.qos >= 0 ? state.qos : msg.qos);
  return true;
}
