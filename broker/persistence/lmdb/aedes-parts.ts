/**
 * CommonJS pieces of aedes-persistence (and what it depends on), and the
 * persistence surface aedes 1.x calls. Resolving from aedes-persistence's own
 * location gives exactly the qlobber/aedes-packet versions the reference
 * implementation uses.
 */
import type { EventEmitter } from "node:events";
import { createRequire } from "node:module";
import type { Readable } from "node:stream";
import type { KvLimits, KvStore } from "../../../host/kv.js";
import type { QuietLookups, StoredSubscriptionLookup, StreamCounts } from "../quiet-lookup.js";

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

export type PacketCtor = new (original: object, broker?: { id: string; counter: number }) => StoredPacket;
export const Packet = requirePersistence("aedes-packet") as PacketCtor;

interface QlobberSubLike {
  add(topic: string, value: object): void;
  remove(topic: string, value: object): void;
  match(topic: string): Array<Record<string, unknown>>;
  subscriptionsCount: number;
}
export const QlobberSub = requirePersistence("qlobber/aedes/qlobber-sub") as new (opts: object) => QlobberSubLike;
export const { QlobberTrue } = requirePersistence("qlobber") as {
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
/** aedes-persistence's callback layer, typed. */
export const CallBackPersistenceBase = CallBackPersistence;

/** What both of wasmq's async stores answer beyond the surface aedes calls. */
export interface WasmqAsyncParts extends QuietLookups, StoredSubscriptionLookup {
  sweepExpired(now?: number): Promise<{ retained: number; queued: number }>;
  queuedCount(clientId: string): number;
  readonly streams: Readonly<StreamCounts>;
}

/**
 * The callback layer aedes gets, with wasmq's own questions passed through to
 * the async store underneath. Both factories (memory, LMDB) extend it.
 */
export class WasmqCallBackPersistence extends CallBackPersistenceBase implements QuietLookups, StoredSubscriptionLookup {
  declare readonly asyncPersistence: WasmqAsyncParts;

  sweepExpired(now?: number): Promise<{ retained: number; queued: number }> {
    return this.asyncPersistence.sweepExpired(now);
  }

  queuedCount(clientId: string): number {
    return this.asyncPersistence.queuedCount(clientId);
  }

  mayHaveQueued(clientId: string): boolean {
    return this.asyncPersistence.mayHaveQueued(clientId);
  }

  mayHaveRetained(patterns: string[]): boolean {
    return this.asyncPersistence.mayHaveRetained(patterns);
  }

  mayHaveStoredSubscriptions(topic: string): boolean {
    return this.asyncPersistence.mayHaveStoredSubscriptions(topic);
  }

  /** Streams opened for aedes (stored queues at CONNECT, retained messages at SUBSCRIBE) since open. */
  get streams(): Readonly<StreamCounts> {
    return this.asyncPersistence.streams;
  }
}

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
