/**
 * The ioredis options every connection of a node is made with (URL, ACL user,
 * TLS files, Sentinel, reconnect backoff), and the error type of everything
 * cluster start-up refuses.
 */
import type { RedisOptions } from "ioredis";
import { readFileSync } from "node:fs";
import type { ClusterConfig } from "./config.js";

export class ClusterError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ClusterError";
  }
}

/** Backoff between reconnection attempts: 100 ms doubling to 5 s, ±20 % jitter. */
export function reconnectDelay(attempt: number): number {
  const base = Math.min(100 * 2 ** Math.min(attempt, 10), 5000);
  return Math.round(base * (0.8 + Math.random() * 0.4));
}

export function redisOptions(config: ClusterConfig): RedisOptions {
  const url = new URL(config.redis);
  const tlsWanted = url.protocol === "rediss:" || config.tls !== null;
  const db = url.pathname.length > 1 ? Number(url.pathname.slice(1)) : 0;
  return {
    host: url.hostname.replace(/^\[|\]$/g, ""),
    port: url.port ? Number(url.port) : 6379,
    db: Number.isInteger(db) ? db : 0,
    ...(url.username || config.username ? { username: config.username ?? decodeURIComponent(url.username) } : {}),
    ...(url.password || config.password ? { password: config.password ?? decodeURIComponent(url.password) } : {}),
    ...(tlsWanted
      ? {
          tls: {
            ...(config.tls?.ca ? { ca: readTlsFile(config.tls.ca, "ca") } : {}),
            ...(config.tls?.cert ? { cert: readTlsFile(config.tls.cert, "cert") } : {}),
            ...(config.tls?.key ? { key: readTlsFile(config.tls.key, "key") } : {}),
            rejectUnauthorized: config.tls?.rejectUnauthorized ?? true,
          },
        }
      : {}),
    ...(config.sentinels
      ? {
          // Sentinel: ask them for the master of the group the URL's host names (and again after a failover).
          sentinels: config.sentinels,
          name: url.hostname,
          ...(config.sentinelPassword ? { sentinelPassword: config.sentinelPassword } : {}),
          ...(tlsWanted ? { enableTLSForSentinelMode: true } : {}),
          sentinelRetryStrategy: reconnectDelay,
        }
      : {}),
    retryStrategy: reconnectDelay,
    maxRetriesPerRequest: null,
    enableOfflineQueue: true,
    connectTimeout: config.connectTimeoutMs,
  };
}

/** A TLS file that was there when the config was read and cannot be read now: named by its key, not thrown raw. */
function readTlsFile(path: string, key: "ca" | "cert" | "key"): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new ClusterError(`cannot read ${path} (key "cluster.tls.${key}"): ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}
