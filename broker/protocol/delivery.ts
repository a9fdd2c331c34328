/**
 * The path of a delivery to one client, composed once per client from the
 * stages the broker's layers enable:
 *
 *   client.deliver0 / client.deliverQoS (what aedes' router and aedes itself call)
 *     → session replay  session-replay.ts: a returning session's stored queue first (QoS path)
 *     → dedupe          hooks.ts: only a true duplicate is dropped
 *     → QoS upgrade     conformance.ts [MQTT-3.3.5-1] (deliver0 only)
 *     → outbound window connection-limits.ts (QoS 1/2)
 *     → send            outgoing-publish.ts: what aedes' own deliverQoS0 / deliverQoS do (in batches)
 *
 * aedes' router calls the delivery functions without a receiver (it captured
 * them at SUBSCRIBE), so each client needs functions of its own: two bound
 * functions of shared ones, bound to its ClientState (48 B each, no closure
 * scope). aedes' own two delivery closures, which the last stage replaces,
 * are dropped, and with the dedupe stage on, so is the per-client object of
 * aedes' counter dedupe (bench/README.md "conns2" and "mem3").
 *
 * The stages are enabled per broker (each layer at install time); their
 * order is fixed here and is the order the layers used to wrap in.
 */
import type { Aedes, AedesPublishPacket, Client } from "aedes";
import { stateOf, type ClientState } from "./client-state.js";
import { sendQoS, sendQoS0, type SendingClient } from "./outgoing-publish.js";

/** A stage that may hold a QoS 1/2 delivery before aedes' deliverQoS (connection-limits.ts). */
export type DeliveryWindow = (state: ClientState, packet: AedesPublishPacket, callback: () => void) => void;
/** A stage that may take a QoS-path delivery out of the path (answering `callback` itself): true when it did (session-replay.ts). */
export type DeliveryGate = (state: ClientState, packet: AedesPublishPacket, callback: () => void) => boolean;

export interface Stages {
  replay: DeliveryGate | null;
  dedupe: boolean;
  /** Highest QoS granted to a matching subscription (-1: none), when the QoS upgrade is on. */
  grantedQos: ((subscriptions: Record<string, { qos: number }>, topic: string) => number) | null;
  window: DeliveryWindow | null;
}

type DeliveringClient = SendingClient & { deliverQoS: SendingClient["deliver0"] };

const byBroker = new WeakMap<object, Stages>();

/** The stages of `aedes`' deliveries, for its layers to enable at install time. */
export function deliveryStages(aedes: Aedes): Stages {
  let s = byBroker.get(aedes);
  if (s === undefined) byBroker.set(aedes, (s = { replay: null, dedupe: false, grantedQos: null, window: null }));
  return s;
}

const NO_STAGES: Stages = Object.freeze({ replay: null, dedupe: false, grantedQos: null, window: null });

/**
 * What a client's `duplicates` becomes when the dedupe stage replaces aedes'
 * counter dedupe: nothing reads or writes it then except aedes' reset on a
 * broker's rebirth (a delete, harmless on an empty frozen object). Frozen,
 * so a write would fail loudly rather than share state between clients.
 */
const NO_DUPLICATES: Record<string, number> = Object.freeze(Object.create(null) as Record<string, number>);

/** Deliveries remembered per client to recognise a duplicate. */
const DEDUPE_RING = 32;

/** A client's last DEDUPE_RING numbered deliveries (in a cluster every node numbers its messages from its own counter: a duplicate is the same broker and counter). */
export class RecentDeliveries {
  readonly counters = new Float64Array(DEDUPE_RING).fill(-1);
  readonly brokers = new Array<string | undefined>(DEDUPE_RING);
  next = 0;
  /** The packet being handed down (aedes' deliverQoS hands a QoS 0 packet back to deliver0: not a duplicate). */
  passing: AedesPublishPacket | null = null;
}

/**
 * Route `client`'s deliveries through its broker's stages (idempotent: every
 * layer's attach may call it; the first one wraps).
 */
export function composeDeliveries(client: Client): void {
  const st = stateOf(client);
  if (st.stages !== null) return;
  const c = client as unknown as DeliveringClient;
  const stages = (st.stages = byBroker.get(c.broker) ?? NO_STAGES);
  c.deliver0 = deliverQoS0Path.bind(st);
  c.deliverQoS = deliverQoSPath.bind(st);
  if (stages.dedupe) c.duplicates = NO_DUPLICATES;
}

