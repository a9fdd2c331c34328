/**
 * One second of the broker's figures, as the sampler (sampler.ts, Node) keeps
 * it and the dashboard page (web/live.ts, browser) receives it as JSON. Types
 * only, importing nothing, so the browser bundle can share it.
 */
export interface Sample {
  /** ms since the epoch */
  t: number;
  /** PUBLISH packets per second from clients, and to clients. */
  msgsIn: number;
  msgsOut: number;
  clients: number;
  subscriptions: number;
  retained: number;
  /** Per second: messages plugins dropped, verdicts that denied, connections refused (CONNACK refusal or maxConnections). */
  dropped: number;
  denied: number;
  refused: number;
  /** Stored QoS 1/2 messages for sessions; null when the store cannot tell cheaply. */
  queued: number | null;
  /**
   * LMDB's write hold, per second: QoS 1 deliveries held from the disk, those
   * acknowledged within the hold (never written), those written after it,
   * and (writeHold "adaptive") those written at once, not held; null for
   * other stores.
   */
  held: number | null;
  heldDropped: number | null;
  heldWritten: number | null;
  heldWrittenFirst: number | null;
  rssMB: number;
  heapMB: number;
  /** Event-loop delay over the interval, ms. */
  loopP99Ms: number;
  loopMeanMs: number;
}
