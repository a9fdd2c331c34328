import { createServer as createHttpServer, type Server as HttpServer } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import { createServer as createNetServer, type AddressInfo, type Server as NetServer, type Socket } from "node:net";
import { createServer as createTlsServer, type Server as TlsServer, type TLSSocket } from "node:tls";
import { createWebSocketStream, WebSocketServer } from "ws";
import type { Duplex } from "node:stream";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { ConnectionTracker } from "./connections.js";
import { refuseUnverified, serverTlsOptions, verifiedClientCertificate, type TlsSettings } from "./tls-options.js";
import { recordTlsPeer } from "./tls-peer.js";

export type Handler = (stream: Duplex, req?: IncomingMessage) => void;

/** What every listener applies to the sockets it accepts. */
export interface ListenerGuards {
  /** Shared across listeners: enforces maxConnections and counts bytes. */
  tracker: ConnectionTracker;
  /** A TLS handshake or WebSocket upgrade that has not completed by then is dropped. */
  connectTimeoutMs: number;
  /** Largest WebSocket message accepted (MQTT packets travel one or more per message). */
  maxPacketSize: number;
  /** A TLS handshake failed (e.g. an untrusted, expired or revoked client certificate). */
  onTlsClientError?: (err: Error, socket: TLSSocket) => void;
}

export class ListenError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ListenError";
  }
}

export interface Listener {
  kind: "tcp" | "tls" | "ws" | "wss";
  address: AddressInfo;
  /** Stop accepting; existing connections are closed by the broker. */
  close(): Promise<void>;
  /** TLS listeners: re-read certificate, key, CA bundle and CRL for new connections (throws when a file cannot be used). */
  reloadTls?(): void;
}

/** Listen, turning the usual failures into a ListenError naming the port and what to do. */
export function listen(server: NetServer | HttpServer | TlsServer, host: string, port: number, label: string): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      if (err.code === "EADDRINUSE") reject(new ListenError(`${label}: port ${port} on ${host} is already in use (is another broker running?)`));
      else if (err.code === "EACCES") reject(new ListenError(`${label}: not allowed to listen on ${host}:${port} (ports below 1024 need privileges)`));
      else if (err.code === "EADDRNOTAVAIL" || err.code === "ENOTFOUND") reject(new ListenError(`${label}: ${host} is not an address of this machine`));
      else reject(new ListenError(`${label}: cannot listen on ${host}:${port}: ${err.message}`));
    };
    server.once("error", onError);
    server.listen(port, host, () => {
      server.off("error", onError);
      resolve(server.address() as AddressInfo);
    });
  });
}

function closeServer(server: NetServer | HttpServer | TlsServer): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

/** Nagle's algorithm plus delayed ACKs adds ~40 ms to small MQTT messages; aedes does not disable it. */
function tuned(socket: Socket): Socket {
  socket.setNoDelay(true);
  return socket;
}

export async function listenTcp(host: string, port: number, handle: Handler, guards: ListenerGuards): Promise<Listener> {
  const server = createNetServer((socket) => {
    if (guards.tracker.admit(socket)) handle(tuned(socket));
  });
  const address = await listen(server, host, port, "MQTT over TCP");
  return { kind: "tcp", address, close: () => closeServer(server) };
}

/** Keep what the handshake established about the client beside the stream aedes gets. */
function recordPeer(stream: object, socket: TLSSocket, opts: TlsSettings): void {
  recordTlsPeer(stream, { cert: verifiedClientCertificate(socket), useIdentityAsUsername: opts.useIdentityAsUsername, socket });
}

export async function listenTls(opts: TlsSettings, handle: Handler, guards: ListenerGuards): Promise<Listener> {
  const server = createTlsServer(serverTlsOptions(opts, guards.connectTimeoutMs), (socket) => {
    if (!refuseUnverified(socket, opts.clientCert)) return;
    recordPeer(socket, socket, opts);
    handle(tuned(socket));
  });
  // A failed handshake (untrusted, expired or revoked client certificate) is the client's problem, not the server's.
  server.on("tlsClientError", (err: Error, socket: TLSSocket) => guards.onTlsClientError?.(err, socket));
  // Count and refuse at the TCP level, before any TLS work.
  server.on("connection", (raw: Socket) => {
    guards.tracker.admit(raw);
  });
  const address = await listen(server, opts.host, opts.port, "MQTT over TLS");
  return { kind: "tls", address, close: () => closeServer(server), reloadTls: () => server.setSecureContext(serverTlsOptions(opts, guards.connectTimeoutMs)) };
}

