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
