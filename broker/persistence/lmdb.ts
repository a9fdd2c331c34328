/**
 * The LMDB persistence's public entry (`wasmq/persistence`): the
 * implementation lives in ./lmdb/, one module per concern; see
 * ./lmdb/persistence.ts for what survives what.
 */
export {
  CallBackPersistenceBase,
  WasmqCallBackPersistence,
  type AedesPersistenceLike,
  type ClientLike,
  type StoredPacket,
  type SubscriptionLike,
  type WasmqPersistence,
} from "./lmdb/aedes-parts.js";
export { PersistenceOpenError, type LmdbDatabases, type LmdbPersistenceOptions } from "./lmdb/environment.js";
export { getQueueExpiry, getRetainedExpiry, setQueueExpiry, setRetainedExpiry } from "./lmdb/expiry.js";
export {
  createLmdbPersistence,
  LmdbAsyncPersistence,
  LmdbPersistence,
  openForBroker,
  openLmdbPersistence,
  type OpenedLmdbPersistence,
} from "./lmdb/persistence.js";
