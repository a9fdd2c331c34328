/**
 * Cluster mode, composed: server.ts calls openClusterStore() where a single
 * node opens LMDB, and startCluster() once aedes listens.
 *
 * What lives where:
 *   redis-link.ts   connections, start-up probe, reconnect with backoff, link state
 *   identity.ts     node id (stable) and incarnation (this run; aedes' broker id)
 *   ../persistence/redis.ts, redis-kv.ts   aedes-persistence-redis, mqemitter-redis, plugin KV
 *   ownership.ts    one live session per client id (generation per id)
 *   membership.ts   liveness and each node's status record
 *   wills.ts        a dead node's wills, published by a survivor within willDelayMs
 *   queue-limit.ts  maxQueuedMessages counted in Redis
 *   rollout.ts      deploy / rollback of plugin builds to every node
 *   shared-groups.ts  $share groups: one delivery per group across the cluster
 *   status.ts       GET /cluster, metrics, $SYS/broker/cluster/...
 */
import type { Aedes } from "aedes";
import type { Logger } from "pino";
import type { PluginChain } from "../../host/index.js";
import type { BrokerConfig } from "../config.js";
import { openRedisPersistence, type OpenedRedisPersistence } from "../persistence/redis.js";
import { redactedUrl } from "./config.js";
import { nodeIdentity, type NodeIdentity } from "./identity.js";
import { Membership, type NodeRecord, type NodeView } from "./membership.js";
import { Notices } from "./notices.js";
import { installOwnership, ownedKey, type Ownership } from "./ownership.js";
import { RedisLink, type LinkStatus } from "./redis-link.js";
import { Rollout } from "./rollout.js";
import { WillTakeover } from "./wills.js";
import { readOr, within } from "./bounded-read.js";
import { installSharedGroups, type SharedGroupFigures, type SharedGroups } from "./shared-groups.js";
import type { SharedSubscriptions } from "../protocol/shared-subscriptions.js";
import type { Redis } from "ioredis";

export { ClusterError } from "./redis-link.js";
export { limitClusterQueues } from "./queue-limit.js";

export interface ClusterStore {
  identity: NodeIdentity;
  link: RedisLink;
  /** Connection for wasmq's own records. */
  records: Redis;
  notices: Notices;
  opened: OpenedRedisPersistence;
  redisVersion: string;
  close(): Promise<void>;
}

/** Probe Redis (a clear error when it cannot be reached), settle the node id, open the shared store. */
export async function openClusterStore(config: BrokerConfig, logger: Logger): Promise<ClusterStore> {
  const cluster = config.cluster!;
  const link = new RedisLink(cluster);
  const redisVersion = await link.probe();
  const identity = nodeIdentity(cluster.id, config.data, config.port);
  logger.info(
    { node: identity.id, incarnation: identity.incarnation, redis: redactedUrl(cluster.redis), redisVersion },
    identity.source === "config" ? `cluster node ${identity.id}` : `cluster node ${identity.id} (node id ${identity.source === "derived" ? "derived from host name and port" : "read"}, kept in ${config.data}/cluster-node-id)`,
  );
  const records = link.connect(`wasmq-records:${identity.id}`);
  const notices = new Notices(link.connect(`wasmq-notices:${identity.id}`), records);
  const opened = await openRedisPersistence({ link, records, notices, node: identity.incarnation, logger, maxQueuedMessages: config.limits.maxQueuedMessages });
  // Wills of dead nodes are wills.ts' job (bounded, claimed once); aedes' own sweep would take minutes and may publish twice.
  opened.persistence.streamWill = async function* () {};
  // Once per outage each, however many reconnection attempts fail in between (link.outage()).
  link.on("down", () => logger.warn({ redis: link.url, err: link.outage().cause ?? undefined }, "cluster: Redis link lost; serving local clients, reconnecting with backoff"));
  link.on("up", () => {
    if (link.status().disconnects > 0) logger.info({ redis: link.url, errors: link.outage().errors, lastError: link.status().lastError }, "cluster: Redis link back");
  });
  return {
    identity,
    link,
    records,
    notices,
    opened,
    redisVersion,
    close: async () => {
      await opened.close();
      await link.close();
    },
  };
}

export interface ClusterDeps {
  aedes: Aedes;
  chain: PluginChain;
  config: BrokerConfig;
  logger: Logger;
  /** The MQTT TCP listener's address, for the node record. */
  mqttUrl: () => string | null;
  adminUrl: () => string | null;
  /** The $share groups (protocol/shared-subscriptions.ts): decided cluster-wide from now on. */
  shared: SharedSubscriptions;
  /** This node's own figures for the cluster-wide $SYS aggregates (name → value). */
  sysFigures?: () => Record<string, number>;
}

