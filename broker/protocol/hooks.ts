/**
 * Where every plugin decision meets aedes. Each aedes extension point below turns
 * the aedes call into a HookMessage, runs the plugin chain and turns the outcome
 * back into what aedes expects:
 *
 *   connect   → authenticate          allow, or CONNACK with the plugin's return code
 *   subscribe → authorizeSubscribe    allow, rewrite filter/QoS, or refuse (SUBACK 0x80)
 *   publish   → authorizePublish      continue (maybe modified), drop silently, or deny (disconnect)
 *   deliver   → authorizeForward      per subscriber, synchronous: pass, modify, or drop
 *   persist   → persistence wrapper   retain or not, TTL, queue for an offline session or not
 *
 * Drop versus deny on publish: MQTT 3.1.1 has no way to refuse one PUBLISH, so a
 * deny closes the publisher's connection (as aedes does on an authorizePublish
 * error), while a drop acknowledges the message normally and delivers it to no
 * one. Plugins choose. An MQTT 5 publisher is refused per message instead: a
 * deny (or a drop that carries a reason code, ABI v2) answers its PUBACK/PUBREC
 * with the plugin's reason code (0x87 by default) and the connection stays open.
 *
 * ABI v2: every hook sees the MQTT 5 fields (mqtt5/plugin-fields.ts) and the
 * reason codes plugins choose reach the wire through mqtt5/plugin-verdicts.ts.
 */
import type { Aedes, AedesPublishPacket, AuthenticateError, Client, PublishPacket, Subscription } from "aedes";
import { ConnectFlag, emptyMessage, PersistKind, Verdict, type HookMessage, type PluginChain } from "../../host/index.js";
import type { PersistenceExpiry } from "../persistence/index.js";
import { topicMatches } from "../../host/native/topic.js";
import type { TlsPeer } from "../net/tls-peer.js";
import { applyConnectFields, applyPublishFields, connectFields, protocolVersionOf, publishFields, subscribeFields } from "./mqtt5/plugin-fields.js";
import { recordSubackCode, refuseAckWith, refuseConnectWith } from "./mqtt5/plugin-verdicts.js";
import { Reason } from "./mqtt5/reason-codes.js";
import { v5Of } from "./mqtt5/state.js";
import { scrubSecret } from "./secrets.js";
import { inspectInbound, type InboundInspector } from "./inbound-tap.js";
import { existingStateOf, stateOf } from "./client-state.js";
import { composeDeliveries, deliveryStages } from "./delivery.js";
import type { AckGate } from "../persistence/ack-gate.js";

function ackGateOf(aedes: Aedes): AckGate | undefined {
  return (aedes as unknown as { persistence?: { ackGate?: AckGate } }).persistence?.ackGate;
}

/** Who the client authenticated as (kept in its ClientState). */
export function usernameOf(client: Client | null | undefined): string | null {
  return existingStateOf(client)?.username ?? null;
}

/** Packets already published by the publish adapter; aedes' own publish of them is skipped. */
const handled = new WeakSet<object>();
/**
 * The QoS a plugin chose for a QoS 2 PUBLISH, applied when it is routed:
 * aedes' handler picks the acknowledgement (PUBREC, or a PUBACK at QoS 1)
 * by the QoS the packet has after authorizePublish, and the publisher must
 * be answered for the QoS it sent. (QoS 0 and 1: lean-publish.ts.)
 */
const ROUTED_QOS = Symbol("wasmq.routedQos");
type QoS2Packet = { qos: number; [ROUTED_QOS]?: number };

export interface HookAdapterOptions {
  chain: PluginChain | null;
  /** Called when a plugin decision should be logged (drops, denies, refusals). */
  onDecision?: (hook: string, clientId: string, verdict: number, plugin: string | null, topic: string) => void;
  /** What the TLS listener verified about this client (mutual TLS); undefined for plain TCP/WebSocket. */
  tlsPeer?: (client: Client) => TlsPeer | undefined;
}

export interface InstalledHooks {
  /** Call for every new connection, with the client aedes created for it. */
  attachClient(client: Client): void;
}

