/**
 * The plugin key-value store as the host sees it. Each plugin gets a namespace
 * (its configured name); a plugin can only reach its own namespace because the
 * host binds the namespace when it builds the plugin's imports.
 *
 * Implementations must be synchronous: host imports cannot await (no JSPI on Node 20).
 */
export interface KvStore {
  get(namespace: string, key: Uint8Array): Uint8Array | undefined;
  /** Throws KvLimitError when the value or the namespace would exceed its limit. */
  put(namespace: string, key: Uint8Array, value: Uint8Array): void;
  /** Returns true when a key was removed. */
  delete(namespace: string, key: Uint8Array): boolean;
}

export interface KvLimits {
  /** Largest value accepted, in bytes. */
  maxValueBytes: number;
  /** Largest key accepted, in bytes. */
  maxKeyBytes: number;
  /** Total bytes (keys + values) one namespace may hold. */
  maxNamespaceBytes: number;
}

export const DEFAULT_KV_LIMITS: KvLimits = {
  maxValueBytes: 64 * 1024,
  maxKeyBytes: 512,
  maxNamespaceBytes: 16 * 1024 * 1024,
};

export class KvLimitError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "KvLimitError";
  }
}

/** A key's bytes as a Map key (latin1: one char per byte, so every key is distinct). */
export function keyString(key: Uint8Array): string {
  return Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString("latin1");
}

/** One namespace held in memory: its entries and the bytes they count against its limit. */
export interface KvSpace {
  bytes: number;
  entries: Map<string, Uint8Array>;
}

/**
 * How many bytes `space` grows by when `key` (as `k`) takes `value`; throws
 * KvLimitError when the key, the value or the namespace would be over a limit.
 */
export function admitPut(limits: KvLimits, namespace: string, space: KvSpace, k: string, key: Uint8Array, value: Uint8Array): number {
  checkKvLimits(limits, key, value);
  const previous = space.entries.get(k);
  const delta = key.byteLength + value.byteLength - (previous ? key.byteLength + previous.byteLength : 0);
  if (space.bytes + delta > limits.maxNamespaceBytes) {
    throw new KvLimitError(`namespace "${namespace}" would exceed ${limits.maxNamespaceBytes} bytes`);
  }
  return delta;
}

/** In-memory store: the harness, tests and the in-memory broker mode use it. */
export class MemoryKvStore implements KvStore {
  private readonly spaces = new Map<string, KvSpace>();

  constructor(private readonly limits: KvLimits = DEFAULT_KV_LIMITS) {}

  private space(namespace: string) {
    let space = this.spaces.get(namespace);
    if (!space) {
      space = { bytes: 0, entries: new Map() };
      this.spaces.set(namespace, space);
    }
    return space;
  }

  get(namespace: string, key: Uint8Array): Uint8Array | undefined {
    return this.spaces.get(namespace)?.entries.get(keyString(key));
  }

  put(namespace: string, key: Uint8Array, value: Uint8Array): void {
    const space = this.space(namespace);
    const k = keyString(key);
    space.bytes += admitPut(this.limits, namespace, space, k, key, value);
    space.entries.set(k, Uint8Array.from(value));
  }

  delete(namespace: string, key: Uint8Array): boolean {
    const space = this.spaces.get(namespace);
    if (!space) return false;
    const k = keyString(key);
    const previous = space.entries.get(k);
    if (!previous) return false;
    space.entries.delete(k);
    space.bytes -= key.byteLength + previous.byteLength;
    return true;
  }
}

export function checkKvLimits(limits: KvLimits, key: Uint8Array, value: Uint8Array): void {
  if (key.byteLength === 0) throw new KvLimitError("empty key");
  if (key.byteLength > limits.maxKeyBytes) {
    throw new KvLimitError(`key of ${key.byteLength} bytes exceeds ${limits.maxKeyBytes}`);
  }
  if (value.byteLength > limits.maxValueBytes) {
    throw new KvLimitError(`value of ${value.byteLength} bytes exceeds ${limits.maxValueBytes}`);
  }
}
