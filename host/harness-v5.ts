/**
 * The MQTT 5 side of the harness (ABI v2): the v5 fields a message file may
 * give, and how changed fields and extra publishes' properties are shown.
 * No node: imports (the dashboard's playground runs it in a browser): bytes
 * are converted and shown by the functions harness-core.ts passes in.
 */
import { SubscriptionOption } from "./abi-v2.js";
import { emptyV5, type MessageV5 } from "./message-v5.js";

/** v5 fields of a harness message (any one makes it a v5 message unless protocolVersion says otherwise). */
export interface HarnessV5Fields {
  /** 3, 4 or 5; defaults to 5 when any v5 field is given, else 4. */
  protocolVersion?: number;
  /** In order: [["name", "value"], ...]. */
  userProperties?: [string, string][];
  contentType?: string;
  responseTopic?: string;
  /** A string (UTF-8) or { base64 }. */
  correlationData?: string | { base64: string };
  payloadFormat?: number;
  /** Seconds left. */
  messageExpiry?: number;
  /** connect: granted Session Expiry Interval. */
  sessionExpiry?: number;
  /** subscribe. */
  noLocal?: boolean;
  retainAsPublished?: boolean;
  retainHandling?: number;
  subscriptionIdentifier?: number;
}

const V5_KEYS = ["userProperties", "contentType", "responseTopic", "correlationData", "payloadFormat", "messageExpiry", "sessionExpiry", "noLocal", "retainAsPublished", "retainHandling", "subscriptionIdentifier"] as const;

export function harnessV5(m: HarnessV5Fields, bytesOf: (value: string | { base64: string }) => Uint8Array): MessageV5 | undefined {
  const any = V5_KEYS.some((k) => m[k] !== undefined);
  if (!any && m.protocolVersion === undefined) return undefined;
  const v5 = emptyV5(m.protocolVersion ?? (any ? 5 : 4));
  if (m.userProperties) v5.userProperties = m.userProperties.map(([k, v]) => [String(k), String(v)] as const);
  if (m.contentType !== undefined) v5.contentType = m.contentType;
  if (m.responseTopic !== undefined) v5.responseTopic = m.responseTopic;
  if (m.correlationData !== undefined) {
    v5.correlationData = bytesOf(m.correlationData);
  }
  if (m.payloadFormat !== undefined) v5.payloadFormat = m.payloadFormat;
  if (m.messageExpiry !== undefined) v5.messageExpiry = m.messageExpiry;
  if (m.sessionExpiry !== undefined) v5.sessionExpiry = m.sessionExpiry;
  v5.subscriptionOptions =
    (m.noLocal ? SubscriptionOption.noLocal : 0) | (m.retainAsPublished ? SubscriptionOption.retainAsPublished : 0) | ((m.retainHandling ?? 0) << SubscriptionOption.retainHandlingShift);
  v5.subscriptionIdentifier = m.subscriptionIdentifier ?? 0;
  return v5;
}

/** The publishable v5 fields, as the harness prints them (`show`: bytes as text, or base64 when they are not). */
export function v5Shown(v5: MessageV5, show: (bytes: Uint8Array) => string): Record<string, unknown> {
  return {
    userProperties: v5.userProperties.map(([k, v]) => [k, v]),
    contentType: v5.contentType,
    responseTopic: v5.responseTopic,
    correlationData: v5.correlationData === null ? null : show(v5.correlationData),
    payloadFormat: v5.payloadFormat,
    messageExpiry: v5.messageExpiry,
  };
}

/** The v5 fields that differ after a call (null = removed). */
export function v5Changes(before: MessageV5 | undefined, after: MessageV5, show: (bytes: Uint8Array) => string): Record<string, unknown> {
  const a = v5Shown(before ?? emptyV5(), show);
  const b = v5Shown(after, show);
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(b)) if (JSON.stringify(a[k]) !== JSON.stringify(b[k])) out[k] = b[k];
  return out;
}
