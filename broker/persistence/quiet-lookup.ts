/**
 * Cheap answers a persistence gives before aedes opens a stream (see
 * broker/protocol/ask-first.ts): at every CONNECT aedes streams the client's
 * stored queue, at every SUBSCRIBE the retained messages matching the new
 * filters, through several Readable layers (the reference's, the callback
 * layer's, the expiry filter's) even when there is nothing to send. A
 * persistence that can say "certainly nothing" lets the broker hand aedes an
 * ended stream instead. The answers may be "maybe" when unsure, never "no"
 * when a stream would have yielded something.
 */
import { matchesFilter } from "../protocol/mqtt.js";

export interface QuietLookups {
  /** False only when the client's stored queue (queued and in-flight QoS 1/2 messages) is empty. */
  mayHaveQueued(clientId: string): boolean;
  /** False only when no stored retained message can match any of `patterns`. */
  mayHaveRetained(patterns: string[]): boolean;
}

/** Streams a persistence opened for aedes since it started (tests and diagnostics). */
export interface StreamCounts {
  /** outgoingStream: a session's stored queue, at CONNECT */
  outgoing: number;
  /** createRetainedStream(Combi): retained messages, at SUBSCRIBE */
  retained: number;
}

/**
 * A persistence that can say no stored subscription matches a topic lets the
 * broker route a QoS 1/2 message without aedes' offline enqueue (a
 * subscriptionsByTopic and an outgoingEnqueueCombi of nothing: ~0.8 KB of
 * promises and closures per message, bench/README.md "ack10").
 */
export interface StoredSubscriptionLookup {
  /** False only when no stored subscription (a persistent session's, QoS > 0) can match `topic`: subscriptionsByTopic would answer []. */
  mayHaveStoredSubscriptions(topic: string): boolean;
}

export function hasStoredSubscriptionLookup(p: unknown): p is StoredSubscriptionLookup {
  return typeof (p as Partial<StoredSubscriptionLookup> | null)?.mayHaveStoredSubscriptions === "function";
}

export function hasQuietLookups(p: unknown): p is QuietLookups {
  const q = p as Partial<QuietLookups> | null;
  return typeof q?.mayHaveQueued === "function" && typeof q.mayHaveRetained === "function";
}

/**
 * Can any of `patterns` match any of `topics`? A superset of what the
 * retained streams match: a "$" topic counts as matched by a wildcard-first
 * filter too (aedes-persistence's reference matches it with qlobber, which
 * has no [MQTT-4.7.2-1] rule), so the answer errs towards "maybe".
 */
export function mayMatchAny(patterns: readonly string[], topics: Iterable<string>): boolean {
  for (const topic of topics) {
    const dollar = topic.charCodeAt(0) === 36;
    for (const pattern of patterns) {
      if (typeof pattern !== "string") return true;
      if (matchesFilter(pattern, topic)) return true;
      if (dollar && (pattern.charCodeAt(0) === 35 || pattern.charCodeAt(0) === 43)) return true;
    }
  }
  return false;
}
