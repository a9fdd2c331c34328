import "./quiet-debug.js"; // first: before aedes and mqtt-packet load `debug`
import { Aedes, type Client } from "aedes";
import { join } from "node:path";
import { readFileSync } from "node:fs";
import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import type { Logger } from "pino";
import { PluginChain, PluginError, readPublicKey, type InjectedMessage, type PluginSlot, type PluginSpec } from "../host/index.js";
import { applyPublishFields } from "./protocol/mqtt5/plugin-fields.js";
import { startAdminServer, type AdminServer } from "./ops/admin.js";
import { installAedesFixes } from "./protocol/aedes-fixes.js";
import { installLazyClientFields } from "./protocol/lazy-client-fields.js";
import { shareAedesListeners } from "./protocol/aedes-listeners.js";
import { orderPackets } from "./protocol/packet-order.js";
import { installBarrierDeadline } from "./protocol/barrier-deadline.js";
import { isLoopbackHost, type BrokerConfig } from "./config.js";
import { authRemovalRefusal, exposureRefusal } from "./net/exposure.js";
import { installConformance } from "./protocol/conformance.js";
import { ConnectionTracker } from "./net/connections.js";
import { installHooks, wrapPersistence } from "./protocol/hooks.js";
import { installSessionReplay } from "./protocol/session-replay.js";
import { installAskFirst } from "./protocol/ask-first.js";
import { installLimits, limitOfflineQueues } from "./protocol/limits.js";
import { listenSecureWebSocket, listenTcp, listenTls, listenWebSocket, type Listener, type ListenerGuards } from "./net/listeners.js";
import { tlsPeerOf } from "./net/tls-peer.js";
import { tlsRefusalLogger } from "./net/tls-log.js";
import { checkTlsMaterial } from "./net/tls-options.js";
import { installMqtt5 } from "./protocol/mqtt5/index.js";
import { installSharedSubscriptions } from "./protocol/shared-subscriptions.js";
import { createMetrics } from "./ops/metrics.js";
import { createDashboard, isDashboardAsset } from "./ops/dashboard/index.js";
import { createBrokerLogger, logRingOf } from "./ops/logging.js";
import { createObserver } from "./ops/observe.js";
import { openLocalLmdb, openPersistence, type OpenedPersistence } from "./persistence/index.js";
import { BrokerStats } from "./ops/stats.js";
import { storeFigures } from "./ops/store-figures.js";
import { startSysPublisher, type SysPublisher } from "./ops/sys.js";
import { startMemorySettle } from "./ops/memory-settle.js";
import { batchWrites, flushAfterRouting } from "./protocol/write-batching.js";
import { cacheRouting } from "./protocol/router-cache.js";
import { publishWithoutSeries } from "./protocol/lean-publish.js";
import { installBridges } from "./bridge/index.js";
import { limitClusterQueues, openClusterStore, startCluster, type Cluster } from "./cluster/index.js";
import { clusterFigures, clusterSysFigures, instrumentCluster, startClusterSys } from "./cluster/status.js";

export interface RunningBroker {
  readonly aedes: Aedes;
  readonly chain: PluginChain;
  readonly config: BrokerConfig;
  readonly logger: Logger;
  readonly listeners: Listener[];
  readonly persistence: OpenedPersistence;
  readonly stats: BrokerStats;
  readonly connections: ConnectionTracker;
  /** The metrics and admin HTTP server, when `metrics` is configured. */
  readonly admin: AdminServer | null;
  /** Cluster mode (config "cluster" / --redis), else null. */
  readonly cluster: Cluster | null;
  /** Port of a listener kind ("tcp", "ws", "tls"), useful with port 0. */
  port(kind: Listener["kind"]): number;
  /** Stop accepting, close clients, flush state. Safe to call twice. */
  close(): Promise<void>;
  /**
   * Re-read the TLS files (rotated server certificate, updated CRL or CA
   * bundle) for new connections. A file that cannot be used is refused and
   * the listeners keep what they had; the error names the key.
   */
  reloadTls(): void;
}

export class StartError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "StartError";
  }
}

const LOG_LEVELS = ["trace", "debug", "info", "warn", "error"] as const;

export const VERSION = (JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string }).version;

export function createLogger(config: BrokerConfig): Logger {
  return createBrokerLogger(config.log.level);
}

