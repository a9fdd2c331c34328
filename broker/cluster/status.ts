/**
 * The cluster as operators see it: a `node` label on every metric plus cluster
 * gauges, and `$SYS/broker/cluster/...` topics. GET /cluster is
 * ops/admin-cluster.ts.
 *
 * $SYS topics (retained, every sys.intervalSec; retained messages are shared
 * by the cluster, so per-node figures carry the node id in the topic):
 *   $SYS/broker/cluster/nodes                       number of live nodes
 *   $SYS/broker/cluster/node/<id>/clients           clients connected to that node
 *   $SYS/broker/cluster/node/<id>/redis             "up" or "down"
 *   $SYS/broker/cluster/node/<id>/plugins           JSON {plugin: sha256}
 *   $SYS/broker/cluster/<figure>                    cluster-wide sums (AGGREGATED below) over the
 *                                                   live nodes, published by one node: the live one
 *                                                   with the lowest id
 * Each node's own Mosquitto-style figures are under $SYS/broker/nodes/<id>/
 * (ops/sys.ts with a prefix).
 */
import { readOr, within } from "./bounded-read.js";
import type { Aedes } from "aedes";
import { Gauge, type Registry } from "prom-client";
import type { Redis } from "ioredis";
import type { Cluster } from "./index.js";
import type { StoreFigures } from "../ops/store-figures.js";
import type { BrokerStats } from "../ops/stats.js";
import type { ConnectionTracker } from "../net/connections.js";

/** Figures every node reports in its record (membership.ts) and the cluster sums: counters since each node started, summed over the live nodes. */
const AGGREGATED = [
  "clients/connected",
  "messages/received",
  "messages/sent",
  "publish/messages/received",
  "publish/messages/sent",
  "bytes/received",
  "bytes/sent",
] as const;

/** This node's figures for the cluster sums (the same names as its $SYS/broker/nodes/<id>/ topics). */
export function clusterSysFigures(stats: BrokerStats, tracker: ConnectionTracker, aedes: Aedes): Record<(typeof AGGREGATED)[number], number> {
  return {
    "clients/connected": aedes.connectedClients,
    "messages/received": stats.packetsReceived,
    "messages/sent": stats.packetsSent,
    "publish/messages/received": stats.publishReceivedTotal(),
    "publish/messages/sent": stats.publishSentTotal(),
    "bytes/received": tracker.bytesReceived(),
    "bytes/sent": tracker.bytesSent(),
  };
}

export function instrumentCluster(registry: Registry, cluster: Cluster): void {
  const { store, ownership, wills } = cluster;
  registry.setDefaultLabels({ node: store.identity.id });
  const gauge = (name: string, help: string, read: () => number | Promise<number>) =>
    new Gauge({
      name,
      help,
      registers: [registry],
      async collect() {
        this.set(await read());
      },
    });
  gauge("wasmq_cluster_redis_up", "1 while every connection of this node to Redis is ready", () => (store.link.up ? 1 : 0));
  gauge("wasmq_cluster_redis_disconnects", "Times this node lost its Redis link since start", () => store.link.status().disconnects);
  gauge("wasmq_cluster_nodes_up", "Live nodes in the cluster, as this node sees them", async () =>
    store.link.up ? (await cluster.view()).nodes.filter((n) => n.state === "up").length : 0,
  );
  gauge("wasmq_cluster_local_only_publishes", "Messages delivered only to this node's clients because Redis was unreachable", () => store.opened.localOnlyPublishes());
  gauge("wasmq_cluster_takeovers", "Clients closed on this node because the same client id connected on another node", () => ownership.takenOver);
  gauge("wasmq_cluster_unconfirmed_sessions", "Connections admitted while Redis was unreachable, ownership not yet recorded", () => ownership.unconfirmed);
  gauge("wasmq_cluster_dead_node_wills", "Wills of dead nodes' clients this node published", () => wills.published);
  gauge("wasmq_cluster_kv_failed_writes", "Plugin KV writes Redis refused", () => store.opened.kv.failedWrites);
  const shared = cluster.sharedGroups.figures;
  gauge("wasmq_cluster_shared_forwarded", "$share messages this node chose a member on another node for (handed over through Redis)", () => shared.forwarded);
  gauge("wasmq_cluster_shared_received", "$share messages delivered here for a choice made on another node", () => shared.received);
  gauge("wasmq_cluster_shared_queued", "$share QoS 1/2 messages queued for an away member (no member connected anywhere)", () => shared.queued);
  gauge("wasmq_cluster_shared_local_only", "$share messages delivered to this node's members only because Redis was unreachable", () => shared.localOnly);
  gauge("wasmq_cluster_shared_rechosen", "$share messages whose member had left (or whose node died) and were given to another", () => shared.rechosen);
}

