/**
 * The last stage of a delivery (delivery.ts): what aedes 1.2's per-client
 * `deliverQoS0` / `deliverQoS` closures do once a message has passed wasmq's
 * stages — no-local, authorizeForward, then on the next turn a copy of the
 * packet is numbered (QoS 1/2), stored as in flight for a persistent session
 * and written. Written here as shared functions so a client no longer needs
 * aedes' two closures next to its own delivery functions, nor the object
 * aedes' counter dedupe keeps per client: wasmq's dedupe stage replaces it
 * (bench/README.md "mem3": ~0.3 KB per idle connection).
 *
 * Behaviour kept from aedes (lib/client.js, lib/write.js, lib/qos-packet.js):
 * - [MQTT-3.8.3-3] no-local: a client's own message is not sent back when its subscription asked so;
 * - the write happens on the next turn (setImmediate), so deep fan-outs do not grow the stack;
 *   the deliveries routed in one run of synchronous code share one immediate
 *   (see "Deliveries in batches" below), except a QoS 1/2 one to a persistent
 *   session, which is recorded first from an immediate of its own;
 * - a QoS 1/2 delivery takes the next packet identifier of the client, is
 *   downgraded to the QoS of the exact-topic subscription if that is lower,
 *   and for a persistent session is recorded (outgoingUpdate) before it is
 *   written; a refused delivery clears its stored packet identifier;
 * - a write to a socket that is full waits for 'drain' (client.waitForDrain,
 *   which the connection limits bound); an error closes the client.
 */
import type { Duplex } from "node:stream";
import type { AedesPublishPacket, Client } from "aedes";
import { mqttPacket } from "./mqtt.js";
import { AedesPacket } from "./aedes-internals.js";

type Done = (err: Error | null) => void;

interface Persistence {
  outgoingUpdate(client: Client, packet: object): Promise<unknown>;
  outgoingClearMessageId(client: Client, packet: object): Promise<unknown>;
}

/** The parts of aedes' Client (lib/client.js) the send path uses. */
export interface SendingClient {
  id: string | null;
  clean: boolean;
  connecting: boolean;
  connected: boolean;
  errored: boolean;
  conn: Duplex;
  subscriptions: Record<string, { qos: number }>;
  duplicates: Record<string, number>;
  _nextId: number;
  broker: { persistence: Persistence; authorizeForward(client: Client, packet: AedesPublishPacket): AedesPublishPacket | null | undefined | false };
  deliver0(packet: AedesPublishPacket, callback: () => void): void;
  waitForDrain(done: Done): void;
  emit(event: "error", err: Error): boolean;
  _onError(err: Error | null | undefined): void;
}

/** An outgoing PUBLISH as aedes builds it (aedes-packet fields plus the write's callback). */
type OutgoingPacket = AedesPublishPacket & { messageId?: number; writeCallback: () => void };

const noop = () => {};

/**
 * The message to write to `client`, or nothing: [MQTT-3.8.3-3] no-local, then
 * the broker's forward authorisation (wasmq's deliver hooks). `keepCounterDedupe`
 * applies aedes' own per-broker counter dedupe, for a broker whose dedupe
 * stage is off (delivery.ts).
 */
function forwardable(client: SendingClient, packet: AedesPublishPacket, keepCounterDedupe: boolean): AedesPublishPacket | null | undefined | false {
  const p = packet as { clientId?: string; nl?: boolean };
  if (p.clientId === client.id && p.nl) return undefined;
  if (keepCounterDedupe && !counterDedupe(client, packet)) return undefined;
  return client.broker.authorizeForward(client as unknown as Client, packet);
}

/** aedes' dedupe: a message whose broker counter is not above the last one this client got from that broker is dropped. */
function counterDedupe(client: SendingClient, packet: AedesPublishPacket): boolean {
  const id = packet.brokerId;
  if (!id) return true;
  const counter = packet.brokerCounter;
  const fresh = (client.duplicates[id] ?? 0) < counter;
  if (fresh) client.duplicates[id] = counter;
  return fresh;
}

