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
 * Writes are behind a cache. Host imports are synchronous and a plugin may
 * write on every message (a rate limiter, a counter), but a synchronous LMDB
 * commit costs milliseconds here (putSync waits for its transaction), and even
 * a read through lmdb-js costs about a microsecond. So reads and writes hit an
 * in-memory map first; each write is also handed to LMDB as an asynchronous put,
 * which lmdb-js batches with the persistence's other writes into one
 * transaction per event-loop turn. A value read back is always the latest one
 * written. What a crash can lose: writes of the last few milliseconds (the
 * batch not yet committed); after a commit they survive kill -9, and power loss
 * once flushed. `flush()` waits for every pending write (the broker calls it on
 * shutdown). The cache keeps at most `cacheEntries` entries, never evicting a
 * key whose write is still pending.
 */
import type { Database, RootDatabase } from "lmdb";
import { checkKvLimits, DEFAULT_KV_LIMITS, KvLimitError, type KvLimits, type KvStore } from "../../host/kv.js";

const PLUGIN_KV_DB_NAME = "plugin-kv";

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
    private readonly cacheEntries = 100_000,
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

  /** Latest value per full key (latin1 string); null = known absent. */
  private readonly cache = new Map<string, Buffer | null>();
  /** Writes not yet handed to LMDB, coalesced per key until the next turn. */
  private dirty = new Map<string, { full: Buffer; value: Buffer | null }>();
  /** Keys handed to LMDB whose transaction has not committed yet. */
  private readonly committing = new Map<string, number>();
  private flushing: Promise<void> | null = null;
  private scheduled = false;

  private lookup(namespace: string, key: Uint8Array, id: string): Buffer | null {
    const hit = this.cache.get(id);
    if (hit !== undefined) return hit;
    const stored = this.db.getBinary(this.fullKey(namespace, key));
    const value = stored ? Buffer.from(stored) : null;
    this.remember(id, value);
    return value;
  }

  private remember(id: string, value: Buffer | null): void {
    this.cache.delete(id);
    this.cache.set(id, value);
    if (this.cache.size <= this.cacheEntries) return;
    for (const old of this.cache.keys()) {
      if (this.cache.size <= this.cacheEntries) break;
      if (!this.dirty.has(old) && !this.committing.has(old)) this.cache.delete(old);
    }
  }

  private write(namespace: string, key: Uint8Array, id: string, value: Buffer | null): void {
    this.remember(id, value);
    this.dirty.set(id, { full: this.fullKey(namespace, key), value });
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => void this.commitDirty());
    }
  }

  /** Hand the coalesced writes to LMDB; lmdb-js commits them in one transaction. */
  private commitDirty(): Promise<void> {
    this.scheduled = false;
    const batch = this.dirty;
    if (batch.size === 0) return this.flushing ?? Promise.resolve();
    this.dirty = new Map();
    const writes: Promise<unknown>[] = [];
    for (const [id, { full, value }] of batch) {
      this.committing.set(id, (this.committing.get(id) ?? 0) + 1);
      writes.push(value ? this.db.put(full, value) : this.db.remove(full));
    }
    const previous = this.flushing;
    const done = Promise.all(writes).then(
      () => undefined,
      (err: Error) => this.onWriteError(err),
    );
    const current: Promise<void> = done.finally(() => {
      for (const id of batch.keys()) {
        const left = (this.committing.get(id) ?? 1) - 1;
        if (left > 0) this.committing.set(id, left);
        else this.committing.delete(id);
      }
      if (this.flushing === current) this.flushing = null;
    });
    this.flushing = previous ? Promise.all([previous, current]).then(() => undefined) : current;
    return this.flushing;
  }

  private id(namespace: string, key: Uint8Array): string {
    return this.prefix(namespace).toString("latin1") + asBuffer(key).toString("latin1");
  }

  /** Called when an asynchronous write fails (disk full, environment closed). */
  onWriteError: (err: Error) => void = () => {};

  get(namespace: string, key: Uint8Array): Uint8Array | undefined {
    // a key put() would refuse cannot exist
    if (key.byteLength === 0 || key.byteLength > this.limits.maxKeyBytes) return undefined;
    return this.lookup(namespace, key, this.id(namespace, key)) ?? undefined;
  }

  put(namespace: string, key: Uint8Array, value: Uint8Array): void {
    checkKvLimits(this.limits, key, value);
    const id = this.id(namespace, key);
    const current = this.namespaceBytes(namespace);
    const previous = this.lookup(namespace, key, id);
    const delta = key.byteLength + value.byteLength - (previous ? key.byteLength + previous.length : 0);
    if (current + delta > this.limits.maxNamespaceBytes) {
      throw new KvLimitError(`namespace "${namespace}" would exceed ${this.limits.maxNamespaceBytes} bytes`);
    }
    // Copy: the caller's bytes may be a view into a plugin's memory.
    this.write(namespace, key, id, Buffer.from(value));
    this.bytes.set(namespace, current + delta);
  }

  delete(namespace: string, key: Uint8Array): boolean {
    if (key.byteLength === 0 || key.byteLength > this.limits.maxKeyBytes) return false;
    const id = this.id(namespace, key);
    const current = this.namespaceBytes(namespace);
    const previous = this.lookup(namespace, key, id);
    if (!previous) return false;
    this.write(namespace, key, id, null);
    this.bytes.set(namespace, current - (key.byteLength + previous.length));
    return true;
  }

  /** Resolves when every write made so far is committed. */
  async flush(): Promise<void> {
    await this.commitDirty();
  }
}

const storesByRoot = new WeakMap<RootDatabase, LmdbKvStore>();

/**
 * The plugin store of an open LMDB root. One per root: stores share the write
 * cache, so every reader sees every write, and closing the root flushes it.
 */
export function createPluginStore(root: RootDatabase, limits: KvLimits = DEFAULT_KV_LIMITS): LmdbKvStore {
  let store = storesByRoot.get(root);
  if (!store) {
    store = new LmdbKvStore(root, limits);
    storesByRoot.set(root, store);
  }
  return store;
}

/** Wait until the root's plugin store (if any) has committed every write. */
export async function flushPluginStore(root: RootDatabase): Promise<void> {
  await storesByRoot.get(root)?.flush();
}
