// What the fuzz parent and the broker child process agree on.

/** The fuzz broker's limits: a small packet limit, so oversize packets are cheap to send. */
export const FUZZ_LIMITS = { maxPacketSize: 64 * 1024, connectTimeoutMs: 2000 };

/** The broker child's answer to {type: "heap"}, measured after a full garbage collection. */
export interface HeapReport {
  type: "heap";
  heapUsed: number;
  rss: number;
  clients: number;
  sockets: number;
  protocolErrors: number;
  limitRejections: Record<string, number>;
  connectsAccepted: number;
  publishReceived: number;
  /** Persistent sessions with subscriptions, and the QoS 1/2 messages stored for sessions: state kept by design. */
  persistentSessions: number;
  queuedMessages: number;
}
