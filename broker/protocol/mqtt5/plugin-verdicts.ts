/**
 * Reason codes and reason strings a plugin chose (ABI v2), on their way to a
 * v5 client's CONNACK, SUBACK and PUBACK/PUBREC. hooks.ts records them as it
 * decides; the encoder (encoder.ts) writes them in place of its defaults.
 *
 * A refused QoS 2 PUBLISH ends its flow with the PUBREC ([MQTT-4.3.3-?]: a
 * PUBREC reason code of 0x80 or above ends the exchange, no PUBREL follows):
 * the inbound slot and the stored packet aedes kept for the PUBREL are
 * released here, so refusals cannot fill the inbound window.
 */
import type { Client } from "aedes";
import type { V5Connection } from "./state.js";

interface Refusal {
  code: number;
  reason: string | null;
}

const connacks = new WeakMap<V5Connection, Refusal>();
const acks = new WeakMap<V5Connection, Map<number, Refusal>>();
const subacks = new WeakMap<V5Connection, Map<number, { codes: number[]; reason: string | null }>>();

export function refuseConnectWith(state: V5Connection, code: number, reason: string | null): void {
  connacks.set(state, { code, reason });
  if (reason !== null) state.refusal = reason;
}

export function connackOverride(state: V5Connection): number | undefined {
  return connacks.get(state)?.code || undefined;
}

/** The PUBACK/PUBREC of this QoS 1/2 PUBLISH carries `code` (0x80 or above) instead of success. */
export function refuseAckWith(state: V5Connection, messageId: number, code: number, reason: string | null): void {
  let m = acks.get(state);
  if (!m) acks.set(state, (m = new Map()));
  m.set(messageId, { code, reason });
}

export function takeAckOverride(state: V5Connection, messageId: number): Refusal | undefined {
  const m = acks.get(state);
  const r = m?.get(messageId);
  if (r) m!.delete(messageId);
  return r;
}

/** SUBACK codes per subscription of one SUBSCRIBE (0 = the default for what aedes decided). */
export function recordSubackCode(state: V5Connection, messageId: number, index: number, code: number, reason: string | null): void {
  let m = subacks.get(state);
  if (!m) subacks.set(state, (m = new Map()));
  let entry = m.get(messageId);
  if (!entry) m.set(messageId, (entry = { codes: [], reason: null }));
  entry.codes[index] = code;
  if (reason !== null) entry.reason = reason;
}

export function takeSubackOverride(state: V5Connection, messageId: number): { codes: number[]; reason: string | null } | undefined {
  const m = subacks.get(state);
  const r = m?.get(messageId);
  if (r) m!.delete(messageId);
  return r;
}

interface InboundInternals {
  _inboundInflight?: Set<number>;
  broker: { persistence: { incomingDelPacket(client: Client, packet: { messageId: number }): Promise<unknown> } };
}

/** A QoS 2 flow ended by a failed PUBREC: nothing waits for its PUBREL any more. */
export function releaseRefusedQoS2(client: Client, messageId: number): void {
  const c = client as unknown as InboundInternals;
  c._inboundInflight?.delete(messageId);
  c.broker.persistence.incomingDelPacket(client, { messageId }).catch(() => {});
}