export function startClusterSys(aedes: Aedes, cluster: Cluster, intervalSec: number): { stop(): void } {
  const id = cluster.store.identity.id;
  const last = new Map<string, string>();
  const link = cluster.store.link;
  const put = (topic: string, value: string) => {
    // While Redis is down a retained publish would wait to be stored before anyone
    // gets it: local subscribers get the figures unretained, every interval, instead.
    if (!link.up) {
      last.delete(topic);
      aedes.publish({ cmd: "publish", topic, payload: Buffer.from(value), qos: 0, retain: false, dup: false }, () => {});
      return;
    }
    if (last.get(topic) === value) return;
    last.set(topic, value);
    aedes.publish({ cmd: "publish", topic, payload: Buffer.from(value), qos: 0, retain: true, dup: false }, () => {});
  };
  const publish = async () => {
    const r = cluster.record();
    put(`$SYS/broker/cluster/node/${id}/clients`, String(r.clients));
    put(`$SYS/broker/cluster/node/${id}/redis`, r.redis.state);
    put(`$SYS/broker/cluster/node/${id}/plugins`, JSON.stringify(r.plugins));
    if (!cluster.store.link.up) return;
    const live = (await cluster.view()).nodes.filter((n) => n.state === "up");
    put("$SYS/broker/cluster/nodes", String(live.length));
    // One node writes the sums, so they do not flap between nodes' slightly different reads.
    if (live.length === 0 || live.map((n) => n.id).sort()[0] !== id) return;
    for (const name of AGGREGATED) put(`$SYS/broker/cluster/${name}`, String(live.reduce((sum, n) => sum + (n.sys?.[name] ?? 0), 0)));
    put("$SYS/broker/cluster/retained messages/count", String(await within(cluster.store.records.hlen("retained"), "the retained count")));
  };
  void publish().catch(() => {});
  const timer = setInterval(() => void publish().catch(() => {}), intervalSec * 1000);
  timer.unref();
  const changed = () => void publish().catch(() => {});
  link.on("down", changed);
  link.on("up", changed);
  return {
    stop: () => {
      clearInterval(timer);
      link.off("down", changed);
      link.off("up", changed);
    },
  };
}

/**
 * Store figures for metrics and $SYS in cluster mode: cheap Redis reads (HLEN
 * of the retained hash rather than a scan), and the last known values while
 * Redis is unreachable — a scrape must not wait in the offline queue.
 */
export function clusterFigures(figures: StoreFigures, cluster: { link: { up: boolean }; records: Redis }): StoreFigures {
  let retained = 0;
  let offline = { subsCount: 0, clientsCount: 0 };
  return {
    async retainedCount() {
      if (cluster.link.up) retained = await readOr(cluster.records.hlen("retained"), () => retained);
      return retained;
    },
    async offline() {
      if (cluster.link.up) offline = await readOr(figures.offline(), () => offline);
      return offline;
    },
    queuedCount: async () => null,
    async subscriptionCount(aedes) {
      const { subsCount } = await this.offline();
      return subsCount + liveCleanSubscriptions(aedes);
    },
  };
}

function liveCleanSubscriptions(aedes: Aedes): number {
  let live = 0;
  const clients = (aedes as unknown as { clients: Record<string, { clean: boolean; subscriptions: object }> }).clients;
  for (const id in clients) if (clients[id]!.clean) live += Object.keys(clients[id]!.subscriptions).length;
  return live;
}
