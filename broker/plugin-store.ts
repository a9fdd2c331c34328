/**
 * The plugin key-value store on LMDB: a named sub-database ("plugin-kv") of
 * the broker's LMDB environment (the same data directory as the aedes
 * persistence, see broker/persistence/lmdb.ts).
 *
 * Keys are bytes: UTF-8 namespace, a 0x00 separator, then the plugin's key
 * bytes. A namespace may not contain U+0000, so one namespace's key range can
 * never contain another's. Values are stored raw (binary encoding).
 *
 * Limits (KvLimits): per key, per value, and per namespace total (key bytes +
 * value bytes, the same accounting as MemoryKvStore). The per-namespace byte
 * count is computed once per namespace, by a range scan the first time the
 * namespace is touched after opening (so opening stays O(1) however many
 * plugins have data), and then maintained incrementally. Counts are shared by
 * every LmdbKvStore on the same LMDB root, so two stores over one environment
 * cannot double-spend a namespace's budget.
 *
 * Cost of synchronous writes: host imports cannot await, so put/delete use
 * lmdb-js putSync/removeSync. Each is a complete LMDB write transaction
 * committed on the calling (main) thread — typically tens of microseconds on
 * an SSD-backed page cache — and it also cuts the current asynchronous write
 * batch of the persistence in two (lmdb-js must commit the pending batch
 * first). With overlappingSync (how broker/persistence/lmdb.ts opens the
 * environment) the commit does not wait for fsync: a put that returned
 * survives a process crash (kill -9); the flush to disk follows
 * asynchronously, so an OS crash / power loss can lose the last puts. Reads
 * are plain memory-mapped lookups (no transaction cost). A plugin that writes
 * on every message should batch in its own memory and flush periodically.
 */
import type { Database, RootDatabase } from "lmdb";
import { checkKvLimits, DEFAULT_KV_LIMITS, KvLimitError, type KvLimits, type KvStore } from "../host/kv.js";

export const PLUGIN_KV_DB_NAME = "plugin-kv";

/** Longest key lmdb-js accepts with the default page size. */
const LMDB_MAX_KEY_BYTES = 1978;
const MAX_NAMESPACE_BYTES = 255;

/** Byte counts per namespace, shared by every store over one root. */
const namespaceBytesByRoot = new WeakMap<object, Map<string, number>>();

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

export class LmdbKvStore implements KvStore {
  readonly db: Database<Buffer, Buffer>;
  private readonly bytes: Map<string, number>;
  private readonly nsPrefixes = new Map<string, Buffer>();

  constructor(
    root: RootDatabase,
    private readonly limits: KvLimits = DEFAULT_KV_LIMITS,
  ) {
    this.db = root.openDB<Buffer, Buffer>({ name: PLUGIN_KV_DB_NAME, keyEncoding: "binary", encoding: "binary" });
    let bytes = namespaceBytesByRoot.get(root);
    if (!bytes) {
      bytes = new Map();
      namespaceBytesByRoot.set(root, bytes);
    }
    this.bytes = bytes;
  }

  private prefix(namespace: string): Buffer {
    let prefix = this.nsPrefixes.get(namespace);
    if (prefix) return prefix;
    if (typeof namespace !== "string" || namespace.length === 0) throw new KvLimitError("empty namespace");
    if (namespace.includes("\0")) throw new KvLimitError(`namespace ${JSON.stringify(namespace)} contains U+0000`);
    const ns = Buffer.from(namespace, "utf8");
    if (ns.length > MAX_NAMESPACE_BYTES) throw new KvLimitError(`namespace longer than ${MAX_NAMESPACE_BYTES} bytes`);
    prefix = Buffer.concat([ns, Buffer.from([0])]);
    this.nsPrefixes.set(namespace, prefix);
    return prefix;
  }

  private fullKey(namespace: string, key: Uint8Array): Buffer {
    const prefix = this.prefix(namespace);
    if (prefix.length + key.byteLength > LMDB_MAX_KEY_BYTES) {
      throw new KvLimitError(`key of ${key.byteLength} bytes is too long for the LMDB store`);
    }
    return Buffer.concat([prefix, asBuffer(key)]);
  }

  /** Bytes (keys + values) the namespace holds; scans the namespace once per process. */
  namespaceBytes(namespace: string): number {
    const known = this.bytes.get(namespace);
    if (known !== undefined) return known;
    const prefix = this.prefix(namespace);
    const end = Buffer.from(prefix);
    end[end.length - 1] = 1; // namespace + 0x01: just past every namespace + 0x00 + key
    let total = 0;
    for (const { key, value } of this.db.getRange({ start: prefix, end })) {
      total += key.length - prefix.length + (value ? value.length : 0);
    }
    this.bytes.set(namespace, total);
    return total;
  }

  get(namespace: string, key: Uint8Array): Uint8Array | undefined {
    // a key put() would refuse cannot exist
    if (key.byteLength === 0 || key.byteLength > this.limits.maxKeyBytes) return undefined;
    return this.db.getBinary(this.fullKey(namespace, key));
  }

  put(namespace: string, key: Uint8Array, value: Uint8Array): void {
    checkKvLimits(this.limits, key, value);
    const full = this.fullKey(namespace, key);
    const current = this.namespaceBytes(namespace);
    const previous = this.db.getBinaryFast(full);
    const delta = key.byteLength + value.byteLength - (previous ? key.byteLength + previous.length : 0);
    if (current + delta > this.limits.maxNamespaceBytes) {
      throw new KvLimitError(`namespace "${namespace}" would exceed ${this.limits.maxNamespaceBytes} bytes`);
    }
    // putSync copies the bytes into the transaction, so a view into Wasm memory is fine
    this.db.putSync(full, asBuffer(value));
    this.bytes.set(namespace, current + delta);
  }

  delete(namespace: string, key: Uint8Array): boolean {
    if (key.byteLength === 0 || key.byteLength > this.limits.maxKeyBytes) return false;
    const full = this.fullKey(namespace, key);
    const current = this.namespaceBytes(namespace);
    const previous = this.db.getBinaryFast(full);
    if (!previous) return false;
    const size = key.byteLength + previous.length;
    if (!this.db.removeSync(full)) return false;
    this.bytes.set(namespace, current - size);
    return true;
  }
}

/** A plugin store over an already-open LMDB root (e.g. `persistence.root`). */
export function createPluginStore(root: RootDatabase, limits: KvLimits = DEFAULT_KV_LIMITS): LmdbKvStore {
  return new LmdbKvStore(root, limits);
}
