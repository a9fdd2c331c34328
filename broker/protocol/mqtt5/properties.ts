/**
 * Which properties each packet may carry (MQTT 5.0 section 2.2.2.2, table
 * 2-4), checked on what a client sends. mqtt-packet 9 parses any property in
 * any packet and turns a repeated property into an array; both are errors:
 *  - a property not allowed in that packet makes it a Malformed Packet
 *    ([MQTT-2.2.2-2] "...Identifier which is not valid for its packet type"): 0x81;
 *  - a property other than User Property (and a server-sent Subscription
 *    Identifier) included more than once is a Protocol Error ([MQTT-2.2.2-2],
 *    section 2.2.2.2): 0x82.
 * mqtt-packet keeps only the last copy of a repeated property whose first value
 * was falsy (0, false, ""); repeated-properties.ts finds those in the bytes and
 * marks the parsed object (REPEATED).
 */
import { Reason } from "./reason-codes.js";
import { REPEATED } from "./repeated-properties.js";

type Kind = "connect" | "will" | "publish" | "puback" | "pubrec" | "pubrel" | "pubcomp" | "subscribe" | "unsubscribe" | "disconnect" | "auth";

const PUBLISH_LIKE: Kind[] = ["publish", "will"];
const ACKS: Kind[] = ["puback", "pubrec", "pubrel", "pubcomp", "disconnect", "auth"];
const ALL: Kind[] = ["connect", "will", "publish", "puback", "pubrec", "pubrel", "pubcomp", "subscribe", "unsubscribe", "disconnect", "auth"];

/** Property name (as mqtt-packet names it) → client packets it may appear in. */
const ALLOWED: Record<string, readonly Kind[]> = {
  payloadFormatIndicator: PUBLISH_LIKE,
  messageExpiryInterval: PUBLISH_LIKE,
  contentType: PUBLISH_LIKE,
  responseTopic: PUBLISH_LIKE,
  correlationData: PUBLISH_LIKE,
  // [MQTT-3.3.4-6] a client's PUBLISH must not carry one
  subscriptionIdentifier: ["subscribe"],
  sessionExpiryInterval: ["connect", "disconnect"],
  authenticationMethod: ["connect", "auth"],
  authenticationData: ["connect", "auth"],
  requestProblemInformation: ["connect"],
  willDelayInterval: ["will"],
  requestResponseInformation: ["connect"],
  serverReference: ["disconnect"],
  reasonString: ACKS,
  receiveMaximum: ["connect"],
  topicAliasMaximum: ["connect"],
  topicAlias: ["publish"],
  userProperties: ALL,
  maximumPacketSize: ["connect"],
};

export interface PropertyViolation {
  reasonCode: number;
  reason: string;
}

export function checkProperties(kind: Kind, properties: Record<string, unknown> | undefined): PropertyViolation | null {
  if (!properties) return null;
  const repeated = (properties as { [REPEATED]?: string })[REPEATED];
  if (repeated !== undefined) return { reasonCode: Reason.ProtocolError, reason: `property ${repeated} included more than once in ${kind.toUpperCase()}` };
  for (const name of Object.keys(properties)) {
    const allowed = ALLOWED[name];
    if (!allowed || !allowed.includes(kind)) {
      return { reasonCode: Reason.MalformedPacket, reason: `property ${name} is not allowed in ${kind.toUpperCase()}` };
    }
    if (name !== "userProperties" && Array.isArray(properties[name]) && !(name === "subscriptionIdentifier" && kind !== "subscribe")) {
      return { reasonCode: Reason.ProtocolError, reason: `property ${name} included more than once in ${kind.toUpperCase()}` };
    }
  }
  return null;
}

/** The check for a packet as mqtt-packet parsed it (CONNECT also checks its will properties). */
export function checkPacketProperties(packet: { cmd: string; properties?: Record<string, unknown>; will?: { properties?: Record<string, unknown> } }): PropertyViolation | null {
  const kind = packet.cmd as Kind;
  if (!ALL.includes(kind)) return null;
  const own = checkProperties(kind, packet.properties);
  if (own || kind !== "connect") return own;
  return checkProperties("will", packet.will?.properties);
}
