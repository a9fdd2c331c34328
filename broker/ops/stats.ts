/**
 * The broker's running totals, as plain numbers the hot path increments.
 * Prometheus (metrics.ts) and $SYS (sys.ts) read them when they report; neither
 * sits on the per-message path.
 */
export const LIMIT_NAMES = [
  "maxPacketSize",
  "maxConnections",
  "maxInflight",
  "queueLimit",
  "maxQueuedBytes",
  "drainTimeoutMs",
  "maxQueuedMessages",
  "connectTimeoutMs",
  "maxTopicLength",
  "maxTopicLevels",
  "maxClientIdLength",
  "subscribeTimeoutMs",
] as const;
export type LimitName = (typeof LIMIT_NAMES)[number];

export class BrokerStats {
  readonly startedAt = Date.now();
  /** MQTT control packets of every type, from and to clients. */
  packetsReceived = 0;
  packetsSent = 0;
  /** PUBLISH packets from clients, by QoS. */
  readonly publishReceived: [number, number, number] = [0, 0, 0];
  /** PUBLISH packets to clients, by QoS (what was written, after downgrades). */
  readonly publishSent: [number, number, number] = [0, 0, 0];
  /** CONNECTs answered with return code 0, and with a refusal. */
  connectsAccepted = 0;
  connectsRefused = 0;
  disconnects = 0;
  /** Highest number of clients connected at once. */
  maxClients = 0;
  /** Connections closed for breaking the protocol (malformed packet, bad flags, bad UTF-8, ...). */
  protocolErrors = 0;
  /** Times a limit turned a client, packet, subscription or queued message away. */
  readonly limitRejections: Record<LimitName, number> = Object.fromEntries(LIMIT_NAMES.map((n) => [n, 0])) as Record<LimitName, number>;
  /** Memory settles after connection bursts (ops/memory-settle.ts): how many, RSS they released, seconds they paused. */
  memorySettles = 0;
  memorySettleReleasedBytes = 0;
  memorySettleSeconds = 0;

  uptimeSeconds(now = Date.now()): number {
    return Math.floor((now - this.startedAt) / 1000);
  }

  publishReceivedTotal(): number {
    return this.publishReceived[0] + this.publishReceived[1] + this.publishReceived[2];
  }

  publishSentTotal(): number {
    return this.publishSent[0] + this.publishSent[1] + this.publishSent[2];
  }
}
