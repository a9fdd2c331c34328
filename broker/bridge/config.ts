/**
 * The `bridges` section of the broker config: the zod schema (key names from
 * the issue #14 contract: name, url, clientId, out/in with topic, qos,
 * remotePrefix) and the resolved, defaulted form the bridge code uses.
 */
import { hostname } from "node:os";
import { isAbsolute, resolve } from "node:path";
import { z } from "zod";
import { resolveTlsClientFiles, tlsClientSchema, type TlsClientFiles } from "../tls-client-config.js";

const SCHEMES = ["mqtt:", "mqtts:", "tcp:", "ssl:", "tls:", "ws:", "wss:"];
const TLS_SCHEMES = ["mqtts:", "ssl:", "tls:", "wss:"];

const topicFilter = z
  .string()
  .min(1)
  .refine((t) => validFilter(t), "not a valid topic filter ('#' only as the last level, '+' only as a whole level)");
const prefix = z
  .string()
  .refine((p) => !/[#+\u0000]/.test(p), "a prefix may not contain '#', '+' or NUL")
  .optional();
const url = z.string().refine((u) => {
  try {
    return SCHEMES.includes(new URL(u).protocol);
  } catch {
    return false;
  }
}, `a URL with a scheme of ${SCHEMES.map((s) => s.slice(0, -1)).join(", ")} (e.g. mqtt://cloud.example:1883)`);

const mappingSchema = z
  .object({
    topic: topicFilter,
    qos: z.union([z.literal(0), z.literal(1), z.literal(2)]).optional(),
    localPrefix: prefix,
    remotePrefix: prefix,
  })
  .strict();

export const bridgeSchema = z
  .object({
    name: z.string().regex(/^[A-Za-z0-9_.-]+$/, "letters, digits, '_', '.', '-'"),
    url: url.optional(),
    urls: z.array(url).min(1).optional(),
    clientId: z.string().min(1).max(65535).optional(),
    username: z.string().optional(),
    password: z.string().optional(),
    protocolVersion: z.union([z.literal(4), z.literal(5)]).optional(),
    cleanSession: z.boolean().optional(),
    keepaliveSec: z.number().int().min(0).max(65535).optional(),
    connectTimeoutMs: z.number().int().positive().optional(),
    ackTimeoutMs: z.number().int().positive().optional(),
    reconnectMinMs: z.number().int().positive().optional(),
    reconnectMaxMs: z.number().int().positive().optional(),
    inflight: z.number().int().min(1).max(65535).optional(),
    maxMessages: z.number().int().positive().optional(),
    maxBytes: z.number().int().positive().optional(),
    onFull: z.enum(["drop-oldest", "drop-new"]).optional(),
    forwardBridged: z.boolean().optional(),
    echoFilter: z.enum(["auto", "on", "off"]).optional(),
    bridgeFlag: z.boolean().optional(),
    echoWindowMs: z.number().int().positive().optional(),
    notifications: z.boolean().optional(),
    notificationTopic: z
      .string()
      .min(1)
      .refine((t) => !/[#+\u0000]/.test(t), "a topic name, without '#', '+' or NUL")
      .optional(),
    tls: tlsClientSchema({ servername: z.string().min(1).optional() }).optional(),
    out: z.array(mappingSchema).optional(),
    in: z.array(mappingSchema).optional(),
  })
  .strict();

export type RawBridge = z.infer<typeof bridgeSchema>;

export interface TopicMapping {
  topic: string;
  qos: 0 | 1 | 2;
  localPrefix: string;
  remotePrefix: string;
}

export interface BridgeConfig {
  name: string;
  /** Tried in order; the next one after a failure (failover). */
  urls: string[];
  clientId: string;
  username?: string;
  password?: string;
  protocolVersion: 4 | 5;
  cleanSession: boolean;
  keepaliveSec: number;
  connectTimeoutMs: number;
  /** An in-flight message unacknowledged this long means the upstream is frozen: reconnect. */
  ackTimeoutMs: number;
  reconnectMinMs: number;
  reconnectMaxMs: number;
  /** Most QoS 1/2 messages in flight to the remote (lowered to its Receive Maximum in v5). */
  inflight: number;
  maxMessages: number;
  maxBytes: number;
  onFull: "drop-oldest" | "drop-new";
  /** Forward messages that reached this broker over a bridge (its own or a remote broker's); off = one hop. */
  forwardBridged: boolean;
  /**
   * Drop an inbound message equal (topic + payload) to one this bridge sent up
   * within `echoWindowMs`: "auto" only when nothing better prevents echoes
   * (MQTT 3.1.1 and the upstream refused the bridge flag).
   */
  echoFilter: "auto" | "on" | "off";
  echoWindowMs: number;
  /** Send Mosquitto's bridge flag (try_private) over MQTT 3.1.1; false for upstreams that close the connection on it instead of refusing it. */
  bridgeFlag: boolean;
  /** Mosquitto's bridge notifications: retained "1" at the upstream on connect, "0" as the will and on a clean stop; null = off. */
  notificationTopic: string | null;
  tls: TlsClientFiles & { servername?: string };
  out: TopicMapping[];
  in: TopicMapping[];
}

/**
 * `inflight` 20 is Mosquitto's max_inflight_messages: an MQTT 3.1.1 upstream
 * cannot tell its limit, and Mosquitto acknowledges (PUBREC) and silently
 * drops QoS 2 messages beyond it. v5 upstreams announce Receive Maximum.
 */
export const BRIDGE_DEFAULTS = {
  protocolVersion: 4 as const,
  cleanSession: false,
  keepaliveSec: 60,
  connectTimeoutMs: 30_000,
  ackTimeoutMs: 30_000,
  reconnectMinMs: 1_000,
  reconnectMaxMs: 60_000,
  inflight: 20,
  maxMessages: 1_000_000,
  maxBytes: 1024 * 1024 * 1024,
  onFull: "drop-oldest" as const,
};

/** [MQTT-4.7.1-2], [MQTT-4.7.1-3]: '#' last and alone in its level, '+' alone in its level. */
export function validFilter(filter: string): boolean {
  if (filter.includes("\u0000")) return false;
  const levels = filter.split("/");
  return levels.every((l, i) => (l.includes("#") ? l === "#" && i === levels.length - 1 : !l.includes("+") || l === "+"));
}

/**
 * Defaults and cross-key checks; `fail(key, why)` throws the caller's
 * ConfigError naming the file. Relative TLS file paths resolve against `base`.
 */
export function resolveBridges(raw: RawBridge[] | undefined, base: string, fail: (key: string, why: string) => never): BridgeConfig[] {
  const names = new Set<string>();
  /** "url clientId" → bridge name: two bridges with one client id at one upstream would take each other's session over, forever. */
  const identities = new Map<string, string>();
  return (raw ?? []).map((b, i): BridgeConfig => {
    const key = `bridges.${i}`;
    if (names.has(b.name)) fail(`${key}.name`, `the name "${b.name}" is used twice`);
    names.add(b.name);
    if ((b.url === undefined) === (b.urls === undefined)) fail(key, `give exactly one of "url" or "urls" (bridge ${b.name})`);
    if (b.notificationTopic !== undefined && !b.notifications) fail(`${key}.notificationTopic`, `set "notifications": true to use it (bridge ${b.name})`);
    if (!b.out?.length && !b.in?.length) fail(key, `bridge ${b.name} has no "out" and no "in" topics: nothing would cross`);
    const min = b.reconnectMinMs ?? BRIDGE_DEFAULTS.reconnectMinMs;
    const max = b.reconnectMaxMs ?? Math.max(min, BRIDGE_DEFAULTS.reconnectMaxMs);
    if (max < min) fail(`${key}.reconnectMaxMs`, `must be at least reconnectMinMs (${min})`);
    const tls: BridgeConfig["tls"] = resolveTlsClientFiles(b.tls ?? {}, `${key}.tls`, (p) => (isAbsolute(p) ? p : resolve(base, p)), fail);
    if (b.tls?.servername) tls.servername = b.tls.servername;
    // TLS settings on a plain URL would be ignored silently: the operator meant an encrypted link.
    const plain = (b.urls ?? [b.url!]).find((u) => !TLS_SCHEMES.includes(new URL(u).protocol));
    if (b.tls && plain !== undefined) fail(`${key}.tls`, `TLS settings need mqtts:// or wss:// URLs, but ${plain} is not encrypted (bridge ${b.name})`);
    const clientId = b.clientId ?? `wasmq-${hostname()}-${b.name}`.slice(0, 64);
    for (const u of b.urls ?? [b.url!]) {
      const other = identities.get(`${u} ${clientId}`);
      if (other !== undefined) fail(`${key}.clientId`, `bridges ${other} and ${b.name} both connect to ${u} as "${clientId}": the upstream would disconnect one whenever the other connects`);
      identities.set(`${u} ${clientId}`, b.name);
    }
    const mapping = (m: NonNullable<RawBridge["out"]>[number]): TopicMapping => ({
      topic: m.topic,
      qos: m.qos ?? 1,
      localPrefix: m.localPrefix ?? "",
      remotePrefix: m.remotePrefix ?? "",
    });
    return {
      name: b.name,
      urls: b.urls ?? [b.url!],
      clientId,
      ...(b.username !== undefined ? { username: b.username } : {}),
      ...(b.password !== undefined ? { password: b.password } : {}),
      protocolVersion: b.protocolVersion ?? BRIDGE_DEFAULTS.protocolVersion,
      cleanSession: b.cleanSession ?? BRIDGE_DEFAULTS.cleanSession,
      keepaliveSec: b.keepaliveSec ?? BRIDGE_DEFAULTS.keepaliveSec,
      connectTimeoutMs: b.connectTimeoutMs ?? BRIDGE_DEFAULTS.connectTimeoutMs,
      ackTimeoutMs: b.ackTimeoutMs ?? BRIDGE_DEFAULTS.ackTimeoutMs,
      reconnectMinMs: min,
      reconnectMaxMs: max,
      inflight: b.inflight ?? BRIDGE_DEFAULTS.inflight,
      maxMessages: b.maxMessages ?? BRIDGE_DEFAULTS.maxMessages,
      maxBytes: b.maxBytes ?? BRIDGE_DEFAULTS.maxBytes,
      onFull: b.onFull ?? BRIDGE_DEFAULTS.onFull,
      forwardBridged: b.forwardBridged ?? false,
      echoFilter: b.echoFilter ?? "auto",
      echoWindowMs: b.echoWindowMs ?? 60_000,
      bridgeFlag: b.bridgeFlag ?? true,
      notificationTopic: b.notifications ? (b.notificationTopic ?? `$SYS/broker/connection/${clientId}/state`) : null,
      tls,
      out: (b.out ?? []).map(mapping),
      in: (b.in ?? []).map(mapping),
    };
  });
}