/** client.deliver0, bound to the client's state. */
function deliverQoS0Path(this: ClientState, packet: AedesPublishPacket, callback: () => void): void {
  deliverAfterReplay(this.stages!, this, packet, callback, false);
}

/** client.deliverQoS, bound to the client's state. */
function deliverQoSPath(this: ClientState, packet: AedesPublishPacket, callback: () => void): void {
  const stages = this.stages!;
  if (stages.replay !== null && stages.replay(this, packet, callback)) return;
  deliverAfterReplay(stages, this, packet, callback, true);
}

/** A QoS-path delivery past the replay stage (session-replay.ts hands on the deliveries it held). */
export function deliverHeld(st: ClientState, packet: AedesPublishPacket, callback: () => void): void {
  deliverAfterReplay(st.stages ?? NO_STAGES, st, packet, callback, true);
}

/** The last stage of the QoS path (the outbound window sends what it admits through it). */
export function sendQoSOf(st: ClientState, packet: AedesPublishPacket, callback: () => void): void {
  sendQoS(st.client as unknown as SendingClient, packet, callback, !(st.stages ?? NO_STAGES).dedupe);
}

/**
 * A delivery the outbound window held goes out after later ones: without the
 * dedupe stage, aedes' counter dedupe (kept in the send stage) would take it
 * for an old one.
 */
export function allowLateDelivery(st: ClientState, packet: AedesPublishPacket): void {
  if ((st.stages ?? NO_STAGES).dedupe || !packet.brokerId) return;
  (st.client as unknown as DeliveringClient).duplicates[packet.brokerId] = packet.brokerCounter - 1;
}

function deliverAfterReplay(stages: Stages, st: ClientState, packet: AedesPublishPacket, callback: () => void, qosPath: boolean): void {
  // A message that was never numbered, or the nested call.
  if (!stages.dedupe || !packet.brokerId || st.recent?.passing === packet) return afterDedupe(stages, st, packet, callback, qosPath);
  const recent = (st.recent ??= new RecentDeliveries());
  if (isDuplicate(recent, packet)) return callback();
  recent.passing = packet;
  try {
    afterDedupe(stages, st, packet, callback, qosPath);
  } finally {
    recent.passing = null;
  }
}

/**
 * aedes drops a delivery whose broker counter is not above the last one the
 * client got (a dedupe meant for clustered brokers). Messages do not reach
 * subscribers in counter order: a QoS 1 message waits for the offline-queue
 * write (when a stored subscription may match it) while a later QoS 0 message
 * goes straight out, so the QoS 1 message
 * arrived "old" and was silently dropped — every one of them when a client
 * interleaves QoS 1 and QoS 0. Here only a true duplicate (the same message
 * matched by two overlapping subscriptions, delivered back to back) is
 * dropped, and aedes' check is not applied (the send stage skips it). The ring is allocated at the
 * first delivery: an idle client (most of a device fleet) never needs it.
 */
function isDuplicate(recent: RecentDeliveries, packet: AedesPublishPacket): boolean {
  const counter = packet.brokerCounter;
  const brokerId = packet.brokerId;
  const counters = recent.counters;
  for (let i = 0; i < counters.length; i++) if (counters[i] === counter && recent.brokers[i] === brokerId) return true;
  counters[recent.next] = counter;
  recent.brokers[recent.next] = brokerId;
  recent.next = (recent.next + 1) % counters.length;
  return false;
}

function afterDedupe(stages: Stages, st: ClientState, packet: AedesPublishPacket, callback: () => void, qosPath: boolean): void {
  if (!qosPath) {
    // [MQTT-3.3.5-1] (conformance.ts): a QoS 1/2 message reaching a QoS 0 subscription goes out through the QoS path when a QoS 1/2 subscription of this client matches too.
    const granted = stages.grantedQos;
    if (granted === null || packet.qos === 0 || granted((st.client as unknown as DeliveringClient).subscriptions, packet.topic) <= 0) {
      return sendQoS0(st.client as unknown as SendingClient, packet, callback, !stages.dedupe);
    }
  }
  if (stages.window !== null) return stages.window(st, packet, callback);
  sendQoS(st.client as unknown as SendingClient, packet, callback, !stages.dedupe);
}