function pluginSpecs(config: BrokerConfig): PluginSpec[] {
  return config.plugins.map((p) => ({
    name: p.name,
    ...(p.wasm ? { wasm: p.wasm } : {}),
    ...(p.native ? { native: p.native } : {}),
    config: p.config,
    onError: p.onError,
    limits: p.limits,
    breaker: p.breaker,
    enabled: p.enabled,
    ...(p.sha256 ? { sha256: p.sha256 } : {}),
  }));
}

/**
 * Start a broker: persistence, plugin chain, aedes, listeners. Rejects with a
 * StartError (or PluginError / ListenError) whose message names what is wrong;
 * anything opened before the failure is closed again.
 */
export async function startBroker(
  config: BrokerConfig,
  // meterFuel: false and withoutMqtt5: true are measurement builds for the bench (bench/README.md), never user options
  opts: { logger?: Logger; meterFuel?: boolean; withoutMqtt5?: boolean } = {},
): Promise<RunningBroker> {
  const logger = opts.logger ?? createLogger(config);
  const cleanups: (() => Promise<void> | void)[] = [];
  const cleanup = async () => {
    for (const fn of cleanups.reverse()) await fn();
  };
  try {
    const stats = new BrokerStats();
    const { limits } = config;
    // Cluster mode: sessions, retained messages, routing and plugin KV in Redis instead of LMDB.
    const clusterStore = config.cluster ? await openClusterStore(config, logger) : null;
    if (clusterStore) cleanups.push(() => clusterStore.close());
    const persistence: OpenedPersistence = clusterStore ? clusterStore.opened : await openPersistence(config);
    if (!clusterStore) cleanups.push(() => persistence.close());

    let refusedLogged = 0;
    const tracker = new ConnectionTracker(limits.maxConnections, {
      onRefused: (_socket, open) => {
        // Under a flood, one line per 10 s is enough.
        if (Date.now() - refusedLogged < 10_000) return;
        refusedLogged = Date.now();
        logger.warn({ open, limit: limits.maxConnections }, `maxConnections reached: refusing new connections (${open} open)`);
      },
    });
    // Shutdown order (cleanups run last-pushed first): stop accepting, close the
    // MQTT clients (aedes), then drop sockets that never became clients and wait
    // for the listeners to finish closing, then close the store.
    let listenersClosing: Promise<void>[] = [];
    cleanups.push(async () => {
      tracker.destroyAll();
      await Promise.all(listenersClosing);
    });

    let aedes: Aedes | null = null;
    const publishInjected = (m: InjectedMessage) => {
      if (!aedes || aedes.closed) return;
      const packet: Parameters<Aedes["publish"]>[0] & { messageExpiry?: number } = { cmd: "publish", topic: m.topic, payload: Buffer.from(m.payload), qos: m.qos, retain: m.retain, dup: false };
      if (m.v5) applyPublishFields(packet, m.v5); // ABI v2 publishWithProperties
      aedes.publish(packet, (err) => {
        if (err) logger.warn({ plugin: m.plugin, topic: m.topic, err: err.message }, "plugin publish failed");
      });
    };
    const chain = await PluginChain.load(pluginSpecs(config), {
      kv: persistence.kv,
      publish: publishInjected,
      meterFuel: opts.meterFuel ?? true,
      trust: { keys: config.trust.keys.map((k) => readPublicKey(k)), require: config.trust.require },
      vetReload: (slot, hooks) => authRemovalRefusal(config, chain, slot, hooks, "reload"),
      // What plugins hand back is held to the limits clients are held to.
      output: {
        maxTopicLength: limits.maxTopicLength,
        maxTopicLevels: limits.maxTopicLevels,
        maxPacketSize: limits.maxPacketSize,
        reservedTopicPrefixes: ["$SYS"],
      },
    });
    cleanups.push(() => chain.close());
    wireChainLogs(chain, logger);
    const exposure = exposureRefusal(config, chain, logger);
    if (exposure) throw new StartError(exposure);

    const isOnline = (id: string) => !!aedes && id in (aedes as unknown as { clients: Record<string, unknown> }).clients;
    const fullQueues = new Set<string>();
    const onQueueFull = (clientId: string, queued: number, packet: { topic: string; qos: number }) => {
        stats.limitRejections.maxQueuedMessages++;
        // One warning per session as its queue fills; the count is in the metrics.
        if (!fullQueues.has(clientId)) {
          fullQueues.add(clientId);
          logger.warn({ clientId, queued, limit: limits.maxQueuedMessages }, `offline queue of ${clientId} is full: new messages for it are dropped`);
        }
        logger.debug({ clientId, topic: packet.topic, qos: packet.qos }, "maxQueuedMessages: message not queued");
    };
    const limited = clusterStore
      ? limitClusterQueues(persistence.persistence, { redis: clusterStore.records, maxQueuedMessages: limits.maxQueuedMessages, onDrop: onQueueFull })
      : limitOfflineQueues(persistence.persistence, { maxQueuedMessages: limits.maxQueuedMessages, isOnline, onDrop: onQueueFull });
    const store = wrapPersistence(limited, chain, persistence.expiry, isOnline);
    aedes = new Aedes({
      persistence: store,
      queueLimit: limits.queueLimit,
      maxClientsIdLength: limits.maxClientIdLength,
      maxTopicLevels: limits.maxTopicLevels,
      connectTimeout: limits.connectTimeoutMs,
      maxInflightInbound: limits.maxInflight,
      drainTimeout: limits.drainTimeoutMs,
      // The incarnation, not the node id: aedes restarts its packet counter at 0 and names stored packets by it.
      ...(clusterStore ? { id: clusterStore.identity.incarnation, mq: clusterStore.opened.emitter } : {}),
    });
    await aedes.listen();
    await installLazyClientFields();
    publishWithoutSeries(aedes); // before the layers that wrap aedes.publish (bridges, hooks)
    flushAfterRouting(aedes);
    if (!cacheRouting(aedes)) logger.warn("the message router is not the mqemitter/qlobber layout wasmq knows: topic matches are not kept (slower, same results)");
    aedes.on("client", (client) => fullQueues.delete(client.id));
    // aedes reports store failures as 'error' events; unhandled, one would end the process.
    (aedes as unknown as NodeJS.EventEmitter).on("error", (err: Error) => logger.error({ err: err.message }, "broker error"));
    const broker = aedes;
    cleanups.push(() => new Promise<void>((resolve) => broker.close(() => resolve())));

    // Bridges wrap aedes.publish before the hooks take it, so a publisher's
    // PUBACK/PUBREC also waits for each bridge's queue (broker/bridge/index.ts).
    let bridgeStore = persistence.lmdb;
    if (!bridgeStore && persistence.mode === "redis" && (config.bridges ?? []).length > 0) {
      const local = await openLocalLmdb(join(config.data, "bridges"), config.durability);
      cleanups.push(() => local.close());
      bridgeStore = local;
    }
    const bridges = installBridges(aedes, { bridges: config.bridges ?? [], chain, logger, ...(bridgeStore ? { lmdb: bridgeStore } : {}) });
    cleanups.push(() => bridges.close());
    // Each layer wraps the aedes extension points the one before installed, so the
    // last installed runs first: observe (records), limits, conformance, plugin hooks.
    const hooks = installHooks(aedes, {
      chain,
      tlsPeer: (client) => tlsPeerOf(client.conn),
      onDecision: (hook, clientId, verdict, plugin, topic) =>
        logger.debug({ hook, clientId, verdict: verdict === 1 ? "drop" : "deny", plugin, topic }, "plugin decision"),
    });
    bridges.installForwardGuard();
    const observed = createObserver(aedes, stats, logger);
    const conformance = installConformance(aedes, {
      kv: persistence.kv,
      onViolation: (client, reason) => observed.noteReason(client, reason),
      onSessionStoreError: (err) => logger.warn({ err: err.message }, "cannot record persistent sessions; Session Present falls back to aedes' answer"),
    });
    const guards = installLimits(aedes, {
      limits,
      onViolation: (limit, client, detail) => {
        stats.limitRejections[limit]++;
        observed.noteReason(client, `${limit}: ${detail}`);
        logger.debug({ clientId: client.id ?? undefined, limit, detail }, "limit reached");
      },
    });
    const shared = installSharedSubscriptions(aedes);
    const mqtt5 = opts.withoutMqtt5 ? null : installMqtt5(aedes, {
      config: config.mqtt5,
      maxPacketSize: limits.maxPacketSize,
      maxInflight: limits.maxInflight,
      kv: persistence.kv,
      chain,
      connectTimeoutMs: limits.connectTimeoutMs,
      onViolation: (client, reason) => observed.noteReason(client, reason),
      onError: (message, err) => logger.warn({ err: err.message }, message),
      onSessionEnded: (clientId) => shared.forget(clientId),
    });
    if (mqtt5) cleanups.push(() => mqtt5.close());
    observed.install();
    installAedesFixes(aedes);
    const replay = installSessionReplay(aedes);
    installAskFirst(aedes); // last over the persistence's streams (ask-first.ts)
    // Outermost over authorizeSubscribe, subscribe/unsubscribe and the subscription store: it sees every step a SUBSCRIBE waits on.
    installBarrierDeadline(aedes, {
      timeoutMs: limits.subscribeTimeoutMs,
      onTimeout: (t) => {
        stats.limitRejections.subscribeTimeoutMs++;
        logger.warn({ clientId: t.clientId, filters: t.filters, waitingOn: t.waitingOn, closed: t.closed || undefined }, `${t.kind.toUpperCase()} not done within subscribeTimeoutMs (${limits.subscribeTimeoutMs} ms): ${t.closed ? "connection closed (3.1.1 UNSUBACK cannot report failure)" : "answered with failure and undone"}`);
      },
      onStoreRepairError: (err, clientId) => logger.warn({ clientId, err: err.message }, "restoring a timed-out SUBSCRIBE/UNSUBSCRIBE's stored subscriptions failed"),
    });

    const handle = (stream: Duplex, req?: IncomingMessage) => {
      batchWrites(stream);
      const client: Client = broker.handle(stream, req);
      shareAedesListeners(client);
      orderPackets(client); // before the layers that put inspectors in front of the parser's listener
      observed.attachClient(client, stream, req);
      guards.attachClient(client);
      conformance.attachClient(client);
      hooks.attachClient(client);
      replay.attachClient(client);
    };
    const guardsForListeners: ListenerGuards = {
      tracker,
      connectTimeoutMs: limits.connectTimeoutMs,
      maxPacketSize: limits.maxPacketSize,
      onTlsClientError: tlsRefusalLogger(logger),
    };
    const listeners: Listener[] = [];
    cleanups.push(() => {
      // A server's close() completes only when its last connection ends; awaited after the clients are gone.
      listenersClosing = listeners.map((l) => l.close());
    });
    const tcp = await listenTcp(config.host, config.port, handle, guardsForListeners);
    listeners.push(tcp);
    logger.info(`MQTT over TCP listening on mqtt://${fmt(tcp.address.address, tcp.address.port)}`);
    if (config.tls) {
      const tls = await listenTls(config.tls, handle, guardsForListeners);
      listeners.push(tls);
      logger.info(`MQTT over TLS listening on mqtts://${fmt(tls.address.address, tls.address.port)}`);
      if (config.tls.wsPort !== null) {
        const wss = await listenSecureWebSocket({ ...config.tls, wsPort: config.tls.wsPort }, handle, guardsForListeners);
        listeners.push(wss);
        logger.info(`MQTT over secure WebSocket listening on wss://${fmt(wss.address.address, wss.address.port)}${config.tls.wsPath}`);
      }
    }
    if (config.ws) {
      const ws = await listenWebSocket(config.ws, handle, guardsForListeners);
      listeners.push(ws);
      logger.info(`MQTT over WebSocket listening on ws://${fmt(ws.address.address, ws.address.port)}${config.ws.path}`);
    }

    let ticker: NodeJS.Timeout | null = null;
    const ensureTicker = () => {
      if (!ticker && chain.has("tick")) {
        ticker = setInterval(() => chain.tick(Date.now()), limits.tickIntervalMs);
        ticker.unref();
      }
    };
    ensureTicker();
    chain.on("reload", ensureTicker);
    cleanups.push(() => {
      if (ticker) clearInterval(ticker);
    });
    if (config.plugins.some((p) => p.watch)) chain.watchFiles();

    bridges.start();

    let cluster: Cluster | null = null;
    let admin: AdminServer | null = null;
    if (clusterStore) {
      cluster = await startCluster(clusterStore, {
        aedes,
        chain,
        config,
        logger,
        mqttUrl: () => `mqtt://${fmt(tcp.address.address, tcp.address.port)}`,
        adminUrl: () => admin?.url ?? null,
        shared,
        sysFigures: () => clusterSysFigures(stats, tracker, broker),
      });
      const running = cluster;
      cleanups.push(() => running.close());
    }

    const figures = clusterStore ? clusterFigures(storeFigures(persistence), clusterStore) : storeFigures(persistence);
    let sys: SysPublisher | null = null;
    if (config.sys) {
      const sysPrefix = cluster ? `$SYS/broker/nodes/${cluster.store.identity.id}/` : "$SYS/broker/";
      sys = startSysPublisher({ aedes, stats, tracker, store: figures, version: VERSION, logger }, config.sys.intervalSec, sysPrefix);
      const running = sys;
      cleanups.push(() => running.stop());
      if (cluster) {
        const clusterSys = startClusterSys(aedes, cluster, config.sys.intervalSec);
        cleanups.push(() => clusterSys.stop());
      }
    }

    if (config.memorySettle) {
      const settle = startMemorySettle(stats, tracker, config.memorySettle, logger);
      cleanups.push(() => settle.stop());
    }

    if (config.metrics) {
      const metrics = createMetrics({
        aedes,
        chain,
        stats,
        tracker,
        store: figures,
        version: VERSION,
        aedesVersion: (aedes as unknown as { version: string }).version,
        timingSampleEvery: config.metrics.timingSampleEvery,
      });
      const wsListener = listeners.find((l) => l.kind === "ws");
      const dashboard = createDashboard({
        aedes,
        chain,
        stats,
        tracker,
        store: figures,
        persistence,
        metrics,
        logs: logRingOf(logger),
        ws: wsListener && config.ws ? { port: wsListener.address.port, path: config.ws.path } : null,
        pluginSetups: Object.fromEntries(config.plugins.map((p) => [p.name, { config: p.config, fuel: p.limits.fuel, onError: p.onError }])),
      });
      cleanups.push(() => dashboard.stop());
      if (cluster) instrumentCluster(metrics.registry, cluster);
      admin = await startAdminServer(
        {
          host: config.metrics.host,
          port: config.metrics.port,
          ...(config.metrics.token ? { token: config.metrics.token } : {}),
          allowedHosts: config.metrics.allowedHosts,
          tls: config.metrics.tls,
          isPublic: isDashboardAsset,
        },
        {
          aedes,
          chain,
          metrics,
          observer: observed,
          startedAt: stats.startedAt,
          logger,
          chainChanged: ensureTicker,
          dashboard,
          store: figures,
          queues: (client: Client) => ({
            ...guards.outbound(client),
            stored: client.clean ? 0 : clusterStore ? clusterStore.opened.queuedCount(client.id) : store.queuedCount(client.id),
          }),
          ...(cluster ? { cluster } : {}),
          disableRefusal: (slot: PluginSlot) => authRemovalRefusal(config, chain, slot, new Set(), "disable"),
        },
      );
      const server = admin;
      cleanups.push(() => server.close());
      logger.info(`metrics and admin API on ${admin.url}/metrics${config.metrics.token ? " (token required)" : ""}`);
      if (!config.metrics.tls && !isLoopbackHost(config.metrics.host)) {
        logger.warn(`metrics.tls is false: the admin API and its token travel in clear text on ${config.metrics.host}; terminate TLS in front of it`);
      }
    }

    let closing: Promise<void> | null = null;
    return {
      aedes,
      chain,
      config,
      logger,
      listeners,
      persistence,
      stats,
      connections: tracker,
      admin,
      cluster,
      port(kind) {
        const l = listeners.find((x) => x.kind === kind);
        if (!l) throw new Error(`no ${kind} listener`);
        return l.address.port;
      },
      reloadTls() {
        if (!config.tls) return;
        const bad = checkTlsMaterial(config.tls);
        if (bad) throw new StartError(`TLS files not reloaded: key "tls.${bad.key}": ${bad.problem}`);
        for (const l of listeners) l.reloadTls?.();
        logger.info("TLS certificate, key, CA bundle and CRL reloaded");
      },
      close() {
        closing ??= (async () => {
          await cleanup();
          logger.info("broker stopped");
        })();
        return closing;
      },
    };
  } catch (err) {
    await cleanup().catch(() => {});
    if (err instanceof PluginError) throw new StartError(err.message);
    throw err;
  }
}

function fmt(address: string, port: number): string {
  return address.includes(":") ? `[${address}]:${port}` : `${address}:${port}`;
}

function wireChainLogs(chain: PluginChain, logger: Logger): void {
  chain.on("log", (plugin, level, message) => {
    const name = LOG_LEVELS[Math.max(0, Math.min(4, level))]!;
    logger[name]({ plugin }, message);
  });
  chain.on("trap", (plugin, hook, kind, error) => {
    logger.warn({ plugin, hook, trap: kind, err: error instanceof Error ? error.message : String(error) }, `plugin ${plugin} failed in ${hook}: ${kind}`);
  });
  chain.on("breaker", (plugin, state) => {
    const level = state === "open" ? "error" : "info";
    logger[level]({ plugin, breaker: state }, `plugin ${plugin} circuit breaker ${state}`);
  });
}
