import { Aedes } from "aedes";
import { pino, type Logger } from "pino";
import { PluginChain, PluginError, type InjectedMessage, type PluginSpec } from "../host/index.js";
import type { BrokerConfig } from "./config.js";
import { installHooks, wrapPersistence } from "./hooks.js";
import { listenTcp, listenTls, listenWebSocket, type Listener } from "./listeners.js";
import { openPersistence, type OpenedPersistence } from "./persistence/index.js";

export interface RunningBroker {
  readonly aedes: Aedes;
  readonly chain: PluginChain;
  readonly config: BrokerConfig;
  readonly logger: Logger;
  readonly listeners: Listener[];
  readonly persistence: OpenedPersistence;
  /** Port of a listener kind ("tcp", "ws", "tls"), useful with port 0. */
  port(kind: Listener["kind"]): number;
  /** Stop accepting, close clients, flush state. Safe to call twice. */
  close(): Promise<void>;
}

export class StartError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "StartError";
  }
}

const LOG_LEVELS = ["trace", "debug", "info", "warn", "error"] as const;

export function createLogger(config: BrokerConfig): Logger {
  return pino({ level: config.log.level, base: { pid: process.pid } });
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
  }));
}

function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || host.startsWith("127.");
}

/**
 * Start a broker: persistence, plugin chain, aedes, listeners. Rejects with a
 * StartError (or PluginError / ListenError) whose message names what is wrong;
 * anything opened before the failure is closed again.
 */
export async function startBroker(config: BrokerConfig, opts: { logger?: Logger; meterFuel?: boolean } = {}): Promise<RunningBroker> {
  const logger = opts.logger ?? createLogger(config);
  const cleanups: (() => Promise<void> | void)[] = [];
  const cleanup = async () => {
    for (const fn of cleanups.reverse()) await fn();
  };
  try {
    const persistence = await openPersistence(config);
    cleanups.push(() => persistence.close());

    let aedes: Aedes | null = null;
    const publishInjected = (m: InjectedMessage) => {
      if (!aedes || aedes.closed) return;
      aedes.publish({ cmd: "publish", topic: m.topic, payload: Buffer.from(m.payload), qos: m.qos, retain: m.retain, dup: false }, (err) => {
        if (err) logger.warn({ plugin: m.plugin, topic: m.topic, err: err.message }, "plugin publish failed");
      });
    };
    const chain = await PluginChain.load(pluginSpecs(config), {
      kv: persistence.kv,
      publish: publishInjected,
      meterFuel: opts.meterFuel ?? true,
    });
    cleanups.push(() => chain.close());
    wireChainLogs(chain, logger);

    if (!config.allowAnonymous && !chain.has("connect")) {
      const exposed = [config.host, config.ws?.host, config.tls?.host].filter((h): h is string => !!h && !isLoopback(h));
      if (exposed.length) {
        throw new StartError(
          `refusing to listen on ${exposed.join(", ")} without authentication: add a plugin with a connect hook (e.g. auth) or set "allowAnonymous": true`,
        );
      }
    }

    const store = wrapPersistence(persistence.persistence, chain, persistence.expiry, (id) => !!aedes && id in (aedes as unknown as { clients: Record<string, unknown> }).clients);
    aedes = new Aedes({
      persistence: store,
      queueLimit: config.limits.queueLimit,
      maxClientsIdLength: config.limits.maxClientIdLength,
      maxTopicLevels: config.limits.maxTopicLevels,
      connectTimeout: config.limits.connectTimeoutMs,
    });
    await aedes.listen();
    const broker = aedes;
    cleanups.push(() => new Promise<void>((resolve) => broker.close(() => resolve())));
    const hooks = installHooks(aedes, {
      chain,
      onDecision: (hook, clientId, verdict, plugin, topic) =>
        logger.debug({ hook, clientId, verdict: verdict === 1 ? "drop" : "deny", plugin, topic }, "plugin decision"),
    });
    aedes.on("clientError", (client, err) => logger.debug({ clientId: client.id, err: err.message }, "client error"));
    aedes.on("connectionError", (_client, err) => logger.debug({ err: err.message }, "connection error"));
    aedes.on("client", (client) => logger.info({ clientId: client.id }, "client connected"));
    aedes.on("clientDisconnect", (client) => logger.info({ clientId: client.id }, "client disconnected"));

    const handle = (stream: Parameters<Aedes["handle"]>[0], req?: Parameters<Aedes["handle"]>[1]) => {
      hooks.attachClient(broker.handle(stream, req));
    };
    const listeners: Listener[] = [];
    const closeListeners = async () => {
      for (const l of listeners) await l.close();
    };
    cleanups.push(closeListeners);
    const tcp = await listenTcp(config.host, config.port, handle);
    listeners.push(tcp);
    logger.info(`MQTT over TCP listening on mqtt://${fmt(tcp.address.address, tcp.address.port)}`);
    if (config.tls) {
      const tls = await listenTls(config.tls, handle);
      listeners.push(tls);
      logger.info(`MQTT over TLS listening on mqtts://${fmt(tls.address.address, tls.address.port)}`);
    }
    if (config.ws) {
      const ws = await listenWebSocket(config.ws, handle);
      listeners.push(ws);
      logger.info(`MQTT over WebSocket listening on ws://${fmt(ws.address.address, ws.address.port)}${config.ws.path}`);
    }

    let ticker: NodeJS.Timeout | null = null;
    if (chain.has("tick")) {
      ticker = setInterval(() => chain.tick(Date.now()), config.limits.tickIntervalMs);
      ticker.unref();
    }
    chain.on("reload", () => {
      if (!ticker && chain.has("tick")) {
        ticker = setInterval(() => chain.tick(Date.now()), config.limits.tickIntervalMs);
        ticker.unref();
      }
    });
    if (config.plugins.some((p) => p.watch)) chain.watchFiles();

    let closing: Promise<void> | null = null;
    return {
      aedes,
      chain,
      config,
      logger,
      listeners,
      persistence,
      port(kind) {
        const l = listeners.find((x) => x.kind === kind);
        if (!l) throw new Error(`no ${kind} listener`);
        return l.address.port;
      },
      close() {
        closing ??= (async () => {
          if (ticker) clearInterval(ticker);
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
