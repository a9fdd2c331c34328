/**
 * The `cluster` config key: several wasmq nodes sharing one fleet through Redis.
 * Kept apart from config.ts so the cluster's options live with the cluster.
 *
 *   "cluster": {
 *     "redis": "redis://host:6379/0",   // or rediss:// for TLS; credentials may be in the URL
 *     "id": "node-a",                   // optional: derived and stored in the data dir when missing
 *     "password": "...", "username": "...",
 *     "tls": { "ca": "ca.pem", "cert": "...", "key": "...", "rejectUnauthorized": true },
 *     "heartbeatMs": 1000,              // node liveness refresh
 *     "willDelayMs": 10000,             // a dead node's wills are published within this bound
 *     "connectTimeoutMs": 5000,         // start-up: how long to try reaching Redis
 *     "sentinels": ["s1:26379", "s2:26379"],  // Redis Sentinel: the URL's host is then the master
 *     "sentinelPassword": "..."               //   group's name (redis://mymaster/0), as redis-rb reads it
 *   }
 */
import { z } from "zod";
import { resolveTlsClientFiles, tlsClientSchema, type TlsClientFiles } from "../tls-client-config.js";

export const NODE_ID_PATTERN = /^[A-Za-z0-9_.-]{1,64}$/;

export const clusterSchema = z
  .object({
    redis: z.string().superRefine((s, ctx) => {
      const problem = redisUrlProblem(s);
      if (problem) ctx.addIssue({ code: "custom", message: problem });
    }),
    // ':' separates fields in the Redis keys aedes-persistence-redis builds from the node id.
    id: z.string().regex(NODE_ID_PATTERN, "1-64 letters, digits, '_', '.', '-'").optional(),
    username: z.string().min(1).optional(),
    password: z.string().min(1).optional(),
    tls: tlsClientSchema().optional(),
    heartbeatMs: z.number().int().min(100).max(60_000).optional(),
    willDelayMs: z.number().int().min(500).max(600_000).optional(),
    connectTimeoutMs: z.number().int().min(100).max(120_000).optional(),
    sentinels: z.array(z.string().regex(/^[^:\s]+:\d{1,5}$/, 'expected "host:port"')).min(1).optional(),
    sentinelPassword: z.string().min(1).optional(),
  })
  .strict()
  .refine((c) => (c.willDelayMs ?? 10_000) > 2 * (c.heartbeatMs ?? 1000), {
    message: "willDelayMs must be more than twice heartbeatMs",
    path: ["willDelayMs"],
  });

export type RawClusterConfig = z.infer<typeof clusterSchema>;

export interface ClusterConfig {
  redis: string;
  /** The configured node id, or null: derived at start (see cluster/identity.ts). */
  id: string | null;
  username?: string;
  password?: string;
  tls: TlsClientFiles | null;
  heartbeatMs: number;
  willDelayMs: number;
  connectTimeoutMs: number;
  /** Redis Sentinel addresses; the URL's host names the master group. */
  sentinels?: { host: string; port: number }[];
  sentinelPassword?: string;
  /** Where the URL was given, for start-up errors: `key "cluster.redis" in FILE`, or `--redis`. */
  origin?: string;
}

export const DEFAULT_CLUSTER = { heartbeatMs: 1000, willDelayMs: 10_000, connectTimeoutMs: 5000 };

/** What is wrong with a `cluster.redis` / --redis URL, or null. The database index is the path ("/0"), as redis-cli and ioredis read it. */
export function redisUrlProblem(s: string): string | null {
  let u: URL;
  try {
    u = new URL(s);
  } catch {
    u = new URL("x:");
  }
  if ((u.protocol !== "redis:" && u.protocol !== "rediss:") || u.hostname.length === 0) return "expected a redis:// or rediss:// URL, e.g. redis://127.0.0.1:6379";
  if (u.pathname.length > 1 && !/^\/\d{1,5}$/.test(u.pathname)) return `the path must be a database index (e.g. redis://host:6379/2), got "${u.pathname}"`;
  if (u.search) return `query options are not read (got "${u.search}"): use the cluster keys (password, username, tls)`;
  return null;
}

/** The URL with any password replaced, for logs and error messages. */
export function redactedUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = "***";
    return u.toString();
  } catch {
    return "(unparsable URL)";
  }
}

/** `fail(key, why)` throws the caller's error naming the config file (a TLS file that is not there). */
export function resolveCluster(
  raw: RawClusterConfig | undefined,
  overrides: { redis?: string; nodeId?: string },
  resolvePath: (p: string) => string,
  fail: (key: string, why: string) => never,
  source?: string,
): ClusterConfig | null {
  const redis = overrides.redis ?? raw?.redis;
  if (!redis) return null;
  const tls = raw?.tls ? resolveTlsClientFiles(raw.tls, "cluster.tls", resolvePath, fail) : null;
  return {
    redis,
    id: overrides.nodeId ?? raw?.id ?? null,
    ...(raw?.username ? { username: raw.username } : {}),
    ...(raw?.password ? { password: raw.password } : {}),
    tls,
    heartbeatMs: raw?.heartbeatMs ?? DEFAULT_CLUSTER.heartbeatMs,
    willDelayMs: raw?.willDelayMs ?? DEFAULT_CLUSTER.willDelayMs,
    connectTimeoutMs: raw?.connectTimeoutMs ?? DEFAULT_CLUSTER.connectTimeoutMs,
    ...(raw?.sentinels
      ? {
          sentinels: raw.sentinels.map((s) => {
            const at = s.lastIndexOf(":");
            return { host: s.slice(0, at), port: Number(s.slice(at + 1)) };
          }),
        }
      : {}),
    ...(raw?.sentinelPassword ? { sentinelPassword: raw.sentinelPassword } : {}),
    origin: overrides.redis !== undefined ? "--redis" : `key "cluster.redis"${source ? ` in ${source}` : ""}`,
  };
}
