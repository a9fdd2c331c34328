import { readFileSync } from "node:fs";
import { createServer as createHttpServer, type Server as HttpServer } from "node:http";
import { createServer as createNetServer, type AddressInfo, type Server as NetServer, type Socket } from "node:net";
import { createServer as createTlsServer, type Server as TlsServer } from "node:tls";
import { createWebSocketStream, WebSocketServer } from "ws";
import type { Duplex } from "node:stream";
import type { IncomingMessage } from "node:http";
import type { ConnectionTracker } from "./connections.js";

export type Handler = (stream: Duplex, req?: IncomingMessage) => void;

/** What every listener applies to the sockets it accepts. */
export interface ListenerGuards {
  /** Shared across listeners: enforces maxConnections and counts bytes. */
  tracker: ConnectionTracker;
  /** A TLS handshake or WebSocket upgrade that has not completed by then is dropped. */
  connectTimeoutMs: number;
  /** Largest WebSocket message accepted (MQTT packets travel one or more per message). */
  maxPacketSize: number;
}

export class ListenError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ListenError";
  }
}

export interface Listener {
  kind: "tcp" | "tls" | "ws";
  address: AddressInfo;
  /** Stop accepting; existing connections are closed by the broker. */
  close(): Promise<void>;
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

export async function listenTls(
  opts: { host: string; port: number; cert: string; key: string; ca?: string },
  handle: Handler,
  guards: ListenerGuards,
): Promise<Listener> {
  const server = createTlsServer(
    {
      cert: readFileSync(opts.cert),
      key: readFileSync(opts.key),
      ...(opts.ca ? { ca: readFileSync(opts.ca) } : {}),
      handshakeTimeout: guards.connectTimeoutMs,
    },
    (socket) => handle(tuned(socket)),
  );
  // Count and refuse at the TCP level, before any TLS work.
  server.on("connection", (raw: Socket) => {
    guards.tracker.admit(raw);
  });
  const address = await listen(server, opts.host, opts.port, "MQTT over TLS");
  return { kind: "tls", address, close: () => closeServer(server) };
}

export async function listenWebSocket(opts: { host: string; port: number; path: string }, handle: Handler, guards: ListenerGuards): Promise<Listener> {
  const http = createHttpServer((_req, res) => {
    res.writeHead(426, { "content-type": "text/plain" }).end(`MQTT over WebSocket is served at ${opts.path}\n`);
  });
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
    // A socket error surfaces on the stream; aedes handles the client side.
    stream.on("error", () => stream.destroy());
    handle(stream, req);
  });
  const address = await listen(http, opts.host, opts.port, "MQTT over WebSocket");
  return {
    kind: "ws",
    address,
    close: async () => {
      for (const client of wss.clients) client.terminate();
      wss.close();
      await closeServer(http);
    },
  };
}
