/**
 * MQTT 5 on aedes 1.2: the layer that lets v5 clients in and gives them what
 * the protocol promises (broker/protocol/MQTT5.md says why this foundation and
 * lists what is covered). One place per concern:
 *
 *   connect.ts     CONNECT: checks, assigned id, keep alive, session expiry → aedes
 *   enhanced-auth.ts  AUTH: enhanced authentication and re-authentication with plugins
 *   encoder.ts     everything written to a v5 connection (CONNACK, PUBLISH fitting, acks)
 *   inbound.ts     everything read from a v5 connection (aliases, flow control, options)
 *   session.ts     session expiry after the connection ends
 *   disconnect.ts  server-sent DISCONNECT
 *   properties.ts  which property is allowed where
 *   here           wiring: will delay, takeover, keep-alive timeout, retain handling,
 *                  retained messages' properties, dropped messages' acknowledgements
 */
import type { Aedes, AedesPublishPacket, Client } from "aedes";
import type { Readable } from "node:stream";
import { tapPushes } from "../stream-tap.js";
import type { KvStore, PluginChain } from "../../../host/index.js";
import { SESSION_NAMESPACE } from "../conformance.js";
import { matchesFilter } from "../mqtt.js";
import { hasStoredSubscriptionLookup } from "../../persistence/quiet-lookup.js";
import { encodeWith, type OutgoingPacket } from "../wire-tap.js";
import type { Mqtt5Config } from "./config.js";
import { installConnect } from "./connect.js";
import { EnhancedAuth } from "./enhanced-auth.js";
import { detectRepeatedProperties } from "./repeated-properties.js";
import { sendDisconnect } from "./disconnect.js";
import { retainedExtras, v5Encoder } from "./encoder.js";
import { watchInbound } from "./inbound.js";
import { Reason } from "./reason-codes.js";
import { SessionExpiry } from "./session.js";
import { v5Of, type V5Connection } from "./state.js";

export { sendDisconnect } from "./disconnect.js";
export { v5Of } from "./state.js";
export { Reason } from "./reason-codes.js";

export interface Mqtt5Options {
  config: Mqtt5Config;
  /** limits.maxPacketSize: advertised as the broker's Maximum Packet Size. */
  maxPacketSize: number;
  /** limits.maxInflight: aedes closes (without a reason code) past it, so Receive Maximum never exceeds it. */
  maxInflight: number;
  kv: KvStore;
  /** Plugins that run enhanced authentication (onAuth); null: none, an Authentication Method gets 0x8C. */
  chain: PluginChain | null;
  /** limits.connectTimeoutMs: the default of mqtt5.authTimeoutMs. */
  connectTimeoutMs: number;
  onViolation(client: Client, reason: string): void;
  onError(message: string, err: Error): void;
  /** A session ended (expired): e.g. it leaves shared-subscription groups. */
  onSessionEnded(clientId: string): void;
}

export interface InstalledMqtt5 {
  /** The client's Receive Maximum for a v5 client (outbound window), else undefined. */
  receiveMaximum(client: Client): number | undefined;
  close(): void;
}

interface Store {
  cleanSubscriptions(client: { id: string }): Promise<unknown>;
  cleanIncoming?(client: { id: string }): Promise<unknown>;
  outgoingStream(client: { id: string }): Readable;
  outgoingClearMessageId(client: { id: string }, packet: object): Promise<unknown>;
  createRetainedStreamCombi(patterns: string[]): Readable;
}

interface ClientInternals {
  _parser: NodeJS.EventEmitter;
  clean: boolean;
  closed: boolean;
  will: object | null;
  deliverQoS: (packet: AedesPublishPacket, cb: () => void) => void;
}

