import { readFileSync, existsSync, statSync } from "node:fs";
import { dirname, resolve, isAbsolute } from "node:path";
import { fileURLToPath } from "node:url";
import { z } from "zod";
import { clusterSchema, resolveCluster, NODE_ID_PATTERN, type ClusterConfig } from "./cluster/config.js";

/** Where `npm start` finds its configuration when no --config is given. */
export const DEFAULT_CONFIG_FILE = fileURLToPath(new URL("../../broker/default-config.json", import.meta.url));

const port = z.number().int().min(0).max(65535);
const host = z.string().min(1);

const limitsSchema = z
  .object({
    fuel: z.number().int().positive().optional(),
    memoryPages: z.number().int().min(1).max(65536).optional(),
  })
  .strict();

const breakerSchema = z
  .object({
    failures: z.number().int().positive().optional(),
    windowMs: z.number().int().positive().optional(),
    cooldownMs: z.number().int().positive().optional(),
  })
  .strict();

const pluginSchema = z
  .object({
    name: z.string().regex(/^[A-Za-z0-9_.-]+$/, "letters, digits, '_', '.', '-'"),
    wasm: z.string().min(1).optional(),
    native: z.string().min(1).optional(),
    config: z.record(z.string(), z.unknown()).optional(),
    onError: z.enum(["fail-open", "fail-closed"]).optional(),
    limits: limitsSchema.optional(),
    breaker: breakerSchema.optional(),
    enabled: z.boolean().optional(),
    watch: z.boolean().optional(),
  })
  .strict();

const configSchema = z
  .object({
    host: host.optional(),
    port: port.optional(),
    ws: z.union([z.literal(false), z.object({ port: port.optional(), host: host.optional(), path: z.string().startsWith("/").optional() }).strict()]).optional(),
    tls: z
      .object({ port: port.optional(), host: host.optional(), cert: z.string().min(1), key: z.string().min(1), ca: z.string().min(1).optional() })
      .strict()
      .optional(),
    data: z.string().min(1).optional(),
    persistence: z.enum(["lmdb", "memory"]).optional(),
    durability: z.enum(["sync", "async"]).optional(),
    allowAnonymous: z.boolean().optional(),
    log: z.object({ level: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).optional() }).strict().optional(),
    metrics: z
      .union([
        z.literal(false),
        z
          .object({
            port: port.optional(),
            host: host.optional(),
            token: z.string().min(16).optional(),
            timingSampleEvery: z.number().int().min(1).optional(),
          })
          .strict(),
      ])
      .optional(),
    sys: z.union([z.literal(false), z.object({ intervalSec: z.number().int().positive().optional() }).strict()]).optional(),
    limits: z
      .object({
        maxPacketSize: z.number().int().positive().optional(),
        maxConnections: z.number().int().positive().optional(),
        maxInflight: z.number().int().positive().optional(),
        maxInflightOutbound: z.number().int().min(0).optional(),
        queueLimit: z.number().int().positive().optional(),
        connectTimeoutMs: z.number().int().positive().optional(),
        maxTopicLength: z.number().int().positive().max(65535).optional(),
        maxTopicLevels: z.number().int().min(1).max(100).optional(),
        maxClientIdLength: z.number().int().min(1).max(65535).optional(),
        maxQueuedBytes: z.number().int().positive().optional(),
        maxQueuedMessages: z.number().int().min(0).optional(),
        drainTimeoutMs: z.number().int().positive().optional(),
        tickIntervalMs: z.number().int().positive().optional(),
      })
      .strict()
      .optional(),
    plugins: z.array(pluginSchema).optional(),
    cluster: clusterSchema.optional(),
  })
  .strict();

export type RawConfig = z.infer<typeof configSchema>;

export interface PluginConfig {
  name: string;
  wasm?: string;
  native?: string;
  config: Record<string, unknown>;
  onError: "fail-open" | "fail-closed";
  limits: { fuel: number; memoryPages: number };
  breaker: { failures: number; windowMs: number; cooldownMs: number };
  enabled: boolean;
  watch: boolean;
}

export interface BrokerConfig {
  /** The file this configuration came from, or null when built in code. */
  file: string | null;
  host: string;
  port: number;
  ws: { host: string; port: number; path: string } | null;
  tls: { host: string; port: number; cert: string; key: string; ca?: string } | null;
  data: string;
  persistence: "lmdb" | "memory";
  durability: "sync" | "async";
  allowAnonymous: boolean;
  log: { level: "fatal" | "error" | "warn" | "info" | "debug" | "trace" | "silent" };
  /** The HTTP port serving /metrics and the admin API; null = not served. */
  metrics: { host: string; port: number; token?: string; timingSampleEvery: number } | null;
  sys: { intervalSec: number } | null;
  limits: {
    maxPacketSize: number;
    maxConnections: number;
    maxInflight: number;
    /** QoS 1/2 messages sent to a client and not yet acknowledged; 0 = no limit. */
    maxInflightOutbound: number;
    queueLimit: number;
    connectTimeoutMs: number;
    maxTopicLength: number;
    maxTopicLevels: number;
    maxClientIdLength: number;
    maxQueuedBytes: number;
    /** QoS 1/2 messages stored per offline persistent session; 0 = no limit. */
    maxQueuedMessages: number;
    drainTimeoutMs: number;
    tickIntervalMs: number;
  };
  plugins: PluginConfig[];
  /** Cluster mode (Redis); null = a single node on `persistence`. */
  cluster: ClusterConfig | null;
}

