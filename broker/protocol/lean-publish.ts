/**
 * A QoS 0 PUBLISH without aedes' step runner.
 *
 * aedes runs a PUBLISH as two series of steps (lib/utils.js `runSeries`): the
 * handler's [authorizePublish, enqueuePublish] (lib/handlers/publish.js) and
 * the broker's [storeRetained, emitPacket, callPublished] (aedes.js
 * `publish`). Each series allocates a closure context, a step closure and a
 * bound callback, and the broker's a state object too: about a fifth of the
 * broker's garbage per 64 B QoS 0 message in the eighth round's profile
 * (aedes' `publish` 14%, `bind` 5%: bench/README.md, gen8 "What is left of
 * the tail"). For a QoS 0
 * message that is not retained, most steps do nothing (no retained store, no
 * offline queue, no acknowledgement), so the same calls are made here in
 * order with one closure each:
 *
 *   handler: aedes' checks → broker.authorizePublish → broker.publish
 *   broker:  the level limit → aedes' routed copy (aedes-packet) → router emit → published, 'publish'
 *
 * Everything else goes through aedes' own code, which raises its own errors:
 * a QoS 1/2 PUBLISH, a topic aedes refuses and a client not connected in the
 * handler; a retained or QoS 1/2 message in `publish` (a retained QoS 0
 * PUBLISH takes the handler here and aedes' `publish`).
 *
 * One difference, on purpose: aedes picks the acknowledgement by the QoS the
 * packet has after authorizePublish, so a plugin that raised a QoS 0 message's
 * QoS (set_qos) made aedes answer with a PUBACK or PUBREC the client never
 * asked for, without a packet identifier, which mqtt-packet refuses to write
 * (it destroys the connection). Here the QoS the client sent decides: the
 * message is routed at the plugin's QoS and nothing is sent back (MQTT 3.1.1
 * section 3.3.4: a QoS 0 PUBLISH expects no response).
 */
import type { Aedes, Client } from "aedes";
import { levelCount } from "../../host/output-rules.js";
import { AedesPacket, aedesHandle } from "./aedes-internals.js";

interface Packet {
  cmd: string;
  topic?: string;
  qos?: number;
  retain?: boolean;
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
}

/** The aedes broker fields the publish reads (aedes 1.2: aedes.js). */
interface RoutingBroker {
  maxTopicLevels: number;
  mq: { emit(packet: object, done: Done): unknown };
  authorizePublish(client: Client, packet: Packet, done: Done): void;
  publish(packet: Packet, client: Client | null, done: Done): void;
  published(packet: Packet, client: Client | null, done: Done): void;
  emit(event: "publish", packet: Packet, client: Client | null): boolean;
  listenerCount(event: "publish"): number;
}

type RoutedPacket = Packet & { clientId?: string };
const noop = () => {};

/** aedes' `handle` (lib/handlers/index.js), with a QoS 0 PUBLISH that passes aedes' checks handled here. */
export function handlePacket(client: Client, packet: Packet, done: Done): void {
  if (packet.cmd !== "publish" || packet.qos !== 0) return aedesHandle(client, packet, done);
  const c = client as unknown as PublishingClient;
  const topic = packet.topic!;
  // aedes' handlePublish checks, in its order; a packet that fails one gets aedes' own error
  if ((!c.connecting && !c.connected) || topic.length === 0 || topic.indexOf("#") !== -1 || topic.indexOf("+") !== -1 || levelCount(topic) > c.broker.maxTopicLevels) {
    return aedesHandle(client, packet, done);
  }
  authorizeThenPublish(c.broker, client, packet, done);
  if (c._keepaliveInterval > 0) c._keepaliveTimer!.refresh();
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

/**
 * Publish QoS 0 messages that are not retained without aedes' series (its
 * `publish` stays for the rest). Call before any layer wraps `aedes.publish`.
 */
export function publishQoS0Directly(aedes: Aedes): void {
  const series = aedes.publish;
  (aedes as unknown as RoutingBroker).publish = function publish(this: RoutingBroker, packet: Packet, client: Client | null | Done, done?: Done) {
    if (typeof client === "function") {
      done = client;
      client = null;
    }
    if ((packet.qos || 0) !== 0 || packet.retain || typeof packet.topic !== "string") return (series as unknown as RoutingBroker["publish"]).call(this, packet, client, done ?? noop);
    const callback = done ?? noop;
    // aedes' level limit, checked before qlobber could throw on the topic
    if (levelCount(packet.topic) > this.maxTopicLevels) return callback(new Error("topic has too many levels"));
    const routed = new AedesPacket<RoutedPacket>(packet, this);
    if (client) routed.clientId = (client as unknown as PublishingClient).id;
    route(this, routed, packet, client, callback);
  };
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
