import { readFileSync, existsSync, statSync } from "node:fs";
import { dirname, resolve, isAbsolute } from "node:path";
import { fileURLToPath } from "node:url";
import { z } from "zod";
import { bridgeSchema, resolveBridges, type BridgeConfig } from "./bridge/config.js";
import { clusterSchema, redisUrlProblem, resolveCluster, NODE_ID_PATTERN, type ClusterConfig } from "./cluster/config.js";
import { publicKeyProblem } from "../host/signing.js";
import { isLoopbackHost } from "./net/loopback.js";
import { parseAllowedHost } from "./ops/admin-guard.js";
import { checkTlsMaterial, type TlsSettings } from "./net/tls-options.js";
import { mqtt5Schema, resolveMqtt5, type Mqtt5Config } from "./protocol/mqtt5/config.js";
import { DEFAULT_HOST_CALL_LIMITS } from "../host/index.js";
import { DEFAULT_WRITE_HOLD_MODE, DEFAULT_WRITE_HOLD_MS, MAX_WRITE_HOLD_MS, WRITE_HOLD_MODES, type WriteHoldMode } from "./persistence/lmdb/unwritten.js";
import { DEFAULT_MEMORY_SETTLE } from "./ops/memory-settle.js";

/** Where `npm start` finds its configuration when no --config is given. */
export const DEFAULT_CONFIG_FILE = fileURLToPath(new URL("../../broker/default-config.json", import.meta.url));

const port = z.number().int().min(0).max(65535);
/** Why writeHoldMs stops at 1000 (persistence/lmdb/unwritten.ts MAX_WRITE_HOLD_MS). */
const WRITE_HOLD_BOUND = `at most ${MAX_WRITE_HOLD_MS} (ms): a publisher waits up to this long more for each PUBACK while its subscriber has not acknowledged, and held messages stay in memory meanwhile`;
const host = z.string().min(1);

const limitsSchema = z
  .object({
    fuel: z.number().int().positive().optional(),
    memoryPages: z.number().int().min(1).max(65536).optional(),
    // Per-call caps on host calls (host/host-calls.ts); native plugins too.
    maxPublishesPerCall: z.number().int().min(0).optional(),
    maxPublishBytesPerCall: z.number().int().min(0).optional(),
    maxLogLinesPerCall: z.number().int().min(0).optional(),
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
    sha256: z.string().regex(/^[0-9a-fA-F]{64}$/, "64 hex digits (the .wasm file's SHA-256)").optional(),
  })
  .strict();

const configSchema = z
  .object({
    host: host.optional(),
    port: port.optional(),
    ws: z.union([z.literal(false), z.object({ port: port.optional(), host: host.optional(), path: z.string().startsWith("/").optional() }).strict()]).optional(),
    tls: z
      .object({
        port: port.optional(),
        host: host.optional(),
        cert: z.string().min(1),
        key: z.string().min(1),
        ca: z.string().min(1).optional(),
        // Mutual TLS (broker/OPERATIONS.md "Client certificates").
        crl: z.string().min(1).optional(),
        requireClientCert: z.boolean().optional(),
        requestClientCert: z.boolean().optional(),
        useIdentityAsUsername: z.boolean().optional(),
        minVersion: z.enum(["TLSv1.2", "TLSv1.3"]).optional(),
        wsPort: port.optional(),
        wsPath: z.string().startsWith("/").optional(),
      })
      .strict()
      .optional(),
    data: z.string().min(1).optional(),
    persistence: z.enum(["lmdb", "memory"]).optional(),
    durability: z.enum(["sync", "async"]).optional(),
    writeHoldMs: z.number().int("whole milliseconds").min(0, "0 (write every delivery before sending it) or more").max(MAX_WRITE_HOLD_MS, WRITE_HOLD_BOUND).optional(),
    writeHold: z.enum(WRITE_HOLD_MODES as [WriteHoldMode, ...WriteHoldMode[]]).optional(),
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
            allowedHosts: z.array(z.string().refine((h) => parseAllowedHost(h) !== null, "a host name or host:port")).optional(),
            tls: z.union([z.literal(false), z.object({ cert: z.string().min(1), key: z.string().min(1), ca: z.string().min(1).optional() }).strict()]).optional(),
          })
          .strict(),
      ])
      .optional(),
    sys: z.union([z.literal(false), z.object({ intervalSec: z.number().int().positive().optional() }).strict()]).optional(),
    memorySettle: z
      .union([z.literal(false), z.object({ afterConnects: z.number().int().positive().optional(), idleMs: z.number().int().min(100, "100 or more").optional() }).strict()])
      .optional(),
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
        // 0 = no deadline (a SUBSCRIBE may then hold its client's later packets for as long as its store hangs)
        subscribeTimeoutMs: z.number().int().min(0).max(600_000).optional(),
      })
      .strict()
      .optional(),
    mqtt5: mqtt5Schema.optional(),
    plugins: z.array(pluginSchema).optional(),
    bridges: z.array(bridgeSchema).optional(),
    cluster: clusterSchema.optional(),
    trust: z.object({ keys: z.array(z.string().min(1)).optional(), require: z.boolean().optional() }).strict().optional(),
  })
  .strict();

