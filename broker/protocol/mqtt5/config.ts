/**
 * The `mqtt5` section of the broker config: what the broker advertises to
 * MQTT 5 clients in CONNACK and enforces. Plugged into broker/config.ts.
 */
import { z } from "zod";

export const mqtt5Schema = z
  .object({
    /** Topic Alias Maximum advertised in CONNACK (0 = the client may not use aliases). */
    maxTopicAlias: z.number().int().min(0).max(65535).optional(),
    /** Receive Maximum advertised in CONNACK: QoS 1/2 PUBLISH a client may have unacknowledged; more is DISCONNECT 0x93. */
    receiveMaximum: z.number().int().min(1).max(65535).optional(),
    /** Highest keep alive (seconds) a client may use; above it (or 0) the broker answers Server Keep Alive. 0 = no cap. */
    serverKeepAlive: z.number().int().min(0).max(65535).optional(),
    /** Highest Session Expiry Interval (seconds) granted; a longer request is answered with this value in CONNACK. */
    maxSessionExpiry: z.number().int().min(0).max(0xffffffff).optional(),
    /** Use topic aliases on messages sent to clients that accept them (their Topic Alias Maximum). */
    outboundTopicAliases: z.boolean().optional(),
    /** Longest an enhanced-authentication exchange (CONNECT or AUTH 0x19 to its last step) may take, ms; default limits.connectTimeoutMs. */
    authTimeoutMs: z.number().int().positive().optional(),
  })
  .strict();

export type Mqtt5RawConfig = z.infer<typeof mqtt5Schema>;

export interface Mqtt5Config {
  maxTopicAlias: number;
  receiveMaximum: number;
  serverKeepAlive: number;
  maxSessionExpiry: number;
  outboundTopicAliases: boolean;
  /** null: the connect timeout (limits.connectTimeoutMs). */
  authTimeoutMs: number | null;
}

export const DEFAULT_MQTT5: Mqtt5Config = {
  maxTopicAlias: 64,
  receiveMaximum: 100,
  serverKeepAlive: 0,
  /** 0xFFFFFFFF: "the session does not expire" ([MQTT-3.1.2-11] semantics). */
  maxSessionExpiry: 0xffffffff,
  outboundTopicAliases: true,
  authTimeoutMs: null,
};

export function resolveMqtt5(raw: Mqtt5RawConfig | undefined): Mqtt5Config {
  const out = { ...DEFAULT_MQTT5 };
  for (const [k, v] of Object.entries(raw ?? {})) if (v !== undefined) (out as Record<string, number | boolean | null>)[k] = v;
  return out;
}
