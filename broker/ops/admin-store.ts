/**
 * Admin API: GET /store — the store's figures in one answer (what `/metrics`
 * and `$SYS` also show): which store, retained messages, persistent sessions,
 * queued messages and, with LMDB, what holding QoS 1 deliveries from the disk
 * did (`writeHold`, see held-deliveries.ts). `wasmq admin store` prints it.
 */
import { HttpError, only, send, type AdminRequest } from "./admin.js";
import type { HoldFigures } from "./held-deliveries.js";

/** The answer of GET /store. */
export interface StoreView {
  mode: string | null;
  durability: string | null;
  retained: number;
  persistentSessions: number;
  subscriptions: number;
  /** Stored QoS 1/2 messages for sessions; null when the store cannot tell cheaply. */
  queued: number | null;
  /** LMDB only; null for other stores. */
  writeHold: HoldFigures | null;
}

export async function storeRoute(r: AdminRequest): Promise<boolean> {
  if (r.segs.length !== 1 || r.segs[0] !== "store") return false;
  only(r.method, ["GET"]);
  const store = r.deps.store;
  if (!store) throw new HttpError(404, "no store figures on this broker");
  const [retained, offline, subscriptions, queued] = await Promise.all([
    store.retainedCount(),
    store.offline(),
    store.subscriptionCount(r.deps.aedes),
    store.queuedCount(),
  ]);
  const view: StoreView = {
    mode: store.mode ?? null,
    durability: store.durability ?? null,
    retained,
    persistentSessions: offline.clientsCount,
    subscriptions,
    queued,
    writeHold: store.holds?.() ?? null,
  };
  send(r.res, 200, view);
  return true;
}
