/**
 * A PUBLISH and a PUBACK without aedes' step runner.
 *
 * aedes runs a PUBLISH as two series of steps (lib/utils.js `runSeries`): the
 * handler's [authorizePublish, enqueuePublish] (lib/handlers/publish.js) and
 * the broker's [storeRetained, enqueueOffline, emitPacket, callPublished]
 * (aedes.js `publish`; no enqueueOffline at QoS 0). Each series allocates a
 * closure context, a step closure and a bound callback, and the broker's a
 * state object too: about a fifth of the broker's garbage per 64 B QoS 0
 * message in the eighth round's profile (aedes' `publish` 14%, `bind` 5%:
 * bench/README.md, gen8 "What is left of the tail"). Most steps do nothing
 * for a message that is not retained, so the same calls are made here in
 * order with one closure each:
 *
 *   handler, QoS 0: aedes' checks → broker.authorizePublish → broker.publish
 *   handler, QoS 1: aedes' checks → broker.authorizePublish → PUBACK → broker.publish
 *   broker: the level limit → aedes' routed copy (aedes-packet) →
 *           at QoS 1/2, the offline enqueue (subscriptionsByTopic →
 *           outgoingEnqueueCombi), skipped when the persistence says no
 *           stored subscription can match (quiet-lookup.ts) →
 *           router emit → published, 'publish'
 *
 * A PUBACK from a session the persistence holds nothing for (a clean
 * session: aedes stores no in-flight QoS 1 message for one) would clear
 * nothing: it is answered here as aedes' handlePuback would answer it
 * ('ack' with no packet), without the store's promise chain (~0.8 KB of
 * garbage per message, bench/README.md "ack10").
 *
 * Everything else goes through aedes' own code, which raises its own errors:
 * a QoS 2 PUBLISH, a topic aedes refuses and a client not connected in the
 * handler; a retained message in `publish`; a PUBACK of a session with
 * anything stored, and every other packet.
 *
 * One difference, on purpose: aedes picks the acknowledgement by the QoS the
 * packet has after authorizePublish, so a plugin that changed a message's QoS
 * (set_qos) made aedes answer a QoS 0 PUBLISH with a PUBACK or PUBREC the
 * client never asked for, without a packet identifier, which mqtt-packet
 * refuses to write (it destroys the connection), and a QoS 1 PUBLISH with
 * nothing (lowered to 0: the client waits for its PUBACK forever) or a PUBREC
 * (raised to 2). Here the QoS the client sent decides (MQTT 3.1.1 section
 * 3.3.4: QoS 0 expects no response, QoS 1 a PUBACK); the message is routed at
 * the plugin's QoS. (A QoS 2 PUBLISH stays aedes': hooks.ts applies the
 * plugin's QoS when it is routed, after aedes chose the PUBREC.)
 */
import type { Aedes, Client } from "aedes";
import { levelCount } from "../../host/output-rules.js";
import { hasQuietLookups, hasStoredSubscriptionLookup } from "../persistence/quiet-lookup.js";
import { AedesPacket, aedesHandle } from "./aedes-internals.js";
import { tryWrite, type SendingClient } from "./outgoing-publish.js";

interface Packet {
  cmd: string;
  topic?: string;
  qos?: number;
  retain?: boolean;
  messageId?: number;
}

type Done = (err?: Error | null) => void;

/** The aedes client fields the handler reads (aedes 1.2: lib/client.js, lib/handlers/index.js). */
interface PublishingClient {
  id: string;
  connecting: boolean;
  connected: boolean;
  broker: RoutingBroker;
  _keepaliveInterval: number;
  _keepaliveTimer: { refresh(): void } | null;
  waitForDrain(done: Done): void;
}

/** The persistence calls aedes' offline enqueue makes (aedes.js `enqueueOffline`). */
interface OfflineQueues {
  subscriptionsByTopic(topic: string): Promise<Array<{ clientId: string; topic: string }>>;
  outgoingEnqueueCombi(subs: Array<{ clientId: string; topic: string }>, packet: object): Promise<unknown>;
}

/** The aedes broker fields the publish reads (aedes 1.2: aedes.js). */
interface RoutingBroker {
  maxTopicLevels: number;
  persistence: OfflineQueues;
  mq: { emit(packet: object, done: Done): unknown };
  authorizePublish(client: Client, packet: Packet, done: Done): void;
  publish(packet: Packet, client: Client | null, done: Done): void;
  published(packet: Packet, client: Client | null, done: Done): void;
  emit(event: "publish", packet: Packet, client: Client | null): boolean;
  emit(event: "ack", packet: undefined, client: Client): boolean;
  emit(event: "error", err: unknown): boolean;
  listenerCount(event: "publish" | "ack"): number;
}

type RoutedPacket = Packet & { clientId?: string };
const noop = () => {};

