/**
 * In-memory persistence (tests, the bench, `persistence: "memory"`): the
 * reference implementation shipped in aedes-persistence, wrapped in its own
 * callback layer exactly as `aedes-persistence`'s default export does, plus:
 *
 * - the persist-hook expiry helpers from ./lmdb.ts (setRetainedExpiry /
 *   setQueueExpiry on the object passed to storeRetained /
 *   outgoingEnqueue(Combi), or the packet's `messageExpiry`):
 *   - retained: expired messages are not streamed, are purged on read and by
 *     the periodic sweep;
 *   - offline queue: expired, never-sent messages are not streamed by
 *     outgoingStream and are purged then (the reference keeps its queues in
 *     private fields, so the sweep cannot reach queues of clients that never
 *     reconnect — they are purged when the client reconnects);
 * - pluginStore(limits) → host/kv.ts MemoryKvStore.
 *
 * Nothing survives a restart, by design.
 */
import { createRequire } from "node:module";
import { Readable } from "node:stream";
import { DEFAULT_KV_LIMITS, MemoryKvStore, type KvLimits, type KvStore } from "../../host/kv.js";
import { mayMatchAny, type StreamCounts } from "./quiet-lookup.js";
import {
  WasmqCallBackPersistence,
  getQueueExpiry,
  getRetainedExpiry,
  type ClientLike,
  type StoredPacket,
  type WasmqPersistence,
} from "./lmdb.js";

const requirePersistence = createRequire(createRequire(import.meta.url).resolve("aedes-persistence"));

interface MemoryBase {
  setup(broker: unknown): Promise<void>;
  storeRetained(packet: StoredPacket): Promise<void>;
  createRetainedStream(pattern: string): Readable;
  createRetainedStreamCombi(patterns: string[]): Readable;
  outgoingStream(client: ClientLike): Readable;
  outgoingEnqueue(sub: { clientId: string }, packet: StoredPacket): Promise<void>;
  outgoingEnqueueCombi(subs: Array<{ clientId: string }>, packet: StoredPacket): Promise<void>;
  outgoingUpdate(client: ClientLike, packet: object): Promise<void>;
  outgoingClearMessageId(client: ClientLike, packet: object): Promise<StoredPacket | undefined>;
  addSubscriptions(client: ClientLike, subs: Array<{ topic: string; qos: number }>): Promise<void>;
  removeSubscriptions(client: ClientLike, topics: string[]): Promise<void>;
  cleanSubscriptions(client: ClientLike): Promise<void>;
  destroy(): Promise<void>;
}
const AsyncMemoryPersistence = requirePersistence("./asyncPersistence.js") as new (opts?: object) => MemoryBase;

function withQueueExpiry(packet: StoredPacket): StoredPacket {
  const e = getQueueExpiry(packet);
  if (e === undefined || e === packet.messageExpiry) return packet;
  return { ...packet, messageExpiry: e };
}

export interface MemoryPersistenceOptions {
  /** Period of the retained-expiry sweep in ms; 0 disables it. Default 60 000. */
  sweepIntervalMs?: number;
  /** aedes-persistence option (multi-broker subscription broadcast). */
  broadcastSubscriptions?: boolean;
}

/** aedes-persistence's MemoryPersistence with retained/queue expiry. */
export class TtlMemoryPersistence extends AsyncMemoryPersistence {
  /** topic -> expiresAt of the retained message currently stored for it */
  #retainedExpiry = new Map<string, number>();
  #sentinel = -1;
  /** clientId -> entries in the reference's (private) queue for it. */
  #queued = new Map<string, number>();
  #sweepTimer: NodeJS.Timeout | undefined;
  #destroyed = false;
  /**
   * Topics the reference holds a retained message for, kept in step with its
   * map (updated before the reference's synchronous store) so that
   * mayHaveRetained never answers "none" for a message a stream would yield.
   */
  #retainedTopics = new Set<string>();
  /** Streams this persistence opened (quiet-streams.ts: the broker asks first). */
  readonly streams: StreamCounts = { outgoing: 0, retained: 0 };
  /**
   * clientId -> the filters of its stored QoS > 0 subscriptions: what the
   * reference's (private) trie holds, kept in step with it (before its
   * synchronous add, after its synchronous removal).
   */
  #storedFilters = new Map<string, Set<string>>();
  /** Other brokers add to the reference's trie directly (broadcastSubscriptions): no "no" answers then. */
  readonly #broadcast: boolean;

