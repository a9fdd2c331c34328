/**
 * LMDB persistence for aedes 1.x (retained messages, persistent sessions'
 * subscriptions, offline/in-flight QoS 1/2 queues, incoming QoS 2 packets,
 * wills) plus the plugin key-value store, all in one LMDB environment.
 *
 * ## Durability — what survives what
 *
 * Every mutating method awaits the LMDB commit of its writes before its
 * promise (or, through the callback wrapper, its callback) settles, so aedes
 * sends SUBACK (after addSubscriptions) and PUBREC (after incomingStorePacket
 * and routing, i.e. after the offline enqueue) only for stored state.
 *
 * Caveat, not fixable in a persistence: aedes 1.2 writes the QoS 1 PUBACK
 * *before* it calls broker.publish (lib/handlers/publish.js: write(PubAck)
 * then broker.publish → storeRetained → enqueueOffline). Traced on this VM:
 * the publisher receives the PUBACK ~1 ms after the enqueue starts and ~5 ms
 * before its "sync" flush completes. The commit itself (what a kill -9 needs)
 * usually wins that race — test/crash.test.ts SIGKILLs the CLI in the tick a
 * PUBACK arrives and loses nothing — but only "PUBREC ⇒ durable" is
 * guaranteed. Closing the QoS 1 window needs the broker core to hold PUBACKs
 * until the publish completes.
 *
 * lmdb options used, identical in both modes so a data dir can switch modes
 * between runs:
 * - `overlappingSync: true` (lmdb-js' default on Linux/macOS). A transaction
 *   commits (pages written with pwrite into the OS page cache, new meta page
 *   written) and becomes visible; the fsync happens afterwards on lmdb-js'
 *   write thread, overlapping with the next transaction. After a *process*
 *   crash (same boot id) lmdb-js opens the latest committed transaction; after
 *   an OS crash / power loss (new boot id) it opens the latest *flushed* one,
 *   so the file is always consistent.
 * - `noSync: false`, `noMetaSync: false`: never. `noSync` would let power loss
 *   corrupt the file, and lmdb-js refuses noSync on an overlappingSync env.
 * - `useWritemap: false`: a stray native pointer cannot scribble on the data.
 * - `commitDelay: 0` + `eventTurnBatching` (default): every write issued in
 *   one event-loop turn lands in one transaction, committed on the next turn.
 *   Under load many clients' writes share a commit (and an fsync).
 *
 * `durability: "sync"` (default): a write resolves after its transaction
 *   committed AND `root.flushed` resolved (fdatasync done). Survives kill -9
 *   of the broker, OS crash and power loss (as far as the disk honours
 *   flushes). Cost: one fsync latency per acknowledged write (shared by every
 *   write of the same batch).
 * `durability: "async"`: a write resolves once its transaction committed.
 *   Survives kill -9 / any process crash (the committed pages are in the page
 *   cache, the kernel writes them back). An OS crash or power loss can lose
 *   the last transactions committed before the background flush finished
 *   (typically a few ms), never corrupting the file. Gain is modest because
 *   with overlappingSync a commit still waits for the previous flush: one
 *   sequential writer measured ~0.5 ms/write vs ~1.2 ms for "sync" on this
 *   (noisy, shared) VM; `noSync` would be ~0.1 ms but is not offered since it
 *   can corrupt the file on power loss.
 *
 * Plugin KV writes (broker/persistence/plugin-kv.ts) go through a write-behind cache:
 * readable at once, committed with the next batch (milliseconds later), so a
 * crash can lose the writes of the last few milliseconds; destroy() flushes.
 *
 * Expiry (persist-hook TTL): see setRetainedExpiry / setQueueExpiry below.
 * Expired retained messages are never streamed and are purged on read and by
 * a periodic sweep; expired queued messages that were never sent are not
 * streamed by outgoingStream and are purged likewise.
 */
import { createHash } from "node:crypto";
import { EventEmitter } from "node:events";
import fs from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { Readable } from "node:stream";
import { open, type Database, type RootDatabase, type RootDatabaseOptionsWithPath } from "lmdb";
import { DEFAULT_KV_LIMITS, type KvLimits, type KvStore } from "../../host/kv.js";
import { createPluginStore, flushPluginStore, type LmdbKvStore } from "./plugin-kv.js";

// ---------------------------------------------------------------------------
// CommonJS pieces of aedes-persistence (and what it depends on). Resolving
// from aedes-persistence's own location gives exactly the qlobber/aedes-packet
// versions the reference implementation uses.

const requireHere = createRequire(import.meta.url);
const requirePersistence = createRequire(requireHere.resolve("aedes-persistence"));

/** A loose view of an aedes-packet Packet / mqtt-packet publish. */
export interface StoredPacket {
  cmd?: string;
  topic?: string;
  payload?: Buffer | Uint8Array | string;
  qos?: number;
  retain?: boolean;
  dup?: boolean;
  messageId?: number;
  brokerId?: string;
  brokerCounter?: number;
  messageExpiry?: number;
  [key: string]: unknown;
}

type PacketCtor = new (original: object, broker?: { id: string; counter: number }) => StoredPacket;
const Packet = requirePersistence("aedes-packet") as PacketCtor;

interface QlobberSubLike {
  add(topic: string, value: object): void;
  remove(topic: string, value: object): void;
  match(topic: string): Array<Record<string, unknown>>;
  subscriptionsCount: number;
}
const QlobberSub = requirePersistence("qlobber/aedes/qlobber-sub") as new (opts: object) => QlobberSubLike;
const { QlobberTrue } = requirePersistence("qlobber") as {
  QlobberTrue: new (opts: object) => { add(topic: string): void; test(topic: string): boolean };
};

