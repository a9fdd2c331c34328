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
import { JsonIndex, JsonType, jsonBool, jsonHas, jsonNumber, jsonString, jsonValid } from "./json.js";
import { filterCovers, topicCapture, topicLevel, topicLevelCount, topicMatches, topicMatchesTemplate, validTopicName } from "./topic.js";
import type { ClientCertificate, HookMessage } from "../message.js";
import type { CallState } from "../instance.js";

export { Verdict, ReturnCode, ConnectFlag, PersistKind };
export * from "./json.js";
export * from "./topic.js";
export { crypto } from "./crypto.js";
/** The connect hook's verified client certificate; the same fields as the AssemblyScript SDK's Certificate. */
export type Certificate = ClientCertificate;

/** Deny with an MQTT CONNACK return code (connect hook), or a plain deny elsewhere. */
export function deny(code: number = ReturnCode.NotAuthorized): number {
  return Verdict.Deny | ((code & 0xff) << 8);
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

  /** @internal */ bind(m: HookMessage, s: CallState): this {
    this.m = m;
    this.s = s;
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
  /**
   * connect: the client certificate the TLS listener verified (mutual TLS), or
   * null when the client presented none or did not connect over TLS. A copy:
   * changing it changes nothing for later plugins.
   */
  /** connect: whether certificate() would return one. */
  get hasCertificate(): boolean {
    return !!this.m.cert;
  }
  certificate(): Certificate | null {
    const cert = this.m.cert;
    return cert ? { ...cert, subjectAltNames: cert.subjectAltNames.slice() } : null;
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
  topicLevelCount(): number {
    return topicLevelCount(this.m.topic);
  }
  topicLevel(index: number): string {
    return topicLevel(this.m.topic, index);
  }
  topicCapture(filter: string, index: number): string | null {
    return topicCapture(filter, this.m.topic, index);
  }

  jsonValid(): boolean {
    return jsonValid(this.m.payload);
  }
  jsonHas(path: string): boolean {
    return jsonHas(this.m.payload, path);
  }
  jsonNumber(path: string, fallback: number): number {
    return jsonNumber(this.m.payload, path, fallback);
  }
  jsonString(path: string, fallback: string | null): string | null {
    return jsonString(this.m.payload, path, fallback);
  }
  jsonBool(path: string, fallback: boolean): boolean {
    return jsonBool(this.m.payload, path, fallback);
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
