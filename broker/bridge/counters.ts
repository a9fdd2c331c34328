/** What a bridge counts: GET /bridges, metrics and $SYS report these (ops.ts). */
export interface BridgeCounters {
  /** Messages the upstream acknowledged (QoS 1/2) or that were written to it (QoS 0). */
  forwarded: number;
  /** Messages received from the upstream and published locally. */
  received: number;
  /** Messages lost to a full queue (by policy), refused by the upstream, or expired while queued. */
  dropped: { "drop-oldest": number; "drop-new": number; rejected: number; expired: number };
  /** Messages sent again after a reconnect or restart (DUP). */
  resent: number;
  /** QoS 2 messages resumed with PUBREL after a reconnect or restart ([MQTT-4.4.0-1]). */
  pubrelResent: number;
  /** Connections dropped because the upstream stopped acknowledging (PUBACK, PUBREC or PUBCOMP) for ackTimeoutMs. */
  ackTimeouts: number;
  /** Messages a plugin kept from crossing, by direction. */
  filtered: { out: number; in: number };
  /** Inbound copies of messages this bridge had just sent up (no no-local at the remote). */
  echoes: number;
  bytesOut: number;
  bytesIn: number;
}

export function zeroCounters(): BridgeCounters {
  return {
    forwarded: 0,
    received: 0,
    dropped: { "drop-oldest": 0, "drop-new": 0, rejected: 0, expired: 0 },
    resent: 0,
    pubrelResent: 0,
    ackTimeouts: 0,
    filtered: { out: 0, in: 0 },
    echoes: 0,
    bytesOut: 0,
    bytesIn: 0,
  };
}
