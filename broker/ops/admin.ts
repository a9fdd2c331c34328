/**
 * The operator's HTTP port: Prometheus metrics and the admin API, JSON in and
 * out. Bound to loopback unless configured otherwise; a non-loopback address
 * needs a token and TLS (config.ts refuses to start without them). Every
 * request first passes the guard in admin-guard.ts (Host must name this
 * listener, no cross-site requests, state-changing requests carry
 * `X-Wasmq-Request: 1`, the token when one is configured).
 *
 *   GET    /metrics                  Prometheus text format
 *   GET    /health                   {status, uptimeSec, clients}
 *   GET    /plugins                  {plugins: [state and stats of each]}
 *   GET    /plugins/:name            one plugin
 *   POST   /plugins/:name/reload     reload from disk: 200, or 422 when the new build is refused
 *   POST   /plugins/:name/enable     200 {plugin, enabled}
 *   POST   /plugins/:name/disable    200, or 409 when that would leave a public listener without auth
 *   GET    /clients                  {clients: [...]}
 *   GET    /clients/:id              one client
 *   DELETE /clients/:id              disconnect it (its will is discarded; ?will=true publishes it)
 *   POST   /plugins/:name/upload     a new build as the body (admin-upload.ts)
 *   GET    /bridges[/:name]          bridge status, queue and counters (bridge/admin-route.ts)
 *   GET    /store                    store figures, and what the write hold did (admin-store.ts)
 *   GET    /, /assets/*              the web dashboard (dashboard/assets.ts; no token needed: no data in it)
 *   *      /dashboard/api/*          the dashboard's live stream and views (dashboard/routes.ts)
 *   GET    /cluster, POST /plugins/:name/deploy|rollback   cluster mode (admin-cluster.ts)
 *
 * Errors are {error: "..."} with 400/401/403/404/405/409/421/422/500.
 */
import type { Aedes, Client } from "aedes";
import { readFileSync } from "node:fs";
import { createServer, STATUS_CODES, type IncomingMessage, type RequestListener, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import type { Duplex } from "node:stream";
import type { Logger } from "pino";
import type { AdminTls } from "../config.js";
import type { PluginChain, PluginSlot } from "../../host/index.js";
import { usernameOf } from "../protocol/hooks.js";
import { listen, ListenError } from "../net/listeners.js";
import { createAdminGuard, SECURITY_HEADERS } from "./admin-guard.js";
import type { BrokerMetrics } from "./metrics.js";
import { pluginUploadRoute } from "./admin-upload.js";
import { bridgesRoute } from "../bridge/admin-route.js";
import { dashboardApiRoute, dashboardAssetsRoute, type Dashboard } from "./dashboard/index.js";
import { clusterRoute } from "./admin-cluster.js";
import { storeRoute } from "./admin-store.js";
import type { StoreFigures } from "./store-figures.js";
import type { Cluster } from "../cluster/index.js";
import type { Observer } from "./observe.js";
import { Reason, sendDisconnect } from "../protocol/mqtt5/index.js";

/** What a route module sees of one request. */
export interface AdminRequest {
  req: IncomingMessage;
  res: ServerResponse;
  method: string;
  url: URL;
  /** Decoded path segments. */
  segs: string[];
  deps: AdminDeps;
}

/** Answers a request and resolves true, or resolves false to let the next route try. */
export type AdminRoute = (r: AdminRequest) => Promise<boolean>;

/** Routes kept in modules of their own, tried in order after the built-in ones. */
const ROUTES: AdminRoute[] = [pluginUploadRoute, bridgesRoute, storeRoute, clusterRoute, dashboardApiRoute];

export interface AdminDeps {
  aedes: Aedes;
  chain: PluginChain;
  metrics: BrokerMetrics;
  observer: Observer;
  startedAt: number;
  logger: Logger;
  /** After a reload, enable or disable: the broker re-checks what depends on the chain. */
  chainChanged(): void;
  /** Why disabling this plugin is refused, or null when it may be disabled. */
  disableRefusal(slot: PluginSlot): string | null;
  /** A client's QoS 1/2 messages: in flight, waiting behind its window, stored for its session. */
  queues(client: Client): { inflight: number; waiting: number; stored: number };
  /** The web dashboard's live state (history, log tail, stores); absent: its API answers 404. */
  dashboard?: Dashboard;
  /** Cluster mode: GET /cluster, deploy, rollback (admin-cluster.ts). */
  cluster?: Cluster;
  /** GET /store (admin-store.ts); absent: 404. */
  store?: StoreFigures;
}

export interface AdminServer {
  readonly url: string;
  readonly address: AddressInfo;
  /**
   * Serve HTTP upgrades (live streams over WebSocket). Upgrades bypass the
   * request handler, so the request guard runs here too: the handler sees only
   * upgrades that passed it. Handlers are tried in order until one returns true
   * (it took the socket, e.g. with `new WebSocketServer({ noServer: true }).handleUpgrade`).
   */
  onUpgrade(handler: (req: IncomingMessage, socket: Duplex, head: Buffer) => boolean): void;
  close(): Promise<void>;
}

export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

interface ClientInternals {
  clean: boolean;
  version: number;
  subscriptions: Record<string, { qos: number }>;
  _disconnected: boolean;
}

function describeClient(client: Client, deps: Pick<AdminDeps, "observer" | "queues">): Record<string, unknown> {
  const c = client as Client & ClientInternals;
  const observer = deps.observer;
  const connectedAt = observer.connectedAt(client);
  const queues = deps.queues(client);
  return {
    id: client.id,
    username: usernameOf(client),
    remote: observer.remoteOf(client),
    clean: c.clean,
    protocol: c.version,
    connectedAt: connectedAt === null ? null : new Date(connectedAt).toISOString(),
    subscriptions: Object.entries(c.subscriptions).map(([topic, s]) => ({ topic, qos: s.qos })),
    sendQueueBytes: (client.conn as { writableLength?: number }).writableLength ?? 0,
    inflightOut: queues.inflight,
    waitingOut: queues.waiting,
    storedMessages: queues.stored,
  };
}

export function only(method: string, allowed: string[]): void {
  if (!allowed.includes(method)) throw new HttpError(405, `use ${allowed.join(" or ")}`, { allow: allowed.join(", ") });
}

export function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = `${JSON.stringify(body, null, 2)}\n`;
  res.writeHead(status, { "content-type": "application/json; charset=utf-8", "content-length": Buffer.byteLength(text), ...headers }).end(text);
}