/**
 * Broker limits when the config names none. Mosquitto-like where Mosquitto has a
 * default; otherwise sized for an IoT fleet (small messages, many clients).
 */
export const DEFAULT_LIMITS: BrokerConfig["limits"] = {
  maxPacketSize: 1024 * 1024,
  maxConnections: 10_000,
  maxInflight: 100,
  maxInflightOutbound: 1000,
  queueLimit: 1000,
  connectTimeoutMs: 30_000,
  maxTopicLength: 4096,
  maxTopicLevels: 100,
  maxClientIdLength: 256,
  maxQueuedBytes: 16 * 1024 * 1024,
  maxQueuedMessages: 1000,
  drainTimeoutMs: 60_000,
  tickIntervalMs: 1000,
};

/** One call in N into each plugin is timed for the call-duration histogram. */
export const DEFAULT_TIMING_SAMPLE_EVERY = 64;

/** Addresses only this machine can reach. "0.0.0.0" and "::" are every interface, so public. */
export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase();
  return h === "localhost" || h === "::1" || h === "[::1]" || h.startsWith("127.") || h.startsWith("::ffff:127.");
}

export const DEFAULT_PLUGIN_LIMITS = { fuel: 100_000_000, memoryPages: 256 };
export const DEFAULT_BREAKER = { failures: 5, windowMs: 10_000, cooldownMs: 30_000 };

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ConfigError";
  }
}

/** Command-line values that take precedence over the file. */
export interface ConfigOverrides {
  host?: string;
  port?: number;
  wsPort?: number;
  data?: string;
  persistence?: "lmdb" | "memory";
  logLevel?: BrokerConfig["log"]["level"];
  metricsPort?: number;
  /** --redis URL: cluster mode. */
  redis?: string;
  /** --node-id ID */
  nodeId?: string;
}

function describeIssue(issue: z.core.$ZodIssue): string {
  const path = issue.path.map(String).join(".");
  if (issue.code === "unrecognized_keys") {
    const keys = issue.keys.map((k) => (path ? `${path}.${k}` : k));
    return `unknown key${keys.length > 1 ? "s" : ""} ${keys.map((k) => `"${k}"`).join(", ")}`;
  }
  return `key "${path || "(root)"}": ${issue.message}`;
}

