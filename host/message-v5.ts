/**
 * The MQTT 5 side of a hook's message (ABI v2), independent of the broker.
 * The broker fills what the packet carries; plugins read it (v2 record,
 * native `Message`) and change it through the v2 setters, applied on Continue.
 */
export type UserProperty = readonly [name: string, value: string];

export interface MessageV5 {
  /** MQTT protocol level of the client: 3 (3.1), 4 (3.1.1) or 5. */
  protocolVersion: number;
  /** In the order the client sent them. */
  userProperties: readonly UserProperty[];
  contentType: string | null;
  responseTopic: string | null;
  correlationData: Uint8Array | null;
  /** Payload Format Indicator: 0 unspecified bytes, 1 UTF-8; null when absent. */
  payloadFormat: number | null;
  /** Message Expiry Interval left, seconds; null when the message does not expire. */
  messageExpiry: number | null;
  /** connect: the Session Expiry Interval granted, seconds (0 for 3.1.1: the session ends with the connection unless clean is off). */
  sessionExpiry: number;
  /** subscribe: options (SubscriptionOption bits) and identifier (0 = none). */
  subscriptionOptions: number;
  subscriptionIdentifier: number;
}

export function emptyV5(protocolVersion = 4): MessageV5 {
  return {
    protocolVersion,
    userProperties: NO_PROPERTIES,
    contentType: null,
    responseTopic: null,
    correlationData: null,
    payloadFormat: null,
    messageExpiry: null,
    sessionExpiry: 0,
    subscriptionOptions: 0,
    subscriptionIdentifier: 0,
  };
}

export const NO_PROPERTIES: readonly UserProperty[] = Object.freeze([]);

/**
 * What a plugin asked to change during one call (undefined = unchanged, null =
 * remove). Kept apart from the message so a trap leaves it untouched.
 */
export interface V5Changes {
  userProperties?: UserProperty[];
  contentType?: string | null;
  responseTopic?: string | null;
  correlationData?: Uint8Array | null;
  payloadFormat?: number | null;
  messageExpiry?: number | null;
}

/** Apply a Continue's changes to the message (copy on write: the broker's view of the packet stays as it was until it reads them back). */
export function applyV5Changes(msg: { v5?: MessageV5 }, c: V5Changes): void {
  const v5 = { ...(msg.v5 ?? emptyV5()) };
  if (c.userProperties !== undefined) v5.userProperties = c.userProperties;
  if (c.contentType !== undefined) v5.contentType = c.contentType;
  if (c.responseTopic !== undefined) v5.responseTopic = c.responseTopic;
  if (c.correlationData !== undefined) v5.correlationData = c.correlationData;
  if (c.payloadFormat !== undefined) v5.payloadFormat = c.payloadFormat;
  if (c.messageExpiry !== undefined) v5.messageExpiry = c.messageExpiry;
  msg.v5 = v5;
}

/** Bytes the changed v5 fields add to a PUBLISH (property identifiers, lengths, values), for the packet-size check. */
export function v5PropertyBytes(v5: MessageV5 | undefined): number {
  if (!v5) return 0;
  let n = 0;
  for (const [k, v] of v5.userProperties) n += 5 + Buffer.byteLength(k) + Buffer.byteLength(v);
  if (v5.contentType !== null) n += 3 + Buffer.byteLength(v5.contentType);
  if (v5.responseTopic !== null) n += 3 + Buffer.byteLength(v5.responseTopic);
  if (v5.correlationData !== null) n += 3 + v5.correlationData.length;
  if (v5.payloadFormat !== null) n += 2;
  if (v5.messageExpiry !== null) n += 5;
  // the property length varint
  return n + (n < 128 ? 1 : n < 16_384 ? 2 : n < 2_097_152 ? 3 : 4);
}