export type RawConfig = z.infer<typeof configSchema>;

export interface PluginConfig {
  name: string;
  wasm?: string;
  native?: string;
  config: Record<string, unknown>;
  onError: "fail-open" | "fail-closed";
  limits: { fuel: number; memoryPages: number; maxPublishesPerCall: number; maxPublishBytesPerCall: number; maxLogLinesPerCall: number };
  breaker: { failures: number; windowMs: number; cooldownMs: number };
  enabled: boolean;
  watch: boolean;
  /** Pinned SHA-256 of the .wasm file (lowercase hex). */
  sha256?: string;
}

/** PEM files for the admin listener's HTTPS (paths resolved). */
export interface AdminTls {
  cert: string;
  key: string;
  ca?: string;
}

export interface BrokerConfig {
  /** The file this configuration came from, or null when built in code. */
  file: string | null;
  host: string;
  port: number;
  ws: { host: string; port: number; path: string } | null;
  tls: TlsSettings | null;
  data: string;
  persistence: "lmdb" | "memory";
  durability: "sync" | "async";
  /** LMDB: ms a QoS 1 delivery to a connected persistent session is held from the disk for its PUBACK; 0 = written before routing. */
  writeHoldMs: number;
  /** LMDB: "adaptive" holds a session's deliveries only while its acks usually beat writeHoldMs (the cap); "fixed" holds each for writeHoldMs. */
  writeHold: WriteHoldMode;
  allowAnonymous: boolean;
  log: { level: "fatal" | "error" | "warn" | "info" | "debug" | "trace" | "silent" };
  /** The HTTP port serving /metrics and the admin API; null = not served. */
  metrics: {
    host: string;
    port: number;
    token?: string;
    timingSampleEvery: number;
    /** Names besides the listener's own address and localhost that the Host header may use. */
    allowedHosts: string[];
    /** HTTPS certificate and key; null = plain HTTP (loopback, or explicitly `"tls": false`). */
    tls: AdminTls | null;
  } | null;
  sys: { intervalSec: number } | null;
  /** Compacting GC after a connection burst once quiet (ops/memory-settle.ts); null = off. */
  memorySettle: { afterConnects: number; idleMs: number } | null;
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
    /** A SUBSCRIBE/UNSUBSCRIBE not done by then is answered with failure and undone (protocol/barrier-deadline.ts); 0 = none. */
    subscribeTimeoutMs: number;
  };
  /** What MQTT 5 clients are told in CONNACK and held to (broker/protocol/mqtt5/config.ts). */
  mqtt5: Mqtt5Config;
  plugins: PluginConfig[];
  /** Store-and-forward bridges to upstream brokers (broker/bridge/). */
  bridges: BridgeConfig[];
  /** Cluster mode (Redis); null = a single node on `persistence`. */
  cluster: ClusterConfig | null;
  /** Plugin signature policy: Ed25519 public key files (absolute paths) and whether a signature is required. */
  trust: { keys: string[]; require: boolean };
}

/**
 * Broker limits when the config names none. Mosquitto-like where Mosquitto has a
 * default; otherwise sized for an IoT fleet (small messages, many clients).
 */
const DEFAULT_LIMITS: BrokerConfig["limits"] = {
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
  subscribeTimeoutMs: 10_000,
};

/** One call in N into each plugin is timed for the call-duration histogram. */
const DEFAULT_TIMING_SAMPLE_EVERY = 64;