/** The callback/promise surface aedes 1.x uses (subset typed loosely). */
export interface AedesPersistenceLike extends EventEmitter {
  readonly broker: unknown;
  ready: boolean;
  setup(broker: unknown): Promise<void>;
  destroy(cb?: (err?: unknown) => void): Promise<void> | void;
  storeRetained(packet: object, cb?: (err: Error | null) => void): Promise<void> | void;
  createRetainedStream(pattern: string): Readable;
  createRetainedStreamCombi(patterns: string[]): Readable;
  addSubscriptions(client: ClientLike, subs: SubscriptionLike[], cb?: Function): Promise<unknown> | void;
  removeSubscriptions(client: ClientLike, topics: string[], cb?: Function): Promise<unknown> | void;
  subscriptionsByClient(client: ClientLike, cb?: Function): Promise<Array<Record<string, unknown>>> | void;
  subscriptionsByTopic(topic: string, cb?: Function): Promise<Array<Record<string, unknown>>> | unknown;
  countOffline(cb?: Function): Promise<{ subsCount: number; clientsCount: number }> | void;
  cleanSubscriptions(client: ClientLike, cb?: Function): Promise<unknown> | void;
  outgoingEnqueue(sub: { clientId: string }, packet: object, cb?: Function): Promise<void> | void;
  outgoingEnqueueCombi(subs: Array<{ clientId: string }>, packet: object, cb?: Function): Promise<void> | void;
  outgoingUpdate(client: ClientLike, packet: object, cb?: Function): Promise<void> | void;
  outgoingClearMessageId(client: ClientLike, packet: object, cb?: Function): Promise<StoredPacket | undefined> | void;
  outgoingStream(client: ClientLike): Readable;
  incomingStorePacket(client: ClientLike, packet: object, cb?: Function): Promise<void> | void;
  incomingGetPacket(client: ClientLike, packet: object, cb?: Function): Promise<StoredPacket> | void;
  incomingDelPacket(client: ClientLike, packet: object, cb?: Function): Promise<void> | void;
  cleanIncoming(client: ClientLike, cb?: Function): Promise<void> | void;
  putWill(client: ClientLike, packet: object, cb?: Function): Promise<void> | void;
  getWill(client: ClientLike, cb?: Function): Promise<StoredPacket | undefined> | void;
  delWill(client: ClientLike, cb?: Function): Promise<StoredPacket | undefined> | void;
  streamWill(brokers?: Record<string, unknown>): Readable;
  getClientList(topic: string): Readable;
}

/** What the wasmq broker gets from either persistence factory. */
export interface WasmqPersistence extends AedesPersistenceLike {
  readonly kind: "lmdb" | "memory";
  /** The plugin key-value store living next to this persistence (same LMDB env for "lmdb"). */
  pluginStore(limits?: KvLimits): KvStore;
  /** Purge expired retained / queued messages now (the periodic sweep calls this). */
  sweepExpired(now?: number): Promise<{ retained: number; queued: number }>;
  /** QoS 1/2 messages stored for a client: its queue plus what is in flight to it. */
  queuedCount(clientId: string): number;
}

const { CallBackPersistence } = requirePersistence("./callBackPersistence.js") as {
  CallBackPersistence: new (factory: (opts: object) => object, opts?: object) => AedesPersistenceLike;
};
/** aedes-persistence's callback layer, typed. Both factories extend it. */
export const CallBackPersistenceBase = CallBackPersistence;

export interface ClientLike {
  id: string;
  [key: string]: unknown;
}
export interface SubscriptionLike {
  topic: string;
  qos: number;
  rh?: number;
  rap?: boolean;
  nl?: boolean;
  subscriptionIdentifier?: number;
  [key: string]: unknown;
}

// ---------------------------------------------------------------------------
// Expiry side channel for the persist hook.
//
// The expiry is recorded in a WeakMap keyed by the packet OBJECT, so it must
// be set on the very object handed to storeRetained / outgoingEnqueue(Combi)
// — i.e. by wrapping those persistence methods (broker/protocol/hooks.ts does). aedes
// wraps every published packet (`new Packet(packet, broker)` in
// Aedes#publish) before the persistence sees it, so tagging the wire packet in
// authorizePublish would NOT reach the persistence. (Keying by the shared
// payload Buffer would survive that wrapping but leaks an expiry to every
// copy sharing the Buffer, so it is deliberately not done.) As a fallback the
// aedes-packet field `messageExpiry` (absolute ms since epoch, which
// `new Packet` copies; the MQTT 5 Message Expiry mechanism) is honoured.

interface ExpiryInfo {
  retained?: number;
  queue?: number;
}
const expiryByPacket = new WeakMap<object, ExpiryInfo>();

function normaliseExpiry(expiresAtMs: number | undefined | null): number | undefined {
  if (expiresAtMs === undefined || expiresAtMs === null) return undefined;
  if (typeof expiresAtMs !== "number" || Number.isNaN(expiresAtMs)) {
    throw new TypeError(`expiry must be a number of ms since the epoch, got ${String(expiresAtMs)}`);
  }
  if (expiresAtMs === Infinity) return undefined;
  return Math.max(0, Math.floor(expiresAtMs));
}

function setExpiry(packet: object, field: keyof ExpiryInfo, expiresAtMs: number | undefined | null): void {
  const value = normaliseExpiry(expiresAtMs);
  let info = expiryByPacket.get(packet);
  if (!info) {
    info = {};
    expiryByPacket.set(packet, info);
  }
  info[field] = value;
}

function getExpiry(packet: object, field: keyof ExpiryInfo): number | undefined {
  const info = expiryByPacket.get(packet);
  if (info && field in info) return info[field];
  const me = (packet as StoredPacket).messageExpiry;
  return typeof me === "number" && Number.isFinite(me) ? Math.max(0, Math.floor(me)) : undefined;
}

/** The retained copy of `packet` expires at `expiresAtMs` (ms since epoch; undefined = never). */
export function setRetainedExpiry(packet: object, expiresAtMs: number | undefined | null): void {
  setExpiry(packet, "retained", expiresAtMs);
}
/** Offline-queue entries made from `packet` expire at `expiresAtMs` if not yet sent. */
export function setQueueExpiry(packet: object, expiresAtMs: number | undefined | null): void {
  setExpiry(packet, "queue", expiresAtMs);
}
export function getRetainedExpiry(packet: object): number | undefined {
  return getExpiry(packet, "retained");
}
export function getQueueExpiry(packet: object): number | undefined {
  return getExpiry(packet, "queue");
}

// ---------------------------------------------------------------------------
// Key layout (all sub-databases use binary keys):
//   clientPrefix(id) = u16 BE byte length + UTF-8 id   (ids > 400 bytes: 0xFFFF + sha256)
//   subs      clientPrefix + topic (topics > 1000 bytes: 0x00 + sha256)  -> { c, t, s }
//   outgoing  clientPrefix + u64 BE seq                                   -> { c, p, e? }
//   incoming  clientPrefix + u32 BE messageId                             -> packet
//   wills     clientPrefix                                                -> packet
//   retained  topic (topics > 1500 bytes: 0x00 + sha256)                  -> { p, e? }
//   retained-ttl / outgoing-ttl  u64 BE expiresAt + key of the record      -> 1
// MQTT topics cannot contain U+0000, so the 0x00 marker is unambiguous; the
// length prefix keeps one client's key range from containing another's.

const MAX_CLIENT_ID_KEY = 400;
const MAX_SUB_TOPIC_KEY = 1000;
const MAX_RETAINED_TOPIC_KEY = 1500;
const FORMAT_VERSION = 1;

function sha256(data: Buffer): Buffer {
  return createHash("sha256").update(data).digest();
}

