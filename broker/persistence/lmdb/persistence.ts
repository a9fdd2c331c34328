/**
 * LMDB persistence for aedes 1.x (retained messages, persistent sessions'
 * subscriptions, offline/in-flight QoS 1/2 queues, incoming QoS 2 packets,
 * wills) plus the plugin key-value store, all in one LMDB environment.
 *
 * ## Durability — what survives what
 *
 * Every mutating method awaits the LMDB commit of its writes (with "sync"
 * also the flush of their batch, see group-commit.ts) before its promise (or,
 * through the callback wrapper, its callback) settles, so aedes sends SUBACK
 * (after addSubscriptions) and PUBREC (after incomingStorePacket and routing,
 * i.e. after the offline enqueue) only for stored state. Two exceptions, both
 * about deliveries to a session, never about what a publisher was promised
 * (queues.ts, broker/OPERATIONS.md "Durability model"): outgoingUpdate of a
 * QoS 1 delivery keeps the packet identifier in memory and writes it later;
 * the other methods' completions are handed back in issue order.
 *
 * QoS 1: aedes 1.2 on its own writes the PUBACK *before* it calls
 * broker.publish (lib/handlers/publish.js: write(PubAck) then broker.publish
 * → storeRetained → enqueueOffline). wasmq's publish adapter
 * (broker/protocol/hooks.ts, authorizePublish) runs that publish — and so
 * these writes — itself, and the PUBACK is written (broker/protocol/
 * lean-publish.ts) only once it has completed, so "PUBACK ⇒ stored" holds as
 * "PUBREC ⇒ stored" does;
 * test/crash.test.ts SIGKILLs the CLI in the tick a PUBACK arrives. A plain
 * aedes using this persistence (the "wasmq/persistence" export) keeps aedes'
 * window.
 * With the adapter's ack gate (../ack-gate.ts) a QoS 1 delivery to a
 * connected session may skip the disk when its subscriber acknowledges it
 * first: the PUBACK then means "stored, or already acknowledged by every
 * persistent subscriber" (test/crash-held-deliveries.test.ts). Without a
 * ticket (plain aedes, bridge, cluster, wills), and with `writeHoldMs` 0 (no
 * gate at all), enqueues are written first.
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
 *   Under load many clients' writes share a commit (and an fsync): measured
 *   one fdatasync per ~110 persistent QoS 1 messages (bench/README.md).
 *
 * `durability: "sync"` (default): a write resolves after its transaction
 *   committed AND its batch's flush resolved (fdatasync done). Survives kill -9
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
 *
 * This module is the composition: one store per concern in this folder
 * (retained.ts, subscriptions.ts, queues.ts, incoming.ts, wills.ts, the
 * expiry side channel and sweep.ts, environment.ts), behind the
 * aedes-persistence surface aedes calls.
 */
import path from "node:path";
import { Readable } from "node:stream";
import type { RootDatabase } from "lmdb";
import { DEFAULT_KV_LIMITS, type KvLimits, type KvStore } from "../../../host/kv.js";
import { createPluginStore, flushPluginStore, type LmdbKvStore } from "../plugin-kv.js";
import type { StreamCounts } from "../quiet-lookup.js";
import { WasmqCallBackPersistence, type ClientLike, type StoredPacket, type SubscriptionLike, type WasmqPersistence } from "./aedes-parts.js";
import { noop, openEnvironment, type LmdbDatabases, type LmdbPersistenceOptions, type StoreContext } from "./environment.js";
import { setQueueExpiry, setRetainedExpiry } from "./expiry.js";
import { GroupCommit } from "./group-commit.js";
import { IncomingStore } from "./incoming.js";
import { QueueStore } from "./queues.js";
import { AckGate } from "../ack-gate.js";
import type { HoldFigures } from "./held-puts.js";
import { DEFAULT_WRITE_HOLD_MODE, DEFAULT_WRITE_HOLD_MS, MAX_WRITE_HOLD_MS, type WriteHoldMode } from "./unwritten.js";
import { RetainedStore } from "./retained.js";
import { SubscriptionStore } from "./subscriptions.js";
import { sweepExpired } from "./sweep.js";
import { WillStore } from "./wills.js";

// ---------------------------------------------------------------------------
// The async persistence (aedes-persistence 11 "async" style)

