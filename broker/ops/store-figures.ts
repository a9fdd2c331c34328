/**
 * Figures about stored state for metrics and $SYS, taken the cheapest way each
 * persistence allows. LMDB keeps entry counts per database, so retained and
 * queued counts are O(1) there (expired entries the sweep has not purged yet
 * are still counted). The in-memory store has no counters: retained messages
 * are counted by streaming them, and queued messages are not reported.
 */
import type { Aedes, Client } from "aedes";
import type { Readable } from "node:stream";
import type { OpenedPersistence } from "../persistence/index.js";
import type { HoldFigures } from "../persistence/lmdb/held-puts.js";

interface LmdbCounts {
  asyncPersistence: {
    dbs: { retained: { getStats(): { entryCount: number } }; outgoing: { getStats(): { entryCount: number } } };
    holdFigures(): HoldFigures;
  };
}
interface AedesPersistence {
  countOffline(): Promise<{ subsCount: number; clientsCount: number }>;
  createRetainedStreamCombi(patterns: string[]): Readable;
}

export interface StoreFigures {
  retainedCount(): Promise<number>;
  /** Persistent sessions that have subscriptions, and their subscriptions. */
  offline(): Promise<{ subsCount: number; clientsCount: number }>;
  /** Stored QoS 1/2 messages for sessions, or null when the store cannot tell cheaply. */
  queuedCount(): Promise<number | null>;
  /** Persistent sessions' subscriptions plus connected clean sessions' subscriptions. */
  subscriptionCount(aedes: Aedes): Promise<number>;
  /** Which store, and its durability (LMDB); absent when composed elsewhere (cluster). */
  readonly mode?: OpenedPersistence["mode"];
  readonly durability?: "sync" | "async";
  /** LMDB: what holding QoS 1 deliveries from the disk did (plain counters, O(1)); absent for other stores. */
  holds?(): HoldFigures;
}

export function storeFigures(opened: OpenedPersistence): StoreFigures {
  const p = opened.persistence as AedesPersistence;
  const lmdbStore = opened.mode === "lmdb" ? (opened.persistence as LmdbCounts).asyncPersistence : null;
  const lmdb = lmdbStore ? lmdbStore.dbs : null;
  return {
    mode: opened.mode,
    ...(opened.lmdb ? { durability: opened.lmdb.durability } : {}),
    ...(lmdbStore ? { holds: () => lmdbStore.holdFigures() } : {}),
    async retainedCount() {
      if (lmdb) return lmdb.retained.getStats().entryCount;
      // "#" may or may not include "$" topics ([MQTT-4.7.2-1]); "$SYS/#" makes sure, the set removes doubles.
      const topics = new Set<string>();
      for await (const packet of p.createRetainedStreamCombi(["#", "$SYS/#"])) topics.add((packet as { topic: string }).topic);
      return topics.size;
    },
    offline: () => p.countOffline(),
    async queuedCount() {
      return lmdb ? lmdb.outgoing.getStats().entryCount : null;
    },
    async subscriptionCount(aedes) {
      const { subsCount } = await p.countOffline();
      let live = 0;
      const clients = (aedes as unknown as { clients: Record<string, Client & { subscriptions: object }> }).clients;
      for (const id in clients) {
        const c = clients[id]!;
        if (c.clean) live += Object.keys(c.subscriptions).length;
      }
      return subsCount + live;
    },
  };
}
