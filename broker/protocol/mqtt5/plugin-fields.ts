/**
 * The MQTT 5 fields plugins see and change (ABI v2), read from and written
 * back to aedes' objects: PUBLISH `properties` and `messageExpiry` (absolute
 * ms, set by inbound.ts), SUBSCRIBE options as inbound.ts left them, and the
 * CONNECT's properties and granted session expiry in the connection's state.
 *
 * User properties reach plugins in wire order ([MQTT-3.3.2-18]): read from
 * either form of `userProperties` (user-properties.ts), and a plugin's list is
 * written back in its own order: untouched properties where they were,
 * additions at the end, a replaced name where its first entry was
 * (host/v5-changes.ts).
 */
import type { Client } from "aedes";
import { emptyV5, SubscriptionOption, type MessageV5, type UserProperty } from "../../../host/index.js";
import { v5Of } from "./state.js";
import { userPropertiesValue, userPropertyList } from "./user-properties.js";

type Props = Record<string, unknown>;

/** 3.1.1 and 3.1 messages carry no v5 field: one shared, never-mutated record each. */
const BY_LEVEL = new Map<number, MessageV5>([3, 4].map((v) => [v, Object.freeze(emptyV5(v))]));

export function protocolVersionOf(client: Client | null | undefined): number {
  if (!client) return 4;
  if (v5Of(client)) return 5;
  return (client as unknown as { version?: number }).version ?? 4;
}

function baseFor(version: number): MessageV5 {
  return BY_LEVEL.get(version) ?? emptyV5(version);
}

export function userPropertiesOf(props: Props | undefined): UserProperty[] {
  const up = props?.userProperties;
  return up === undefined ? [] : userPropertyList(up);
}

/** The v5 fields of a PUBLISH (publish, deliver and persist hooks), for a client at `version`. */
export function publishFields(packet: { properties?: Props; messageExpiry?: number }, version: number): MessageV5 {
  const p = packet.properties;
  if (!p && packet.messageExpiry === undefined) return baseFor(version);
  const v5 = emptyV5(version);
  if (p) {
    v5.userProperties = userPropertiesOf(p);
    if (typeof p.contentType === "string") v5.contentType = p.contentType;
    if (typeof p.responseTopic === "string") v5.responseTopic = p.responseTopic;
    if (Buffer.isBuffer(p.correlationData)) v5.correlationData = p.correlationData;
    if (typeof p.payloadFormatIndicator === "boolean" || typeof p.payloadFormatIndicator === "number") v5.payloadFormat = Number(p.payloadFormatIndicator);
    if (typeof p.messageExpiryInterval === "number") v5.messageExpiry = p.messageExpiryInterval;
  }
  // what is left of it, as a subscriber would be told ([MQTT-3.3.2-6])
  if (typeof packet.messageExpiry === "number") v5.messageExpiry = Math.max(0, Math.ceil((packet.messageExpiry - Date.now()) / 1000));
  return v5;
}

/** Write a plugin's v5 changes back onto a PUBLISH (a fresh properties object: it may be shared with other packets). */
export function applyPublishFields(packet: { properties?: Props; messageExpiry?: number }, v5: MessageV5): void {
  const props: Props = { ...(packet.properties ?? {}) };
  const set = (name: string, value: unknown) => {
    if (value === null || value === undefined) delete props[name];
    else props[name] = value;
  };
  set("userProperties", userPropertiesValue(v5.userProperties));
  set("contentType", v5.contentType);
  set("responseTopic", v5.responseTopic);
  set("correlationData", v5.correlationData === null ? null : Buffer.from(v5.correlationData));
  set("payloadFormatIndicator", v5.payloadFormat === null ? null : v5.payloadFormat === 1);
  set("messageExpiryInterval", v5.messageExpiry);
  if (v5.messageExpiry === null) delete packet.messageExpiry;
  else packet.messageExpiry = Date.now() + v5.messageExpiry * 1000;
  packet.properties = props;
}

/** connect hook: protocol level, the granted session expiry and the CONNECT's user properties. */
export function connectFields(client: Client): MessageV5 {
  const state = v5Of(client);
  const version = protocolVersionOf(client);
  const v5 = emptyV5(version);
  if (state) {
    v5.sessionExpiry = state.sessionExpiry;
    v5.userProperties = userPropertiesOf(state.connectProperties);
  } else {
    // 3.1.1: a clean session ends with the connection, any other never expires (0xFFFFFFFF in v5 terms)
    v5.sessionExpiry = client.clean ? 0 : 0xffff_ffff;
  }
  return v5;
}

/**
 * connect hook: a Continue's user-property changes (the only v5 field the
 * connect hook may change, host/v5-changes.ts) become the connection's CONNECT
 * user properties, what the broker keeps for it.
 */
export function applyConnectFields(client: Client, v5: MessageV5): void {
  const state = v5Of(client);
  if (!state) return;
  const props = state.connectProperties as Props;
  const list = userPropertiesValue(v5.userProperties);
  if (list === undefined) delete props.userProperties;
  else props.userProperties = list;
}

/** subscribe hook: the subscription's options and identifier, and the SUBSCRIBE's user properties. */
export function subscribeFields(
  client: Client,
  sub: { nl?: boolean; rap?: boolean; rh?: number; subscriptionIdentifier?: number },
  packetProps: Props | undefined,
): MessageV5 {
  const version = protocolVersionOf(client);
  if (version !== 5) return baseFor(version);
  const v5 = emptyV5(5);
  v5.subscriptionOptions =
    (sub.nl ? SubscriptionOption.noLocal : 0) | (sub.rap ? SubscriptionOption.retainAsPublished : 0) | ((sub.rh ?? 0) << SubscriptionOption.retainHandlingShift);
  v5.subscriptionIdentifier = sub.subscriptionIdentifier ?? 0;
  v5.userProperties = userPropertiesOf(packetProps);
  return v5;
}