export class LmdbAsyncPersistence {
  readonly path: string;
  readonly durability: "sync" | "async";
  readonly dbs: LmdbDatabases;
  #broker: { id: string } | undefined;
  #destroyed = false;
  #sweepTimer: NodeJS.Timeout | undefined;
  readonly #retained: RetainedStore;
  readonly #subscriptions: SubscriptionStore;
  readonly #queues: QueueStore;
  readonly #incoming: IncomingStore;
  readonly #wills: WillStore;
  readonly #ctx: StoreContext;
  readonly #commits: GroupCommit;
  /**
   * Publishers' PUBACKs wait on it when a delivery may be acknowledged before
   * it is written (../ack-gate.ts). Absent with `writeHoldMs` 0: then every
   * delivery is written before it is routed, as without the gate.
   */
  readonly ackGate: AckGate | undefined;
  readonly writeHoldMs: number;
  readonly writeHold: WriteHoldMode;
  /** Streams opened for aedes (../quiet-lookup.ts: the broker asks first). */
  readonly streams: StreamCounts = { outgoing: 0, retained: 0 };

  /** Opens (synchronously) and validates the environment; throws PersistenceOpenError. */
  constructor(opts: LmdbPersistenceOptions) {
    this.path = path.resolve(opts.path);
    this.durability = opts.durability ?? "sync";
    if (this.durability !== "sync" && this.durability !== "async") {
      throw new TypeError(`durability must be "sync" or "async", got ${String(opts.durability)}`);
    }
    this.writeHoldMs = opts.writeHoldMs ?? DEFAULT_WRITE_HOLD_MS;
    if (!Number.isInteger(this.writeHoldMs) || this.writeHoldMs < 0 || this.writeHoldMs > MAX_WRITE_HOLD_MS) {
      throw new TypeError(`writeHoldMs must be an integer from 0 to ${MAX_WRITE_HOLD_MS} (ms), got ${String(opts.writeHoldMs)}`);
    }
    this.writeHold = opts.writeHold ?? DEFAULT_WRITE_HOLD_MODE;
    if (this.writeHold !== "adaptive" && this.writeHold !== "fixed") {
      throw new TypeError(`writeHold must be "adaptive" or "fixed", got ${String(opts.writeHold)}`);
    }
    this.ackGate = this.writeHoldMs > 0 ? new AckGate() : undefined;
    this.dbs = openEnvironment(opts);
    this.#commits = new GroupCommit(this.dbs.root, this.durability);
    const self = this;
    this.#ctx = {
      dbs: this.dbs,
      durability: this.durability,
      get destroyed() {
        return self.#destroyed;
      },
      get brokerId() {
        return self.#broker?.id;
      },
      live: () => this.#live(),
      settle: (writes) => this.#commits.settle(writes),
      busy: () => this.#commits.busy(),
    };
    try {
      this.#subscriptions = new SubscriptionStore(this.#ctx, this.path);
    } catch (err) {
      void this.dbs.root.close().catch(noop);
      throw err;
    }
    this.#retained = new RetainedStore(this.#ctx);
    this.#queues = new QueueStore(this.#ctx, this.ackGate, this.writeHoldMs, this.writeHold);
    this.#incoming = new IncomingStore(this.#ctx);
    this.#wills = new WillStore(this.#ctx);
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



  // -- retained ---------------------------------------------------------------

  storeRetained(pkt: StoredPacket): Promise<void> {
    return this.#retained.storeRetained(pkt);
  }
  createRetainedStream(pattern: string): Readable {
    this.streams.retained++;
    return this.#retained.createRetainedStreamCombi([pattern]);
  }
  createRetainedStreamCombi(patterns: string[]): Readable {
    this.streams.retained++;
    return this.#retained.createRetainedStreamCombi(patterns);
  }
  mayHaveRetained(patterns: string[]): boolean {
    return this.#retained.mayHaveRetained(patterns);
  }

  // -- subscriptions ----------------------------------------------------------

