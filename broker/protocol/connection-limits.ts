/**
 * The limits enforced per connection (see limits.ts for where every limit
 * lives): the packet-size scan in front of aedes' parser, the send queue, and
 * the outbound QoS 1/2 window.
 *
 * A broker holds tens of thousands of mostly idle clients, so what each one
 * costs while idle matters (bench: idle19k-conns). The limits keep their
 * fields in the client's ClientState (client-state.ts) and the functions are
 * shared: parser and stream listeners find their client through aedes'
 * `parser.client` and `conn.client`, timers get the state as an argument, and
 * the window is a stage of the client's delivery path (delivery.ts). The set
 * of unacknowledged packet identifiers and the queue of held messages are
 * created by the first QoS 1/2 delivery (with the PUBACK/PUBCOMP listener),
 * and the close listener that cleans up by the first timer or held message:
 * past two listeners for an event, Node grows the emitter's listener array to
 * about 20 slots.
 */
import type { Aedes, AedesPublishPacket, Client } from "aedes";
import type { Duplex } from "node:stream";
import type { BrokerConfig } from "../config.js";
import { FRAME_MALFORMED, FRAME_OK, scanFrames } from "./framing.js";
import { parseWithFastPublish, readLater, type MqttParser } from "./publish-parser.js";
import { existingStateOf, stateOf, type ClientState } from "./client-state.js";
import { allowLateDelivery, composeDeliveries, deliveryStages, sendQoSOf } from "./delivery.js";
import { LimitError } from "./limit-error.js";
import { observeOutgoing, type OutgoingPacket } from "./wire-tap.js";
import type { LimitName } from "../ops/stats.js";
import { Reason, sendDisconnect, v5Of } from "./mqtt5/index.js";

/** aedes internals this module relies on (aedes 1.2 lib/client.js). */
export interface ClientInternals {
  conn: Duplex;
  connecting: boolean;
  _parser: { parse(buf: Buffer): number; on(event: "packet", listener: (packet: { cmd: string; messageId?: number }) => void): void };
  waitForDrain(callback: (err: Error | null, client: Client) => void): void;
  /** brokerId -> highest broker counter delivered; aedes skips a message at or below it. */
  duplicates: Record<string, number>;
}

type GuardedClient = Client & ClientInternals;

interface Held {
  packet: AedesPublishPacket;
  /** Kept only for retained messages, whose sender waits for it. */
  callback: (() => void) | null;
}

/**
 * The send queue and the outbound window of one client, in its ClientState
 * (`limits`), created by the first write that had to wait or the first QoS 1/2
 * delivery: an idle client never needs one.
 */
export class OutboundLimits {
  // -- the send queue
  queued = 0;
  drainTimer: NodeJS.Timeout | null = null;
  tripped: LimitError | null = null;
  // -- the outbound window
  unacked: Set<number> | null = null;
  /** Handed to aedes and not yet written, or dropped by it. */
  admitted = 0;
  /** Waiting for the window, in order; `bytes` counts the payloads of those without a callback. */
  held: Held[] | null = null;
  bytes = 0;
  stalled: NodeJS.Timeout | null = null;
  closed = false;
  /** Whether the connection's 'close' cleans up after this (set once there is something to clean up). */
  closeWatched = false;

  constructor(readonly state: ClientState) {}

  get client(): GuardedClient {
    return this.state.client as GuardedClient;
  }
}
type Guard = OutboundLimits;

function limitsOf(st: ClientState): Guard {
  return (st.limits ??= new OutboundLimits(st));
}

function inflightOf(g: Guard): number {
  return g.unacked?.size ?? 0;
}
function waitingOf(g: Guard): number {
  return g.held?.length ?? 0;
}
/** Closed, whether or not the 'close' listener has run (it is added only once there is something to clean up). */
function goneOf(g: Guard): boolean {
  return g.closed || g.client.conn.destroyed;
}

export interface ConnectionLimits {
  /** Call for every new connection, right after aedes created its client. */
  attach(client: Client): void;
  /** QoS 1/2 messages sent to the client and not yet acknowledged, and those waiting behind its full window. */
  outbound(client: Client): { inflight: number; waiting: number };
}

