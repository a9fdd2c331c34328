/**
 * A client's SUBSCRIBE and UNSUBSCRIBE take effect in its packet order.
 *
 * aedes handles every packet parsed from one socket read concurrently
 * (lib/client.js `enqueue`: `handle(client, packet, nextBatch)` per packet;
 * the socket is read again when they have all called back). A SUBSCRIBE or
 * UNSUBSCRIBE then races the PUBLISHes sent around it by the same client:
 * - SUBSCRIBE q, PUBLISH q x, UNSUBSCRIBE q, PUBLISH q y in one chunk
 *   delivered y too, although the server MUST stop adding new messages for
 *   the client once it has the UNSUBSCRIBE [MQTT-3.10.4-2];
 * - PUBLISH r (retained, QoS 0) then SUBSCRIBE r delivered the message twice
 *   (live, and as the retained copy) — a QoS 0 message delivered twice.
 *
 * Here SUBSCRIBE and UNSUBSCRIBE are barriers in the client's packet order
 * (Mosquitto's behaviour, which handles a connection's packets one by one):
 * a barrier starts only when every earlier packet of that client has called
 * back, and no later packet starts until the barrier has. Everything else
 * keeps aedes' concurrency (PUBLISH/PUBACK pipelining is the hot path).
 *
 * aedes' `enqueue` (one function, the parser's 'packet' listener) is swapped
 * in place for `enqueueInOrder`, which calls aedes' own `handle`. To know
 * when the earlier packets have finished, the packets it starts are counted:
 * a `PacketOrder` on the client's state, created when a packet starts and
 * dropped again when nothing is running or held, so an idle connection
 * carries one null field. aedes' own bookkeeping is kept: every packet counts
 * once in `_parsingBatch` and calls `_nextBatch` once when done (that is when
 * aedes reads the socket again, so held packets are also backpressure).
 *
 * The CONNECT itself is not counted: its handling ends only after a
 * returning session's stored queue has been replayed (in a cluster whose
 * Redis is down, when Redis is back), and aedes handles the packets sent after
 * the CONNACK meanwhile; so does this. Packets sent before the CONNACK (aedes
 * queues them and handles them all at once on 'connected') are held here in
 * order instead, under aedes' queue limit, and start when the client is
 * connected. A closed client's held packets are dropped unhandled.
 *
 * A barrier that does not call back within `limits.subscribeTimeoutMs` is
 * answered with failure, undone and released by barrier-deadline.ts, so a
 * SUBSCRIBE stuck on its store cannot hold the client's later packets.
 */
import type { EventEmitter } from "node:events";
import type { Client } from "aedes";
import { stateOf } from "./client-state.js";
import { deadlineOf } from "./barrier-deadline.js";
import { handlePacket } from "./lean-publish.js";

interface Packet {
  cmd: string;
}

type Done = (err?: Error | null) => void;
type Handle = (client: Client, packet: Packet, done: Done) => void;

/** The aedes client fields this reads (aedes 1.2: lib/client.js). */
interface OrderedClient extends EventEmitter {
  closed: boolean;
  conn: { destroyed: boolean };
  connackSent: boolean;
  _parsingBatch: number;
  _nextBatch: Done;
  _parser: EventEmitter & { client: OrderedClient; _queue: Packet[] | null };
  broker: { queueLimit: number };
}

// aedes' packet dispatcher, the one `enqueue` calls (a QoS 0/1 PUBLISH and a PUBACK taken on a shorter path: lean-publish.ts).
const handle = handlePacket as Handle;

/** An idle order's client: none (any use of it would fail loudly). */
const NO_CLIENT = Object.freeze({}) as OrderedClient;

const isBarrier = (packet: Packet) => packet.cmd === "subscribe" || packet.cmd === "unsubscribe";

/** A barrier's `done`: under the broker's subscribeTimeoutMs when one is set (barrier-deadline.ts). */
function barrierDone(order: PacketOrder, packet: Packet): Done {
  const deadline = deadlineOf(order.client.broker);
  return deadline ? deadline.watch(order.client as unknown as Client, packet, order.done) : order.done;
}

/**
 * Orders whose client went idle, for the next client that starts a packet: a
 * client whose packets do not overlap (one PUBLISH per socket read, the
 * common case at a steady rate) went through one PacketOrder, its `done` and
 * its held array per packet, ~140 B of garbage per message (bench/README.md
 * "gc9"). An order is idle only once every packet it started has called back
 * (aedes calls each `done` once), so nothing still holds it for its last client.
 */
const idleOrders: PacketOrder[] = [];
const IDLE_ORDERS_KEPT = 64;

function orderOf(client: OrderedClient): PacketOrder {
  const order = idleOrders.pop();
  if (order === undefined) return new PacketOrder(client);
  order.client = client;
  return order;
}

/** One client's packets in flight and held, while it has any. */
export class PacketOrder {
  /** Packets started here and not yet called back. */
  running = 0;
  /** A SUBSCRIBE/UNSUBSCRIBE is running: nothing else may start. */
  barrier = false;
  /** Packets that wait, in arrival order (the first may be a barrier waiting for `running` to reach 0). */
  readonly held: Packet[] = [];
  /** Packets held before the CONNACK start when aedes reports the client connected. */
  awaitingConnect = false;
  /** `start` is running: a synchronous call back inside it only counts. */
  private starting = false;
  /** The `done` of every packet started here (one function per busy period, not per packet). */
  readonly done: Done;

