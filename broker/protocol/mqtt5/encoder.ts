/**
 * Writes aedes' (3.1.1-shaped) outgoing packets to an MQTT 5 connection:
 * CONNACK return codes become reason codes with the broker's properties,
 * SUBACK/UNSUBACK get reason codes, and every PUBLISH is fitted to this
 * subscriber: only PUBLISH properties go out, the Message Expiry Interval is
 * what is left of it, the Subscription Identifiers are this client's, and a
 * message larger than the client's Maximum Packet Size is not sent.
 */
import { matchesFilter, mqttPacket } from "../mqtt.js";
import { matchingFilter } from "../shared-subscriptions.js";
import type { OutgoingEncoder, OutgoingPacket } from "../wire-tap.js";
import type { Mqtt5Config } from "./config.js";
import { connackReasonFor, Reason, subackReasonFor } from "./reason-codes.js";
import type { V5Connection } from "./state.js";
import { connackOverride, releaseRefusedQoS2, takeAckOverride, takeSubackOverride } from "./plugin-verdicts.js";

/** Properties a PUBLISH may carry from server to client ([MQTT-3.3.2-*]); everything else on a message stays home. */
const PUBLISH_PROPERTIES = ["payloadFormatIndicator", "contentType", "responseTopic", "correlationData", "userProperties"] as const;

/**
 * What aedes drops when it rebuilds a stored retained message for a SUBSCRIBE
 * (its properties, its expiry) and which SUBSCRIBE's filters it was read for,
 * found again by its payload (a fresh Buffer per read from the store).
 */
export const retainedExtras = new WeakMap<object, { properties?: Record<string, unknown>; messageExpiry?: number; patterns: string[] }>();

interface EncoderContext {
  config: Mqtt5Config;
  maxPacketSize: number;
  /** Shared subscriptions are offered (CONNACK Shared Subscription Available). */
  sharedSubscriptions: boolean;
  /** A publish was not sent to this client (too large or expired): it must be settled as if delivered. */
  onDropped(state: V5Connection, packet: OutgoingPacket, why: "too-large" | "expired"): void;
}

type Packet = OutgoingPacket & Record<string, unknown>;
const V5 = { protocolVersion: 5 };

export function v5Encoder(state: V5Connection, ctx: EncoderContext): OutgoingEncoder {
  return (packet, stream, write) => {
    const p = packet as Packet;
    switch (p.cmd) {
      case "connack":
        return write(connack(state, p, ctx), stream, V5);
      case "publish": {
        const out = publish(state, p);
        if (out === null) {
          ctx.onDropped(state, p, "expired");
          return true;
        }
        if (state.maximumPacketSize !== Infinity && mqttPacket.generate(out, V5).length > state.maximumPacketSize) {
          // [MQTT-3.1.2-24] not sent; [MQTT-3.1.2-25] treated as if its delivery completed
          ctx.onDropped(state, p, "too-large");
          return true;
        }
        if (state.topicAliasMaximum > 0) aliasTopic(state, out);
        return write(out, stream, V5);
      }
      case "suback": {
        // a plugin's chosen code for the filters it refused (ABI v2), else the default
        const chosen = takeSubackOverride(state, p.messageId!);
        const granted = (p.granted as number[]).map((g, i) => (g === 0x80 && chosen?.codes[i] ? chosen.codes[i]! : subackReasonFor(g)));
        const properties = chosen?.reason && state.requestProblemInformation ? { properties: { reasonString: chosen.reason } } : {};
        return write({ ...p, granted, ...properties }, stream, V5);
      }
      case "unsuback": {
        const codes = state.unsubackCodes.get(p.messageId!);
        state.unsubackCodes.delete(p.messageId!);
        return write({ ...p, granted: codes ?? [] }, stream, V5);
      }
      case "puback":
      case "pubrec": {
        const none = state.noSubscribers.delete(p.messageId!);
        const refused = takeAckOverride(state, p.messageId!);
        if (refused) {
          // a plugin refused the message (ABI v2): its reason code; a failed PUBREC ends the QoS 2 flow
          state.inboundUnacked.delete(p.messageId!);
          if (p.cmd === "pubrec") releaseRefusedQoS2(state.client, p.messageId!);
          const properties = refused.reason !== null && state.requestProblemInformation ? { properties: { reasonString: refused.reason } } : {};
          return write({ ...p, reasonCode: refused.code, ...properties }, stream, V5);
        }
        if (p.cmd === "puback") state.inboundUnacked.delete(p.messageId!);
        return write({ reasonCode: none ? Reason.NoMatchingSubscribers : Reason.Success, ...p }, stream, V5);
      }
      case "pubcomp":
        state.inboundUnacked.delete(p.messageId!);
        return write({ reasonCode: Reason.Success, ...p }, stream, V5);
      case "pubrel":
        if (state.selfAcked.has(p.messageId!)) return true; // the PUBLISH never went out: its PUBREL does not either
        return write({ reasonCode: Reason.Success, ...p }, stream, V5);
      default:
        return write(p, stream, V5);
    }
  };
}