function clientPrefix(clientId: string): Buffer {
  const id = Buffer.from(String(clientId), "utf8");
  if (id.length > MAX_CLIENT_ID_KEY) return Buffer.concat([Buffer.from([0xff, 0xff]), sha256(id)]);
  const out = Buffer.allocUnsafe(2 + id.length);
  out.writeUInt16BE(id.length, 0);
  id.copy(out, 2);
  return out;
}

function topicKeyPart(topic: string, max: number): Buffer {
  const t = Buffer.from(String(topic), "utf8");
  if (t.length > max || t.length === 0) return Buffer.concat([Buffer.from([0]), sha256(t)]);
  return t;
}

function u64(n: number): Buffer {
  const b = Buffer.allocUnsafe(8);
  b.writeUInt32BE(Math.floor(n / 0x100000000), 0);
  b.writeUInt32BE(n >>> 0, 4);
  return b;
}
function readU64(b: Uint8Array, offset: number): number {
  const buf = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  return buf.readUInt32BE(offset) * 0x100000000 + buf.readUInt32BE(offset + 4);
}

/** Smallest key greater than every key starting with `prefix`. */
function prefixEnd(prefix: Buffer): Buffer | undefined {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i] !== 0xff) {
      end[i]++;
      return end.subarray(0, i + 1);
    }
  }
  return undefined; // all 0xff: up to the end of the database
}

function ttlKey(expiresAt: number, key: Buffer): Buffer {
  return Buffer.concat([u64(expiresAt), key]);
}

function payloadLength(payload: unknown): number {
  if (payload === undefined || payload === null) return 0;
  if (typeof payload === "string") return payload.length;
  if (typeof payload === "object" && "length" in (payload as object)) return (payload as { length: number }).length;
  return 1;
}

/** Own enumerable data properties only (aedes hangs e.g. `writeCallback` on packets). */
function plainPacket(packet: object): StoredPacket {
  const out: StoredPacket = {};
  for (const [k, v] of Object.entries(packet)) {
    if (typeof v !== "function" && typeof v !== "symbol") out[k] = v;
  }
  return out;
}