export function installMqtt5(aedes: Aedes, opts: Mqtt5Options): InstalledMqtt5 {
  const config = { ...opts.config, receiveMaximum: Math.min(opts.config.receiveMaximum, opts.maxInflight) };
  const broker = aedes as unknown as { persistence: Store; clients: Record<string, Client>; registerClient(c: Client): void };
  const store = () => broker.persistence;

  /** End a session: everything the store keeps for the id goes. */
  const wipeSession = async (clientId: string) => {
    const s = store();
    const who = { id: clientId };
    await s.cleanSubscriptions(who);
    const queued: object[] = [];
    for await (const p of s.outgoingStream(who)) queued.push(p as object);
    for (const p of queued) await s.outgoingClearMessageId(who, p);
    await s.cleanIncoming?.(who);
    opts.kv.delete(SESSION_NAMESPACE, Buffer.from(clientId, "utf8"));
    opts.onSessionEnded(clientId);
  };
  /** Live subscriptions and shared groups are the router's listeners; away sessions are in the store. */
  const router = (aedes as unknown as { mq: { _matcher: { match(topic: string): unknown[] } } }).mq;
  // A live subscriber answers at once (no promise per message); only otherwise is the store asked.
  const hasSubscribers = (topic: string): boolean | Promise<boolean> => {
    try {
      if (router._matcher.match(topic).length > 0) return true;
      const stored = store();
      if (hasStoredSubscriptionLookup(stored) && !stored.mayHaveStoredSubscriptions(topic)) return false;
      return (stored as unknown as { subscriptionsByTopic(t: string): Promise<unknown[]> }).subscriptionsByTopic(topic).then((subs) => (subs ?? []).length > 0);
    } catch {
      // qlobber throws on a topic with too many levels (aedes refuses that PUBLISH itself): not
      // "no subscribers", and never a throw in the parser's listener, which would end the process
      return true;
    }
  };
  const sessions = new SessionExpiry(
    wipeSession,
    (id) => id in broker.clients,
    (id, err) => opts.onError(`cannot end the expired session of ${id}`, err),
    opts.kv,
  );

  // every connection's parser: a repeated property is a Protocol Error even where mqtt-packet hides it
  const handle = aedes.handle;
  aedes.handle = (conn, req) => {
    const client = handle.call(aedes, conn, req);
    detectRepeatedProperties((client as unknown as ClientInternals)._parser);
    return client;
  };
  const enhancedAuth = new EnhancedAuth({ chain: opts.chain, timeoutMs: config.authTimeoutMs ?? opts.connectTimeoutMs, onViolation: opts.onViolation });
  installConnect(aedes, {
    config,
    wipeSession,
    enhancedAuth,
    onViolation: opts.onViolation,
    onV5: (state) => {
      enhancedAuth.attach(state);
      encodeWith(state.client.conn, v5Encoder(state, { config, maxPacketSize: opts.maxPacketSize, sharedSubscriptions: true, onDropped }));
      watchInbound(state, {
        config,
        hasSubscribers,
        onViolation: opts.onViolation,
        onSessionExpiryChange: (s, seconds) => {
          s.sessionExpiry = seconds;
        },
      });
      applyRetainHandling(state);
    },
  });

  // Any CONNECT (3.1.1 too) takes up a session that is counting down, once a wipe in progress is done.
  const preConnect = aedes.preConnect;
  aedes.preConnect = (client, packet, callback) => {
    const id = packet.clientId;
    if (!id) return preConnect.call(aedes, client, packet, callback);
    sessions.taken(id).then(() => preConnect.call(aedes, client, packet, callback));
  };
  const takenOver = new WeakSet<Client>();
  aedes.on("clientDisconnect", (client) => {
    const state = v5Of(client);
    if (state) sessions.closed(state, client.id, !(client as unknown as ClientInternals).clean, takenOver.has(client));
  });

  // [MQTT-3.1.4-3] takeover: the old connection is told why (0x8E) before aedes closes it.
  const registerClient = broker.registerClient.bind(aedes);
  broker.registerClient = (client) => {
    const old = broker.clients[client.id];
    if (old && old !== client) {
      takenOver.add(old);
      sendDisconnect(old, Reason.SessionTakenOver);
    }
    registerClient(client);
  };
  // [MQTT-3.1.2-22] keep alive expired: 0x8D before aedes closes the connection.
  aedes.on("keepaliveTimeout", (client) => sendDisconnect(client, Reason.KeepAliveTimeout));

  const wills = installWillDelay(aedes);
  explainPublishRefusals(aedes);
  keepRetainedProperties(broker);

  /** A message not sent to a v5 client (too large, expired) is settled as if delivered: the broker plays the client's acknowledgement. */
  function onDropped(state: V5Connection, packet: OutgoingPacket): void {
    const id = packet.messageId;
    if (!packet.qos || id === undefined) return;
    const parser = (state.client as unknown as ClientInternals)._parser;
    state.selfAcked.add(id);
    setImmediate(() => {
      if (packet.qos === 1) {
        parser.emit("packet", { cmd: "puback", messageId: id });
        state.selfAcked.delete(id);
        return;
      }
      parser.emit("packet", { cmd: "pubrec", messageId: id });
      setImmediate(() => {
        parser.emit("packet", { cmd: "pubcomp", messageId: id });
        state.selfAcked.delete(id);
      });
    });
  }

  return {
    receiveMaximum: (client) => v5Of(client)?.receiveMaximum,
    close: () => {
      sessions.close();
      wills.close();
    },
  };
}