function connack(state: V5Connection, p: Packet, ctx: EncoderContext): object {
  const returnCode = (p.returnCode as number | undefined) ?? 0;
  // a plugin's CONNACK reason code (ABI v2) replaces the return code aedes carried for it
  const reasonCode = returnCode !== 0 ? (connackOverride(state) ?? connackReasonFor(returnCode)) : Reason.Success;
  if (reasonCode !== Reason.Success) {
    const properties = state.refusal && state.requestProblemInformation ? { reasonString: state.refusal } : undefined;
    return { cmd: "connack", reasonCode, sessionPresent: false, ...(properties ? { properties } : {}) };
  }
  const { config } = ctx;
  const properties: Record<string, unknown> = {
    receiveMaximum: config.receiveMaximum,
    maximumPacketSize: ctx.maxPacketSize,
    topicAliasMaximum: config.maxTopicAlias,
    retainAvailable: true,
    wildcardSubscriptionAvailable: true,
    subscriptionIdentifiersAvailable: true,
    sharedSubscriptionAvailable: ctx.sharedSubscriptions,
  };
  // [MQTT-3.2.2-*]: a granted Session Expiry Interval other than the requested one is sent back
  if (state.sessionExpiry !== state.requestedSessionExpiry) properties.sessionExpiryInterval = state.sessionExpiry;
  if (state.assignedClientIdentifier !== null) properties.assignedClientIdentifier = state.assignedClientIdentifier;
  if (state.serverKeepAlive !== null) properties.serverKeepAlive = state.serverKeepAlive;
  // [MQTT-3.2.2-?] enhanced authentication: the method of the CONNECT and the plugin's final data
  if (state.enhancedAuth) {
    properties.authenticationMethod = state.enhancedAuth.method;
    if (state.enhancedAuth.data !== null) properties.authenticationData = Buffer.from(state.enhancedAuth.data);
  }
  // [MQTT-3.2.2-2] Clean Start 1: Session Present 0
  const sessionPresent = state.cleanStart ? false : !!p.sessionPresent;
  return { cmd: "connack", reasonCode, sessionPresent, properties };
}

/**
 * Outbound topic aliases ([MQTT-3.3.2-11]: at most the client's Topic Alias
 * Maximum): the first topics sent to a connection get an alias, set with the
 * topic the first time, then sent with an empty topic. Topics past the
 * maximum go out in full. Applied after the size check, so an alias only
 * makes a packet smaller.
 */
function aliasTopic(state: V5Connection, out: { topic: string; properties: Record<string, unknown> }): void {
  const known = state.outboundAliases.get(out.topic);
  if (known !== undefined) {
    out.properties.topicAlias = known;
    out.topic = "";
    return;
  }
  if (state.outboundAliases.size >= state.topicAliasMaximum) return;
  const alias = state.outboundAliases.size + 1;
  state.outboundAliases.set(out.topic, alias);
  out.properties.topicAlias = alias;
}

/** The PUBLISH as this client must see it, or null when its message has expired. */
function publish(state: V5Connection, p: Packet): { topic: string; properties: Record<string, unknown> } | null {
  let source = p.properties as Record<string, unknown> | undefined;
  let expiresAt = p.messageExpiry as number | undefined;
  if (source === undefined && p.payload && typeof p.payload === "object") {
    const extras = retainedExtras.get(p.payload);
    if (extras) {
      source = extras.properties;
      expiresAt = extras.messageExpiry;
    }
  }
  const properties: Record<string, unknown> = {};
  if (source) for (const name of PUBLISH_PROPERTIES) if (source[name] !== undefined) properties[name] = source[name];
  if (typeof expiresAt === "number") {
    // [MQTT-3.3.2-6] the interval sent is what is left of it; an expired message is not sent
    const left = Math.ceil((expiresAt - Date.now()) / 1000);
    if (left <= 0) return null;
    properties.messageExpiryInterval = left;
  } else if (typeof source?.messageExpiryInterval === "number") {
    properties.messageExpiryInterval = source.messageExpiryInterval;
  }
  if (state.subscriptionIds.size > 0) {
    // [MQTT-3.3.4-3] every matching subscription's identifier, on the one message
    const ids: number[] = [];
    for (const [filter, id] of state.subscriptionIds) if (matchesFilter(matchingFilter(filter), p.topic!)) ids.push(id);
    if (ids.length === 1) properties.subscriptionIdentifier = ids[0];
    else if (ids.length > 1) properties.subscriptionIdentifier = ids;
  }
  return { cmd: "publish", topic: p.topic!, payload: p.payload, qos: p.qos, retain: p.retain, dup: p.dup, messageId: p.messageId, properties } as { topic: string; properties: Record<string, unknown> };
}