/** Install the adapters on an aedes instance. */
export function installHooks(aedes: Aedes, opts: HookAdapterOptions): InstalledHooks {
  const { chain } = opts;
  const decided = opts.onDecision ?? (() => {});
  const msg = emptyMessage();

  function load(m: HookMessage, client: Client | null, topic: string, payload: Uint8Array, qos: number, retain: boolean): HookMessage {
    m.topic = topic;
    m.payload = payload;
    m.clientId = client?.id ?? "";
    m.username = usernameOf(client);
    m.password = null;
    m.qos = qos;
    m.retain = retain;
    m.dup = false;
    m.flags = 0;
    m.peer = "";
    return m;
  }

  aedes.authenticate = (client, username, password, done) => {
    // The connect hook is the last reader of the password: zero it whatever the outcome.
    const secret = password;
    try {
      authenticate(client, username, password, done);
    } finally {
      scrubSecret(secret);
    }
  };

  function authenticate(client: Client, username: string | undefined, password: Buffer | undefined, done: Parameters<Aedes["authenticate"]>[3]): void {
    const tls = opts.tlsPeer?.(client);
    if (tls?.useIdentityAsUsername) {
      // As Mosquitto's use_identity_as_username: the certificate's CN replaces
      // whatever username the client sent, and its password is ignored.
      const identity = tls.cert?.subjectCommonName;
      if (!identity) {
        decided("connect", client.id, Verdict.Deny, null, "");
        const err = new Error("no client certificate with a CN to use as username") as AuthenticateError;
        err.returnCode = 4; // bad username or password, as Mosquitto answers
        return done(err, null);
      }
      username = identity;
      password = undefined;
    }
    // ABI v2-r4: the identity an onAuth plugin named is the client's username from here on
    // (mqtt5/enhanced-auth.ts already refused a CONNECT User Name that differs).
    const authenticated = v5Of(client)?.enhancedAuth?.identity ?? null;
    if (authenticated !== null) {
      if (tls?.useIdentityAsUsername && authenticated !== username) {
        decided("connect", client.id, Verdict.Deny, null, "");
        refuseConnectWith(v5Of(client)!, Reason.BadUserNameOrPassword, "the authenticated identity is not the client certificate's CN");
        const err = new Error(`authenticated as ${JSON.stringify(authenticated)}, but the certificate's CN is ${JSON.stringify(username)}`) as AuthenticateError;
        err.returnCode = 4;
        return done(err, null);
      }
      username = authenticated;
    }
    stateOf(client).username = username ?? null;
    if (!chain?.has("connect")) return done(null, true);
    const m = load(emptyMessage(), client, "", EMPTY_BUFFER, 0, false);
    m.password = password ?? null;
    m.cert = tls?.cert ?? null;
    m.flags = (client.clean ? ConnectFlag.cleanSession : 0) | (v5Of(client)?.enhancedAuth ? ConnectFlag.enhancedAuth : 0);
    m.v5 = connectFields(client);
    const out = chain.run("connect", m);
    if (out.verdict === Verdict.Continue) {
      // user properties a plugin changed: later plugins saw them; the connection keeps them (ABI v2)
      if (out.propertiesModified) applyConnectFields(client, m.v5);
      return done(null, true);
    }
    decided("connect", client.id, out.verdict, out.decidedBy, "");
    // v5: the plugin's CONNACK reason code and reason string; 3.1.1 gets the nearest return code (out.returnCode)
    const v5 = v5Of(client);
    if (v5) refuseConnectWith(v5, out.reasonCode, out.reasonString);
    const err = new Error(`connection refused by plugin ${out.decidedBy}`) as AuthenticateError;
    err.returnCode = (out.returnCode || 5) as AuthenticateError["returnCode"];
    done(err, null);
  }

  /** The last refusal's reason code and string (ABI v2), for the SUBACK of a v5 client. */
  let refusal = { code: 0, reason: null as string | null };
  function runSubscribe(client: Client, sub: Subscription, packetProperties?: Record<string, unknown>): boolean {
    const m = load(msg, client, sub.topic, EMPTY_BUFFER, sub.qos, false);
    m.v5 = subscribeFields(client, sub as Subscription & { subscriptionIdentifier?: number }, packetProperties);
    const out = chain!.run("subscribe", m);
    if (out.verdict !== Verdict.Continue) {
      decided("subscribe", client.id, out.verdict, out.decidedBy, sub.topic);
      refusal = { code: out.reasonCode, reason: out.reasonString };
      return false;
    }
    if (out.modified) {
      sub.topic = m.topic;
      sub.qos = Math.min(sub.qos, m.qos) as Subscription["qos"];
    }
    return true;
  }

  // aedes takes the granted QoS of SUBACK, the retained-message lookup and the
  // stored session from the SUBSCRIBE packet itself, not from what
  // authorizeSubscribe returns. So the subscribe hook runs as the packet is
  // parsed, editing the packet's subscriptions in place, before aedes reads them.
  const checked = new WeakMap<object, boolean>();
  // One listener for every client (aedes names the client on its parser): no closure per connection.
  function checkSubscribe(this: { client: Client }, packet: { cmd: string; messageId?: number; subscriptions?: Subscription[]; properties?: Record<string, unknown> }): void {
    const client = this.client;
    if (packet.cmd !== "subscribe" || !packet.subscriptions || !client.connected || !chain?.has("subscribe")) return;
    checkSubscriptions(client, packet as typeof packet & { subscriptions: Subscription[] });
  }
  // (its own function: a closure in checkSubscribe, which sees every inbound packet, cost each one a context)
  function checkSubscriptions(client: Client, packet: { messageId?: number; subscriptions: Subscription[]; properties?: Record<string, unknown> }): void {
    const v5 = v5Of(client);
    packet.subscriptions.forEach((sub, i) => {
      const ok = runSubscribe(client, sub, packet.properties);
      checked.set(sub, ok);
      // v5: the SUBACK carries the plugin's reason code for this filter (0x87 when it chose none)
      if (!ok && v5 && packet.messageId !== undefined && (refusal.code || refusal.reason !== null)) {
        recordSubackCode(v5, packet.messageId, i, refusal.code, refusal.reason);
      }
    });
  }
  // Only a true duplicate is dropped on delivery (delivery.ts: aedes' own dedupe drops messages that arrive out of counter order).
  deliveryStages(aedes).dedupe = true;
  const attachClient = (client: Client) => {
    composeDeliveries(client);
    if (!chain?.has("subscribe")) return;
    inspectInbound(client, checkSubscribe as InboundInspector);
  };

  aedes.authorizeSubscribe = (client, sub, done) => {
    const verdict = checked.get(sub);
    if (verdict !== undefined) return done(null, verdict ? sub : null); // SUBACK 0x80 when refused
    // Subscriptions restored from a persistent session arrive here without a packet.
    if (!chain?.has("subscribe")) return done(null, sub);
    done(null, runSubscribe(client, sub) ? sub : null);
  };

  const originalPublish = aedes.publish.bind(aedes);
  aedes.publish = function publish(packet: PublishPacket, client: unknown, done?: unknown) {
    const callback = (typeof client === "function" ? client : done) as ((err?: Error) => void) | undefined;
    if (handled.has(packet)) {
      handled.delete(packet);
      return callback?.();
    }
    const routedQos = (packet as QoS2Packet)[ROUTED_QOS];
    if (routedQos !== undefined) {
      (packet as QoS2Packet)[ROUTED_QOS] = undefined;
      packet.qos = routedQos as PublishPacket["qos"];
    }
    return (originalPublish as (p: PublishPacket, c: unknown, d?: unknown) => void)(packet, client, done);
  } as Aedes["publish"];

  aedes.authorizePublish = (client, packet, done) => {
    // the QoS the client sent decides the acknowledgement, and so when the message must be stored by
    const sentQos = packet.qos;
    if (chain?.has("publish")) {
      const m = load(msg, client, packet.topic, packet.payload as Buffer, packet.qos, packet.retain);
      m.dup = packet.dup;
      m.v5 = publishFields(packet, protocolVersionOf(client));
      const out = chain.run("publish", m);
      const v5 = v5Of(client);
      if (v5 && (out.verdict === Verdict.Deny || (out.verdict === Verdict.Drop && out.reasonCode !== 0))) {
        // MQTT 5 refuses one message, not the connection: PUBACK/PUBREC with the reason code
        // (QoS 0 has no acknowledgement: the message is just not delivered).
        decided("publish", client?.id ?? "", out.verdict, out.decidedBy, packet.topic);
        if (packet.qos > 0 && packet.messageId !== undefined) {
          refuseAckWith(v5, packet.messageId, out.reasonCode || Reason.NotAuthorized, out.reasonString);
        }
        handled.add(packet);
        return done(null);
      }
      if (out.verdict === Verdict.Deny) {
        decided("publish", client?.id ?? "", out.verdict, out.decidedBy, packet.topic);
        return done(new Error(`publish to ${packet.topic} denied by plugin ${out.decidedBy}`));
      }
      if (out.verdict === Verdict.Drop) {
        decided("publish", client?.id ?? "", out.verdict, out.decidedBy, packet.topic);
        // Acknowledge as usual (QoS 1/2 flows complete) but route it nowhere.
        handled.add(packet);
        return done(null);
      }
      if (out.modified) {
        packet.topic = m.topic;
        packet.payload = Buffer.isBuffer(m.payload) ? m.payload : Buffer.from(m.payload);
        if (packet.qos === 2 && m.qos !== 2) (packet as QoS2Packet)[ROUTED_QOS] = m.qos;
        else packet.qos = m.qos as PublishPacket["qos"];
        packet.retain = m.retain;
      }
      if (out.propertiesModified) applyPublishFields(packet as PublishPacket & { messageExpiry?: number }, m.v5);
    }
    if (sentQos === 1 && client) return publishBeforePuback(packet, client, done);
    done(null);
  };

  /**
   * aedes wrote PUBACK before it stored the message for offline sessions.
   * Publishing (and so persisting) here, before the handler writes the PUBACK
   * (lean-publish.ts), makes PUBACK mean "stored". (A
   * function of its own: the closure's context is then allocated only for
   * QoS 1 messages, not on every call of authorizePublish.)
   */
  function publishBeforePuback(packet: PublishPacket, client: Client, done: (err: Error | null) => void): void {
    // A store with an ack gate may route before the disk write and let the
    // subscribers' PUBACKs stand for it (persistence/ack-gate.ts): the ticket
    // says when PUBACK may go.
    const gate = ackGateOf(aedes);
    const ticket = gate?.open(packet as PublishPacket & { brokerCounter?: number }, aedes as unknown as { id: string; counter: number }, client, isConnected);
    (originalPublish as (p: PublishPacket, c: unknown, d: (err?: Error) => void) => void)(packet, client, (err?: Error) => {
      if (!ticket) {
        if (err) return done(err);
        handled.add(packet);
        return done(null);
      }
      gate!.seal(ticket, (failed) => {
        const e = err ?? (failed as Error | undefined);
        if (e) return done(e);
        handled.add(packet);
        done(null);
      });
    });
  }
  const clients = (aedes as unknown as { clients: Record<string, unknown> }).clients;
  function isConnected(clientId: string): boolean {
    return clients[clientId] !== undefined;
  }

  aedes.authorizeForward = (client, original) => {
    // Replaying this client's own offline queue, aedes only asks whether to send
    // and then writes `original` itself: every change must be made on it. A live
    // delivery's packet is shared by all subscribers, so changes go on a copy.
    // (The QoS is already capped to the subscription's: conformance.ts runs first.)
    const replay = "writeCallback" in original;
    const packet = original;
    if (!chain?.has("deliver")) return packet;
    const m = load(msg, client, packet.topic, packet.payload as Buffer, packet.qos, packet.retain);
    m.peer = (packet as { clientId?: string }).clientId ?? "";
    m.v5 = publishFields(packet as { properties?: Record<string, unknown> }, protocolVersionOf(client));
    const out = chain.run("deliver", m);
    if (out.verdict !== Verdict.Continue) return null;
    if (!out.modified && !out.propertiesModified) return packet;
    const payload = Buffer.isBuffer(m.payload) ? m.payload : Buffer.from(m.payload);
    const target = replay ? packet : ({ ...packet } as AedesPublishPacket);
    target.topic = m.topic;
    target.payload = payload;
    if (out.propertiesModified) applyPublishFields(target as unknown as { properties?: Record<string, unknown>; messageExpiry?: number }, m.v5!);
    return target;
  };

  return { attachClient };
}

