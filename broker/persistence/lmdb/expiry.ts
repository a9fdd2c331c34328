/**
 * Expiry side channel for the persist hook.
 *
 * The expiry is recorded in a WeakMap keyed by the packet OBJECT, so it must
 * be set on the very object handed to storeRetained / outgoingEnqueue(Combi)
 * — i.e. by wrapping those persistence methods (broker/protocol/hooks.ts does). aedes
 * wraps every published packet (`new Packet(packet, broker)` in
 * Aedes#publish) before the persistence sees it, so tagging the wire packet in
 * authorizePublish would NOT reach the persistence. (Keying by the shared
 * payload Buffer would survive that wrapping but leaks an expiry to every
 * copy sharing the Buffer, so it is deliberately not done.) As a fallback the
 * aedes-packet field `messageExpiry` (absolute ms since epoch, which
 * `new Packet` copies; the MQTT 5 Message Expiry mechanism) is honoured.
 */
import type { StoredPacket } from "./aedes-parts.js";

interface ExpiryInfo {
  retained?: number;
  queue?: number;
}
const expiryByPacket = new WeakMap<object, ExpiryInfo>();

function normaliseExpiry(expiresAtMs: number | undefined | null): number | undefined {
  if (expiresAtMs === undefined || expiresAtMs === null) return undefined;
  if (typeof expiresAtMs !== "number" || Number.isNaN(expiresAtMs)) {
    throw new TypeError(`expiry must be a number of ms since the epoch, got ${String(expiresAtMs)}`);
  }
  if (expiresAtMs === Infinity) return undefined;
  return Math.max(0, Math.floor(expiresAtMs));
}

function setExpiry(packet: object, field: keyof ExpiryInfo, expiresAtMs: number | undefined | null): void {
  const value = normaliseExpiry(expiresAtMs);
  let info = expiryByPacket.get(packet);
  if (!info) {
    info = {};
    expiryByPacket.set(packet, info);
  }
  info[field] = value;
}

function getExpiry(packet: object, field: keyof ExpiryInfo): number | undefined {
  const info = expiryByPacket.get(packet);
  if (info && field in info) return info[field];
  const me = (packet as StoredPacket).messageExpiry;
  return typeof me === "number" && Number.isFinite(me) ? Math.max(0, Math.floor(me)) : undefined;
}

/** The retained copy of `packet` expires at `expiresAtMs` (ms since epoch; undefined = never). */
export function setRetainedExpiry(packet: object, expiresAtMs: number | undefined | null): void {
  setExpiry(packet, "retained", expiresAtMs);
}
/** Offline-queue entries made from `packet` expire at `expiresAtMs` if not yet sent. */
export function setQueueExpiry(packet: object, expiresAtMs: number | undefined | null): void {
  setExpiry(packet, "queue", expiresAtMs);
}
export function getRetainedExpiry(packet: object): number | undefined {
  return getExpiry(packet, "retained");
}
export function getQueueExpiry(packet: object): number | undefined {
  return getExpiry(packet, "queue");
}