/** aedes' `handle` (lib/handlers/index.js), with a QoS 0/1 PUBLISH that passes aedes' checks and a PUBACK that clears nothing handled here. */
export function handlePacket(client: Client, packet: Packet, done: Done): void {
  const c = client as unknown as PublishingClient;
  if (packet.cmd === "publish") {
    const qos = packet.qos;
    if (qos !== 0 && qos !== 1) return aedesHandle(client, packet, done);
    const topic = packet.topic!;
    // aedes' handlePublish checks, in its order; a packet that fails one gets aedes' own error
    if ((!c.connecting && !c.connected) || topic.length === 0 || topic.indexOf("#") !== -1 || topic.indexOf("+") !== -1 || levelCount(topic) > c.broker.maxTopicLevels) {
      return aedesHandle(client, packet, done);
    }
    if (qos === 0) authorizeThenPublish(c.broker, client, packet, done);
    else authorizeThenAcknowledge(c.broker, client, packet, done);
  } else if (packet.cmd === "puback") {
    if ((!c.connecting && !c.connected) || mayHaveStored(c)) return aedesHandle(client, packet, done);
    // aedes' handlePuback: the store's answer (nothing) is what 'ack' carries
    if (c.broker.listenerCount("ack") > 0) c.broker.emit("ack", undefined, client);
    done(null);
  } else {
    return aedesHandle(client, packet, done);
  }
  if (c._keepaliveInterval > 0) c._keepaliveTimer!.refresh();
}

/** Whether the session may have a stored message a PUBACK would clear (yes, unless its persistence can say no). */
function mayHaveStored(client: PublishingClient): boolean {
  const persistence = client.broker.persistence;
  return !hasQuietLookups(persistence) || persistence.mayHaveQueued(client.id);
}

/*
 * The closures live in functions of their own: V8 allocates a function's
 * closure context when the function is entered, so a closure in the function
 * above would cost every packet a context, whichever way it goes.
 */
function authorizeThenPublish(broker: RoutingBroker, client: Client, packet: Packet, done: Done): void {
  broker.authorizePublish(client, packet, (err) => {
    if (err) return done(err);
    broker.publish(packet, client, done);
  });
}

function authorizeThenAcknowledge(broker: RoutingBroker, client: Client, packet: Packet, done: Done): void {
  broker.authorizePublish(client, packet, (err) => {
    if (err) return done(err);
    acknowledgeThenPublish(broker, client, packet, done);
  });
}

/**
 * aedes' QoS 1 step: the PUBACK, then broker.publish (wasmq's hooks have
 * routed and stored the message already: hooks.ts, publishBeforePuback).
 * aedes calls publish from an immediate after the write; here at once, as
 * the write has nothing to wait for unless the socket is full.
 */
function acknowledgeThenPublish(broker: RoutingBroker, client: Client, packet: Packet, done: Done): void {
  const outcome = tryWrite(client as unknown as SendingClient, { cmd: "puback", messageId: packet.messageId });
  if (outcome === null) return broker.publish(packet, client, done);
  if (outcome !== false) return done(outcome);
  (client as unknown as PublishingClient).waitForDrain((err) => {
    if (err) return done(err);
    broker.publish(packet, client, done);
  });
}

/**
 * Publish messages that are not retained without aedes' series (its
 * `publish` stays for the rest). Call before any layer wraps `aedes.publish`.
 */
export function publishWithoutSeries(aedes: Aedes): void {
  const series = aedes.publish;
  (aedes as unknown as RoutingBroker).publish = function publish(this: RoutingBroker, packet: Packet, client: Client | null | Done, done?: Done) {
    if (typeof client === "function") {
      done = client;
      client = null;
    }
    if (packet.retain || typeof packet.topic !== "string") return (series as unknown as RoutingBroker["publish"]).call(this, packet, client, done ?? noop);
    const callback = done ?? noop;
    // aedes' level limit, checked before qlobber could throw on the topic
    if (levelCount(packet.topic) > this.maxTopicLevels) return callback(new Error("topic has too many levels"));
    const routed = new AedesPacket<RoutedPacket>(packet, this);
    if (routed.qos! > 0 && mayHaveStoredSubscriptions(this.persistence, packet.topic)) return enqueueThenRoute(this, routed, packet, client, callback);
    if (client) routed.clientId = (client as unknown as PublishingClient).id;
    route(this, routed, packet, client, callback);
  };
}

function mayHaveStoredSubscriptions(persistence: OfflineQueues, topic: string): boolean {
  return !hasStoredSubscriptionLookup(persistence) || persistence.mayHaveStoredSubscriptions(topic);
}

/** aedes' enqueueOffline, then the routing: the stored sessions' copies are queued before any live delivery. */
function enqueueThenRoute(broker: RoutingBroker, routed: RoutedPacket, packet: Packet, client: Client | null, callback: Done): void {
  const persistence = broker.persistence;
  persistence.subscriptionsByTopic(routed.topic!).then(
    (subs) => {
      // as aedes: a "$SYS/" message is not queued for a filter starting with a wildcard [MQTT-4.7.2-1]
      const queued = routed.topic!.startsWith("$SYS/") ? subs.filter(notWildcardFirst) : subs;
      persistence.outgoingEnqueueCombi(queued, routed).then(() => {
        if (client) routed.clientId = (client as unknown as PublishingClient).id;
        route(broker, routed, packet, client, callback);
      }, callback);
    },
    // as aedes: a store that cannot list subscriptions is the broker's error, and the message goes nowhere
    (err) => broker.emit("error", err),
  );
}

function notWildcardFirst(sub: { topic: string }): boolean {
  const first = sub.topic.charCodeAt(0);
  return first !== 43 && first !== 35;
}

function route(broker: RoutingBroker, routed: Packet, packet: Packet, client: Client | null, callback: Done): void {
  broker.mq.emit(routed, (err) => {
    if (err) return callback(err);
    // as aedes' callPublished: the message as it was handed in, not the routed copy
    broker.published(packet, client, callback);
    // (EventEmitter's emit allocates its argument list even when nobody listens: 65 B per message)
    if (broker.listenerCount("publish") > 0) broker.emit("publish", packet, client);
  });
}
