/**
 * The native (TypeScript) plugin SDK. It mirrors `plugins-as/sdk/index.ts`
 * name for name, so a plugin and its native twin read the same:
 *
 *   export function init(config: Config): boolean
 *   export function onConnect(msg: Message): number     // and onSubscribe, onPublish, onDeliver, onPersist
 *   export function onTick(nowMs: number): void
 */
import { ConnectFlag, PersistKind, ReturnCode, Verdict } from "../abi.js";
import { activeCall } from "./context.js";
import { JsonIndex, JsonType, jsonBool, jsonHas, jsonNumber, jsonString, jsonTrustNext, jsonValid } from "./json.js";
import { filterCovers, topicCapture, topicLevel, topicLevelCount, topicMatches, topicMatchesTemplate, validTopicName } from "./topic.js";
import { filterCoversTemplate } from "./topic-cover.js";
import type { ClientCertificate, HookMessage } from "../message.js";
import type { CallState } from "../instance.js";
import { SubscriptionOption } from "../abi-v2.js";
import { ReasonCode } from "../reason-codes.js";
import * as v5 from "../v5-changes.js";

export { Verdict, ReturnCode, ConnectFlag, PersistKind, ReasonCode };
export * from "./json.js";
export * from "./topic.js";
export { filterCoversTemplate } from "./topic-cover.js";
export { crypto } from "./crypto.js";
export { auth, AuthResult, AuthStep, ChannelBinding } from "./auth.js";
export { Hook, declareIdle } from "./idle.js";
export { base64 } from "./base64.js";
/** The connect hook's verified client certificate; the same fields as the AssemblyScript SDK's Certificate. */
export type Certificate = ClientCertificate;

/** Deny with an MQTT CONNACK return code (connect hook), or a plain deny elsewhere. */
export function deny(code: number = ReturnCode.NotAuthorized): number {
  return Verdict.Deny | ((code & 0xff) << 8);
}

/**
 * Drop the message; with an MQTT 5 reason code (ABI v2), a v5 publisher's
 * PUBACK/PUBREC carries it (e.g. ReasonCode.PayloadFormatInvalid), while a
 * 3.1.1 publisher is acknowledged as usual.
 */
