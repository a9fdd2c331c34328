/**
 * The MQTT 5 message properties that cross a bridge, in both directions:
 * user properties (in order), content type, payload format indicator,
 * response topic and correlation data, plus the Message Expiry Interval, which
 * is kept apart as an absolute deadline so it counts down while the message
 * waits in the queue ([MQTT-3.3.2-5], [MQTT-3.3.2-6]).
 *
 * Topic Alias and Subscription Identifier belong to one connection and never
 * cross ([MQTT-3.3.2-7], [MQTT-3.3.4-6]). Stored form (LMDB, the bridge queue
 * and the inbound QoS 2 store): user properties as a list of pairs, so their
 * order survives whatever the encoder does with object keys; in memory they
 * are in either form of broker/protocol/mqtt5/user-properties.ts, which keeps
 * the wire order ([MQTT-3.3.2-18]) and which mqtt.js writes as it is.
 */
import { userPropertiesValue, userPropertyList, type GroupedUserProperties, type OrderedUserProperties } from "../protocol/mqtt5/user-properties.js";

/** As mqtt-packet reads and writes them (user properties: name → value or values, in arrival order). */
export interface CrossingProperties {
  userProperties?: GroupedUserProperties | OrderedUserProperties;
  contentType?: string;
  payloadFormatIndicator?: boolean;
  responseTopic?: string;
  correlationData?: Buffer;
}

/** What the queue keeps on disk. */
export interface StoredProperties {
  u?: [string, string][];
  ct?: string;
  pf?: boolean;
  rt?: string;
  cd?: Uint8Array;
}

/** The properties of `props` that cross a bridge, or undefined when there are none. */
export function crossing(props: Record<string, unknown> | undefined | null): CrossingProperties | undefined {
  if (!props) return undefined;
  const out: CrossingProperties = {};
  let any = false;
  const up = props.userProperties as GroupedUserProperties | OrderedUserProperties | undefined;
  if (up && typeof up === "object" && Object.keys(up).length > 0) ((out.userProperties = up), (any = true));
  if (typeof props.contentType === "string") ((out.contentType = props.contentType), (any = true));
  if (props.payloadFormatIndicator !== undefined && props.payloadFormatIndicator !== null) ((out.payloadFormatIndicator = Boolean(props.payloadFormatIndicator)), (any = true));
  if (typeof props.responseTopic === "string") ((out.responseTopic = props.responseTopic), (any = true));
  if (props.correlationData instanceof Uint8Array) ((out.correlationData = Buffer.from(props.correlationData)), (any = true));
  return any ? out : undefined;
}

/** Seconds left of a message's expiry interval at `now`; <= 0 means expired. */
export function secondsLeft(expiresAt: number, now = Date.now()): number {
  return Math.ceil((expiresAt - now) / 1000);
}

/** The absolute deadline (epoch ms) of a PUBLISH's Message Expiry Interval, or undefined when it never expires. */
export function deadlineOf(props: Record<string, unknown> | undefined, now = Date.now()): number | undefined {
  const interval = props?.messageExpiryInterval;
  return typeof interval === "number" ? now + interval * 1000 : undefined;
}

export function toStored(p: CrossingProperties): StoredProperties {
  const s: StoredProperties = {};
  if (p.userProperties) s.u = userPropertyList(p.userProperties);
  if (p.contentType !== undefined) s.ct = p.contentType;
  if (p.payloadFormatIndicator !== undefined) s.pf = p.payloadFormatIndicator;
  if (p.responseTopic !== undefined) s.rt = p.responseTopic;
  if (p.correlationData !== undefined) s.cd = p.correlationData;
  return s;
}

export function fromStored(s: StoredProperties): CrossingProperties {
  const p: CrossingProperties = {};
  if (s.u?.length) p.userProperties = userPropertiesValue(s.u);
  if (s.ct !== undefined) p.contentType = s.ct;
  if (s.pf !== undefined) p.payloadFormatIndicator = s.pf;
  if (s.rt !== undefined) p.responseTopic = s.rt;
  if (s.cd !== undefined) p.correlationData = Buffer.from(s.cd.buffer, s.cd.byteOffset, s.cd.byteLength);
  return p;
}