export interface ClusterView {
  node: string;
  incarnation: string;
  redis: LinkStatus & { url: string; version: string };
  nodes: NodeView[];
  /** What every node should run: plugin → sha256. */
  deployed: Record<string, string>;
  /** This node's plugins that do not run the deployed digest, and why. */
  deployFailures: Record<string, { sha256: string; error: string }>;
  /** $share groups this node routes (members connected here / away sessions known here) and its share counters. */
  shared: { groups: { topic: string; members: number; away: number }[] } & SharedGroupFigures;
}

export interface Cluster {
  readonly store: ClusterStore;
  readonly ownership: Ownership;
  readonly rollout: Rollout;
  readonly wills: WillTakeover;
  readonly sharedGroups: SharedGroups;
  view(): Promise<ClusterView>;
  /** Client ids a node holds (its ownership set in Redis), up to `limit`; null for an unknown node. */
  clientsOf(nodeId: string, limit: number): Promise<{ node: string; incarnation: string | null; state: "up" | "down"; clients: string[]; total: number } | null>;
  record(): NodeRecord;
  close(): Promise<void>;
}

export async function startCluster(store: ClusterStore, deps: ClusterDeps): Promise<Cluster> {
  const { aedes, chain, config, logger } = deps;
  const { identity, link, records, notices } = store;
  const cluster = config.cluster!;
  const startedAt = new Date().toISOString();

  const ownership = await installOwnership({ aedes, redis: records, notices, link, node: identity.incarnation, logger });
  const sharedGroups = await installSharedGroups({ aedes, shared: deps.shared, link, redis: records, notices, node: identity.incarnation, logger });
  deps.shared.setDispatcher(sharedGroups);
  await sharedGroups.resync();
  const wills = new WillTakeover(records, aedes, {
    incarnation: identity.incarnation,
    heartbeatMs: cluster.heartbeatMs,
    logger,
    isUp: () => link.up,
    onNodeGone: (dead) => sharedGroups.nodeGone(dead),
  });
  const record = (): NodeRecord => ({
    id: identity.id,
    incarnation: identity.incarnation,
    startedAt,
    updatedAt: new Date().toISOString(),
    clients: aedes.connectedClients,
    mqtt: deps.mqttUrl(),
    admin: deps.adminUrl(),
    plugins: Object.fromEntries(chain.slots.map((s) => [s.name, s.sha256])),
    redis: link.status(),
    takenOver: ownership.takenOver,
    willsPublished: wills.published,
    ...(deps.sysFigures ? { sys: deps.sysFigures() } : {}),
  });
  const membership = new Membership(records, link, { id: identity.id, incarnation: identity.incarnation, heartbeatMs: cluster.heartbeatMs, willDelayMs: cluster.willDelayMs, record });
  await membership.start();
  wills.start();
  const rollout = new Rollout(records, notices, chain, { node: identity.incarnation, logger });
  await rollout.start();
  // The node record shows the digests that run: refresh it when one changes, not a heartbeat later.
  const beatNow = () => void (link.up ? membership.beat().catch(() => {}) : undefined);
  chain.on("reload", beatNow);
  beatNow();

  // Pub/sub lost whatever was published while the link was down: resynchronise from the records.
  const resync = () => {
    void (async () => {
      await membership.beat();
      await store.opened.kv.resync();
      await ownership.reconcile();
      await sharedGroups.resync();
      await wills.restoreWills(store.opened.persistence as never);
      await rollout.sync();
      void wills.sweep();
    })().catch((err: Error) => logger.warn({ err: err.message }, "cluster: resynchronising after the Redis link came back failed"));
  };
  link.on("up", resync);

  return {
    store,
    ownership,
    rollout,
    wills,
    sharedGroups,
    record,
    async view() {
      return {
        node: identity.id,
        incarnation: identity.incarnation,
        redis: { ...link.status(), url: link.url, version: store.redisVersion },
        nodes: link.up ? await readOr(membership.nodes(), () => [{ ...record(), state: "up" as const }]) : [{ ...record(), state: "up" as const }],
        deployed: link.up ? await readOr(rollout.current(), () => ({})) : {},
        deployFailures: Object.fromEntries(rollout.failures),
        shared: { groups: deps.shared.describe(), ...sharedGroups.figures },
      };
    },
    async clientsOf(nodeId, limit) {
      const node = (await within(membership.nodes(), "the node list")).find((n) => n.id === nodeId);
      if (!node) return null;
      if (!node.incarnation) return { node: nodeId, incarnation: null, state: node.state, clients: [], total: 0 };
      const ids = await within(records.smembers(ownedKey(node.incarnation)), "the node's client list");
      return { node: nodeId, incarnation: node.incarnation, state: node.state, clients: ids.sort().slice(0, limit), total: ids.length };
    },
    async close() {
      link.off("up", resync);
      chain.off("reload", beatNow);
      await wills.stop();
      deps.shared.setDispatcher(null);
      await sharedGroups.close();
      await membership.leave().catch(() => {});
      // Redis unreachable: commands would wait in the offline queues forever and
      // hold up closing the clients; fail them now instead.
      if (!link.up) await link.close();
    },
  };
}