/*
 * Deliveries in batches. aedes queues, per delivery, an immediate that writes
 * and then a second one (with a closure) for the callback; under 64 B QoS 0
 * traffic those immediates and closures were ~26% of the broker's allocation
 * per message (bench/README.md "qos0"), and ~0.3 KB per QoS 1 delivery
 * ("ack10"). Here the deliveries routed in one run of synchronous code join
 * one batch, written from one immediate — the same check phase aedes'
 * immediates ran in, so write batching's sweep still follows — in the order
 * they were routed, and each callback runs right after its write was issued
 * (aedes' callback also means "written", never "flushed"). The decision
 * (no-local, dedupe, authorizeForward) is still made when the message is
 * routed. A QoS 1/2 delivery to a session without a stored copy (a clean
 * session, a retained message) is numbered and written in the batch; one to
 * a persistent session is recorded (outgoingUpdate) before it is written, from
 * an immediate of its own as in aedes, and closes the open batch
 * (closeBatch), so a delivery routed after it goes out after it.
 */
class Batch {
  /**
   * Deliveries in the batch. The arrays keep their length and storage between
   * uses, slots cleared: `length = 0` lets V8 drop an array's storage, and every
   * batch then grew all four again (~45 B per message at 10 per batch).
   */
  size = 0;
  readonly clients: (SendingClient | undefined)[] = [];
  /** null: nothing to write (refused), only the callback to call. */
  readonly packets: (AedesPublishPacket | null | undefined)[] = [];
  readonly callbacks: ((() => void) | undefined)[] = [];
  /** Whether the delivery is through a QoS 1/2 subscription (numbered), else a QoS 0 one. */
  readonly numbered: boolean[] = [];
}
/** The batch deliveries join until its immediate runs or a stored delivery closes it. */
let open: Batch | null = null;
/** Written batches, reused (one or two exist at a time). */
const spare: Batch[] = [];

function join(client: SendingClient, toForward: AedesPublishPacket | null, callback: () => void, numbered: boolean): void {
  let b = open;
  if (b === null) {
    b = open = spare.pop() ?? new Batch();
    setImmediate(writeBatch, b);
  }
  const at = b.size++;
  b.clients[at] = client;
  b.packets[at] = toForward;
  b.callbacks[at] = callback;
  b.numbered[at] = numbered;
}

/** A delivery through a QoS 0 subscription (aedes' deliverQoS0). */
export function sendQoS0(client: SendingClient, packet: AedesPublishPacket, callback: () => void, keepCounterDedupe: boolean): void {
  join(client, forwardable(client, packet, keepCounterDedupe) || null, callback, false);
}

/** A delivery that writes from an immediate of its own is coming: deliveries routed after it go out after it. */
function closeBatch(): void {
  open = null;
}

function writeBatch(b: Batch): void {
  if (open === b) open = null;
  const { clients, packets, callbacks, numbered } = b;
  // (a callback may route more messages: they join a new batch, as this one is closed)
  const n = b.size;
  for (let i = 0; i < n; i++) {
    const toForward = packets[i];
    const callback = callbacks[i]!;
    const client = clients[i]!;
    clients[i] = undefined;
    packets[i] = undefined;
    callbacks[i] = undefined;
    if (toForward === null) {
      callback();
      continue;
    }
    if (numbered[i]) {
      const packet = numberedCopy(client, toForward!);
      packet.writeCallback = callback;
      writeThenCall(client, packet, callback, reportQoS);
    } else writeThenCall(client, toForward!.qos === 0 ? toForward! : downgraded(toForward!, client), callback, reportQoS0);
  }
  b.size = 0;
  if (n > KEPT_BATCH_SLOTS) {
    // a large fan-out's storage is not kept for the next batch
    clients.length = 0;
    packets.length = 0;
    callbacks.length = 0;
    numbered.length = 0;
  }
  if (spare.length < 4) spare.push(b);
}
/** Slots a spare batch keeps (8 B each per array): more are dropped after use. */
const KEPT_BATCH_SLOTS = 1024;

/**
 * The QoS 0 copy aedes writes of a QoS 1/2 message. A message that is QoS 0
 * already is written as it is: the router handed this delivery its own copy
 * (aedes' per-subscription packet), and nothing on the write path changes a
 * PUBLISH it writes (wire-tap.ts: observers may correct a CONNACK only; the
 * MQTT 5 encoder writes a new object), so aedes' second copy only made garbage
 * (~100 B per message at 64 B, bench/README.md "gc9").
 */
function downgraded(toForward: AedesPublishPacket, client: SendingClient): AedesPublishPacket {
  const packet = new AedesPacket<OutgoingPacket>(toForward, client.broker);
  packet.qos = 0;
  return packet;
}