  constructor(public client: OrderedClient) {
    this.done = (err) => this.finished(err);
  }

  private finished(err: Error | null | undefined): void {
    this.running--;
    this.barrier = false; // only a barrier runs while it is set, so this call back is the barrier's
    const client = this.client;
    // aedes' accounting first: an error is reported (and closes the client: nothing held starts), otherwise the socket is read at 0.
    client._nextBatch(err);
    // That read may have parsed and finished packets of this client at once, leaving this order idle and
    // kept for reuse (or reused): it is then no longer this client's, and there is nothing to start.
    if (!this.starting && this.client === client) this.start();
  }

  /** Start held packets in order, up to a barrier that must wait for the running ones. */
  start(): void {
    const client = this.client;
    this.starting = true;
    try {
      while (this.held.length > 0 && !this.barrier && !this.awaitingConnect) {
        if (client.closed || client.conn.destroyed) {
          this.held.length = 0; // no handler runs after close, nor after a held DISCONNECT destroyed the socket [MQTT-3.14.4-1]
          break;
        }
        const packet = this.held[0]!;
        if (isBarrier(packet)) {
          if (this.running > 0) break; // the last call back starts it
          this.barrier = true;
        }
        this.held.shift();
        this.running++;
        handle(client as unknown as Client, packet, this.barrier ? barrierDone(this, packet) : this.done);
      }
    } finally {
      this.starting = false;
    }
    this.dropIfIdle();
  }

  /** Whether a packet arriving now must wait behind others. */
  blocks(): boolean {
    return this.barrier || this.held.length > 0 || this.awaitingConnect;
  }

  dropIfIdle(): void {
    if (this.client === NO_CLIENT) return; // kept already
    if (this.running === 0 && this.held.length === 0 && !this.awaitingConnect) {
      const st = stateOf(this.client as unknown as Client);
      if (st.order !== this) return;
      st.order = null;
      if (idleOrders.length < IDLE_ORDERS_KEPT) {
        this.client = NO_CLIENT; // a kept order does not keep its last client alive
        idleOrders.push(this);
      }
    }
  }
}

/** `this` is the client: aedes has run the CONNECT series (and handled what it queued itself). */
function startAfterConnect(this: OrderedClient): void {
  const order = stateOf(this as unknown as Client).order;
  if (order === null) return;
  order.awaitingConnect = false;
  order.start();
}

/**
 * aedes' `enqueue` in packet order (same `_parsingBatch` accounting, same
 * pre-CONNACK queue limit and error). `this` is the parser.
 */
function enqueueInOrder(this: OrderedClient["_parser"], packet: Packet): void {
  const client = this.client;
  // The socket is gone (a DISCONNECT [MQTT-3.14.4-1], a refused packet, a limit): what the client
  // sent after it in the same read is not handled — aedes' close, which drops this listener, comes later.
  if (client.conn.destroyed) return;
  const st = stateOf(client as unknown as Client);
  client._parsingBatch++;
  let order = st.order;
  // Already connected, or the first packet (aedes' rule).
  if (client.connackSent || client._parsingBatch === 1) {
    if (packet.cmd === "connect" && (order === null || !order.blocks())) {
      // Not counted: its handling lasts until a returning session's stored queue has been replayed (and
      // while a cluster's Redis is down, until it is back), and aedes handles what follows the CONNACK meanwhile.
      handle(client as unknown as Client, packet, client._nextBatch);
      return;
    }
    if (order === null) order = st.order = orderOf(client);
    else if (order.blocks() || (order.running > 0 && isBarrier(packet))) {
      order.held.push(packet);
      return;
    }
    order.running++;
    if (isBarrier(packet)) {
      order.barrier = true;
      return handle(client as unknown as Client, packet, barrierDone(order, packet));
    }
    handle(client as unknown as Client, packet, order.done);
    return;
  }
  // Before the CONNACK: held until aedes reports the client connected (aedes' own queue stays empty).
  if (order === null) order = st.order = orderOf(client);
  if (!order.awaitingConnect) {
    order.awaitingConnect = true;
    client.once("connected", startAfterConnect);
  }
  if (order.held.length < client.broker.queueLimit) order.held.push(packet);
  else this.emit("error", new Error("Client queue limit reached"));
}

/**
 * Call right after aedes' `handle` created the client, before the layers that
 * put inspectors in front of the parser's listener (inbound-tap.ts wraps
 * whatever listener is there). aedes' `enqueue` is replaced in the parser's
 * own listener table (no listener array, no per-client function).
 */
export function orderPackets(client: Client): void {
  const parser = (client as unknown as OrderedClient)._parser;
  if (parser.client !== (client as unknown as OrderedClient)) return; // not the layout this was written for
  const table = (parser as unknown as { _events?: Record<string, unknown> })._events;
  const current = table?.["packet"];
  if (typeof current === "function" && current.name === "enqueue") table!["packet"] = enqueueInOrder;
}