function literalPrefix(pattern: string): { exact: boolean; wildcardFirst: boolean; prefix: string } {
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

const QLOBBER_OPTIONS = { wildcard_one: "+", wildcard_some: "#", separator: "/" };

// ---------------------------------------------------------------------------
// Records

interface SubRecord {
  qos: number;
  rh?: number;
  rap?: boolean;
  nl?: boolean;
  subscriptionIdentifier?: number;
}
interface SubEntry {
  c: string;
  t: string;
  s: SubRecord;
}
interface RetainedRecord {
  p: StoredPacket;
  e?: number;
}
interface OutRecord {
  c: string;
  p: StoredPacket;
  e?: number;
}
interface OutMeta {
  seq: number;
  brokerId: unknown;
  brokerCounter: unknown;
  messageId: unknown;
  e?: number;
  /** The record while its put is not yet committed (reads go to LMDB otherwise). */
  pending?: OutRecord;
}
interface ClientQueue {
  clientId: string;
  prefix: Buffer;
  entries: Map<number, OutMeta>;
  lastSeq: number;
  writes: number;
}

// ---------------------------------------------------------------------------
// Opening

export interface LmdbPersistenceOptions {
  /** Data directory (created if missing). */
  path: string;
  /** See the comment at the top of this file. Default "sync". */
  durability?: "sync" | "async";
  /** Initial LMDB map size in bytes (lmdb-js grows the map as needed). */
  mapSize?: number;
  /** Period of the expiry sweep in ms; 0 disables it. Default 60 000. */
  sweepIntervalMs?: number;
  /** Extra lmdb root options (advanced; overriding the durability options voids the guarantees above). */
  lmdb?: Partial<RootDatabaseOptionsWithPath>;
}

/**
 * Thrown at open: the message names the data directory and the reason.
 * `name` is "PersistenceError", which broker/cli.ts reports as a clean
 * start-up failure (exit 2) instead of a stack trace.
 */
export class PersistenceOpenError extends Error {
  constructor(
    readonly path: string,
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super(`cannot open LMDB data directory "${path}": ${reason}`, options);
    this.name = "PersistenceError";
  }
}

const LMDB_MAGIC = 0xbeefc0de;
const P_META = 0x08;

/**
 * Cheap structural check of data.mdb before handing it to LMDB, which trusts
 * the file blindly (garbage or a truncated file makes the native code
 * segfault / SIGBUS instead of returning an error). Checks both meta pages:
 * magic, meta flag, page size, and that the last used page lies inside the
 * file. Corruption deeper inside the B-trees is only caught when read.
 */
function validateDataFile(dir: string, file: string): void {
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return;
    throw new PersistenceOpenError(dir, `cannot stat ${file}: ${(err as Error).message}`, { cause: err });
  }
  if (!st.isFile()) throw new PersistenceOpenError(dir, `${file} is not a regular file`);
  if (st.size === 0) return; // LMDB initialises an empty file
  const corrupt = (why: string) =>
    new PersistenceOpenError(dir, `${file} is not an LMDB data file or is corrupt (${why})`);
  if (st.size < 0xa0) throw corrupt(`file is only ${st.size} bytes`);
  let fd: number | undefined;
  try {
    fd = fs.openSync(file, "r");
    const head = Buffer.alloc(0xa0);
    fs.readSync(fd, head, 0, head.length, 0);
    const metaOk = (page: Buffer) =>
      page.readUInt32LE(0x18) === LMDB_MAGIC && (page.readUInt16LE(0x12) & P_META) !== 0;
    if (!metaOk(head)) throw corrupt("bad magic in meta page 0");
    const psize = head.readUInt32LE(0x30);
    if (psize < 512 || psize > 65536 || (psize & (psize - 1)) !== 0) throw corrupt(`implausible page size ${psize}`);
    if (st.size < 2 * psize) throw corrupt(`file (${st.size} bytes) shorter than two meta pages`);
    const head1 = Buffer.alloc(0xa0);
    fs.readSync(fd, head1, 0, head1.length, psize);
    const metas = [head, head1]
      .filter(metaOk)
      .map((m) => ({ lastPg: readU64le(m, 0x90), txnid: readU64le(m, 0x98) }))
      .sort((a, b) => b.txnid - a.txnid);
    const newest = metas[0];
    if (!newest) throw corrupt("no valid meta page");
    if ((newest.lastPg + 1) * psize > st.size) {
      throw corrupt(`truncated: meta says ${(newest.lastPg + 1) * psize} bytes, file has ${st.size}`);
    }
  } catch (err) {
    if (err instanceof PersistenceOpenError) throw err;
    throw new PersistenceOpenError(dir, `cannot read ${file}: ${(err as Error).message}`, { cause: err });
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}
function readU64le(b: Buffer, offset: number): number {
  return b.readUInt32LE(offset + 4) * 0x100000000 + b.readUInt32LE(offset);
}

function prepareDirectory(dir: string): void {
  let st: fs.Stats | undefined;
  try {
    st = fs.statSync(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== "ENOENT") throw new PersistenceOpenError(dir, (err as Error).message, { cause: err });
  }
  if (st && !st.isDirectory()) throw new PersistenceOpenError(dir, "path exists and is not a directory");
  if (!st) {
    try {
      fs.mkdirSync(dir, { recursive: true });
    } catch (err) {
      throw new PersistenceOpenError(dir, `cannot create directory: ${(err as Error).message}`, { cause: err });
    }
  }
  try {
    fs.accessSync(dir, fs.constants.R_OK | fs.constants.W_OK | fs.constants.X_OK);
  } catch (err) {
    throw new PersistenceOpenError(dir, `directory is not writable: ${(err as Error).message}`, { cause: err });
  }
}

export interface LmdbDatabases {
  root: RootDatabase;
  meta: Database<unknown, string>;
  retained: Database<RetainedRecord, Buffer>;
  retainedTtl: Database<number, Buffer>;
  subs: Database<SubEntry, Buffer>;
  outgoing: Database<OutRecord, Buffer>;
  outgoingTtl: Database<number, Buffer>;
  incoming: Database<StoredPacket, Buffer>;
  wills: Database<StoredPacket, Buffer>;
}

function openEnvironment(opts: LmdbPersistenceOptions): LmdbDatabases {
  if (!opts || typeof opts.path !== "string" || opts.path.length === 0) {
    throw new TypeError("createLmdbPersistence: opts.path (data directory) is required");
  }
  const dir = path.resolve(opts.path);
  prepareDirectory(dir);
  validateDataFile(dir, path.join(dir, "data.mdb"));
  let root: RootDatabase;
  try {
    root = open({
      path: dir,
      noSubdir: false,
      maxDbs: 16,
      overlappingSync: true,
      noSync: false,
      noMetaSync: false,
      useWritemap: false,
      commitDelay: 0,
      eventTurnBatching: true,
      ...(opts.mapSize ? { mapSize: opts.mapSize } : {}),
      ...opts.lmdb,
    });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    let reason = e.message;
    if (/MDB_INVALID/.test(reason)) reason = `not an LMDB data file or corrupt (${reason})`;
    else if (/MDB_VERSION_MISMATCH/.test(reason)) reason = `written by an incompatible LMDB version (${reason})`;
    else if (e.code === "EACCES" || e.code === "EPERM" || e.code === "EROFS") reason = `permission denied (${reason})`;
    throw new PersistenceOpenError(dir, reason, { cause: err });
  }
  try {
    const bin = { keyEncoding: "binary" as const };
    const dbs: LmdbDatabases = {
      root,
      meta: root.openDB<unknown, string>({ name: "meta" }),
      retained: root.openDB<RetainedRecord, Buffer>({ name: "retained", ...bin }),
      retainedTtl: root.openDB<number, Buffer>({ name: "retained-ttl", ...bin }),
      subs: root.openDB<SubEntry, Buffer>({ name: "subs", ...bin }),
      outgoing: root.openDB<OutRecord, Buffer>({ name: "outgoing", ...bin }),
      outgoingTtl: root.openDB<number, Buffer>({ name: "outgoing-ttl", ...bin }),
      incoming: root.openDB<StoredPacket, Buffer>({ name: "incoming", ...bin }),
      wills: root.openDB<StoredPacket, Buffer>({ name: "wills", ...bin }),
    };
    const format = dbs.meta.get("format");
    if (format === undefined) dbs.meta.putSync("format", FORMAT_VERSION);
    else if (format !== FORMAT_VERSION) {
      throw new Error(`data format version ${String(format)} is not supported (expected ${FORMAT_VERSION})`);
    }
    return dbs;
  } catch (err) {
    void root.close().catch(() => {});
    throw new PersistenceOpenError(dir, `failed to read the database: ${(err as Error).message}`, { cause: err });
  }
}

// ---------------------------------------------------------------------------
// The async persistence (aedes-persistence 11 "async" style)

const noop = () => {};

export class LmdbAsyncPersistence {
  readonly path: string;
  readonly durability: "sync" | "async";
  readonly dbs: LmdbDatabases;
  #broker: { id: string } | undefined;
  #destroyed = false;
  #sweepTimer: NodeJS.Timeout | undefined;
  #trie = new QlobberSub(QLOBBER_OPTIONS);
  /** clientId -> topic -> subscription (mirror of the `subs` database). */
  #subs = new Map<string, Map<string, SubRecord>>();
  /** Loaded offline queues (metadata only; payloads stay in LMDB). */
  #queues = new Map<string, ClientQueue>();

  /** Opens (synchronously) and validates the environment; throws PersistenceOpenError. */
  constructor(opts: LmdbPersistenceOptions) {
    this.path = path.resolve(opts.path);
    this.durability = opts.durability ?? "sync";
    if (this.durability !== "sync" && this.durability !== "async") {
      throw new TypeError(`durability must be "sync" or "async", got ${String(opts.durability)}`);
    }
    this.dbs = openEnvironment(opts);
    try {
      this.#rebuildSubscriptions();
    } catch (err) {
      void this.dbs.root.close().catch(noop);
      throw new PersistenceOpenError(this.path, `failed to read subscriptions: ${(err as Error).message}`, { cause: err });
    }
    const interval = opts.sweepIntervalMs ?? 60_000;
    if (interval > 0) {
      this.#sweepTimer = setInterval(() => {
        this.sweepExpired().catch(noop);
      }, interval);
      this.#sweepTimer.unref();
    }
  }

  get broker(): { id: string } | undefined {
    return this.#broker;
  }

  get root(): RootDatabase {
    return this.dbs.root;
  }

  async setup(broker: { id: string }): Promise<void> {
    this.#live();
    this.#broker = broker;
  }

  /**
   * After destroy() every call that touches LMDB rejects (streams come back
   * empty): aedes may still fire delWill / cleanIncoming / enqueues for
   * connections and publishes in flight while the broker shuts down, and an
   * lmdb-js read started while the root is closing throws from a timer
   * (uncaught). The in-memory subscription index keeps answering, because
   * aedes turns a subscriptionsByTopic rejection into broker.emit('error').
   */
  #live(): void {
    if (this.#destroyed) throw new Error(`LMDB persistence at "${this.path}" is closed`);
  }

  // -- durability -----------------------------------------------------------

  async #settle(writes: Array<Promise<unknown>>): Promise<void> {
    if (writes.length === 0) return;
    await Promise.all(writes);
    if (this.durability === "sync") await this.dbs.root.flushed;
  }

  // -- retained ---------------------------------------------------------------

  async storeRetained(pkt: StoredPacket): Promise<void> {
    this.#live();
    const packet = plainPacket(pkt);
    const key = topicKeyPart(String(packet.topic), MAX_RETAINED_TOPIC_KEY);
    const { retained, retainedTtl } = this.dbs;
    const writes: Array<Promise<unknown>> = [];
    // (reads see committed data only; a stale TTL index entry left by a racing
    // uncommitted write is harmless: the sweep checks the record's own expiry)
    const old = retained.get(key);
    if (old?.e !== undefined) writes.push(retainedTtl.remove(ttlKey(old.e, key)));
    if (payloadLength(packet.payload) === 0) {
      // unconditional: a put of this topic may be queued but not yet committed
      writes.push(retained.remove(key));
    } else {
      const e = getRetainedExpiry(pkt);
      const record: RetainedRecord = e === undefined ? { p: packet } : { p: packet, e };
      writes.push(retained.put(key, record));
      if (e !== undefined) writes.push(retainedTtl.put(ttlKey(e, key), 1));
    }
    await this.#settle(writes);
  }

  createRetainedStream(pattern: string): Readable {
    return this.createRetainedStreamCombi([pattern]);
  }

  createRetainedStreamCombi(patterns: string[]): Readable {
    if (this.#destroyed) return Readable.from([]);
    const self = this;
    return Readable.from(
      (function* () {
        if (self.#destroyed) return;
        yield* self.#matchRetained(patterns, Date.now());
      })(),
    );
  }

  /** All live retained packets matching any pattern, each once. */
  #matchRetained(patterns: string[], now: number): StoredPacket[] {
    const { retained } = this.dbs;
    // [MQTT-4.7.2-1]: a filter whose first level is a wildcard does not match
    // topics starting with "$"; "$SYS/#" (literal first level) still does.
    const literalFirst = new QlobberTrue(QLOBBER_OPTIONS);
    const wildcardFirst = new QlobberTrue(QLOBBER_OPTIONS);
    let anyLiteralFirst = false;
    let anyWildcardFirst = false;
    const exact: string[] = [];
    const prefixes: string[] = [];
    for (const pattern of patterns) {
      if (typeof pattern !== "string" || pattern.length === 0) continue;
      const { exact: isExact, wildcardFirst: wild, prefix } = literalPrefix(pattern);
      if (isExact) {
        exact.push(pattern);
      } else if (wild) {
        wildcardFirst.add(pattern);
        anyWildcardFirst = true;
      } else {
        literalFirst.add(pattern);
        anyLiteralFirst = true;
        prefixes.push(prefix);
      }
    }
    const matches = (topic: string) =>
      (anyLiteralFirst && literalFirst.test(topic)) ||
      (anyWildcardFirst && topic.charCodeAt(0) !== 36 /* $ */ && wildcardFirst.test(topic));
    const out: StoredPacket[] = [];
    const seen = new Set<string>();
    const expired: Array<{ key: Buffer; e: number }> = [];
    const consider = (key: Buffer, rec: RetainedRecord | undefined, viaWildcard: boolean) => {
      if (!rec || !rec.p) return;
      const topic = String(rec.p.topic);
      if (seen.has(topic)) return;
      if (viaWildcard && !matches(topic)) return;
      if (rec.e !== undefined && rec.e <= now) {
        expired.push({ key: Buffer.from(key), e: rec.e });
        return;
      }
      seen.add(topic);
      out.push(rec.p);
    };
    for (const topic of exact) {
      const key = topicKeyPart(topic, MAX_RETAINED_TOPIC_KEY);
      consider(key, retained.get(key), false);
    }
    if (anyLiteralFirst || anyWildcardFirst) {
      const ranges: Array<{ start?: Buffer; end?: Buffer }> = [];
      if (anyWildcardFirst) ranges.push({});
      else {
        // drop prefixes covered by a shorter one, then scan each plus the hashed-long-topic range
        prefixes.sort();
        let last: string | undefined;
        for (const p of prefixes) {
          if (last !== undefined && p.startsWith(last)) continue;
          last = p;
          const start = Buffer.from(p, "utf8");
          ranges.push({ start, end: prefixEnd(start) });
        }
        ranges.push({ start: Buffer.from([0]), end: Buffer.from([1]) });
      }
      for (const range of ranges) {
        // test plain (topic-valued) keys before decoding their records
        for (const k of retained.getKeys(range)) {
          const u8 = k as Uint8Array;
          const key = Buffer.isBuffer(u8) ? u8 : Buffer.from(u8.buffer, u8.byteOffset, u8.byteLength);
          if (key[0] !== 0) {
            const topic = key.toString("utf8");
            if (seen.has(topic) || !matches(topic)) continue;
          }
          consider(key, retained.get(key), key[0] === 0);
        }
      }
    }
    if (expired.length > 0) this.#purgeRetained(expired);
    return out;
  }

  #purgeRetained(entries: Array<{ key: Buffer; e: number }>): void {
    if (this.#destroyed) return;
    const { root, retained, retainedTtl } = this.dbs;
    root
      .transaction(() => {
        for (const { key, e } of entries) {
          const rec = retained.get(key);
          if (rec && rec.e === e) retained.remove(key);
          retainedTtl.remove(ttlKey(e, key));
        }
      })
      .catch(noop);
  }

  // -- subscriptions ----------------------------------------------------------

  #rebuildSubscriptions(): void {
    for (const { value } of this.dbs.subs.getRange({})) {
      if (!value || typeof value.c !== "string" || typeof value.t !== "string") continue;
      let stored = this.#subs.get(value.c);
      if (!stored) {
        stored = new Map();
        this.#subs.set(value.c, stored);
      }
      stored.set(value.t, value.s);
      if (value.s.qos > 0) this.#trie.add(value.t, this.#trieValue(value.c, value.t, value.s));
    }
  }

  #trieValue(clientId: string, topic: string, s: SubRecord) {
    return { clientId, topic, qos: s.qos, rh: s.rh, rap: s.rap, nl: s.nl };
  }

  async addSubscriptions(client: ClientLike, subs: SubscriptionLike[]): Promise<void> {
    this.#live();
    if (!subs || subs.length === 0) return;
    const clientId = client.id;
    let stored = this.#subs.get(clientId);
    if (!stored) {
      stored = new Map();
      this.#subs.set(clientId, stored);
    }
    const touched = new Set<string>();
    for (const sub of subs) {
      const storedSub = stored.get(sub.topic);
      const record: SubRecord = { qos: sub.qos, rh: sub.rh, rap: sub.rap, nl: sub.nl };
      if (sub.subscriptionIdentifier !== undefined) record.subscriptionIdentifier = sub.subscriptionIdentifier;
      if (sub.qos > 0) this.#trie.add(sub.topic, this.#trieValue(clientId, sub.topic, record));
      else if (storedSub && storedSub.qos > 0) this.#trie.remove(sub.topic, { clientId, topic: sub.topic });
      stored.set(sub.topic, record);
      touched.add(sub.topic);
    }
    const prefix = clientPrefix(clientId);
    const writes: Array<Promise<unknown>> = [];
    for (const topic of touched) {
      const s = stored.get(topic)!;
      writes.push(this.dbs.subs.put(this.#subKey(prefix, topic), { c: clientId, t: topic, s }));
    }
    await this.#settle(writes);
  }

  #subKey(prefix: Buffer, topic: string): Buffer {
    return Buffer.concat([prefix, topicKeyPart(topic, MAX_SUB_TOPIC_KEY)]);
  }

  async removeSubscriptions(client: ClientLike, topics: string[]): Promise<void> {
    this.#live();
    const stored = this.#subs.get(client.id);
    if (!stored) return;
    const prefix = clientPrefix(client.id);
    const writes: Array<Promise<unknown>> = [];
    for (const topic of topics) {
      const storedSub = stored.get(topic);
      if (storedSub === undefined) continue;
      if (storedSub.qos > 0) this.#trie.remove(topic, { clientId: client.id, topic });
      stored.delete(topic);
      writes.push(this.dbs.subs.remove(this.#subKey(prefix, topic)));
    }
    if (stored.size === 0) this.#subs.delete(client.id);
    await this.#settle(writes);
  }

  async subscriptionsByClient(client: ClientLike): Promise<Array<Record<string, unknown>>> {
    const subs: Array<Record<string, unknown>> = [];
    const stored = this.#subs.get(client.id);
    if (stored) for (const [topic, s] of stored) subs.push({ topic, ...s });
    return subs;
  }

  async countOffline(): Promise<{ subsCount: number; clientsCount: number }> {
    return { subsCount: this.#trie.subscriptionsCount, clientsCount: this.#subs.size };
  }

  async subscriptionsByTopic(pattern: string): Promise<Array<Record<string, unknown>>> {
    return this.#trie.match(pattern);
  }

  async cleanSubscriptions(client: ClientLike): Promise<void> {
    this.#live();
    const stored = this.#subs.get(client.id);
    if (!stored) return;
    const prefix = clientPrefix(client.id);
    const writes: Array<Promise<unknown>> = [];
    for (const [topic, s] of stored) {
      if (s.qos > 0) this.#trie.remove(topic, { clientId: client.id, topic });
      writes.push(this.dbs.subs.remove(this.#subKey(prefix, topic)));
    }
    this.#subs.delete(client.id);
    await this.#settle(writes);
  }

  getClientList(topic: string): Readable {
    const ids: string[] = [];
    for (const [clientId, stored] of this.#subs) if (stored.has(topic)) ids.push(clientId);
    return Readable.from(ids);
  }

  // -- outgoing queues --------------------------------------------------------

  #queue(clientId: string): ClientQueue {
    let q = this.#queues.get(clientId);
    if (q) return q;
    const prefix = clientPrefix(clientId);
    q = { clientId, prefix, entries: new Map(), lastSeq: 0, writes: 0 };
    for (const { key, value } of this.dbs.outgoing.getRange({ start: prefix, end: prefixEnd(prefix) })) {
      const seq = readU64(key, prefix.length);
      const p = value?.p ?? {};
      q.entries.set(seq, { seq, brokerId: p.brokerId, brokerCounter: p.brokerCounter, messageId: p.messageId, e: value?.e });
      if (seq > q.lastSeq) q.lastSeq = seq;
    }
    this.#queues.set(clientId, q);
    return q;
  }

  /** Drop an empty queue from memory once nothing is in flight for it. */
  #maybeForget(q: ClientQueue): void {
    if (q.entries.size === 0 && q.writes === 0 && this.#queues.get(q.clientId) === q) this.#queues.delete(q.clientId);
  }

  #track(q: ClientQueue, write: Promise<unknown>): Promise<unknown> {
    q.writes++;
    const done = () => {
      q.writes--;
      this.#maybeForget(q);
    };
    write.then(done, done);
    return write;
  }

  #outKey(q: ClientQueue, seq: number): Buffer {
    return Buffer.concat([q.prefix, u64(seq)]);
  }

  #readOut(q: ClientQueue, meta: OutMeta): OutRecord | undefined {
    return meta.pending ?? this.dbs.outgoing.get(this.#outKey(q, meta.seq));
  }

  #writeOut(q: ClientQueue, meta: OutMeta, rec: OutRecord, writes: Array<Promise<unknown>>): void {
    meta.pending = rec;
    const w = this.#track(q, this.dbs.outgoing.put(this.#outKey(q, meta.seq), rec));
    w.then(
      () => {
        if (meta.pending === rec) meta.pending = undefined;
      },
      noop,
    );
    writes.push(w);
  }

  #removeOut(q: ClientQueue, meta: OutMeta, writes: Array<Promise<unknown>>): void {
    q.entries.delete(meta.seq);
    meta.pending = undefined;
    const key = this.#outKey(q, meta.seq);
    writes.push(this.#track(q, this.dbs.outgoing.remove(key)));
    if (meta.e !== undefined) writes.push(this.#track(q, this.dbs.outgoingTtl.remove(ttlKey(meta.e, key))));
  }

  #enqueue(clientId: string, packet: StoredPacket, expiresAt: number | undefined, writes: Array<Promise<unknown>>): void {
    const q = this.#queue(clientId);
    const seq = ++q.lastSeq;
    const p = new Packet(packet);
    const rec: OutRecord = expiresAt === undefined ? { c: clientId, p } : { c: clientId, p, e: expiresAt };
    const meta: OutMeta = { seq, brokerId: p.brokerId, brokerCounter: p.brokerCounter, messageId: p.messageId, e: expiresAt };
    q.entries.set(seq, meta);
    this.#writeOut(q, meta, rec, writes);
    if (expiresAt !== undefined) {
      writes.push(this.#track(q, this.dbs.outgoingTtl.put(ttlKey(expiresAt, this.#outKey(q, seq)), 1)));
    }
  }

  queuedCount(clientId: string): number {
    if (this.#destroyed) return 0;
    const q = this.#queue(clientId);
    const n = q.entries.size;
    this.#maybeForget(q);
    return n;
  }

  async outgoingEnqueue(sub: { clientId: string }, packet: StoredPacket): Promise<void> {
    this.#live();
    const writes: Array<Promise<unknown>> = [];
    this.#enqueue(sub.clientId, packet, getQueueExpiry(packet), writes);
    await this.#settle(writes);
  }

  async outgoingEnqueueCombi(subs: Array<{ clientId: string }>, packet: StoredPacket): Promise<void> {
    this.#live();
    if (!subs || subs.length === 0) return;
    const writes: Array<Promise<unknown>> = [];
    const e = getQueueExpiry(packet);
    for (const sub of subs) this.#enqueue(sub.clientId, packet, e, writes);
    await this.#settle(writes);
  }

  async outgoingUpdate(client: ClientLike, packet: StoredPacket): Promise<void> {
    this.#live();
    const q = this.#queue(client.id);
    const writes: Array<Promise<unknown>> = [];
    // Same search as aedes-persistence's reference: by (brokerId, brokerCounter),
    // else a packet from another broker with the same messageId is replaced (pubrel).
    for (const meta of q.entries.values()) {
      if (meta.brokerId === packet.brokerId) {
        if (meta.brokerCounter === packet.brokerCounter) {
          meta.messageId = packet.messageId;
          const rec = this.#readOut(q, meta);
          if (rec) {
            this.#writeOut(q, meta, { ...rec, p: { ...rec.p, messageId: packet.messageId } }, writes);
          }
          await this.#settle(writes);
          return;
        }
      } else if (meta.messageId === packet.messageId) {
        // replaced by e.g. a PUBREL: delivery has started, the expiry no longer applies
        const key = this.#outKey(q, meta.seq);
        if (meta.e !== undefined) writes.push(this.#track(q, this.dbs.outgoingTtl.remove(ttlKey(meta.e, key))));
        meta.brokerId = packet.brokerId;
        meta.brokerCounter = packet.brokerCounter;
        meta.messageId = packet.messageId;
        meta.e = undefined;
        this.#writeOut(q, meta, { c: client.id, p: plainPacket(packet) }, writes);
        await this.#settle(writes);
        return;
      }
    }
    this.#maybeForget(q);
    throw new Error("no such packet");
  }

  async outgoingClearMessageId(client: ClientLike, packet: StoredPacket): Promise<StoredPacket | undefined> {
    this.#live();
    if (packet === null || typeof packet !== "object") return undefined;
    const q = this.#queue(client.id);
    let found: OutMeta | undefined;
    if (packet.messageId === undefined || packet.messageId === null) {
      // aedes calls this with a not-yet-numbered packet when a delivery is
      // denied/deduplicated: match that exact queued packet, never "the first
      // unnumbered one" (the reference's accidental behaviour).
      if (packet.brokerId !== undefined) {
        for (const meta of q.entries.values()) {
          if (
            meta.brokerId === packet.brokerId &&
            meta.brokerCounter === packet.brokerCounter &&
            (meta.messageId === undefined || meta.messageId === null)
          ) {
            found = meta;
            break;
          }
        }
      }
    } else {
      for (const meta of q.entries.values()) {
        if (meta.messageId === packet.messageId) {
          found = meta;
          break;
        }
      }
    }
    if (!found) {
      this.#maybeForget(q);
      return undefined;
    }
    const rec = this.#readOut(q, found);
    const writes: Array<Promise<unknown>> = [];
    this.#removeOut(q, found, writes);
    await this.#settle(writes);
    return rec?.p;
  }

  outgoingStream(client: ClientLike): Readable {
    if (this.#destroyed) return Readable.from([]);
    const self = this;
    const q = this.#queue(client.id);
    const snapshot = [...q.entries.values()];
    const now = Date.now();
    return Readable.from(
      (function* () {
        const expired: OutMeta[] = [];
        try {
          for (const meta of snapshot) {
            if (self.#destroyed) return;
            if (q.entries.get(meta.seq) !== meta) continue; // cleared meanwhile
            if (meta.e !== undefined && meta.e <= now && (meta.messageId === undefined || meta.messageId === null)) {
              expired.push(meta);
              continue;
            }
            const rec = self.#readOut(q, meta);
            if (rec) yield { ...rec.p };
          }
        } finally {
          if (expired.length > 0 && !self.#destroyed) {
            const writes: Array<Promise<unknown>> = [];
            for (const meta of expired) if (q.entries.get(meta.seq) === meta) self.#removeOut(q, meta, writes);
            Promise.all(writes).catch(noop);
          }
          self.#maybeForget(q);
        }
      })(),
    );
  }

  // -- incoming (QoS 2) ---------------------------------------------------------

  #inKey(clientId: string, messageId: unknown): Buffer {
    const id = Number(messageId);
    if (!Number.isInteger(id) || id < 0 || id > 0xffffffff) throw new Error("no such packet");
    const prefix = clientPrefix(clientId);
    const out = Buffer.allocUnsafe(prefix.length + 4);
    prefix.copy(out, 0);
    out.writeUInt32BE(id, prefix.length);
    return out;
  }

  async incomingStorePacket(client: ClientLike, packet: StoredPacket): Promise<void> {
    this.#live();
    const p = new Packet(packet);
    p.messageId = packet.messageId;
    await this.#settle([this.dbs.incoming.put(this.#inKey(client.id, packet.messageId), p)]);
  }

  async incomingGetPacket(client: ClientLike, packet: StoredPacket): Promise<StoredPacket> {
    this.#live();
    const p = this.dbs.incoming.get(this.#inKey(client.id, packet.messageId));
    if (!p) throw new Error("no such packet");
    return p;
  }

  async incomingDelPacket(client: ClientLike, packet: StoredPacket): Promise<void> {
    this.#live();
    const key = this.#inKey(client.id, packet.messageId);
    if (!this.dbs.incoming.doesExist(key)) throw new Error("no such packet");
    await this.#settle([this.dbs.incoming.remove(key)]);
  }

  async cleanIncoming(client: ClientLike): Promise<void> {
    this.#live();
    const prefix = clientPrefix(client.id);
    const { root, incoming } = this.dbs;
    // one transaction: a key-range clear of this client's (clientId, messageId) keys
    const removed = await root.transaction(() => {
      const keys = [...incoming.getKeys({ start: prefix, end: prefixEnd(prefix) })];
      for (const key of keys) incoming.remove(key);
      return keys.length;
    });
    if (removed > 0 && this.durability === "sync") await root.flushed;
  }

  // -- wills ------------------------------------------------------------------

  async putWill(client: ClientLike, packet: StoredPacket): Promise<void> {
    this.#live();
    packet.brokerId = this.#broker?.id;
    packet.clientId = client.id;
    await this.#settle([this.dbs.wills.put(clientPrefix(client.id), plainPacket(packet))]);
  }

  async getWill(client: ClientLike): Promise<StoredPacket | undefined> {
    this.#live();
    return this.dbs.wills.get(clientPrefix(client.id));
  }

  async delWill(client: ClientLike): Promise<StoredPacket | undefined> {
    this.#live();
    const key = clientPrefix(client.id);
    const will = this.dbs.wills.get(key);
    if (will) await this.#settle([this.dbs.wills.remove(key)]);
    return will;
  }

  streamWill(brokers: Record<string, unknown> = {}): Readable {
    if (this.#destroyed) return Readable.from([]);
    const wills: StoredPacket[] = [];
    for (const { value } of this.dbs.wills.getRange({})) {
      if (value && !brokers[String(value.brokerId)]) wills.push(value);
    }
    return Readable.from(wills);
  }

  // -- expiry sweep -------------------------------------------------------------

  async sweepExpired(now: number = Date.now()): Promise<{ retained: number; queued: number }> {
    if (this.#destroyed) return { retained: 0, queued: 0 };
    const { root, retained, retainedTtl, outgoing, outgoingTtl } = this.dbs;
    const end = u64(Math.floor(now) + 1);
    const result = await root.transaction(() => {
      let r = 0;
      let qd = 0;
      for (const k of [...retainedTtl.getKeys({ end })]) {
        const e = readU64(k, 0);
        const key = Buffer.from(k.subarray(8));
        const rec = retained.get(key);
        if (rec && rec.e === e) {
          retained.remove(key);
          r++;
        }
        retainedTtl.remove(k);
      }
      for (const k of [...outgoingTtl.getKeys({ end })]) {
        const e = readU64(k, 0);
        const key = Buffer.from(k.subarray(8));
        const rec = outgoing.get(key);
        if (rec && rec.e === e && (rec.p.messageId === undefined || rec.p.messageId === null)) {
          const q = this.#queues.get(rec.c);
          if (q && key.subarray(0, q.prefix.length).equals(q.prefix)) {
            const seq = readU64(key, q.prefix.length);
            const meta = q.entries.get(seq);
            // an in-memory update not yet committed wins over the sweep
            if (meta && meta.messageId !== undefined && meta.messageId !== null) {
              outgoingTtl.remove(k);
              continue;
            }
            q.entries.delete(seq);
          }
          outgoing.remove(key);
          qd++;
        }
        outgoingTtl.remove(k);
      }
      return { retained: r, queued: qd };
    });
    for (const q of [...this.#queues.values()]) this.#maybeForget(q);
    if (this.durability === "sync" && (result.retained > 0 || result.queued > 0)) await root.flushed;
    return result;
  }

  // -- plugin store / lifecycle ---------------------------------------------------

  pluginStore(limits: KvLimits = DEFAULT_KV_LIMITS): LmdbKvStore {
    return createPluginStore(this.dbs.root, limits);
  }

  get destroyed(): boolean {
    return this.#destroyed;
  }

  async destroy(): Promise<void> {
    if (this.#destroyed) throw new Error("destroyed called twice!");
    this.#destroyed = true;
    if (this.#sweepTimer) clearInterval(this.#sweepTimer);
    this.#sweepTimer = undefined;
    this.#queues.clear();
    const { root } = this.dbs;
    try {
      await flushPluginStore(root);
      await root.flushed;
    } finally {
      await root.close();
    }
  }
}

// ---------------------------------------------------------------------------
// Callback/promise wrapper (what aedes gets)

export class LmdbPersistence extends CallBackPersistenceBase implements WasmqPersistence {
  readonly kind = "lmdb" as const;
  declare readonly asyncPersistence: LmdbAsyncPersistence;

  constructor(opts: LmdbPersistenceOptions) {
    // CallBackPersistence calls the factory synchronously, so open errors throw from here.
    super((o: object) => new LmdbAsyncPersistence(o as LmdbPersistenceOptions), opts);
  }

  get path(): string {
    return this.asyncPersistence.path;
  }
  get durability(): "sync" | "async" {
    return this.asyncPersistence.durability;
  }
  /** The LMDB root, e.g. for createPluginStore(). */
  get root(): RootDatabase {
    return this.asyncPersistence.root;
  }

  override async setup(broker: unknown): Promise<void> {
    await this.asyncPersistence.setup(broker as { id: string });
    // aedes 1.x calls setup() (not the `broker` setter): mark ready so
    // callback-style callers don't queue forever waiting for 'ready'.
    if (!this.ready) {
      this.ready = true;
      this.emit("ready");
    }
  }

  pluginStore(limits?: KvLimits): KvStore {
    return this.asyncPersistence.pluginStore(limits);
  }

  sweepExpired(now?: number): Promise<{ retained: number; queued: number }> {
    return this.asyncPersistence.sweepExpired(now);
  }

  queuedCount(clientId: string): number {
    return this.asyncPersistence.queuedCount(clientId);
  }
}

/**
 * Opens (synchronously, validating eagerly) the LMDB environment at opts.path
 * and returns an aedes persistence. Throws PersistenceOpenError naming the
 * path and the reason (not a directory / not writable / not an LMDB file /
 * corrupt) so the broker fails at start-up.
 */
export function createLmdbPersistence(opts: LmdbPersistenceOptions): LmdbPersistence {
  return new LmdbPersistence(opts);
}

/** Promise flavour of createLmdbPersistence (same eager validation). */
export async function openLmdbPersistence(opts: LmdbPersistenceOptions): Promise<LmdbPersistence> {
  return createLmdbPersistence(opts);
}

/** The shape broker/persistence/index.ts hands to the broker (kept structural to avoid an import cycle). */
export interface OpenedLmdbPersistence {
  persistence: LmdbPersistence;
  kv: KvStore;
  expiry: {
    setRetainedExpiry(packet: object, expiresAtMs: number): void;
    setQueueExpiry(packet: object, expiresAtMs: number): void;
  };
  mode: "lmdb";
  lmdb: { root: RootDatabase; durability: "sync" | "async" };
  close(): Promise<void>;
}

/**
 * Broker entry point: opens the LMDB persistence (throwing PersistenceOpenError
 * at start-up on a bad data dir) and the plugin KV store in the same env.
 */
export async function openForBroker(opts: LmdbPersistenceOptions & { kvLimits?: KvLimits }): Promise<OpenedLmdbPersistence> {
  const persistence = createLmdbPersistence(opts);
  const kv = persistence.asyncPersistence.pluginStore(opts.kvLimits);
  let closed = false;
  return {
    persistence,
    kv,
    expiry: { setRetainedExpiry, setQueueExpiry },
    mode: "lmdb",
    lmdb: { root: persistence.asyncPersistence.root, durability: persistence.asyncPersistence.durability },
    close: async () => {
      if (closed || persistence.asyncPersistence.destroyed) return;
      closed = true;
      await persistence.asyncPersistence.destroy();
    },
  };
}