export function drop(code: number = 0): number {
  return Verdict.Drop | ((code & 0xff) << 8);
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function toBytes(value: Uint8Array | string): Uint8Array {
  return typeof value === "string" ? encoder.encode(value) : value;
}

/** The message of the current hook call; changes take effect when the hook returns. */
export class Message {
  /** @internal */ m!: HookMessage;
  /** @internal */ s!: CallState;

  /** Set once this call's payload was validated as JSON (the AssemblyScript SDK's callScratch). */
  private jsonChecked = false;

  /** @internal */ bind(m: HookMessage, s: CallState): this {
    this.m = m;
    this.s = s;
    this.jsonChecked = false;
    return this;
  }

  get topic(): string {
    return this.m.topic;
  }
  get payload(): Uint8Array {
    return this.m.payload;
  }
  get payloadString(): string {
    return decoder.decode(this.m.payload);
  }
  get payloadLength(): number {
    return this.m.payload.length;
  }
  get clientId(): string {
    return this.m.clientId;
  }
  get username(): string {
    return this.m.username ?? "";
  }
  get hasUsername(): boolean {
    return this.m.username !== null;
  }
  get password(): Uint8Array {
    return this.m.password ?? new Uint8Array(0);
  }
  get hasPassword(): boolean {
    return this.m.password !== null;
  }
  /** deliver: the publisher's client id. */
  get peer(): string {
    return this.m.peer;
  }
  get qos(): number {
    return this.m.qos;
  }
  get retain(): boolean {
    return this.m.retain;
  }
  get dup(): boolean {
    return this.m.dup;
  }
  get flags(): number {
    return this.m.flags;
  }
  /** connect: whether certificate() would return one. */
  get hasCertificate(): boolean {
    return !!this.m.cert;
  }
  /**
   * connect: the client certificate the TLS listener verified (mutual TLS), or
   * null when the client presented none or did not connect over TLS. A copy:
   * changing it changes nothing for later plugins.
   */
  certificate(): Certificate | null {
    const cert = this.m.cert;
    return cert ? { ...cert, subjectAltNames: cert.subjectAltNames.slice() } : null;
  }

  // ---- ABI v2: MQTT 5 fields (absent on 3.1.1 messages) ----

  /** MQTT protocol level of the client: 3, 4 (3.1.1) or 5. */
  get protocolVersion(): number {
    return this.m.v5?.protocolVersion ?? 4;
  }
  get userPropertyCount(): number {
    return this.m.v5?.userProperties.length ?? 0;
  }
  userPropertyName(index: number): string {
    return this.m.v5?.userProperties[index]?.[0] ?? "";
  }
  userPropertyValue(index: number): string {
    return this.m.v5?.userProperties[index]?.[1] ?? "";
  }
  /** The first user property called `name`, or null. */
  userProperty(name: string): string | null {
    return this.m.v5?.userProperties.find(([n]) => n === name)?.[1] ?? null;
  }
  hasUserProperty(name: string): boolean {
    return this.userProperty(name) !== null;
  }
  userPropertyEquals(name: string, value: string): boolean {
    return this.m.v5?.userProperties.some(([n, v]) => n === name && v === value) ?? false;
  }
  get hasContentType(): boolean {
    return (this.m.v5?.contentType ?? null) !== null;
  }
  get contentType(): string | null {
    return this.m.v5?.contentType ?? null;
  }
  get hasResponseTopic(): boolean {
    return (this.m.v5?.responseTopic ?? null) !== null;
  }
  get responseTopic(): string | null {
    return this.m.v5?.responseTopic ?? null;
  }
  get hasCorrelationData(): boolean {
    return (this.m.v5?.correlationData ?? null) !== null;
  }
  /** A copy. */
  get correlationData(): Uint8Array | null {
    const d = this.m.v5?.correlationData ?? null;
    return d === null ? null : Uint8Array.from(d);
  }
  /** Payload Format Indicator: 0 bytes, 1 UTF-8, -1 absent. */
  get payloadFormat(): number {
    return this.m.v5?.payloadFormat ?? -1;
  }
  /** Message Expiry Interval left, seconds; -1 when the message does not expire. */
  get messageExpiry(): number {
    return this.m.v5?.messageExpiry ?? -1;
  }
  /** connect: the Session Expiry Interval granted, seconds. */
  get sessionExpiry(): number {
    return this.m.v5?.sessionExpiry ?? 0;
  }
  /** subscribe: No Local, Retain As Published, Retain Handling (0..2), Subscription Identifier (0 none). */
  get noLocal(): boolean {
    return ((this.m.v5?.subscriptionOptions ?? 0) & SubscriptionOption.noLocal) !== 0;
  }
  get retainAsPublished(): boolean {
    return ((this.m.v5?.subscriptionOptions ?? 0) & SubscriptionOption.retainAsPublished) !== 0;
  }
  get retainHandling(): number {
    return ((this.m.v5?.subscriptionOptions ?? 0) >> SubscriptionOption.retainHandlingShift) & 3;
  }
  get subscriptionIdentifier(): number {
    return this.m.v5?.subscriptionIdentifier ?? 0;
  }

  addUserProperty(name: string, value: string): void {
    const { plugin } = names();
    v5.addUserProperty(plugin, this.s, v5.checkText(plugin, "user property name", name), v5.checkText(plugin, "user property value", value));
  }
  /** Replace every property called `name` by this one. */
  setUserProperty(name: string, value: string): void {
    const { plugin } = names();
    v5.setUserProperty(plugin, this.s, v5.checkText(plugin, "user property name", name), v5.checkText(plugin, "user property value", value));
  }
  /** Remove every property called `name`; returns how many there were. */
  removeUserProperty(name: string): number {
    const { plugin } = names();
    return v5.removeUserProperty(plugin, this.s, v5.checkText(plugin, "user property name", name));
  }
  /** null removes it. */
  setContentType(value: string | null): void {
    const { plugin } = names();
    v5.setContentType(plugin, this.s, value === null ? null : v5.checkText(plugin, "content type", value));
  }
  setResponseTopic(topic: string | null): void {
    const { plugin, rules } = names();
    v5.setResponseTopic(plugin, rules, this.s, topic);
  }
  setCorrelationData(data: Uint8Array | string | null): void {
    v5.setCorrelationData(names().plugin, this.s, data === null ? null : toBytes(data));
  }
  /** Seconds; -1 removes it. */
  setMessageExpiry(seconds: number): void {
    v5.setMessageExpiry(names().plugin, this.s, seconds);
  }
  /** 0 or 1; -1 removes it. */
  setPayloadFormat(format: number): void {
    v5.setPayloadFormat(names().plugin, this.s, format);
  }
  /** The reason string a v5 client gets with this call's refusal (PUBACK, SUBACK, CONNACK). */
  setReasonString(reason: string): void {
    const { plugin } = names();
    v5.setReasonString(plugin, this.s, v5.checkText(plugin, "reason string", reason));
  }

  // ---- enhanced authentication (onAuth, host/abi-auth.ts) ----

  /** auth: the Authentication Method (the record's topic). */
  get authenticationMethod(): string {
    return this.m.topic;
  }
  /** auth: the Authentication Data of the CONNECT or AUTH packet (the record's payload). */
  get authenticationData(): Uint8Array {
    return this.m.payload;
  }
  /** auth: AuthStep.start, continue or reauthenticate. */
  get authStep(): number {
    return this.m.flags;
  }
  /** auth: what the plugin kept with auth.keepState in an earlier step of this connection (a copy; empty when none). */
  get authState(): Uint8Array {
    return Uint8Array.from(this.m.authState ?? []);
  }

  topicEquals(topic: string): boolean {
    return this.m.topic === topic;
  }
  topicMatches(filter: string): boolean {
    return topicMatches(filter, this.m.topic);
  }
  /** topicMatches with "%u" / "%c" in the filter standing for this client's username / client id (see topicMatchesTemplate). */
  topicMatchesTemplate(filter: string): boolean {
    return topicMatchesTemplate(filter, this.m.topic, this.m.username, this.m.clientId);
  }
  /** subscribe hook: is this subscription filter within `filter` (see filterCovers)? */
  topicWithin(filter: string): boolean {
    return filterCovers(filter, this.m.topic);
  }
  /** topicWithin with "%u" / "%c" in the filter standing for this client's username / client id (see filterCoversTemplate). */
  topicWithinTemplate(filter: string): boolean {
    return filterCoversTemplate(filter, this.m.topic, this.m.username, this.m.clientId);
  }
  topicLevelCount(): number {
    return topicLevelCount(this.m.topic);
  }
  topicLevel(index: number): string {
    return topicLevel(this.m.topic, index);
  }
  topicCapture(filter: string, index: number): string | null {
    return topicCapture(filter, this.m.topic, index);
  }

  /** The payload for the json* readers: the first in a call validates it, later ones reuse that (one pass per call). */
  private jsonPayload(): Uint8Array {
    if (this.jsonChecked) jsonTrustNext();
    else this.jsonChecked = true;
    return this.m.payload;
  }
  jsonValid(): boolean {
    return jsonValid(this.jsonPayload());
  }
  jsonHas(path: string): boolean {
    return jsonHas(this.jsonPayload(), path);
  }
  jsonNumber(path: string, fallback: number): number {
    return jsonNumber(this.jsonPayload(), path, fallback);
  }
  jsonString(path: string, fallback: string | null): string | null {
    return jsonString(this.jsonPayload(), path, fallback);
  }
  jsonBool(path: string, fallback: boolean): boolean {
    return jsonBool(this.jsonPayload(), path, fallback);
  }

  setTopic(topic: string): void {
    activeCall().calls.checkSetTopic(this.s, topic, Buffer.byteLength(topic));
    this.s.topic = topic;
  }
  setPayload(payload: Uint8Array): void {
    activeCall().calls.checkSetPayload(this.s, payload.length);
    this.s.payload = Buffer.from(payload);
  }
  setPayloadString(payload: string): void {
    activeCall().calls.checkSetPayload(this.s, Buffer.byteLength(payload));
    this.s.payload = Buffer.from(payload, "utf8");
  }
  setQos(qos: number): void {
    this.s.qos = Math.max(0, Math.min(2, qos));
  }
  setRetain(retain: boolean): void {
    this.s.retain = retain ? 1 : 0;
  }
  /** persist: keep the message at most this many seconds (0 = no expiry). */
  setTtl(seconds: number): void {
    this.s.ttlSec = Math.max(0, Math.floor(seconds));
  }
}

function names(): { plugin: string; rules: import("../output-rules.js").OutputRules } {
  const { services } = activeCall();
  return { plugin: services.name, rules: services.output };
}

/** The plugin's `config` object from the broker config, read by path ("rules.0.topic"). */
export class Config {
  private readonly index: JsonIndex;
  constructor(bytes: Uint8Array) {
    // init reads the config many times: index it once (see JsonIndex).
    this.index = new JsonIndex(bytes);
  }
  has(path: string): boolean {
    return this.index.has(path);
  }
  number(path: string, fallback: number): number {
    return this.index.number(path, fallback);
  }
  string(path: string, fallback: string): string {
    return this.index.string(path, fallback) ?? fallback;
  }
  bool(path: string, fallback: boolean): boolean {
    return this.index.bool(path, fallback);
  }
  /** Array length or object member count at path, -1 when neither. */
  length(path: string): number {
    return this.index.length(path);
  }
  /** Length of the array at path: 0 when absent, -1 when present but not an array. */
  arrayLength(path: string): number {
    const type = this.index.type(path);
    if (type === JsonType.Missing) return 0;
    return type === JsonType.Array ? this.index.length(path) : -1;
  }
}

export function now(): number {
  return activeCall().services.now();
}

/**
 * Ask the broker to publish a message (routing, fan-out, tick output). Capped per call; an
 * invalid topic or a message over maxPacketSize throws (trap kind "invalid-output").
 * False only for a QoS outside 0..2.
 */
export function publish(topic: string, payload: Uint8Array | string, qos: number = 0, retain: boolean = false): boolean {
  if (qos < 0 || qos > 2) return false;
  const { services, state, calls } = activeCall();
  const bytes = toBytes(payload);
  const topicBytes = Buffer.byteLength(topic);
  calls.publish(state, topicBytes, bytes.length);
  calls.checkPublish(topic, topicBytes, bytes.length, qos);
  state.extras.push({ plugin: services.name, topic, payload: Buffer.from(bytes), qos: qos as 0 | 1 | 2, retain });
  return true;
}

/** As publish, and the message carries the current message's MQTT 5 properties (ABI v2). */
export function publishWithProperties(topic: string, payload: Uint8Array | string, qos: number = 0, retain: boolean = false): boolean {
  if (qos < 0 || qos > 2) return false;
  const { services, state, calls } = activeCall();
  v5.publishWithProperties(calls, services.name, state, topic, Buffer.byteLength(topic), toBytes(payload), qos, retain);
  return true;
}

function emit(level: number, message: string): void {
  const { services, state, calls } = activeCall();
  // The line cap counts calls; a native string is cut at the same length a Wasm line is.
  const keep = calls.log(state, message.length);
  services.log(level, keep < message.length ? `${message.slice(0, keep)} … (cut at ${keep})` : message);
}

export const log = {
  trace: (message: string): void => emit(0, message),
  debug: (message: string): void => emit(1, message),
  info: (message: string): void => emit(2, message),
  warn: (message: string): void => emit(3, message),
  error: (message: string): void => emit(4, message),
};

/** The plugin's own durable key-value namespace. */
export const kv = {
  get(key: string): Uint8Array | null {
    const { services } = activeCall();
    return services.kv.get(services.name, encoder.encode(key)) ?? null;
  },
  getString(key: string, fallback: string | null): string | null {
    const v = kv.get(key);
    return v === null ? fallback : decoder.decode(v);
  },
  getNumber(key: string, fallback: number): number {
    const v = kv.get(key);
    return v === null || v.length !== 8 ? fallback : Buffer.from(v.buffer, v.byteOffset, 8).readDoubleLE(0);
  },
  /** False when a limit refused the value (logged by the host). */
  put(key: string, value: Uint8Array | string): boolean {
    const { services } = activeCall();
    try {
      services.kv.put(services.name, encoder.encode(key), toBytes(value));
      return true;
    } catch (err) {
      services.log(3, `kv put refused: ${(err as Error).message}`);
      return false;
    }
  },
  putNumber(key: string, value: number): boolean {
    const b = Buffer.alloc(8);
    b.writeDoubleLE(value, 0);
    return kv.put(key, b);
  },
  remove(key: string): boolean {
    const { services } = activeCall();
    return services.kv.delete(services.name, encoder.encode(key));
  },
};
