/**
 * Where aedes 1.2 departs from MQTT 3.1.1, and wasmq puts it right. Each fix
 * names the normative statement; test/conformance-{connect,publish,subscribe}.test.ts check each one
 * through a real socket.
 *
 *  - [MQTT-3.1.3-8]  An empty client id with CleanSession=0 is refused with
 *                    CONNACK 0x02 (aedes accepts it and invents an id;
 *                    moscajs/aedes#1095).
 *  - [MQTT-1.5.3-1/2] Ill-formed UTF-8 or U+0000 in a client id, user name,
 *                    will topic, topic name or topic filter closes the
 *                    connection (mqtt-packet decodes leniently, aedes never checks;
 *                    mqttjs/mqtt-packet#59).
 *  - [MQTT-3.1.3-10], [MQTT-3.3.2-2] A will topic must be a well-formed topic
 *                    name (no wildcards): otherwise the CONNECT is a protocol
 *                    violation (aedes would publish the will to a wildcard topic).
 *  - [MQTT-4.7.2-1]  "$" topics never reach a filter that starts with a wildcard:
 *                    aedes blocks live delivery but still queues such messages
 *                    for offline sessions (it only filters "$SYS/").
 *  - [MQTT-3.3.5-1]  A message matching overlapping filters goes out once at
 *                    the highest QoS granted among them: aedes sent it through
 *                    whichever subscription came first (QoS 0 if that one was),
 *                    and queued one copy per filter for offline sessions.
 *  - [MQTT-3.8.4-6]  Delivery QoS is the minimum of the message's and the
 *                    subscription's granted QoS: aedes applies it only when the
 *                    subscription's filter equals the topic, so a QoS 2 message
 *                    reached a QoS 1 wildcard subscription at QoS 2, and a
 *                    retained QoS 1 message a QoS 0 wildcard subscription at QoS 1.
 *  - [MQTT-3.2.2-2]  Session Present is 1 whenever a session exists for a
 *                    CleanSession=0 client: aedes sets it only when the session has
 *                    subscriptions. wasmq records sessions in its key-value store.
 *  - [MQTT-4.7.1-2/3] A '+' or '#' that is not a whole level closes the
 *                    connection: aedes' check misses one in second position
 *                    ("a+", "a#").
 *  - [MQTT-2.3.1-1]  SUBSCRIBE, UNSUBSCRIBE and QoS 1/2 PUBLISH need a non-zero
 *                    packet identifier: aedes acknowledged identifier 0.
 *  - [MQTT-3.3.1-1]  A QoS 1/2 message redelivered to a returning session
 *                    carries DUP=1 when it was sent before: aedes always sent 0.
 *  - [MQTT-3.1.2-2]  An unsupported protocol level gets CONNACK 0x01 before the
 *                    connection is closed: mqtt-packet rejects levels other than
 *                    3, 4 and 5 while parsing, so aedes closed without answering.
 *  - Clients may not publish to "$SYS/" (aedes' default authorizePublish refuses
 *    it; the plugin adapter replaces that function, so the rule lives here), and
 *    aedes' internal "$SYS/<broker id>/..." cluster messages (which name clients
 *    and their subscriptions) are not delivered to clients.
 */
import type { Aedes, AedesPublishPacket, Client } from "aedes";
import type { Readable } from "node:stream";
import { tapPushes } from "./stream-tap.js";
import type { KvStore } from "../../host/index.js";
import { ConnackCode, hasIllFormedText, invalidTopicFilter, invalidTopicName, matchesFilter, refuseConnect } from "./mqtt.js";
import { observeOutgoing, type OutgoingPacket } from "./wire-tap.js";
import { inspectInbound } from "./inbound-tap.js";
import { composeDeliveries, deliveryStages } from "./delivery.js";

/** KV namespace of the session records; plugin names cannot start with "$", so it is wasmq's alone. */
export const SESSION_NAMESPACE = "$wasmq.sessions";

class ProtocolViolation extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ProtocolViolation";
  }
}

export interface ConformanceOptions {
  kv: KvStore;
  /** A CONNECT was closed or refused here; for logs and counters. */
  onViolation: (client: Client, reason: string) => void;
  /** The session store is full or failing: Session Present falls back to aedes' answer. */
  onSessionStoreError: (err: Error) => void;
}