/**
 * Retain Handling ([MQTT-3.3.1-9..11]): aedes sends the retained messages of
 * every filter in a SUBSCRIBE; those wanted by none of that SUBSCRIBE's
 * matching filters (Retain Handling 2, or 1 on an existing subscription) are
 * held back here. aedes marks the retained messages it sends for a SUBSCRIBE
 * with brokerId null; retainedExtras says which SUBSCRIBE's filters read them.
 */
function applyRetainHandling(state: V5Connection): void {
  const client = state.client as unknown as ClientInternals;
  const deliverQoS = client.deliverQoS;
  client.deliverQoS = (packet, callback) => {
    if (packet.brokerId === null && packet.retain && state.retainWanted.size > 0) {
      const patterns = retainedExtras.get(packet.payload as object)?.patterns;
      if (patterns && !patterns.some((f) => matchesFilter(f, packet.topic) && state.retainWanted.get(f) !== false)) return setImmediate(callback);
    }
    deliverQoS(packet, callback);
  };
}

/**
 * [MQTT-3.1.3-9] Will Delay Interval: the will of a v5 connection that ends
 * without DISCONNECT is published after the delay, or when the session ends
 * if that is sooner; a new connection with the same client id within the
 * delay cancels it ([MQTT-3.1.2-8]). aedes publishes the will through
 * authorizePublish from its close routine; the delay is applied there.
 */
function installWillDelay(aedes: Aedes): { close(): void } {
  const pending = new Map<string, NodeJS.Timeout>();
  let stopped = false;
  aedes.on("client", (client) => {
    const t = pending.get(client.id);
    if (t) clearTimeout(t);
    pending.delete(client.id); // cancelled: the will is not published
  });
  const inner = aedes.authorizePublish;
  aedes.authorizePublish = (client, packet, done) => {
    const c = client as unknown as (Client & ClientInternals) | null;
    const state = v5Of(client);
    if (!c || !state || !c.closed || packet !== c.will) return inner.call(aedes, client, packet, done);
    const delay = Math.min(state.willDelay, state.sessionExpiry);
    if (delay <= 0) return inner.call(aedes, client, packet, done);
    // Shutting down: the will stays in the store, like the session, instead of a timer outliving the broker.
    if (stopped) return;
    const id = c.id;
    const timer = setTimeout(() => {
      pending.delete(id);
      inner.call(aedes, client, packet, done);
    }, delay * 1000);
    timer.unref();
    pending.set(id, timer);
  };
  return {
    close() {
      stopped = true;
      for (const t of pending.values()) clearTimeout(t);
      pending.clear();
    },
  };
}

/**
 * A PUBLISH refused by a guard or a plugin closes the connection (as in
 * 3.1.1, until plugins choose a PUBACK reason code in ABI v2); a v5 client is
 * first told why: 0x87 Not authorized (a plugin's deny, a "$SYS/" topic),
 * 0x90 Topic Name invalid (too long), 0x81 Malformed Packet (ill-formed UTF-8).
 */
function explainPublishRefusals(aedes: Aedes): void {
  const inner = aedes.authorizePublish;
  aedes.authorizePublish = (client, packet, done) => {
    if (!client || !v5Of(client)) return inner.call(aedes, client, packet, done);
    authorizeExplaining(client, packet, done);
  };
  // (its own function: a closure in the one above cost every PUBLISH, 3.1.1 ones too, a context)
  function authorizeExplaining(client: Client, packet: Parameters<Aedes["authorizePublish"]>[1], done: Parameters<Aedes["authorizePublish"]>[2]): void {
    inner.call(aedes, client, packet, (err) => {
      if (err && !(client as unknown as ClientInternals).closed) {
        const message = err.message;
        const code = /ill-formed UTF-8/.test(message) ? Reason.MalformedPacket : /^maxTopicLength/.test(message) ? Reason.TopicNameInvalid : Reason.NotAuthorized;
        sendDisconnect(client, code, message);
      }
      done(err);
    });
  }
}

/** aedes rebuilds retained messages without their properties when it sends them for a SUBSCRIBE; the encoder finds them again by payload. */
function keepRetainedProperties(broker: { persistence: Store }): void {
  const s = broker.persistence;
  const inner = s.createRetainedStreamCombi.bind(s);
  s.createRetainedStreamCombi = (patterns) =>
    tapPushes(inner(patterns), (packet: { payload?: object; properties?: Record<string, unknown>; messageExpiry?: number }) => {
      if (packet.payload && typeof packet.payload === "object") {
        retainedExtras.set(packet.payload, {
          patterns,
          ...(packet.properties ? { properties: packet.properties } : {}),
          ...(packet.messageExpiry ? { messageExpiry: packet.messageExpiry } : {}),
        });
      }
    });
}