export function readConfigFile(file: string): RawConfig {
  if (!existsSync(file)) throw new ConfigError(`config file ${file} does not exist`);
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new ConfigError(`config file ${file} cannot be read: ${(err as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`config file ${file} is not valid JSON: ${(err as Error).message}`);
  }
  return parseRawConfig(json, file);
}

export function parseRawConfig(json: unknown, source: string): RawConfig {
  const result = configSchema.safeParse(json);
  if (!result.success) {
    throw new ConfigError(`invalid config in ${source}: ${result.error.issues.map(describeIssue).join("; ")}`);
  }
  return result.data;
}

function resolvePath(base: string, p: string): string {
  return isAbsolute(p) ? p : resolve(base, p);
}

function mustExist(path: string, key: string, source: string): void {
  if (!existsSync(path) || !statSync(path).isFile()) {
    throw new ConfigError(`invalid config in ${source}: key "${key}": file ${path} does not exist`);
  }
}

/**
 * Turn a parsed file plus overrides into a complete configuration. Relative paths
 * in the file are resolved against the file's folder; paths given on the command
 * line against the working directory.
 */
export function resolveConfig(raw: RawConfig, file: string | null, overrides: ConfigOverrides = {}): BrokerConfig {
  const source = file ?? "(inline config)";
  const base = file ? dirname(file) : process.cwd();
  const host = overrides.host ?? raw.host ?? "127.0.0.1";
  const ws =
    raw.ws === false && overrides.wsPort === undefined
      ? null
      : {
          host: (raw.ws || undefined)?.host ?? host,
          port: overrides.wsPort ?? (raw.ws || undefined)?.port ?? 8083,
          path: (raw.ws || undefined)?.path ?? "/mqtt",
        };
  let tls: BrokerConfig["tls"] = null;
  if (raw.tls) {
    tls = {
      host: raw.tls.host ?? host,
      port: raw.tls.port ?? 8883,
      cert: resolvePath(base, raw.tls.cert),
      key: resolvePath(base, raw.tls.key),
      ...(raw.tls.ca ? { ca: resolvePath(base, raw.tls.ca) } : {}),
    };
    mustExist(tls.cert, "tls.cert", source);
    mustExist(tls.key, "tls.key", source);
    if (tls.ca) mustExist(tls.ca, "tls.ca", source);
  }
  const plugins = (raw.plugins ?? []).map((p, i): PluginConfig => {
    const key = `plugins.${i}`;
    if ((p.wasm === undefined) === (p.native === undefined)) {
      throw new ConfigError(`invalid config in ${source}: key "${key}" (${p.name}): give exactly one of "wasm" or "native"`);
    }
    const wasm = p.wasm !== undefined ? resolvePath(base, p.wasm) : undefined;
    const native = p.native !== undefined ? resolvePath(base, p.native) : undefined;
    const path = (wasm ?? native)!;
    mustExist(path, `${key}.${wasm ? "wasm" : "native"}`, source);
    return {
      name: p.name,
      ...(wasm ? { wasm } : {}),
      ...(native ? { native } : {}),
      config: p.config ?? {},
      onError: p.onError ?? "fail-closed",
      limits: { ...DEFAULT_PLUGIN_LIMITS, ...p.limits },
      breaker: { ...DEFAULT_BREAKER, ...p.breaker },
      enabled: p.enabled ?? true,
      watch: p.watch ?? true,
    };
  });
  const names = new Set<string>();
  for (const p of plugins) {
    if (names.has(p.name)) throw new ConfigError(`invalid config in ${source}: key "plugins": the name "${p.name}" is used twice`);
    names.add(p.name);
  }
  const metricsRaw = raw.metrics || undefined;
  const metrics: BrokerConfig["metrics"] =
    raw.metrics === false || (raw.metrics === undefined && overrides.metricsPort === undefined)
      ? null
      : {
          host: metricsRaw?.host ?? "127.0.0.1",
          port: overrides.metricsPort ?? metricsRaw?.port ?? 9464,
          ...(metricsRaw?.token ? { token: metricsRaw.token } : {}),
          timingSampleEvery: metricsRaw?.timingSampleEvery ?? DEFAULT_TIMING_SAMPLE_EVERY,
        };
  // The admin API can reload plugins and disconnect clients: off this machine it needs a token.
  if (metrics && !metrics.token && !isLoopbackHost(metrics.host)) {
    throw new ConfigError(
      `invalid config in ${source}: key "metrics.token": required when "metrics.host" is ${metrics.host} (not loopback); give a token of at least 16 characters`,
    );
  }
  const limits = raw.limits ?? {};
  const cluster = resolveClusterOrThrow(raw, overrides, base, source);
  return {
    file,
    host,
    port: overrides.port ?? raw.port ?? 1883,
    ws,
    tls,
    data: overrides.data !== undefined ? resolve(overrides.data) : resolvePath(base, raw.data ?? "./data"),
    persistence: overrides.persistence ?? raw.persistence ?? "lmdb",
    durability: raw.durability ?? "sync",
    allowAnonymous: raw.allowAnonymous ?? false,
    log: { level: overrides.logLevel ?? raw.log?.level ?? "info" },
    metrics,
    sys: raw.sys === false ? null : { intervalSec: (raw.sys || undefined)?.intervalSec ?? 10 },
    limits: { ...DEFAULT_LIMITS, ...definedOnly(limits) },
    plugins,
    cluster,
  };
}

function resolveClusterOrThrow(raw: RawConfig, overrides: ConfigOverrides, base: string, source: string): ClusterConfig | null {
  if (overrides.redis !== undefined && !/^rediss?:\/\/[^/]/.test(overrides.redis)) {
    throw new ConfigError(`--redis: expected a redis:// or rediss:// URL, e.g. redis://127.0.0.1:6379, got "${overrides.redis}"`);
  }
  if (overrides.nodeId !== undefined && !NODE_ID_PATTERN.test(overrides.nodeId)) {
    throw new ConfigError(`--node-id: 1-64 letters, digits, '_', '.', '-', got "${overrides.nodeId}"`);
  }
  const cluster = resolveCluster(raw.cluster, overrides, (p) => resolvePath(base, p));
  if (cluster?.tls?.ca) mustExist(cluster.tls.ca, "cluster.tls.ca", source);
  if (cluster?.tls?.cert) mustExist(cluster.tls.cert, "cluster.tls.cert", source);
  if (cluster?.tls?.key) mustExist(cluster.tls.key, "cluster.tls.key", source);
  return cluster;
}

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

export function loadConfig(file: string, overrides: ConfigOverrides = {}): BrokerConfig {
  const absolute = resolve(file);
  return resolveConfig(readConfigFile(absolute), absolute, overrides);
}