export async function listenWebSocket(opts: { host: string; port: number; path: string }, handle: Handler, guards: ListenerGuards): Promise<Listener> {
  const http = createHttpServer(upgradeRequired(opts.path));
  return serveWebSocket(http, "ws", opts, handle, guards);
}

/** MQTT over WebSocket over TLS (wss://), with the TLS listener's settings, client certificates included. */
export async function listenSecureWebSocket(opts: TlsSettings & { wsPort: number }, handle: Handler, guards: ListenerGuards): Promise<Listener> {
  const https = createHttpsServer(serverTlsOptions(opts, guards.connectTimeoutMs), upgradeRequired(opts.wsPath));
  https.on("secureConnection", (socket: TLSSocket) => refuseUnverified(socket, opts.clientCert));
  https.on("tlsClientError", (err: Error, socket: TLSSocket) => guards.onTlsClientError?.(err, socket));
  const listener = await serveWebSocket(https, "wss", { host: opts.host, port: opts.wsPort, path: opts.wsPath }, handle, guards, (stream, req) =>
    recordPeer(stream, req.socket as TLSSocket, opts),
  );
  return { ...listener, reloadTls: () => https.setSecureContext(serverTlsOptions(opts, guards.connectTimeoutMs)) };
}

/** How long a closing wss:// connection may take to send what it still holds. */
const WSS_CLOSE_GRACE_MS = 2000;

/**
 * mqtt-packet writes a packet in several chunks, and over TLS the WebSocket
 * stream hands them to the socket one at a time, asynchronously. aedes
 * destroys the stream right after writing a refusal, which dropped the
 * chunks still queued: a refused wss:// client saw a lone CONNACK byte, never
 * the return code. Let queued data out first (end() sends it, then a close
 * frame), and cut only if that takes too long.
 */
function closeGracefully(stream: Duplex): void {
  const destroy = stream.destroy.bind(stream);
  let closing = false;
  stream.destroy = (err?: Error) => {
    if (closing) return stream; // aedes destroys twice (close, then its error): the first one's end() is under way
    if (stream.destroyed || stream.writableEnded || stream.writableLength === 0) return destroy(err);
    closing = true;
    const timer = setTimeout(() => destroy(err), WSS_CLOSE_GRACE_MS);
    timer.unref();
    stream.end(() => {
      clearTimeout(timer);
      destroy(err);
    });
    return stream;
  };
}

function upgradeRequired(path: string) {
  return (_req: IncomingMessage, res: ServerResponse) => {
    res.writeHead(426, { "content-type": "text/plain" }).end(`MQTT over WebSocket is served at ${path}\n`);
  };
}

async function serveWebSocket(
  http: HttpServer,
  kind: "ws" | "wss",
  opts: { host: string; port: number; path: string },
  handle: Handler,
  guards: ListenerGuards,
  onStream?: (stream: Duplex, req: IncomingMessage) => void,
): Promise<Listener> {
  // A connection that never completes its upgrade request is dropped like a silent MQTT socket.
  http.headersTimeout = guards.connectTimeoutMs;
  http.requestTimeout = guards.connectTimeoutMs;
  http.on("connection", (raw: Socket) => {
    guards.tracker.admit(raw);
  });
  const wss = new WebSocketServer({ server: http, path: opts.path, maxPayload: guards.maxPacketSize });
  // ws re-emits the HTTP server's errors (EADDRINUSE…); listen() below reports them as a ListenError.
  wss.on("error", () => {});
  wss.on("connection", (socket, req) => {
    tuned(req.socket);
    const stream = createWebSocketStream(socket);
    if (kind === "wss") closeGracefully(stream);
    // A socket error surfaces on the stream; aedes handles the client side.
    stream.on("error", () => stream.destroy());
    onStream?.(stream, req);
    handle(stream, req);
  });
  const address = await listen(http, opts.host, opts.port, kind === "ws" ? "MQTT over WebSocket" : "MQTT over secure WebSocket");
  return {
    kind,
    address,
    close: async () => {
      for (const client of wss.clients) client.terminate();
      wss.close();
      await closeServer(http);
    },
  };
}
