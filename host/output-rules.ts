/**
 * What a plugin hands back is validated exactly like input from a client: a
 * plugin is untrusted code. The host checks the syntax (MQTT 3.1.1 §1.5.3,
 * §4.7); the broker supplies its own policy (limits and reserved prefixes)
 * through the chain options, because host/ knows nothing of the broker.
 */
import { isUtf8 } from "node:buffer";
import type { HookName } from "./abi.js";
import { validTopicFilter, validTopicName } from "./native/topic.js";

export interface OutputRules {
  /** Longest topic name or filter, in UTF-8 bytes (the broker's limits.maxTopicLength). */
  maxTopicLength: number;
  /** Most topic levels ('/'-separated) in a topic name or filter (the broker's limits.maxTopicLevels). */
  maxTopicLevels: number;
  /** Largest PUBLISH packet a plugin may produce, in bytes (the broker's limits.maxPacketSize). */
  maxPacketSize: number;
  /** Topic prefixes plugins may not publish or rewrite into (a prefix matches itself and everything under it). */
  reservedTopicPrefixes: readonly string[];
}

/** MQTT's own ceilings, for a chain used without a broker (harness, tests). */
export const DEFAULT_OUTPUT_RULES: OutputRules = {
  maxTopicLength: 65535,
  maxTopicLevels: 100,
  maxPacketSize: 268_435_455 + 5,
  reservedTopicPrefixes: ["$SYS"],
};

/** A plugin asked for a change a client could not make (trap kind "invalid-output"). */
export class InvalidOutputError extends Error {
  constructor(plugin: string, what: string) {
    super(`plugin "${plugin}" was refused: ${what}`);
    this.name = "InvalidOutputError";
  }
}

/** Decode a topic the plugin wrote as bytes; ill-formed UTF-8 is refused, not repaired. [MQTT-1.5.3-1] */
export function decodeTopic(plugin: string, bytes: Buffer): string {
  if (!isUtf8(bytes)) throw new InvalidOutputError(plugin, "a topic that is not well-formed UTF-8 [MQTT-1.5.3-1]");
  return bytes.toString("utf8");
}

function isReserved(rules: OutputRules, topic: string): boolean {
  for (const prefix of rules.reservedTopicPrefixes) {
    if (topic === prefix || (topic.startsWith(prefix) && topic.charCodeAt(prefix.length) === 0x2f)) return true;
  }
  return false;
}

/**
 * A topic a plugin publishes to or rewrites a message to. In the subscribe hook
 * the topic is a filter (wildcards allowed); everywhere else a topic name
 * [MQTT-3.3.2-2]. A message already on a reserved topic (a `$SYS` delivery)
 * may keep it; nothing may move into one.
 */
export function checkTopic(plugin: string, rules: OutputRules, hook: HookName | "publish", topic: string, topicBytes: number, current: string | null): void {
  const filter = hook === "subscribe";
  if (filter ? !validTopicFilter(topic) : !validTopicName(topic)) {
    const what = filter ? "topic filter" : "topic name (no wildcards, not empty, no U+0000) [MQTT-3.3.2-2] [MQTT-4.7.3-1]";
    throw new InvalidOutputError(plugin, `${JSON.stringify(clip(topic))} is not a valid ${what}`);
  }
  if (topicBytes > rules.maxTopicLength) {
    throw new InvalidOutputError(plugin, `a topic of ${topicBytes} bytes exceeds maxTopicLength (${rules.maxTopicLength})`);
  }
  const levels = levelCount(topic);
  if (levels > rules.maxTopicLevels) {
    throw new InvalidOutputError(plugin, `a topic of ${levels} levels exceeds maxTopicLevels (${rules.maxTopicLevels})`);
  }
  if (!filter && topic !== current && isReserved(rules, topic)) {
    throw new InvalidOutputError(plugin, `${JSON.stringify(clip(topic))} is reserved for the broker`);
  }
}

/** Size of a PUBLISH packet (MQTT 3.1.1 §3.3): fixed header, topic, packet id for QoS > 0, payload. */
export function publishPacketSize(topicBytes: number, payloadBytes: number, qos: number): number {
  const remaining = 2 + topicBytes + (qos > 0 ? 2 : 0) + payloadBytes;
  const lengthBytes = remaining < 128 ? 1 : remaining < 16_384 ? 2 : remaining < 2_097_152 ? 3 : 4;
  return 1 + lengthBytes + remaining;
}

export function checkPacket(plugin: string, rules: OutputRules, topicBytes: number, payloadBytes: number, qos: number): void {
  const size = publishPacketSize(topicBytes, payloadBytes, qos);
  if (size > rules.maxPacketSize) {
    throw new InvalidOutputError(plugin, `a PUBLISH of ${size} bytes exceeds maxPacketSize (${rules.maxPacketSize})`);
  }
}

/** Levels of a topic (one more than its '/'s): what a maxTopicLevels limit counts. */
export function levelCount(topic: string): number {
  let n = 1;
  for (let i = topic.indexOf("/"); i !== -1; i = topic.indexOf("/", i + 1)) n++;
  return n;
}

function clip(s: string): string {
  return s.length > 80 ? `${s.slice(0, 80)}…` : s;
}