export { isLoopbackHost };

export const DEFAULT_PLUGIN_LIMITS = { fuel: 100_000_000, memoryPages: 256, ...DEFAULT_HOST_CALL_LIMITS };
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
  if (!existsSync(path)) throw new ConfigError(`invalid config in ${source}: key "${key}": file ${path} does not exist`);
  if (!statSync(path).isFile()) throw new ConfigError(`invalid config in ${source}: key "${key}": ${path} is not a file`);
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
  if (raw.tls) tls = resolveTls(raw.tls, host, base, source);
  const plugins = (raw.plugins ?? []).map((p, i): PluginConfig => {
    const key = `plugins.${i}`;
    if ((p.wasm === undefined) === (p.native === undefined)) {
      throw new ConfigError(`invalid config in ${source}: key "${key}" (${p.name}): give exactly one of "wasm" or "native"`);
    }
    const wasm = p.wasm !== undefined ? resolvePath(base, p.wasm) : undefined;
    const native = p.native !== undefined ? resolvePath(base, p.native) : undefined;
    // A pin is checked where a Wasm build's bytes are admitted; a native module is never read as bytes.
    if (native !== undefined && p.sha256 !== undefined) {
      throw new ConfigError(`invalid config in ${source}: key "${key}.sha256" (${p.name}): a pin applies to "wasm" plugins only`);
    }
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
      ...(p.sha256 !== undefined ? { sha256: p.sha256.toLowerCase() } : {}),
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
          allowedHosts: metricsRaw?.allowedHosts ?? [],
          tls: null,
        };
  // The admin API can reload plugins and disconnect clients: off this machine it needs a token.
  if (metrics && !metrics.token && !isLoopbackHost(metrics.host)) {
    throw new ConfigError(
      `invalid config in ${source}: key "metrics.token": required when "metrics.host" is ${metrics.host} (not loopback); give a token of at least 16 characters`,
    );
  }
  const trust = resolveTrust(raw.trust, base, source);
  // A native plugin is code on disk that cannot carry a signature: "require" would be a promise the broker cannot keep.
  const nativeIndex = plugins.findIndex((p) => p.native !== undefined);
  if (trust.require && nativeIndex >= 0) {
    throw new ConfigError(
      `invalid config in ${source}: key "plugins.${nativeIndex}.native" (${plugins[nativeIndex]!.name}): native plugins cannot be signed, and trust.require is on (use the plugin's Wasm build)`,
    );
  }
  if (metrics) metrics.tls = resolveAdminTls(metricsRaw?.tls, metrics.host, base, source);
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
    writeHoldMs: raw.writeHoldMs ?? DEFAULT_WRITE_HOLD_MS,
    writeHold: raw.writeHold ?? DEFAULT_WRITE_HOLD_MODE,
    allowAnonymous: raw.allowAnonymous ?? false,
    log: { level: overrides.logLevel ?? raw.log?.level ?? "info" },
    metrics,
    sys: raw.sys === false ? null : { intervalSec: (raw.sys || undefined)?.intervalSec ?? 10 },
    memorySettle: raw.memorySettle === false ? null : { ...DEFAULT_MEMORY_SETTLE, ...definedOnly(raw.memorySettle ?? {}) },
    limits: { ...DEFAULT_LIMITS, ...definedOnly(limits) },
    mqtt5: resolveMqtt5(raw.mqtt5),
    plugins,
    bridges: resolveBridges(raw.bridges, base, (key, why) => {
      throw new ConfigError(`invalid config in ${source}: key "${key}": ${why}`);
    }),
    cluster,
    trust,
  };
}

function resolveClusterOrThrow(raw: RawConfig, overrides: ConfigOverrides, base: string, source: string): ClusterConfig | null {
  const redisProblem = overrides.redis === undefined ? null : redisUrlProblem(overrides.redis);
  if (redisProblem) throw new ConfigError(`--redis: ${redisProblem}, got "${overrides.redis}"`);
  if (overrides.nodeId !== undefined && !NODE_ID_PATTERN.test(overrides.nodeId)) {
    throw new ConfigError(`--node-id: 1-64 letters, digits, '_', '.', '-', got "${overrides.nodeId}"`);
  }
  return resolveCluster(
    raw.cluster,
    overrides,
    (p) => resolvePath(base, p),
    (key, why) => {
      throw new ConfigError(`invalid config in ${source}: key "${key}": ${why}`);
    },
    source,
  );
}

