/**
 * The broker's limits, where each one is enforced:
 *
 *   maxConnections     ConnectionTracker, at accept (connections.ts, listeners.ts)
 *   connectTimeoutMs   aedes `connectTimeout`; TLS handshake and WebSocket upgrade timeouts
 *   maxPacketSize      here: a framing scan in front of aedes' parser, per connection
 *   maxInflight        aedes `maxInflightInbound` (QoS 2 PUBLISH awaiting PUBREL)
 *   maxInflightOutbound here: QoS 1/2 PUBLISH to a client awaiting PUBACK/PUBCOMP
 *   queueLimit         aedes `queueLimit` (packets before CONNACK) and here: the send queue
 *   maxQueuedBytes     here: the send queue, in bytes, and what waits behind a full outbound window
 *   maxQueuedMessages  here: the stored queue of an offline persistent session (limitOfflineQueues)
 *   drainTimeoutMs     here: the send queue and a full outbound window (and aedes `drainTimeout` while a session replays its queue)
 *   maxTopicLength     here: PUBLISH disconnects, SUBSCRIBE gets 0x80 for that filter
 *   maxTopicLevels     aedes `maxTopicLevels`
 *   maxClientIdLength  here: CONNACK 0x02 (aedes checks it for MQTT 3.1 only)
 *
 * A client that breaks a limit is disconnected with an error naming the limit;
 * observe.ts logs it on the disconnect line and counts it.
 */
import type { Aedes, AedesPublishPacket, Client } from "aedes";
import type { Duplex } from "node:stream";
import type { BrokerConfig } from "../config.js";
import { FRAME_MALFORMED, FRAME_OK, PacketFramer } from "./framing.js";
import { observeOutgoing } from "./wire-tap.js";
import { ConnackCode, refuseConnect, utf8Length } from "./mqtt.js";
import type { LimitName } from "../ops/stats.js";
import { Reason, sendDisconnect, v5Of } from "./mqtt5/index.js";

export class LimitError extends Error {
  constructor(
    readonly limit: LimitName,
    message: string,
  ) {
    super(`${limit}: ${message}`);
    this.name = "LimitError";
  }
}

export interface LimitsOptions {
  limits: BrokerConfig["limits"];
  /** Called for every rejection, before the client is disconnected or refused. */
  onViolation: (limit: LimitName, client: Client, detail: string) => void;
}

type Deliver = (packet: AedesPublishPacket, callback: () => void) => void;

/** aedes internals this module relies on (aedes 1.2 lib/client.js). */
interface ClientInternals {
  conn: Duplex;
  connecting: boolean;
  _parser: { parse(buf: Buffer): number; on(event: "packet", listener: (packet: { cmd: string; messageId?: number }) => void): void };
  waitForDrain(callback: (err: Error | null, client: Client) => void): void;
  deliverQoS: Deliver;
  /** brokerId -> highest broker counter delivered; aedes skips a message at or below it. */
  duplicates: Record<string, number>;
}

export interface InstalledLimits {
  /** Call for every new connection, right after aedes created its client. */
  attachClient(client: Client): void;
  /** QoS 1/2 messages sent to the client and not yet acknowledged, and those waiting behind its full window. */
  outbound(client: Client): { inflight: number; waiting: number };
}