  addSubscriptions(client: ClientLike, subs: SubscriptionLike[]): Promise<void> {
    return this.#subscriptions.addSubscriptions(client, subs);
  }
  removeSubscriptions(client: ClientLike, topics: string[]): Promise<void> {
    return this.#subscriptions.removeSubscriptions(client, topics);
  }
  subscriptionsByClient(client: ClientLike): Promise<Array<Record<string, unknown>>> {
    return this.#subscriptions.subscriptionsByClient(client);
  }
  countOffline(): Promise<{ subsCount: number; clientsCount: number }> {
    return this.#subscriptions.countOffline();
  }
  subscriptionsByTopic(pattern: string): Promise<Array<Record<string, unknown>>> {
    return this.#subscriptions.subscriptionsByTopic(pattern);
  }
  cleanSubscriptions(client: ClientLike): Promise<void> {
    return this.#subscriptions.cleanSubscriptions(client);
  }
  mayHaveStoredSubscriptions(topic: string): boolean {
    return this.#subscriptions.mayHaveStoredSubscriptions(topic);
  }
  getClientList(topic: string): Readable {
    return this.#subscriptions.getClientList(topic);
  }

  // -- outgoing queues --------------------------------------------------------

  queuedCount(clientId: string): number {
    return this.#queues.queuedCount(clientId);
  }
  outgoingEnqueue(sub: { clientId: string }, packet: StoredPacket): Promise<void> {
    return this.#queues.outgoingEnqueue(sub, packet);
  }
  outgoingEnqueueCombi(subs: Array<{ clientId: string }>, packet: StoredPacket): Promise<void> {
    return this.#queues.outgoingEnqueueCombi(subs, packet);
  }
  outgoingUpdate(client: ClientLike, packet: StoredPacket): Promise<void> {
    return this.#queues.outgoingUpdate(client, packet);
  }
  outgoingClearMessageId(client: ClientLike, packet: StoredPacket): Promise<StoredPacket | undefined> {
    return this.#queues.outgoingClearMessageId(client, packet);
  }
  outgoingStream(client: ClientLike): Readable {
    this.streams.outgoing++;
    return this.#queues.outgoingStream(client);
  }
  mayHaveQueued(clientId: string): boolean {
    // once closed, "maybe": the store's own calls then fail as they should
    return this.#destroyed || this.#queues.queuedCount(clientId) > 0;
  }

  // -- incoming (QoS 2) and wills ---------------------------------------------

  incomingStorePacket(client: ClientLike, packet: StoredPacket): Promise<void> {
    return this.#incoming.incomingStorePacket(client, packet);
  }
  incomingGetPacket(client: ClientLike, packet: StoredPacket): Promise<StoredPacket> {
    return this.#incoming.incomingGetPacket(client, packet);
  }
  incomingDelPacket(client: ClientLike, packet: StoredPacket): Promise<void> {
    return this.#incoming.incomingDelPacket(client, packet);
  }
  cleanIncoming(client: ClientLike): Promise<void> {
    return this.#incoming.cleanIncoming(client);
  }
  putWill(client: ClientLike, packet: StoredPacket): Promise<void> {
    return this.#wills.putWill(client, packet);
  }
  getWill(client: ClientLike): Promise<StoredPacket | undefined> {
    return this.#wills.getWill(client);
  }
  delWill(client: ClientLike): Promise<StoredPacket | undefined> {
    return this.#wills.delWill(client);
  }
  streamWill(brokers: Record<string, unknown> = {}): Readable {
    return this.#wills.streamWill(brokers);
  }

  /** What holding deliveries from the disk did since the store opened (held-puts.ts). */
  holdFigures(): HoldFigures {
    return this.#queues.holdFigures();
  }

  // -- expiry sweep -------------------------------------------------------------

  sweepExpired(now: number = Date.now()): Promise<{ retained: number; queued: number }> {
    return sweepExpired(this.#ctx, this.#queues, now);
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
    const ids = Promise.all([this.#queues.flushUnwritten(), this.#queues.writeDeferredIds(), this.#queues.issueRemovals()]);
    this.#queues.clear();
    const { root } = this.dbs;
    try {
      await ids;
      await flushPluginStore(root);
      await root.flushed;
    } finally {
      await root.close();
    }
  }
}

// ---------------------------------------------------------------------------
// Callback/promise wrapper (what aedes gets)

export class LmdbPersistence extends WasmqCallBackPersistence implements WasmqPersistence {
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
  /** See ../ack-gate.ts: the publish adapter (hooks.ts) opens a ticket per QoS 1 message; absent with writeHoldMs 0. */
  get ackGate(): AckGate | undefined {
    return this.asyncPersistence.ackGate;
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
  /** The environment, for stores of their own in named sub-databases (bridge queues). */
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