export function connectionLimits(aedes: Aedes, limits: BrokerConfig["limits"], onViolation: (limit: LimitName, client: Client, detail: string) => void): ConnectionLimits {
  /** A client's limits, if it has any yet. */
  const guards = { get: (client: object): Guard | undefined => existingStateOf(client as Client)?.limits ?? undefined };
  /** aedes' own parse and waitForDrain (prototype methods, shadowed per client below). */
  let parse: ((buf: Buffer) => number) | null = null;
  let waitForDrainOf: ClientInternals["waitForDrain"] | null = null;

  // -- maxPacketSize ------------------------------------------------------------
  /** In front of aedes' parser (`this` is the parser): a packet declaring too large a size is refused at its first bytes. */
  function guardedParse(this: { client: GuardedClient }, buf: Buffer): number {
    // Behind the rest of a chunk the parser stopped reading (publish-parser.ts): scanned when read, in order.
    if (readLater(this as unknown as MqttParser, buf)) return 0;
    const st = existingStateOf(this.client)!;
    const verdict = scanFrames(st, buf, limits.maxPacketSize);
    if (verdict === FRAME_OK) return parseWithFastPublish(this as unknown as MqttParser, buf, parse as (this: MqttParser, buf: Buffer) => number);
    const client = st.client as GuardedClient;
    if (verdict === FRAME_MALFORMED) {
      client.conn.destroy(new Error("malformed remaining length"));
      return 0;
    }
    const detail = `packet of ${verdict} bytes (limit ${limits.maxPacketSize})`;
    onViolation("maxPacketSize", client, detail);
    sendDisconnect(client, Reason.PacketTooLarge); // [MQTT-3.2.2-15] v5 clients are told why
    client.conn.destroy(new LimitError("maxPacketSize", detail));
    return 0;
  }

  // -- the send queue ---------------------------------------------------------------
  /**
   * The send queue is what the socket buffers for a client that reads slower
   * than it is sent to. aedes waits for the socket to drain before it calls a
   * delivery's callback, and the router (mqemitter) holds a slot per message
   * until every subscriber's callback has run: one client that never reads
   * would stall delivery for everyone once 100 messages were pending. So the
   * callback is released at once and this client's backlog is bounded instead:
   * past `queueLimit` packets or `maxQueuedBytes` bytes buffered, or no drain
   * within `drainTimeoutMs`, it is disconnected. Its persistent session (if any)
   * keeps QoS 1/2 messages for its return.
   *
   * While the client is still connecting, aedes is replaying its stored queue,
   * and there waiting for the drain is the backpressure that paces the replay.
   */
  function waitForDrain(this: GuardedClient, callback: (err: Error | null, client: Client) => void): void {
    if (this.connecting) return waitForDrainOf!.call(this, callback);
    const g = limitsOf(stateOf(this));
    const client = g.client;
    // Writes racing the close of a client already cut off.
    if (g.tripped) return void setImmediate(callback, g.tripped, client);
    g.queued++;
    const conn = client.conn;
    if (g.queued > limits.queueLimit) {
      tripSendQueue(g, "queueLimit", `slow consumer: ${g.queued} packets waiting to be sent (limit ${limits.queueLimit})`);
    } else if (conn.writableLength > limits.maxQueuedBytes) {
      tripSendQueue(g, "maxQueuedBytes", `slow consumer: ${conn.writableLength} bytes waiting to be sent (limit ${limits.maxQueuedBytes})`);
    } else if (!g.drainTimer) {
      watchClose(g);
      conn.once("drain", drained);
      g.drainTimer = setTimeout(drainTimedOut, limits.drainTimeoutMs, g);
      g.drainTimer.unref();
    }
    setImmediate(callback, null, client);
  }
  function drainTimedOut(g: Guard): void {
    if (g.client.conn.destroyed) return; // closed meanwhile: nothing to cut off
    tripSendQueue(g, "drainTimeoutMs", `slow consumer: nothing drained for ${limits.drainTimeoutMs} ms`);
  }
  /** `this` is the connection. */
  function drained(this: { client: Client }): void {
    const g = guards.get(this.client);
    if (!g) return;
    g.queued = 0;
    if (g.drainTimer) clearTimeout(g.drainTimer);
    g.drainTimer = null;
  }
  function tripSendQueue(g: Guard, limit: LimitName, detail: string): void {
    if (g.drainTimer) clearTimeout(g.drainTimer);
    g.drainTimer = null;
    if (g.tripped) return;
    g.tripped = new LimitError(limit, detail);
    onViolation(limit, g.client, detail);
    sendDisconnect(g.client, Reason.QuotaExceeded); // v5: 0x97, if the socket still takes it
    g.client.conn.destroy(g.tripped);
  }

  // -- the outbound window ------------------------------------------------------------
  /**
   * Like Mosquitto's max_inflight_messages: at most `maxInflightOutbound` QoS
   * 1/2 messages are sent to a client and not yet acknowledged (PUBACK, or
   * PUBCOMP for QoS 2); later ones wait here, in order, and go out as
   * acknowledgements come back. It spares small devices a burst they cannot
   * hold and keeps packet identifiers (65535 of them) from being reused while
   * still in flight. QoS 0 is not held (MQTT orders messages per QoS).
   * Retained messages sent for a new subscription are paced by the window.
   *
   * The router's callback is released when a message is held, so a client
   * that stops acknowledging stalls only itself, and what waits for it is
   * bounded like its send queue: more than `maxQueuedBytes` of payload held,
   * or no acknowledgement for `drainTimeoutMs` while messages wait, and it is
   * disconnected as a slow consumer (a persistent session's held messages are
   * already in its stored queue and go out when it returns). A pause of a
   * fast consumer is not one: at 10,000 msg/s a 200 ms stall of the bench's
   * subscriber was, when the bound was a message count. A returning session's
   * stored queue is replayed by aedes at the pace the socket drains; those
   * messages fill the window too.
   */
  const configured = limits.maxInflightOutbound > 0 ? limits.maxInflightOutbound : Infinity;
  // [MQTT-3.3.4-9] an MQTT 5 client's Receive Maximum narrows the window (known once it has connected)
  const hasRoom = (g: Guard) => inflightOf(g) + g.admitted < Math.min(configured, v5Of(g.client)?.receiveMaximum ?? Infinity);
  const noop = () => {};

  function deliverThroughWindow(st: ClientState, packet: AedesPublishPacket, callback: () => void): void {
    if (packet.qos === 0) return sendQoSOf(st, packet, callback);
    const g = limitsOf(st);
    if (goneOf(g)) return sendQoSOf(st, packet, callback);
    if (waitingOf(g) === 0 && hasRoom(g)) return admit(g, packet, callback);
    watchClose(g);
    const held = (g.held ??= []);
    if (packet.retain) {
      // Retained messages for a new subscription: aedes sends the next one
      // when this callback runs, so keeping it paces them with the window.
      held.push({ packet, callback });
      if (held.length === 1) watch(g);
      return;
    }
    held.push({ packet, callback: null });
    if (held.length === 1) watch(g);
    g.bytes += packet.payload.length;
    if (g.bytes > limits.maxQueuedBytes) {
      cutOff(g, "maxQueuedBytes", `slow consumer: ${g.bytes} bytes waiting behind ${inflightOf(g)} unacknowledged messages (limit ${limits.maxQueuedBytes})`);
    }
    setImmediate(callback);
  }
  function admit(g: Guard, packet: AedesPublishPacket, callback: () => void): void {
    g.admitted++;
    sendQoSOf(g.state, packet, () => {
      g.admitted--;
      callback();
      release(g);
    });
  }
  function release(g: Guard): void {
    const held = g.held;
    while (held !== null && held.length > 0 && hasRoom(g) && !goneOf(g)) {
      const { packet, callback } = held.shift()!;
      if (!callback) g.bytes -= packet.payload.length;
      // Later messages have gone out while this one waited.
      allowLateDelivery(g.state, packet);
      admit(g, packet, callback ?? noop);
    }
  }
  /** Armed while messages wait; every acknowledgement that frees a slot re-arms it. */
  function watch(g: Guard): void {
    if (g.stalled) clearTimeout(g.stalled);
    g.stalled = null;
    if (waitingOf(g) === 0 || goneOf(g)) return;
    g.stalled = setTimeout(stalledTooLong, limits.drainTimeoutMs, g);
    g.stalled.unref();
  }
  function stalledTooLong(g: Guard): void {
    if (goneOf(g)) return drop(g); // closed meanwhile: nothing to cut off
    cutOff(g, "drainTimeoutMs", `slow consumer: ${waitingOf(g)} messages waiting and no acknowledgement for ${limits.drainTimeoutMs} ms`);
  }
  function cutOff(g: Guard, limit: LimitName, detail: string): void {
    if (g.closed) return;
    onViolation(limit, g.client, detail);
    sendDisconnect(g.client, Reason.QuotaExceeded); // v5: 0x97, if the socket still takes it
    g.client.conn.destroy(new LimitError(limit, detail));
    drop(g);
  }
  function drop(g: Guard): void {
    g.closed = true;
    if (g.stalled) clearTimeout(g.stalled);
    g.stalled = null;
    const waiting = g.held;
    g.held = null;
    g.bytes = 0;
    if (waiting) for (const h of waiting) if (h.callback) setImmediate(h.callback); // let a retained-message stream finish
  }
  /** Outgoing packets (`stream` is the connection): a QoS 1/2 PUBLISH or a PUBREL takes a slot of the window. */
  function countSent(packet: OutgoingPacket, stream: object): void {
    if (packet.messageId === undefined || !((packet.cmd === "publish" && packet.qos) || packet.cmd === "pubrel")) return;
    const st = existingStateOf((stream as { client: Client }).client);
    if (!st) return;
    const g = limitsOf(st);
    if (g.unacked === null) {
      g.unacked = new Set();
      g.client._parser.on("packet", countAcknowledged);
    }
    g.unacked.add(packet.messageId);
  }
  /** Incoming packets (`this` is the parser): PUBACK/PUBCOMP frees a slot. */
  function countAcknowledged(this: { client: Client }, packet: { cmd: string; messageId?: number }): void {
    if ((packet.cmd !== "puback" && packet.cmd !== "pubcomp") || packet.messageId === undefined) return;
    const g = guards.get(this.client);
    if (g && g.unacked !== null && g.unacked.delete(packet.messageId)) {
      release(g);
      watch(g);
    }
  }

  function watchClose(g: Guard): void {
    if (g.closeWatched) return;
    g.closeWatched = true;
    g.client.conn.on("close", connectionClosed);
  }
  /** `this` is the connection. */
  function connectionClosed(this: { client: Client }): void {
    const g = guards.get(this.client);
    if (!g) return;
    if (g.drainTimer) clearTimeout(g.drainTimer);
    g.drainTimer = null;
    drop(g);
  }

  // Also without maxInflightOutbound: MQTT 5 clients' Receive Maximum.
  deliveryStages(aedes).window = deliverThroughWindow;

  return {
    attach(client) {
      const c = client as GuardedClient;
      const parser = c._parser as ClientInternals["_parser"];
      // The limits shadow aedes' prototype methods; a layer that wrapped them per client first would be skipped.
      if (Object.hasOwn(parser, "parse") || Object.hasOwn(c, "waitForDrain")) throw new Error("connection limits must be attached before other wrappers of parse/waitForDrain");
      parse ??= parser.parse;
      waitForDrainOf ??= c.waitForDrain;
      stateOf(c);
      parser.parse = guardedParse;
      c.waitForDrain = waitForDrain;
      composeDeliveries(c);
      observeOutgoing(c.conn, countSent);
    },
    outbound(client) {
      const g = guards.get(client);
      return g ? { inflight: inflightOf(g), waiting: waitingOf(g) } : { inflight: 0, waiting: 0 };
    },
  };
}