/**
 * aedes' write attempt (lib/write.js): to a connecting or connected client.
 * null: written; false: the socket is full and the caller waits for 'drain';
 * otherwise the error to report.
 */
export function tryWrite(client: SendingClient, packet: object): Error | null | false {
  if (!client.connecting && !client.connected) return new Error("connection closed");
  try {
    return mqttPacket.writeToStream(packet, client.conn) || client.errored ? null : false;
  } catch {
    return new Error("packet received not valid");
  }
}

/**
 * `write` with the callback called at once rather than from another immediate
 * (a full socket still waits for 'drain'); a write error is reported as aedes
 * reports it for that kind of delivery (`report`), never passed to the
 * callback: mqemitter would throw it.
 */
function writeThenCall(client: SendingClient, packet: object, callback: () => void, report: (client: SendingClient, err: Error | null | undefined) => void): void {
  const outcome = tryWrite(client, packet);
  if (outcome === false) {
    client.waitForDrain((err) => {
      report(client, err);
      callback();
    });
    return;
  }
  if (outcome !== null) report(client, outcome);
  callback();
}
/** aedes' deliverQoS0 reports a failed write to the client's own error handler. */
function reportQoS0(client: SendingClient, err: Error | null | undefined): void {
  client._onError(err);
}
/** aedes' writeQoS emits a failed write as the client's 'error'. */
function reportQoS(client: SendingClient, err: Error | null | undefined): void {
  if (err) client.emit("error", err);
}

/** A delivery through a QoS 1/2 subscription (aedes' deliverQoS); a QoS 0 message goes out through the client's QoS 0 path. */
export function sendQoS(client: SendingClient, packet: AedesPublishPacket, callback: () => void, keepCounterDedupe: boolean): void {
  if (packet.qos === 0) return client.deliver0(packet, callback);
  const toForward = forwardable(client, packet, keepCounterDedupe);
  if (!toForward) {
    // Refused: nothing to send; a persistent session's stored identifier for it is released.
    if (client.clean === false) client.broker.persistence.outgoingClearMessageId(client as unknown as Client, packet).then(noop, noop);
    return join(client, null, callback, true);
  }
  if (client.clean || toForward.retain) return join(client, toForward, callback, true);
  closeBatch();
  setImmediate(numberThenStore, client, toForward, callback);
}

/** aedes' QoSPacket: the client's copy, with its next packet identifier and the QoS of its exact-topic subscription if lower. */
function numberedCopy(client: SendingClient, toForward: AedesPublishPacket): OutgoingPacket {
  const packet = new AedesPacket<OutgoingPacket>(toForward, client.broker);
  if (!(toForward as { messageId?: number }).messageId) {
    packet.messageId = client._nextId;
    client._nextId = client._nextId >= 65535 ? 1 : client._nextId + 1;
  } else {
    packet.messageId = (toForward as { messageId?: number }).messageId;
  }
  const clientSub = client.subscriptions[packet.topic];
  if (clientSub && (clientSub.qos || 0) < packet.qos) packet.qos = clientSub.qos as typeof packet.qos;
  return packet;
}


/** A persistent session's delivery: recorded as in flight (outgoingUpdate), then written. */
function numberThenStore(client: SendingClient, toForward: AedesPublishPacket, callback: () => void): void {
  const packet = numberedCopy(client, toForward);
  packet.writeCallback = callback;
  storeThenWrite(client, packet);
}

/** (A function of its own: its closure here would cost every QoS 1/2 delivery a context, stored or not.) */
function storeThenWrite(client: SendingClient, packet: OutgoingPacket): void {
  // As aedes: whatever the store answers is passed on as the error argument.
  const afterStore = (err: unknown = null) => writeQoS(err as Error | null, client, packet);
  client.broker.persistence.outgoingUpdate(client as unknown as Client, packet).then(afterStore, afterStore);
}

function writeQoS(err: Error | null, client: SendingClient, packet: OutgoingPacket): void {
  if (err) {
    client.emit("error", err);
    packet.writeCallback(); // not the error: mqemitter would throw it
    return;
  }
  write(client, packet, (err) => {
    if (err) client.emit("error", err);
    packet.writeCallback();
  });
}

/** aedes' write; a full socket waits for 'drain', otherwise `done` runs on the next turn. */
function write(client: SendingClient, packet: object, done: Done): void {
  const outcome = tryWrite(client, packet);
  if (outcome === false) return client.waitForDrain(done);
  setImmediate(done, outcome);
}