function resolveTrust(raw: RawConfig["trust"], base: string, source: string): BrokerConfig["trust"] {
  const keys = (raw?.keys ?? []).map((k, i) => {
    const path = resolvePath(base, k);
    const problem = publicKeyProblem(path);
    if (problem) throw new ConfigError(`invalid config in ${source}: key "trust.keys.${i}": ${problem}`);
    return path;
  });
  if (raw?.require && keys.length === 0) throw new ConfigError(`invalid config in ${source}: key "trust.keys": "require" is on, so list at least one public key`);
  return { keys, require: raw?.require ?? false };
}

/**
 * The admin listener's TLS. Off loopback the admin API carries the token and
 * can disable plugins, so it is served over HTTPS: a non-loopback
 * `metrics.host` needs `metrics.tls` ({cert, key}), or an explicit
 * `"tls": false` when TLS is terminated in front of it (a reverse proxy) or
 * the network is trusted.
 */
function resolveAdminTls(raw: NonNullable<Exclude<RawConfig["metrics"], false>>["tls"], host: string, base: string, source: string): AdminTls | null {
  if (raw === false) return null;
  if (raw === undefined) {
    if (isLoopbackHost(host)) return null;
    throw new ConfigError(
      `invalid config in ${source}: key "metrics.tls": required when "metrics.host" is ${host} (not loopback): give { "cert", "key" } to serve the admin API over HTTPS, or false to serve plain HTTP (TLS terminated in front of it)`,
    );
  }
  const tls = { cert: resolvePath(base, raw.cert), key: resolvePath(base, raw.key), ...(raw.ca ? { ca: resolvePath(base, raw.ca) } : {}) };
  mustExist(tls.cert, "metrics.tls.cert", source);
  mustExist(tls.key, "metrics.tls.key", source);
  if (tls.ca) mustExist(tls.ca, "metrics.tls.ca", source);
  return tls;
}

function resolveTls(raw: NonNullable<RawConfig["tls"]>, host: string, base: string, source: string): TlsSettings {
  const refuse = (key: string, why: string): never => {
    throw new ConfigError(`invalid config in ${source}: key "tls.${key}": ${why}`);
  };
  const clientCert = raw.requireClientCert ? "require" : raw.requestClientCert ? "request" : "none";
  // Without a CA bundle Node would verify client certificates against the public web CAs.
  if (clientCert !== "none" && !raw.ca) refuse(raw.requireClientCert ? "requireClientCert" : "requestClientCert", `needs "tls.ca", the CA bundle client certificates must chain to`);
  if (raw.crl && clientCert === "none") refuse("crl", `a CRL is checked only for client certificates: set "tls.requireClientCert" or "tls.requestClientCert"`);
  if (raw.useIdentityAsUsername && clientCert === "none") {
    refuse("useIdentityAsUsername", `needs client certificates: set "tls.requireClientCert" (or "tls.requestClientCert")`);
  }
  const tls: TlsSettings = {
    host: raw.host ?? host,
    port: raw.port ?? 8883,
    cert: resolvePath(base, raw.cert),
    key: resolvePath(base, raw.key),
    ...(raw.ca ? { ca: resolvePath(base, raw.ca) } : {}),
    ...(raw.crl ? { crl: resolvePath(base, raw.crl) } : {}),
    clientCert,
    useIdentityAsUsername: raw.useIdentityAsUsername ?? false,
    minVersion: raw.minVersion ?? "TLSv1.2",
    wsPort: raw.wsPort ?? null,
    wsPath: raw.wsPath ?? "/mqtt",
  };
  mustExist(tls.cert, "tls.cert", source);
  mustExist(tls.key, "tls.key", source);
  if (tls.ca) mustExist(tls.ca, "tls.ca", source);
  if (tls.crl) mustExist(tls.crl, "tls.crl", source);
  const bad = checkTlsMaterial(tls);
  if (bad) refuse(bad.key, bad.problem);
  return tls;
}

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

export function loadConfig(file: string, overrides: ConfigOverrides = {}): BrokerConfig {
  const absolute = resolve(file);
  return resolveConfig(readConfigFile(absolute), absolute, overrides);
}