export interface AdminServerOptions {
  host: string;
  port: number;
  token?: string;
  /** Extra names the Host header may use (`metrics.allowedHosts`). */
  allowedHosts?: readonly string[];
  /** Serve HTTPS with this certificate and key (PEM files); plain HTTP without. */
  tls?: AdminTls | null;
  /** GET/HEAD paths served without the token (e.g. a dashboard's static shell); the other guard rules still apply. */
  isPublic?: (pathname: string) => boolean;
}

export async function startAdminServer(opts: AdminServerOptions, deps: AdminDeps): Promise<AdminServer> {
  const { aedes, chain, logger } = deps;
  const clients = () => (aedes as unknown as { clients: Record<string, Client> }).clients;

  function plugin(name: string): PluginSlot {
    const slot = chain.slot(name);
    if (!slot) throw new HttpError(404, `no plugin named "${name}"`);
    return slot;
  }
  function client(id: string): Client {
    const c = clients()[id];
    if (!c) throw new HttpError(404, `no client connected with id "${id}"`);
    return c;
  }

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://admin");
    const parts = url.pathname.split("/").filter((p) => p.length > 0);
    let segs: string[];
    try {
      segs = parts.map(decodeURIComponent);
    } catch {
      throw new HttpError(400, `malformed path ${url.pathname}`);
    }
    const method = req.method ?? "GET";
    // The dashboard's own files (public for the guard: see isDashboardAsset in server.ts).
    if (await dashboardAssetsRoute({ req, res, method, url, segs, deps })) return;
    const [root, name, action] = segs;

    if (root === "metrics" && segs.length === 1) {
      only(method, ["GET"]);
      const text = await deps.metrics.render();
      res.writeHead(200, { "content-type": deps.metrics.contentType }).end(text);
      return;
    }
    if (root === "health" && segs.length === 1) {
      only(method, ["GET"]);
      return send(res, 200, { status: "ok", uptimeSec: Math.floor((Date.now() - deps.startedAt) / 1000), clients: aedes.connectedClients });
    }
    if (root === "plugins") {
      if (segs.length === 1) {
        only(method, ["GET"]);
        return send(res, 200, { plugins: chain.slots.map((s) => s.describe()) });
      }
      const slot = plugin(name!);
      if (segs.length === 2) {
        only(method, ["GET"]);
        return send(res, 200, slot.describe());
      }
      if (segs.length === 3 && action === "reload") {
        only(method, ["POST"]);
        const [result] = await chain.reload(slot.name);
        deps.chainChanged();
        logger.info({ plugin: slot.name, ok: result!.ok, err: result!.error ?? undefined }, `admin: reload of plugin ${slot.name} ${result!.ok ? "done" : "refused"}`);
        return send(res, result!.ok ? 200 : 422, { plugin: slot.name, ok: result!.ok, error: result!.error });
      }
      if (segs.length === 3 && (action === "enable" || action === "disable")) {
        only(method, ["POST"]);
        const enabled = action === "enable";
        if (!enabled) {
          const refusal = deps.disableRefusal(slot);
          if (refusal) throw new HttpError(409, refusal);
        }
        chain.setEnabled(slot.name, enabled);
        deps.chainChanged();
        logger.info({ plugin: slot.name, enabled }, `admin: plugin ${slot.name} ${enabled ? "enabled" : "disabled"}`);
        return send(res, 200, { plugin: slot.name, enabled });
      }
    }
    if (root === "clients") {
      if (segs.length === 1) {
        only(method, ["GET"]);
        return send(res, 200, { clients: Object.values(clients()).map((c) => describeClient(c, deps)) });
      }
      if (segs.length === 2) {
        only(method, ["GET", "DELETE"]);
        const c = client(name!);
        if (method === "GET") return send(res, 200, describeClient(c, deps));
        const publishWill = url.searchParams.get("will") === "true";
        // A kick is not the client's failure: like a DISCONNECT, it discards the will unless asked.
        if (!publishWill) (c as Client & ClientInternals)._disconnected = true;
        deps.observer.noteReason(c, "disconnected by the admin API");
        sendDisconnect(c, Reason.AdministrativeAction); // MQTT 5 clients learn why (0x98)
        await new Promise<void>((resolve) => c.close(() => resolve()));
        logger.info({ clientId: c.id, will: publishWill }, `admin: client ${c.id} disconnected`);
        return send(res, 200, { client: c.id, disconnected: true, will: publishWill });
      }
    }
    for (const r of ROUTES) if (await r({ req, res, method, url, segs, deps })) return;
    throw new HttpError(404, `nothing at ${method} ${url.pathname}`);
  }

  // The guard needs the bound port (port 0 = any): it is created once listening, before any request is read.
  let guard: ReturnType<typeof createAdminGuard> | null = null;
  const handler: RequestListener = (req, res) => {
    for (const [name, value] of Object.entries(SECURITY_HEADERS)) res.setHeader(name, value);
    const refusal = guard ? guard.check(req) : { status: 503, error: "starting" };
    if (refusal) {
      logger.debug({ method: req.method, url: req.url, host: req.headers.host, origin: req.headers.origin, status: refusal.status }, `admin API: request refused: ${refusal.error}`);
      return send(res, refusal.status, { error: refusal.error }, refusal.headers);
    }
    route(req, res).catch((err: unknown) => {
      if (res.headersSent) return res.destroy();
      if (err instanceof HttpError) return send(res, err.status, { error: err.message }, err.headers);
      logger.error({ err: (err as Error).message }, "admin API request failed");
      send(res, 500, { error: (err as Error).message });
    });
  };
  const tls = opts.tls ?? null;
  let server;
  try {
    server = tls ? createHttpsServer({ cert: readFileSync(tls.cert), key: readFileSync(tls.key), ...(tls.ca ? { ca: readFileSync(tls.ca) } : {}) }, handler) : createServer(handler);
  } catch (err) {
    throw new ListenError(`admin API and metrics: metrics.tls: cannot use ${tls!.cert} / ${tls!.key}: ${(err as Error).message}`);
  }
  const address = await listen(server, opts.host, opts.port, "admin API and metrics");
  guard = createAdminGuard({
    scheme: tls ? "https" : "http",
    bindHost: opts.host,
    port: address.port,
    allowedHosts: opts.allowedHosts ?? [],
    ...(opts.token ? { token: opts.token } : {}),
    ...(opts.isPublic ? { isPublic: opts.isPublic } : {}),
  });
  const upgraders: ((req: IncomingMessage, socket: Duplex, head: Buffer) => boolean)[] = [];
  server.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on("error", () => socket.destroy());
    const refusal = guard!.check(req);
    const status = refusal?.status ?? 404;
    if (!refusal && upgraders.some((handle) => handle(req, socket, head))) return;
    const text = `${JSON.stringify({ error: refusal?.error ?? `nothing to upgrade at ${req.url}` })}\n`;
    socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nconnection: close\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(text)}\r\n\r\n${text}`);
  });
  const host = address.address.includes(":") ? `[${address.address}]` : address.address;
  return {
    url: `${tls ? "https" : "http"}://${host}:${address.port}`,
    address,
    onUpgrade: (handler) => {
      upgraders.push(handler);
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
