/**
 * The broker's limits, where each one is enforced:
 *
 *   maxConnections     ConnectionTracker, at accept (connections.ts, listeners.ts)
 *   connectTimeoutMs   aedes `connectTimeout`; TLS handshake and WebSocket upgrade timeouts
 *   maxPacketSize      connection-limits.ts: a framing scan in front of aedes' parser, per connection
 *   maxInflight        aedes `maxInflightInbound` (QoS 2 PUBLISH awaiting PUBREL)
 *   maxInflightOutbound connection-limits.ts: QoS 1/2 PUBLISH to a client awaiting PUBACK/PUBCOMP
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
import type { BrokerConfig } from "../config.js";
import { connectionLimits } from "./connection-limits.js";
import { LimitError } from "./limit-error.js";
import { ConnackCode, refuseConnect, utf8Length } from "./mqtt.js";
import type { LimitName } from "../ops/stats.js";

export { LimitError };

export interface LimitsOptions {
  limits: BrokerConfig["limits"];
  /** Called for every rejection, before the client is disconnected or refused. */
  onViolation: (limit: LimitName, client: Client, detail: string) => void;
}

export interface InstalledLimits {
  /** Call for every new connection, right after aedes created its client. */
  attachClient(client: Client): void;
  /** QoS 1/2 messages sent to the client and not yet acknowledged, and those waiting behind its full window. */
  outbound(client: Client): { inflight: number; waiting: number };
}

export function installLimits(aedes: Aedes, opts: LimitsOptions): InstalledLimits {
  const { limits, onViolation } = opts;

  const innerPreConnect = aedes.preConnect;
  aedes.preConnect = (client, packet, callback) => {
    const id = packet.clientId ?? "";
    // n UTF-16 units take at most 3n UTF-8 bytes: only longer ids need counting (once per CONNECT).
    const bytes = id.length * 3 > limits.maxClientIdLength ? utf8Length(id) : 0;
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

  const perConnection = connectionLimits(aedes, limits, onViolation);
  return {
    attachClient: (client) => perConnection.attach(client),
    outbound: (client) => perConnection.outbound(client),
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