const EMPTY_BUFFER = Buffer.alloc(0);

/**
 * The persist hook: wraps the persistence so each retained store and each
 * enqueue for an offline session asks the chain first. Deleting a retained message (empty
 * payload) is never blocked.
 */
export function wrapPersistence<P extends PersistenceLike>(
  persistence: P,
  chain: PluginChain | null,
  expiry: PersistenceExpiry,
  isOnline: (clientId: string) => boolean,
): P {
  if (!chain?.has("persist")) return persistence;
  const msg = emptyMessage();
  const storeRetained = persistence.storeRetained.bind(persistence);
  const enqueueCombi = persistence.outgoingEnqueueCombi.bind(persistence);

  persistence.storeRetained = (packet: AedesPublishPacket) => {
    if (packet.payload.length === 0) return storeRetained(packet);
    msg.topic = packet.topic;
    msg.payload = packet.payload as Buffer;
    msg.clientId = (packet as { clientId?: string }).clientId ?? "";
    msg.username = null;
    msg.password = null;
    msg.qos = packet.qos;
    msg.retain = true;
    msg.flags = PersistKind.retained;
    msg.peer = msg.clientId;
    msg.v5 = publishFields(packet as { properties?: Record<string, unknown> }, (packet as { properties?: object }).properties ? 5 : 4);
    const out = chain.run("persist", msg);
    if (out.verdict !== Verdict.Continue || (out.modified && !msg.retain)) return Promise.resolve();
    if (out.ttlSec > 0) expiry.setRetainedExpiry(packet, Date.now() + out.ttlSec * 1000);
    return storeRetained(packet);
  };

  persistence.outgoingEnqueueCombi = (subs: { clientId: string }[], packet: AedesPublishPacket) => {
    const keep: { clientId: string }[] = [];
    let ttlSec = 0;
    for (const sub of subs) {
      // A connected client's copy is its in-flight delivery, not an offline queue
      // entry; aedes closes the client if it cannot find it. Only offline sessions ask.
      if (isOnline(sub.clientId)) {
        keep.push(sub);
        continue;
      }
      msg.topic = packet.topic;
      msg.payload = packet.payload as Buffer;
      msg.clientId = sub.clientId;
      msg.username = null;
      msg.password = null;
      msg.qos = packet.qos;
      msg.retain = packet.retain;
      msg.flags = PersistKind.offlineQueue;
      msg.peer = (packet as { clientId?: string }).clientId ?? "";
      msg.v5 = publishFields(packet as { properties?: Record<string, unknown> }, (packet as { properties?: object }).properties ? 5 : 4);
      const out = chain.run("persist", msg);
      if (out.verdict !== Verdict.Continue) continue;
      if (out.ttlSec > 0) ttlSec = ttlSec === 0 ? out.ttlSec : Math.min(ttlSec, out.ttlSec);
      keep.push(sub);
    }
    if (keep.length === 0) return Promise.resolve();
    if (ttlSec > 0) expiry.setQueueExpiry(packet, Date.now() + ttlSec * 1000);
    return enqueueCombi(keep, packet);
  };
  return persistence;
}

export interface PersistenceLike {
  storeRetained(packet: AedesPublishPacket): Promise<void>;
  outgoingEnqueueCombi(subs: { clientId: string }[], packet: AedesPublishPacket): Promise<void>;
}