  constructor(opts: MemoryPersistenceOptions = {}) {
    super(opts);
    this.#broadcast = opts.broadcastSubscriptions === true;
    const interval = opts.sweepIntervalMs ?? 60_000;
    if (interval > 0) {
      this.#sweepTimer = setInterval(() => {
        this.sweepExpired().catch(() => {});
      }, interval);
      this.#sweepTimer.unref();
    }
  }

  // The reference stores `new Packet(packet)` in its queues, which drops the
  // WeakMap-keyed expiry but copies `messageExpiry`: carry the queue expiry
  // over in that field.
  override async outgoingEnqueue(sub: { clientId: string }, packet: StoredPacket): Promise<void> {
    this.#count(sub.clientId, 1);
    return super.outgoingEnqueue(sub, withQueueExpiry(packet));
  }

  override async outgoingEnqueueCombi(subs: Array<{ clientId: string }>, packet: StoredPacket): Promise<void> {
    for (const sub of subs) this.#count(sub.clientId, 1);
    return super.outgoingEnqueueCombi(subs, withQueueExpiry(packet));
  }

  // Every removal from the reference's queue goes through here (PUBACK, PUBCOMP,
  // a clean session emptying its queue, a denied delivery, the expiry purge).
  override async outgoingClearMessageId(client: ClientLike, packet: object): Promise<StoredPacket | undefined> {
    const removed = await super.outgoingClearMessageId(client, packet);
    if (removed) this.#count(client.id, -1);
    return removed;
  }

  override async addSubscriptions(client: ClientLike, subs: Array<{ topic: string; qos: number }>): Promise<void> {
    let filters = this.#storedFilters.get(client.id);
    for (const sub of subs) {
      if (sub.qos > 0) {
        filters ??= new Set();
        filters.add(sub.topic);
      } else filters?.delete(sub.topic); // the reference takes a QoS 0 subscription out of its trie
    }
    this.#keepFilters(client.id, filters);
    return super.addSubscriptions(client, subs);
  }

  override async removeSubscriptions(client: ClientLike, topics: string[]): Promise<void> {
    const done = super.removeSubscriptions(client, topics);
    const filters = this.#storedFilters.get(client.id);
    if (filters) for (const topic of topics) filters.delete(topic);
    this.#keepFilters(client.id, filters);
    return done;
  }

  override async cleanSubscriptions(client: ClientLike): Promise<void> {
    const done = super.cleanSubscriptions(client);
    this.#storedFilters.delete(client.id);
    return done;
  }

  #keepFilters(clientId: string, filters: Set<string> | undefined): void {
    if (filters && filters.size > 0) this.#storedFilters.set(clientId, filters);
    else this.#storedFilters.delete(clientId);
  }

  /** By count: a fleet without persistent sessions has no stored subscriptions at all. */
  mayHaveStoredSubscriptions(_topic: string): boolean {
    return this.#broadcast || this.#storedFilters.size > 0;
  }

  #count(clientId: string, delta: number): void {
    const n = (this.#queued.get(clientId) ?? 0) + delta;
    if (n > 0) this.#queued.set(clientId, n);
    else this.#queued.delete(clientId);
  }

  queuedCount(clientId: string): number {
    return this.#queued.get(clientId) ?? 0;
  }

  /** False only when the client's stored queue is empty (every entry enters through outgoingEnqueue(Combi), counted first). */
  mayHaveQueued(clientId: string): boolean {
    return this.#queued.has(clientId);
  }

  /**
   * False only when no retained message is stored under a topic any of
   * `patterns` can match. Stops at the first possible match; when nothing
   * matches it makes one pass over the topics, as the reference's stream would.
   */
  mayHaveRetained(patterns: string[]): boolean {
    return this.#retainedTopics.size > 0 && mayMatchAny(patterns, this.#retainedTopics);
  }

  override async storeRetained(pkt: StoredPacket): Promise<void> {
    const e = getRetainedExpiry(pkt);
    const topic = String(pkt.topic);
    const empty = pkt.payload === undefined || pkt.payload === null || (pkt.payload as { length: number }).length === 0;
    // before the reference's store, which updates its map synchronously
    if (empty) this.#retainedTopics.delete(topic);
    else this.#retainedTopics.add(topic);
    await super.storeRetained(pkt);
    if (empty || e === undefined) this.#retainedExpiry.delete(topic);
    else this.#retainedExpiry.set(topic, e);
  }

  #purgeRetained(topic: string, e: number): Promise<void> {
    if (this.#retainedExpiry.get(topic) !== e || this.#destroyed) return Promise.resolve();
    this.#retainedExpiry.delete(topic);
    this.#retainedTopics.delete(topic);
    return super.storeRetained({ topic, payload: Buffer.alloc(0) });
  }

  #filterRetained(source: Readable): Readable {
    const self = this;
    return Readable.from(
      (async function* () {
        const now = Date.now();
        for await (const packet of source) {
          const topic = String((packet as StoredPacket).topic);
          const e = self.#retainedExpiry.get(topic);
          if (e !== undefined && e <= now) {
            await self.#purgeRetained(topic, e);
            continue;
          }
          yield packet;
        }
      })(),
    );
  }

  override createRetainedStream(pattern: string): Readable {
    this.streams.retained++;
    return this.#filterRetained(super.createRetainedStream(pattern));
  }

  override createRetainedStreamCombi(patterns: string[]): Readable {
    this.streams.retained++;
    return this.#filterRetained(super.createRetainedStreamCombi(patterns));
  }

  override outgoingStream(client: ClientLike): Readable {
    this.streams.outgoing++;
    const self = this;
    const source = super.outgoingStream(client);
    const purge = (packet: StoredPacket) => self.#purgeQueued(client, packet);
    return Readable.from(
      (async function* () {
        const now = Date.now();
        for await (const packet of source) {
          const p = packet as StoredPacket;
          const e = getQueueExpiry(p);
          if (e !== undefined && e <= now && p.cmd === "publish" && (p.messageId === undefined || p.messageId === null)) {
            await purge(p);
            continue;
          }
          yield packet;
        }
      })(),
    );
  }

  /** Remove one queued, never-sent entry through the public API: number it with a unique negative id, then clear that id. */
  async #purgeQueued(client: ClientLike, packet: StoredPacket): Promise<void> {
    const messageId = this.#sentinel--;
    try {
      await super.outgoingUpdate(client, { cmd: "publish", brokerId: packet.brokerId, brokerCounter: packet.brokerCounter, messageId });
      await this.outgoingClearMessageId(client, { messageId });
    } catch {
      // already gone
    }
  }

  async sweepExpired(now: number = Date.now()): Promise<{ retained: number; queued: number }> {
    let retained = 0;
    for (const [topic, e] of [...this.#retainedExpiry]) {
      if (e <= now) {
        await this.#purgeRetained(topic, e);
        retained++;
      }
    }
    return { retained, queued: 0 };
  }

  override async destroy(): Promise<void> {
    this.#destroyed = true;
    if (this.#sweepTimer) clearInterval(this.#sweepTimer);
    this.#sweepTimer = undefined;
    await super.destroy();
  }
}

export class MemoryPersistence extends WasmqCallBackPersistence implements WasmqPersistence {
  readonly kind = "memory" as const;
  declare readonly asyncPersistence: TtlMemoryPersistence;
  #kv: MemoryKvStore | undefined;

  constructor(opts: MemoryPersistenceOptions = {}) {
    super((o: object) => new TtlMemoryPersistence(o as MemoryPersistenceOptions), opts);
  }

  override async setup(broker: unknown): Promise<void> {
    await this.asyncPersistence.setup(broker);
    if (!this.ready) {
      this.ready = true;
      this.emit("ready");
    }
  }

  /** One MemoryKvStore per persistence (limits apply from the first call). */
  pluginStore(limits: KvLimits = DEFAULT_KV_LIMITS): KvStore {
    this.#kv ??= new MemoryKvStore(limits);
    return this.#kv;
  }
}

export { setRetainedExpiry, setQueueExpiry, getRetainedExpiry, getQueueExpiry } from "./lmdb.js";

export function createMemoryPersistence(opts: MemoryPersistenceOptions = {}): MemoryPersistence {
  return new MemoryPersistence(opts);
}
