/**
 * Topic mapping between this broker and the upstream, as Mosquitto's
 * `topic <pattern> out|in <qos> <local-prefix> <remote-prefix>`: a local topic
 * `localPrefix + t` crosses as `remotePrefix + t` when `t` matches the
 * mapping's pattern, and the other way round for inbound traffic.
 */
import { topicMatches } from "../../host/native/topic.js";
import type { TopicMapping } from "./config.js";

export interface Mapped {
  topic: string;
  qos: 0 | 1 | 2;
  /** The destination side's prefix of the mapping that matched. */
  prefix: string;
}

function map(mappings: readonly TopicMapping[], topic: string, from: "localPrefix" | "remotePrefix", to: "localPrefix" | "remotePrefix"): Mapped | null {
  for (const m of mappings) {
    const prefix = m[from];
    if (!topic.startsWith(prefix)) continue;
    const rest = topic.slice(prefix.length);
    if (rest.length === 0 || !topicMatches(m.topic, rest)) continue;
    return { topic: m[to] + rest, qos: m.qos, prefix: m[to] };
  }
  return null;
}

/** Where a local message goes upstream, or null when no `out` mapping takes it. */
export function toRemote(out: readonly TopicMapping[], localTopic: string): Mapped | null {
  return map(out, localTopic, "localPrefix", "remotePrefix");
}

/** Where a message from upstream is published locally, or null when no `in` mapping takes it. */
export function toLocal(inbound: readonly TopicMapping[], remoteTopic: string): Mapped | null {
  return map(inbound, remoteTopic, "remotePrefix", "localPrefix");
}

/** The subscriptions the bridge makes at the upstream for its `in` mappings. */
export function remoteFilters(inbound: readonly TopicMapping[]): Mapped[] {
  return inbound.map((m) => ({ topic: m.remotePrefix + m.topic, qos: m.qos, prefix: m.remotePrefix }));
}
