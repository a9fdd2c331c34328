/**
 * Key layout and stored record shapes of the LMDB persistence.
 *
 * Key layout (all sub-databases use binary keys):
 *   clientPrefix(id) = u16 BE byte length + UTF-8 id   (ids > 400 bytes: 0xFFFF + sha256)
 *   subs      clientPrefix + topic (topics > 1000 bytes: 0x00 + sha256)  -> { c, t, s }
 *   outgoing  clientPrefix + u64 BE seq                                   -> { c, p, e? }
 *   incoming  clientPrefix + u32 BE messageId                             -> packet
 *   wills     clientPrefix                                                -> packet
 *   retained  topic (topics > 1500 bytes: 0x00 + sha256)                  -> { p, e? }
 *   retained-ttl / outgoing-ttl  u64 BE expiresAt + key of the record      -> 1
 * MQTT topics cannot contain U+0000, so the 0x00 marker is unambiguous; the
 * length prefix keeps one client's key range from containing another's.
 */
import { createHash } from "node:crypto";
import type { StoredPacket } from "./aedes-parts.js";
import type { Unwritten } from "./unwritten.js";
import type { CounterIndex } from "./counter-index.js";
import type { AckPace } from "./ack-pace.js";

export const MAX_CLIENT_ID_KEY = 400;
export const MAX_SUB_TOPIC_KEY = 1000;
export const MAX_RETAINED_TOPIC_KEY = 1500;
/**
 * The data format this code writes. 2: a stored packet's `properties.userProperties`
 * may be the ordered form (a list of single-entry objects, wire order kept:
 * broker/protocol/mqtt5/user-properties.ts), which a format-1 reader would show
 * plugins as properties named "0", "1", …; so a format-2 directory is refused
 * by older versions. Format 1 records are read as they are (the grouped form is
 * still valid), and opening a format-1 directory marks it 2.
 */
export const FORMAT_VERSION = 2;
/** Older formats this code reads unchanged. */
export const READABLE_FORMATS: readonly number[] = [1];

export function sha256(data: Buffer): Buffer {
  return createHash("sha256").update(data).digest();
}

export function clientPrefix(clientId: string): Buffer {
  const id = Buffer.from(String(clientId), "utf8");
  if (id.length > MAX_CLIENT_ID_KEY) return Buffer.concat([Buffer.from([0xff, 0xff]), sha256(id)]);
  const out = Buffer.allocUnsafe(2 + id.length);
  out.writeUInt16BE(id.length, 0);
  id.copy(out, 2);
  return out;
}

export function topicKeyPart(topic: string, max: number): Buffer {
  const t = Buffer.from(String(topic), "utf8");
  if (t.length > max || t.length === 0) return Buffer.concat([Buffer.from([0]), sha256(t)]);
  return t;
}

export function u64(n: number): Buffer {
  const b = Buffer.allocUnsafe(8);
  b.writeUInt32BE(Math.floor(n / 0x100000000), 0);
  b.writeUInt32BE(n >>> 0, 4);
  return b;
}
export function readU64(b: Uint8Array, offset: number): number {
  const buf = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  return buf.readUInt32BE(offset) * 0x100000000 + buf.readUInt32BE(offset + 4);
}

/** Smallest key greater than every key starting with `prefix`. */
export function prefixEnd(prefix: Buffer): Buffer | undefined {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i] !== 0xff) {
      end[i]++;
      return end.subarray(0, i + 1);
    }
  }
  return undefined; // all 0xff: up to the end of the database
}

export function ttlKey(expiresAt: number, key: Buffer): Buffer {
  return Buffer.concat([u64(expiresAt), key]);
}

export function payloadLength(payload: unknown): number {
  if (payload === undefined || payload === null) return 0;
  if (typeof payload === "string") return payload.length;
  if (typeof payload === "object" && "length" in (payload as object)) return (payload as { length: number }).length;
  return 1;
}

/** Own enumerable data properties only (aedes hangs e.g. `writeCallback` on packets). */
export function plainPacket(packet: object): StoredPacket {
  const out: StoredPacket = {};
  for (const [k, v] of Object.entries(packet)) {
    if (typeof v !== "function" && typeof v !== "symbol") out[k] = v;
  }
  return out;
}

export function literalPrefix(pattern: string): { exact: boolean; wildcardFirst: boolean; prefix: string } {
  const levels = pattern.split("/");
  const literal: string[] = [];
  for (const level of levels) {
    // no trailing "/": "a/b/#" also matches "a/b" itself (the matcher filters the rest)
    if (level === "+" || level === "#") {
      return { exact: false, wildcardFirst: literal.length === 0, prefix: literal.join("/") };
    }
    literal.push(level);
  }
  return { exact: true, wildcardFirst: false, prefix: pattern };
}

export const QLOBBER_OPTIONS = { wildcard_one: "+", wildcard_some: "#", separator: "/" };


// Records

export interface SubRecord {
  qos: number;
  rh?: number;
  rap?: boolean;
  nl?: boolean;
  subscriptionIdentifier?: number;
}
export interface SubEntry {
  c: string;
  t: string;
  s: SubRecord;
}
export interface RetainedRecord {
  p: StoredPacket;
  e?: number;
}
export interface OutRecord {
  c: string;
  p: StoredPacket;
  e?: number;
}
export interface OutMeta {
  seq: number;
  brokerId: unknown;
  brokerCounter: unknown;
  messageId: unknown;
  e?: number;
  /** The record as last written: until its put committed, and after while held (held-records.ts); reads go to LMDB otherwise. */
  pending?: OutRecord;
  /** Bytes accounted while `pending` is held after its commit. */
  held?: number;
  /** Its put is held back, not yet issued (unwritten.ts); `pending` is the record. */
  unwritten?: Unwritten;
  /** Its put was issued for a publisher's ticket and is not yet flushed: a PUBACK now settles the ticket. */
  awaiting?: Unwritten;
  /** Adaptive write hold: the session's pace, until this delivery's ack latency was sampled (held-puts.ts). */
  pace?: AckPace;
  /** performance.now() when enqueued, for that sample. */
  since?: number;
}
export interface ClientQueue {
  clientId: string;
  prefix: Buffer;
  /** Scratch buffer for this queue's entry keys (see QueueStore #outKey). */
  key?: Buffer;
  entries: Map<number, OutMeta>;
  lastSeq: number;
  writes: number;
  /** outgoingUpdate's lookup by broker counter (counter-index.ts). */
  index?: CounterIndex;
}
