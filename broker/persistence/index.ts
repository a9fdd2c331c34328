import type { AedesPublishPacket } from "aedes";
import { MemoryKvStore, type KvStore } from "../../host/index.js";
import type { BrokerConfig } from "../config.js";

/** Expiry side channel the persist hook uses (TTL per retained message / queued message). */
export interface PersistenceExpiry {
  setRetainedExpiry(packet: AedesPublishPacket, expiresAtMs: number): void;
  setQueueExpiry(packet: AedesPublishPacket, expiresAtMs: number): void;
}

export interface OpenedPersistence {
  /** The aedes persistence instance. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  persistence: any;
  /** Plugin key-value store sharing the persistence's storage. */
  kv: KvStore;
  expiry: PersistenceExpiry;
  mode: "lmdb" | "memory" | "redis";
  /** The LMDB environment (lmdb mode), for stores of their own in named sub-databases (bridge queues). */
  lmdb?: { root: import("lmdb").RootDatabase; durability: "sync" | "async" };
  close(): Promise<void>;
}

export async function openPersistence(
  config: Pick<BrokerConfig, "persistence" | "data" | "durability"> & Partial<Pick<BrokerConfig, "writeHoldMs" | "writeHold">>,
): Promise<OpenedPersistence> {
  if (config.persistence === "memory") {
    const { createMemoryPersistence, setRetainedExpiry, setQueueExpiry } = await import("./memory.js");
    return {
      persistence: createMemoryPersistence(),
      kv: new MemoryKvStore(),
      expiry: { setRetainedExpiry, setQueueExpiry },
      mode: "memory",
      close: async () => {},
    };
  }
  const lmdb = await import("./lmdb.js");
  return lmdb.openForBroker({ path: config.data, durability: config.durability, writeHoldMs: config.writeHoldMs, writeHold: config.writeHold });
}

/** A node-local LMDB environment for stores of this machine's own. */
export interface LocalLmdb {
  root: import("lmdb").RootDatabase;
  durability: "sync" | "async";
  close(): Promise<void>;
}

/**
 * Open `dir` as a node-local LMDB environment. In cluster mode sessions live in
 * Redis, but a bridge's outbound queue belongs to the node that acknowledged
 * the messages: it must survive that node's kill -9, so it stays on local disk.
 */
export async function openLocalLmdb(dir: string, durability: "sync" | "async"): Promise<LocalLmdb> {
  const { openEnvironment } = await import("./lmdb/environment.js");
  const { root } = openEnvironment({ path: dir });
  return { root, durability, close: () => root.close() };
}