export function installLimits(aedes: Aedes, opts: LimitsOptions): InstalledLimits {
  const { limits, onViolation } = opts;
  const windows = new WeakMap<Client, () => { inflight: number; waiting: number }>();

  const innerPreConnect = aedes.preConnect;
  aedes.preConnect = (client, packet, callback) => {
    const id = packet.clientId ?? "";
    const bytes = utf8Length(id);
    if (bytes > limits.maxClientIdLength) {
      onViolation("maxClientIdLength", client, `client id of ${bytes} bytes (limit ${limits.maxClientIdLength})`);
      refuseConnect(client, ConnackCode.IdentifierRejected);
      return callback(null, false);
    }
    innerPreConnect.call(aedes, client, packet, callback);
  };

  const innerPublish = aedes.authorizePublish;
  aedes.authorizePublish = (client, packet, done) => {
    // n UTF-16 units take at most 3n UTF-8 bytes: only longer strings need counting.
    if (packet.topic.length * 3 > limits.maxTopicLength) {
      const bytes = utf8Length(packet.topic);
      if (bytes > limits.maxTopicLength) {
        const detail = `topic of ${bytes} bytes (limit ${limits.maxTopicLength})`;
        if (client) onViolation("maxTopicLength", client, detail);
        return done(new LimitError("maxTopicLength", detail));
      }
    }
    innerPublish.call(aedes, client, packet, done);
  };

  const innerSubscribe = aedes.authorizeSubscribe;
  aedes.authorizeSubscribe = (client, sub, done) => {
    if (sub.topic.length * 3 > limits.maxTopicLength) {
      const bytes = utf8Length(sub.topic);
      if (bytes > limits.maxTopicLength) {
        onViolation("maxTopicLength", client, `filter of ${bytes} bytes (limit ${limits.maxTopicLength})`);
        return done(null, null); // SUBACK 0x80 for this filter; the connection stays
      }
    }
    innerSubscribe.call(aedes, client, sub, done);
  };

  function guardPacketSize(client: Client & ClientInternals): void {
    const framer = new PacketFramer(limits.maxPacketSize);
    const parser = client._parser;
    const parse = parser.parse.bind(parser);
    parser.parse = (buf: Buffer) => {
      const verdict = framer.scan(buf);
      if (verdict === FRAME_OK) return parse(buf);
      if (verdict === FRAME_MALFORMED) {
        client.conn.destroy(new Error("malformed remaining length"));
        return 0;
      }
      const detail = `packet of ${verdict} bytes (limit ${limits.maxPacketSize})`;
      onViolation("maxPacketSize", client, detail);
      sendDisconnect(client, Reason.PacketTooLarge); // [MQTT-3.2.2-15] v5 clients are told why
      client.conn.destroy(new LimitError("maxPacketSize", detail));
      return 0;
    };
  }

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
  function guardSendQueue(client: Client & ClientInternals): void {
    const conn = client.conn;
    const waitForDrain = client.waitForDrain.bind(client);
    let queued = 0;
    let timer: NodeJS.Timeout | null = null;
    let tripped: LimitError | null = null;
    const disconnect = (limit: LimitName, detail: string) => {
      if (timer) clearTimeout(timer);
      timer = null;
      if (tripped) return;
      tripped = new LimitError(limit, detail);
      onViolation(limit, client, detail);
      sendDisconnect(client, Reason.QuotaExceeded); // v5: 0x97, if the socket still takes it
      conn.destroy(tripped);
    };
    const drained = () => {
      queued = 0;
      if (timer) clearTimeout(timer);
      timer = null;
    };
    client.waitForDrain = (callback) => {
      if (client.connecting) return waitForDrain(callback);
      // Writes racing the close of a client already cut off.
      if (tripped) return setImmediate(callback, tripped, client);
      queued++;
      if (queued > limits.queueLimit) {
        disconnect("queueLimit", `slow consumer: ${queued} packets waiting to be sent (limit ${limits.queueLimit})`);
      } else if (conn.writableLength > limits.maxQueuedBytes) {
        disconnect("maxQueuedBytes", `slow consumer: ${conn.writableLength} bytes waiting to be sent (limit ${limits.maxQueuedBytes})`);
      } else if (!timer) {
        conn.once("drain", drained);
        timer = setTimeout(() => disconnect("drainTimeoutMs", `slow consumer: nothing drained for ${limits.drainTimeoutMs} ms`), limits.drainTimeoutMs);
        timer.unref();
      }
      setImmediate(callback, null, client);
    };
    conn.once("close", () => {
      if (timer) clearTimeout(timer);
      timer = null;
    });
  }

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
  function guardInflightOutbound(client: Client & ClientInternals): void {
    // [MQTT-3.3.4-9] an MQTT 5 client's Receive Maximum narrows the window (known once it has connected)
    const configured = limits.maxInflightOutbound > 0 ? limits.maxInflightOutbound : Infinity;
    const window = () => Math.min(configured, v5Of(client)?.receiveMaximum ?? Infinity);
    const deliverQoS = client.deliverQoS;
    const unacked = new Set<number>();
    let admitted = 0; // handed to aedes and not yet written, or dropped by it
    // Waiting for the window, in order. `callback` is kept only for retained
    // messages, whose sender waits for it; `bytes` counts the others' payloads.
    let held: { packet: AedesPublishPacket; callback: (() => void) | null }[] = [];
    let bytes = 0;
    let stalled: NodeJS.Timeout | null = null;
    let closed = false;

    const cutOff = (limit: LimitName, detail: string) => {
      if (closed) return;
      onViolation(limit, client, detail);
      sendDisconnect(client, Reason.QuotaExceeded); // v5: 0x97, if the socket still takes it
      client.conn.destroy(new LimitError(limit, detail));
      drop();
    };
    // Armed while messages wait; every acknowledgement that frees a slot re-arms it.
    const watch = () => {
      if (stalled) clearTimeout(stalled);
      stalled = null;
      if (held.length === 0 || closed) return;
      stalled = setTimeout(() => cutOff("drainTimeoutMs", `slow consumer: ${held.length} messages waiting and no acknowledgement for ${limits.drainTimeoutMs} ms`), limits.drainTimeoutMs);
      stalled.unref();
    };
    observeOutgoing(client.conn, (packet) => {
      if (packet.messageId !== undefined && ((packet.cmd === "publish" && packet.qos) || packet.cmd === "pubrel")) unacked.add(packet.messageId);
    });
    client._parser.on("packet", (packet) => {
      if ((packet.cmd === "puback" || packet.cmd === "pubcomp") && packet.messageId !== undefined && unacked.delete(packet.messageId)) {
        release();
        watch();
      }
    });
    function drop(): void {
      closed = true;
      if (stalled) clearTimeout(stalled);
      stalled = null;
      const waiting = held;
      held = [];
      bytes = 0;
      for (const h of waiting) if (h.callback) setImmediate(h.callback); // let a retained-message stream finish
    }
    client.conn.once("close", drop);

    windows.set(client, () => ({ inflight: unacked.size, waiting: held.length }));
    const hasRoom = () => unacked.size + admitted < window();
    const admit = (packet: AedesPublishPacket, callback: () => void) => {
      admitted++;
      deliverQoS(packet, () => {
        admitted--;
        callback();
        release();
      });
    };
    const noop = () => {};
    function release(): void {
      while (held.length > 0 && hasRoom() && !closed) {
        const { packet, callback } = held.shift()!;
        if (!callback) bytes -= packet.payload.length;
        // aedes drops a delivery whose counter is not above the last one it
        // delivered; later messages have gone out while this one waited.
        if (packet.brokerId) client.duplicates[packet.brokerId] = packet.brokerCounter - 1;
        admit(packet, callback ?? noop);
      }
    }

    client.deliverQoS = (packet, callback) => {
      if (packet.qos === 0 || closed) return deliverQoS(packet, callback);
      if (held.length === 0 && hasRoom()) return admit(packet, callback);
      if (packet.retain) {
        // Retained messages for a new subscription: aedes sends the next one
        // when this callback runs, so keeping it paces them with the window.
        held.push({ packet, callback });
        if (held.length === 1) watch();
        return;
      }
      held.push({ packet, callback: null });
      if (held.length === 1) watch();
      bytes += packet.payload.length;
      if (bytes > limits.maxQueuedBytes) {
        cutOff("maxQueuedBytes", `slow consumer: ${bytes} bytes waiting behind ${unacked.size} unacknowledged messages (limit ${limits.maxQueuedBytes})`);
      }
      setImmediate(callback);
    };
  }

  return {
    attachClient(client) {
      const c = client as Client & ClientInternals;
      guardPacketSize(c);
      guardSendQueue(c);
      guardInflightOutbound(c); // also without maxInflightOutbound: MQTT 5 clients' Receive Maximum
    },
    outbound(client) {
      return windows.get(client)?.() ?? { inflight: 0, waiting: 0 };
    },
  };
}