interface ClientInternals {
  subscriptions: Record<string, { qos: number }>;
  clean: boolean;
  id: string;
  _parser: NodeJS.EventEmitter & { parse(buf: Buffer): number };
}

export interface InstalledConformance {
  attachClient(client: Client): void;
}

function closeAsViolation(client: Client, reason: string, callback: (err: Error | null, ok: boolean) => void): void {
  const err = new ProtocolViolation(reason);
  client.conn.destroy();
  callback(err, false);
}

export function installConformance(aedes: Aedes, opts: ConformanceOptions): InstalledConformance {
  const innerPreConnect = aedes.preConnect;
  aedes.preConnect = (client, packet, callback) => {
    const id = packet.clientId ?? "";
    if (hasIllFormedText(id)) {
      opts.onViolation(client, "ill-formed UTF-8 in client id");
      return closeAsViolation(client, "ill-formed UTF-8 in client id", callback);
    }
    if (packet.username !== undefined && hasIllFormedText(packet.username)) {
      opts.onViolation(client, "ill-formed UTF-8 in user name");
      return closeAsViolation(client, "ill-formed UTF-8 in user name", callback);
    }
    if (packet.will) {
      const bad = invalidTopicName(packet.will.topic ?? "");
      if (bad) {
        opts.onViolation(client, `will topic: ${bad}`);
        return closeAsViolation(client, `will topic: ${bad}`, callback);
      }
    }
    if (id.length === 0 && !packet.clean) {
      opts.onViolation(client, "empty client id with CleanSession=0");
      refuseConnect(client, ConnackCode.IdentifierRejected);
      return callback(null, false);
    }
    innerPreConnect.call(aedes, client, packet, callback);
  };

  const innerPublish = aedes.authorizePublish;
  aedes.authorizePublish = (client, packet, done) => {
    const topic = packet.topic;
    if (hasIllFormedText(topic)) return done(new ProtocolViolation("ill-formed UTF-8 in topic name"));
    if (client && topic.startsWith("$SYS/")) return done(new ProtocolViolation(`${topic}: $SYS/ topics are the broker's`));
    innerPublish.call(aedes, client, packet, done);
  };

  const innerSubscribe = aedes.authorizeSubscribe;
  aedes.authorizeSubscribe = (client, sub, done) => {
    const bad = invalidTopicFilter(sub.topic);
    if (bad) return done(new ProtocolViolation(`${bad}: ${JSON.stringify(sub.topic)}`));
    innerSubscribe.call(aedes, client, sub, done);
  };

  // aedes' cluster chatter ($SYS/<broker id>/new/clients, .../new/subscribes, heartbeats)
  // names clients and their subscriptions: it stays inside the broker.
  const internalPrefix = `$SYS/${aedes.id}/`;
  const innerForward = aedes.authorizeForward;
  aedes.authorizeForward = (client, packet) => {
    const topic = packet.topic;
    const subs = (client as unknown as ClientInternals).subscriptions;
    const dollar = topic.charCodeAt(0) === 36;
    if (dollar && topic.startsWith(internalPrefix)) return null;
    // The common case costs two comparisons: no "$", and QoS 0 or an exact-filter subscription (aedes downgrades those itself).
    let granted = 2;
    if (dollar || (packet.qos > 0 && subs[topic] === undefined)) {
      granted = grantedQos(subs, topic);
      if (granted < 0 && dollar) return null;
    }
    // [MQTT-3.8.4-6] Capped before the plugin adapter runs, so the deliver hook sees the QoS that goes out.
    if (granted < 0 || packet.qos <= granted) return innerForward.call(aedes, client, packet);
    if ("writeCallback" in packet) {
      // Replay of a stored queue: aedes writes this very object.
      (packet as { qos: number }).qos = granted;
      return innerForward.call(aedes, client, packet);
    }
    // Live delivery: the packet object is shared by every subscriber.
    return innerForward.call(aedes, client, { ...packet, qos: granted } as AedesPublishPacket);
  };

  wrapOfflineEnqueue(aedes);
  deliveryStages(aedes).grantedQos = grantedQos;
  markRedeliveries(aedes);

  const sessions = new SessionRecords(opts.kv, opts.onSessionStoreError);
  const refuseZeroPacketIds = zeroPacketIdGuard(opts.onViolation);
  // [MQTT-3.2.2-2] Session Present from the broker's own record of sessions; shared by every connection (aedes sets `conn.client`).
  const correctSessionPresent = (packet: OutgoingPacket, stream: object) => {
    if (packet.cmd !== "connack" || packet.returnCode !== 0) return;
    const c = (stream as { client: ClientInternals }).client;
    const existed = sessions.accept(c.id, c.clean);
    if (existed && !c.clean && !packet.sessionPresent) packet.sessionPresent = true;
  };
  return {
    attachClient(client) {
      const c = client as unknown as ClientInternals & Client;
      checkProtocolLevel(c, opts.onViolation);
      inspectInbound(client, refuseZeroPacketIds);
      composeDeliveries(c);
      observeOutgoing(client.conn, correctSessionPresent);
    },
  };
}

