/**
 * Small MQTT 3.1.1 helpers the broker's guards share: text and topic checks,
 * filter matching, and the two ways to turn a connection away before aedes
 * accepts it (a CONNACK refusal, or closing it as a protocol violation).
 */
import { createRequire } from "node:module";
import type { Client } from "aedes";
import type { Duplex } from "node:stream";
import { validTopicFilter, validTopicName } from "../../host/native/topic.js";

interface MqttPacketModule {
  writeToStream(packet: object, stream: Duplex, opts?: object): boolean;
  generate(packet: object, opts?: object): Buffer;
}
/** The same module object aedes uses (CommonJS cache), so writes go through the same serializer. */
export const mqttPacket = createRequire(import.meta.url)("mqtt-packet") as MqttPacketModule;

/**
 * True when a string decoded from the wire was not well-formed UTF-8 or holds
 * U+0000 ([MQTT-1.5.3-1], [MQTT-1.5.3-2]). mqtt-packet decodes leniently, putting
 * U+FFFD where bytes were ill-formed (including UTF-16 surrogate encodings), so
 * U+FFFD is taken as the mark of ill-formed input. The cost: a client that sends
 * a literal U+FFFD in a topic is treated as malformed too.
 */
export function hasIllFormedText(s: string): boolean {
  return s.indexOf("\uFFFD") !== -1 || s.indexOf("\u0000") !== -1;
}

// The topic rules themselves live in one place, host/native/topic.ts (the native
// SDK's twin of plugins-as/sdk/topic.ts, also what the host checks plugin output
// with); the broker adds the wire's ill-formed-text mark and says why.

/** Why a topic name (not filter) is invalid ([MQTT-4.7.3-1..3], [MQTT-1.5.3-1/2]), or null. */
export function invalidTopicName(topic: string): string | null {
  if (validTopicName(topic) && !hasIllFormedText(topic)) return null;
  if (topic.length === 0) return "empty topic";
  if (topic.indexOf("#") !== -1 || topic.indexOf("+") !== -1) return "wildcard in topic name";
  if (utf8Length(topic) > 65535) return "topic longer than 65535 bytes";
  return "ill-formed UTF-8 in topic";
}

/** Why a topic filter is invalid ([MQTT-4.7.1-1..3], [MQTT-1.5.3-1/2]), or null. */
export function invalidTopicFilter(filter: string): string | null {
  if (validTopicFilter(filter) && !hasIllFormedText(filter)) return null;
  if (filter.length === 0) return "empty filter";
  if (utf8Length(filter) > 65535) return "topic filter longer than 65535 bytes";
  // The same filter with every character but '/', '+' and '#' made plain: still invalid means the wildcards are misplaced.
  if (!validTopicFilter(filter.replace(/[^/+#]/g, "x"))) return "'+' and '#' must each be a whole level, '#' only the last";
  return "ill-formed UTF-8 in topic filter";
}

export function utf8Length(s: string): number {
  return Buffer.byteLength(s, "utf8");
}

/** Does topic filter `filter` match topic name `topic`? (MQTT 3.1.1 section 4.7, including the `$` rule.) */
export function matchesFilter(filter: string, topic: string): boolean {
  const first = filter.charCodeAt(0);
  // [MQTT-4.7.2-1]: a filter starting with a wildcard does not match "$" topics.
  if (topic.charCodeAt(0) === 36 && (first === 35 || first === 43)) return false;
  let f = 0;
  let t = 0;
  const fl = filter.length;
  const tl = topic.length;
  while (f < fl) {
    const c = filter.charCodeAt(f);
    if (c === 35) return true; // '#': this level and every one below, including the parent ([MQTT-4.7.1-2])
    if (c === 43) {
      // '+': one whole level
      while (t < tl && topic.charCodeAt(t) !== 47) t++;
      f++;
    } else {
      // literal level
      while (f < fl && filter.charCodeAt(f) !== 47) {
        if (t >= tl || topic.charCodeAt(t) !== filter.charCodeAt(f)) return false;
        f++;
        t++;
      }
      if (t < tl && topic.charCodeAt(t) !== 47) return false;
    }
    if (f >= fl) return t >= tl;
    // at a '/' in the filter
    f++;
    if (t >= tl) {
      // "a/#" matches "a": the rest of the filter must be exactly "#"
      return filter.charCodeAt(f) === 35 && f === fl - 1;
    }
    t++; // the '/' in the topic
  }
  return t >= tl;
}

/** CONNACK return codes (MQTT 3.1.1 table 3.1): the same table plugins use. */
export { ReturnCode as ConnackCode } from "../../host/index.js";

/**
 * Answer a CONNECT with a refusal and close once the CONNACK is written
 * ([MQTT-3.2.2-5]). For use inside aedes' preConnect, which must then be told
 * `callback(null, false)` so aedes neither answers nor accepts the client.
 */
export function refuseConnect(client: Client, returnCode: number): void {
  const conn = client.conn as Duplex;
  if (conn.destroyed) return;
  mqttPacket.writeToStream({ cmd: "connack", returnCode, sessionPresent: false }, conn);
  conn.end(() => conn.destroy());
}
