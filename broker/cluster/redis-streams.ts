/**
 * A lasting 'error' listener on every socket ioredis opens for a connection.
 *
 * ioredis (5.x) listens to a connection's socket with `once("error")` only —
 * in Redis#_connect, and the connectors' own `once("error")` for `firstError`
 * (StandaloneConnector, SentinelConnector). A second 'error' on the same socket
 * (a TLS socket can emit a TLS error directly and then a socket error through
 * destroy()) would find no listener, and an 'error' event without a listener
 * throws: an uncaught exception that takes the whole broker down. The
 * connection object itself always has our listener (RedisLink); this adds one
 * to each socket for its whole life.
 *
 * The hook is the connection's connector (the object that opens the socket on
 * every connect and reconnect): its connect() is wrapped so each socket gets
 * the listener in the same microtask drain in which ioredis receives it, before
 * any I/O event can reach it. The first error of a socket is ioredis' (it
 * reports it as the connection's 'error' and reconnects); later ones would
 * have been lost and are passed to `onLateError`. The connection must not
 * have connected yet (create it with lazyConnect): the constructor of an eager
 * one opens its first socket before this can wrap anything.
 *
 * With Sentinel, the connector also opens connections of its own to the
 * sentinels (ioredis 5.x SentinelConnector#connectToSentinel): a short-lived
 * one per "which is the master?" question (resolve(): a noop listener on the
 * connection only, its sockets are listened to with `once`), and, with
 * ioredis' `failoverDetector` option, one per sentinel held open to hear
 * `+switch-master` (no listener at all: each error prints "[ioredis] Unhandled
 * error event" with a stack, on every reconnection attempt — a log flood
 * while a sentinel is unreachable). `guardSentinels` makes each of those
 * lazy, gives it and each of its sockets a lasting listener (reported to
 * `onError`) and then connects it as ioredis would. (wasmq leaves
 * `failoverDetector` off: in ioredis 5.11 a +switch-master that arrives while
 * a connection is resolving the new master ends that connection for good —
 * status "end", "Connection is closed." — which the Sentinel failover test in
 * cluster-redis-options showed with it on.)
 */
import type { Redis } from "ioredis";

interface Connector {
  connect(...args: unknown[]): Promise<NodeJS.EventEmitter>;
}

export function guardStreams(conn: Redis, onLateError: (err: Error) => void): void {
  if (conn.status !== "wait") throw new Error(`guardStreams: the connection is already ${conn.status}; create it with lazyConnect`);
  const connector = (conn as unknown as { connector?: Connector }).connector;
  if (typeof connector?.connect !== "function") throw new Error("guardStreams: this ioredis has no connector.connect() to wrap");
  const connect = connector.connect.bind(connector);
  connector.connect = (...args: unknown[]) =>
    connect(...args).then((stream) => {
      let seen = 0;
      stream.on("error", (err: Error) => {
        if (++seen > 1) onLateError(err);
      });
      return stream;
    });
}

interface SentinelConnector {
  connectToSentinel(endpoint: unknown, options?: Record<string, unknown>): Redis;
}

export function guardSentinels(conn: Redis, onError: (err: Error) => void): void {
  const connector = (conn as unknown as { connector?: Partial<SentinelConnector> }).connector;
  if (typeof connector?.connectToSentinel !== "function") {
    if ((conn.options as { sentinels?: unknown }).sentinels) throw new Error("guardSentinels: this ioredis has no SentinelConnector.connectToSentinel() to wrap");
    return; // not a Sentinel connection
  }
  const connectToSentinel = connector.connectToSentinel.bind(connector);
  connector.connectToSentinel = (endpoint, options = {}) => {
    const sentinel = connectToSentinel(endpoint, { ...options, lazyConnect: true });
    sentinel.on("error", onError);
    guardStreams(sentinel, onError);
    // resolve() asks for an eager connection (its commands would also connect a lazy one; this keeps ioredis' order).
    if (!options["lazyConnect"]) sentinel.connect().catch(() => {});
    return sentinel;
  };
}