/**
 * Look at the first bytes a connection sends: a CONNECT naming MQTT ("MQTT" or
 * "MQIsdp") at a level other than 3 (3.1), 4 (3.1.1) or 5 is answered with CONNACK
 * 0x01 and closed. Only the first chunk is examined (a CONNECT's header always
 * arrives in one piece from a real client); then the parser is unwrapped.
 */
function checkProtocolLevel(client: ClientInternals & Client, onViolation: (client: Client, reason: string) => void): void {
  const parser = client._parser;
  const parse = parser.parse;
  parser.parse = (buf: Buffer) => {
    parser.parse = parse;
    const level = connectLevel(buf);
    // 0x83/0x84: 3.1/3.1.1 with Mosquitto's bridge bit (another broker's bridge; see broker/bridge/index.ts).
    if (level !== null && ![3, 4, 5, 0x83, 0x84].includes(level)) {
      onViolation(client, `unsupported protocol level ${level}`);
      refuseConnect(client, ConnackCode.UnacceptableProtocol);
      return 0;
    }
    return parse.call(parser, buf);
  };
}

/** The protocol level of a CONNECT at the start of `buf`, or null (not a CONNECT, not MQTT, or too short to tell). */
function connectLevel(buf: Buffer): number | null {
  if (buf.length < 2 || buf[0]! >> 4 !== 1) return null;
  let pos = 1;
  while (pos < buf.length && pos < 5 && buf[pos]! & 0x80) pos++;
  pos++; // past the last remaining-length byte
  if (pos + 2 > buf.length) return null;
  const nameLength = buf.readUInt16BE(pos);
  const name = buf.toString("latin1", pos + 2, pos + 2 + nameLength);
  if (name !== "MQTT" && name !== "MQIsdp") return null;
  const at = pos + 2 + nameLength;
  return at < buf.length ? buf[at]! : null;
}

/**
 * [MQTT-2.3.1-1]. Runs as the packet is parsed, before aedes handles it: the
 * connection is closed and the packet's type made unknown, which aedes answers
 * by dropping it (and closing, already done).
 */
function zeroPacketIdGuard(onViolation: (client: Client, reason: string) => void) {
  // One listener for every client (aedes names the client on its parser): no closure per connection.
  return function refuseZeroPacketIds(this: { client: Client }, packet: { cmd: string; qos?: number; messageId?: number }): void {
    if (packet.messageId !== 0) return;
    if (packet.cmd === "subscribe" || packet.cmd === "unsubscribe" || (packet.cmd === "publish" && (packet.qos ?? 0) > 0)) {
      const client = this.client;
      const reason = `${packet.cmd.toUpperCase()} with packet identifier 0`;
      onViolation(client, reason);
      packet.cmd = "refused";
      client.conn.destroy(new ProtocolViolation(reason));
    }
  };
}

/**
 * [MQTT-3.3.1-1] for sessions coming back: a stored message that already has
 * a packet identifier was sent before (aedes assigns it when it first writes
 * the message), so its redelivery is marked DUP. Messages queued while the
 * client was away have none and go out with DUP=0.
 */
function markRedeliveries(aedes: Aedes): void {
  const persistence = (aedes as unknown as { persistence: { outgoingStream(client: Client): Readable } }).persistence;
  const outgoingStream = persistence.outgoingStream.bind(persistence);
  persistence.outgoingStream = (client) => tapPushes(outgoingStream(client), markRedelivery);
}

