/**
 * The web dashboard's server side: its state (a 15-minute history of the
 * broker's figures, the live log tail) and its routes on the admin listener.
 * The browser code is in web/ and is bundled into dist/dashboard by build.ts.
 */
import type { Aedes } from "aedes";
import type { PluginChain } from "../../../host/index.js";
import type { ConnectionTracker } from "../../net/connections.js";
import type { OpenedPersistence } from "../../persistence/index.js";
import type { BrokerMetrics } from "../metrics.js";
import type { BrokerStats } from "../stats.js";
import type { StoreFigures } from "../store-figures.js";
import type { LogRing } from "./log-ring.js";
import type { PluginSetup } from "./routes.js";
import { Sampler } from "./sampler.js";

export { dashboardAssetsRoute, isDashboardAsset } from "./assets.js";
export { dashboardApiRoute } from "./routes.js";

export interface DashboardSources {
  aedes: Aedes;
  chain: PluginChain;
  stats: BrokerStats;
  tracker: ConnectionTracker;
  store: StoreFigures;
  persistence: OpenedPersistence;
  metrics: BrokerMetrics;
  /** The log tail, or null when the broker was given a logger of the embedder's (no tail then). */
  logs: LogRing | null;
  /** The MQTT-over-WebSocket listener the page's MQTT client connects to, when there is one. */
  ws: { port: number; path: string } | null;
  /** Each configured plugin's config, fuel budget and failure policy: the playground starts from them. */
  pluginSetups?: Record<string, PluginSetup>;
}

export interface Dashboard {
  readonly sources: DashboardSources;
  readonly sampler: Sampler;
  /** Subscribe to clients connecting and going; returns the unsubscribe. */
  onClientChange(fn: (event: { kind: "connected" | "disconnected"; id: string }) => void): () => void;
  stop(): void;
}

export function createDashboard(sources: DashboardSources): Dashboard {
  const sampler = new Sampler(sources);
  const listeners = new Set<(event: { kind: "connected" | "disconnected"; id: string }) => void>();
  const emit = (kind: "connected" | "disconnected") => (client: { id: string }) => {
    for (const l of listeners) l({ kind, id: client.id });
  };
  const onConnected = emit("connected");
  const onDisconnected = emit("disconnected");
  sources.aedes.on("client", onConnected);
  sources.aedes.on("clientDisconnect", onDisconnected);
  return {
    sources,
    sampler,
    onClientChange(fn) {
      listeners.add(fn);
      return () => listeners.delete(fn);
    },
    stop() {
      sampler.stop();
      listeners.clear();
      sources.aedes.removeListener("client", onConnected);
      sources.aedes.removeListener("clientDisconnect", onDisconnected);
    },
  };
}