/** The persistence calls that store QoS 1/2 messages for sessions (aedes calls both). */
export interface QueueingPersistence {
  outgoingEnqueue(sub: { clientId: string }, packet: AedesPublishPacket): Promise<void>;
  outgoingEnqueueCombi(subs: { clientId: string }[], packet: AedesPublishPacket): Promise<void>;
  queuedCount(clientId: string): number;
}

export interface OfflineQueueOptions {
  /** Messages an offline session may have stored; 0 = no limit. */
  maxQueuedMessages: number;
  isOnline(clientId: string): boolean;
  /** Called for every message not stored for a session whose queue is full. */
  onDrop(clientId: string, queued: number, packet: AedesPublishPacket): void;
}

/**
 * Bounds what a persistent session accumulates while it is away. Like
 * Mosquitto's max_queued_messages, a full queue keeps what it has and new
 * messages for that session are dropped: the oldest were stored first and
 * their publishers already got their PUBACK for them. A connected client's
 * copies are its deliveries, which the outbound window and the send-queue
 * limits bound.
 *
 * Installed under the persist hook (wrapPersistence), so a message a plugin
 * declined to queue never counts.
 */
export function limitOfflineQueues<P extends QueueingPersistence>(persistence: P, opts: OfflineQueueOptions): P {
  const { maxQueuedMessages: max, isOnline, onDrop } = opts;
  if (max === 0) return persistence;
  const enqueue = persistence.outgoingEnqueue.bind(persistence);
  const enqueueCombi = persistence.outgoingEnqueueCombi.bind(persistence);
  const hasRoom = (clientId: string, packet: AedesPublishPacket): boolean => {
    if (isOnline(clientId)) return true;
    const queued = persistence.queuedCount(clientId);
    if (queued < max) return true;
    onDrop(clientId, queued, packet);
    return false;
  };
  persistence.outgoingEnqueue = (sub, packet) => (hasRoom(sub.clientId, packet) ? enqueue(sub, packet) : Promise.resolve());
  persistence.outgoingEnqueueCombi = (subs, packet) => {
    const keep = subs.filter((sub) => hasRoom(sub.clientId, packet));
    return keep.length === 0 ? Promise.resolve() : enqueueCombi(keep, packet);
  };
  return persistence;
}