function markRedelivery(packet: { cmd?: string; messageId?: number; dup?: boolean }): void {
  // Only a PUBLISH: a stored PUBREL (PUBREC received, PUBCOMP not) is resent as it is ([MQTT-4.4.0-1]);
  // its fixed-header flags are fixed at 0010 ([MQTT-3.6.1-1]) and mqtt-packet cannot even write one with DUP.
  if (packet.messageId && (packet.cmd ?? "publish") === "publish") packet.dup = true;
}

/*
 * [MQTT-3.3.5-1] live: with overlapping filters, aedes delivers a message once
 * per client (later copies are dropped as duplicates) through whichever
 * subscription the router calls first, which may be a QoS 0 one. A QoS 1/2
 * message arriving through a QoS 0 subscription while a QoS 1/2 subscription of
 * the same client matches too goes out through the QoS path instead, at the
 * highest granted QoS (the authorizeForward wrapper caps it). delivery.ts runs
 * this stage (grantedQos below) after the plugin adapter's dedupe.
 */

/** Highest QoS granted to a subscription of this client whose filter matches `topic`, or -1 when none does. */
export function grantedQos(subs: Record<string, { qos: number }>, topic: string): number {
  let best = -1;
  for (const filter in subs) {
    if (!matchesFilter(filter, topic)) continue;
    const q = subs[filter]!.qos;
    if (q > best) {
      best = q;
      if (best === 2) break;
    }
  }
  return best;
}

/**
 * Two corrections to what aedes queues for offline sessions (the persistence
 * is reached through aedes, which holds it after listen()):
 *  - [MQTT-4.7.2-1]: aedes queues a "$" message for every matching persistent
 *    subscription, filtering wildcard-first filters only for "$SYS/" topics.
 *  - [MQTT-3.3.5-1]: a session whose filters overlap got one stored copy per
 *    matching filter, so it received the message twice on return, though live
 *    delivery sends it once. One copy is queued, for the highest granted QoS.
 */
function wrapOfflineEnqueue(aedes: Aedes): void {
  type Sub = { clientId: string; topic?: string; qos?: number };
  const persistence = (aedes as unknown as { persistence: { outgoingEnqueueCombi(subs: Sub[], packet: { topic: string }): Promise<void> } }).persistence;
  const enqueue = persistence.outgoingEnqueueCombi.bind(persistence);
  persistence.outgoingEnqueueCombi = (subs, packet) => {
    let allowed = subs;
    if (packet.topic.charCodeAt(0) === 36) {
      allowed = subs.filter((s) => {
        const first = s.topic?.charCodeAt(0);
        return first !== 35 && first !== 43;
      });
    }
    if (allowed.length > 1) {
      const byClient = new Map<string, Sub>();
      for (const s of allowed) {
        const kept = byClient.get(s.clientId);
        if (!kept || (s.qos ?? 0) > (kept.qos ?? 0)) byClient.set(s.clientId, s);
      }
      if (byClient.size < allowed.length) allowed = [...byClient.values()];
    }
    return allowed.length ? enqueue(allowed, packet) : Promise.resolve();
  };
}

/**
 * Which client ids have a session (connected with CleanSession=0 and not since
 * with CleanSession=1). Kept in the broker's key-value store, so it lives in
 * LMDB next to the sessions themselves and survives restarts.
 */
class SessionRecords {
  private failed = false;
  private static readonly PRESENT = new Uint8Array([1]);

  constructor(
    private readonly kv: KvStore,
    private readonly onError: (err: Error) => void,
  ) {}

  /** Record an accepted connection; returns whether a session existed before it. */
  accept(clientId: string, clean: boolean): boolean {
    const key = Buffer.from(clientId, "utf8");
    try {
      if (clean) {
        this.kv.delete(SESSION_NAMESPACE, key);
        return false;
      }
      const existed = this.kv.get(SESSION_NAMESPACE, key) !== undefined;
      if (!existed) this.kv.put(SESSION_NAMESPACE, key, SessionRecords.PRESENT);
      return existed;
    } catch (err) {
      if (!this.failed) this.onError(err as Error);
      this.failed = true;
      return false;
    }
  }
}
