/**
 * One bridge: what crosses (mapping + the plugin chain), the durable queue,
 * the paced drain to the upstream, and inbound messages published locally.
 *
 * Outbound, per message: `out` mapping → deliver chain as client
 * `$bridge/<name>` (so acl/filter/transform plugins decide what leaves) → the
 * LMDB queue (the local publisher's PUBACK/PUBREC waits for this) → sent when
 * the window has room → removed on PUBACK/PUBCOMP. A connection that goes
 * down loses nothing: the queue is rewound and everything unacknowledged goes
 * out again, oldest first, with DUP and the same packet id.
 *
 * Inbound: remote PUBLISH → `in` mapping → publish chain as client
 * `$bridge/<name>` → local publish; the upstream gets its PUBACK only once the
 * local publish completed (stored for offline persistent sessions).
 *
 * QoS 2 is exactly once both ways while the upstream keeps the session
 * (qos2.ts); MQTT 5 properties cross when the bridge speaks v5 (properties.ts).
 */
import type { Aedes, PublishPacket } from "aedes";
import type { IConnackPacket, IPublishPacket, IStore, MqttClient } from "mqtt";
import type { Logger } from "pino";
import { emptyMessage, type PluginChain } from "../../host/index.js";
import type { BridgeConfig } from "./config.js";
import { zeroCounters, type BridgeCounters } from "./counters.js";
import { EchoMemory } from "./echo.js";
import { crossing, deadlineOf, secondsLeft, type CrossingProperties } from "./properties.js";
import { crossChain, type CrossingFields } from "./plugin-step.js";
import { InboundQoS2Store, OutgoingSession, type ReleaseTracker } from "./qos2.js";
import { BridgeQueue, type MessageExtras } from "./queue.js";
import { QueueFullLog } from "./queue-full.js";
import { remoteFilters, toLocal, toRemote } from "./topics.js";
import { Upstream, type ChosenIds } from "./upstream.js";

export interface BridgeDeps {
  aedes: Aedes;
  chain: PluginChain | null;
  logger: Logger;
  lmdb?: { root: import("lmdb").RootDatabase; durability: "sync" | "async" };
  /** Mark a packet about to be published locally as having come over this bridge. */
  markInbound(packet: object, bridge: Bridge): void;
}

export type { BridgeCounters } from "./counters.js";

/** Pacing: at most this many sends per event-loop turn, so local clients are served between batches. */
const SENDS_PER_TURN = 500;
/**
 * Packet ids of queued messages are 1..ID_SPACE, derived from the queue
 * sequence; ids above it are left to mqtt.js for SUBSCRIBE. Two messages in
 * flight at once never share an id: sending waits while the span from the
 * oldest unacknowledged message reaches ID_SPACE.
 */
const ID_SPACE = 65_000;

export class Bridge {
  readonly queue: BridgeQueue;
  readonly upstream: Upstream;
  readonly clientId: string;
  readonly counters: BridgeCounters = zeroCounters();
  private client: MqttClient | null = null;
  private ids: ChosenIds | null = null;
  /** Bumped on every connect/disconnect: callbacks of an older connection are ignored. */
  private generation = 0;
  /** seq → when sent; insertion order is send order, so the first entry is the oldest. */
  private readonly inflight = new Map<number, number>();
  /**
   * The QoS 2 messages whose PUBREL goes out again on this connection attempt:
   * their PUBCOMP is under ackTimeoutMs like any PUBLISH's acknowledgement (a
   * stalled upstream is dropped, and the PUBREL resent on the next connection).
   * mqtt.js sends them one at a time, each after the previous PUBCOMP, so the
   * timeout runs from the resume's last progress (CONNACK, then each PUBCOMP).
   */
  private readonly resumedSeqs = new Set<number>();
  private resumeProgressAt = 0;
  private window: number;
  private drainScheduled = false;
  private readonly timer: NodeJS.Timeout;
  private readonly fullLog: QueueFullLog;
  /** v3.1.1 has no no-local: what this bridge sent up, to recognise it coming back. */
  private readonly recentOut: EchoMemory;
  private readonly msg = emptyMessage();
  private closed = false;
  /** Packet id → queue seq of the QoS 2 messages sent on the current connection and not yet complete. */
  private readonly qos2ById = new Map<number, number>();
  /** Inbound QoS 2 messages between PUBREC and PUBREL, kept across connections and restarts. */
  readonly inbound: InboundQoS2Store;
  /** The QoS 2 tracker of the current connection attempt (resumed PUBRELs answer to it only). */
  private session: ReleaseTracker | null = null;

  constructor(
    readonly cfg: BridgeConfig,
    private readonly deps: BridgeDeps,
  ) {
    this.clientId = `$bridge/${cfg.name}`;
    this.window = cfg.inflight;
    this.recentOut = new EchoMemory(cfg.echoWindowMs);
    this.fullLog = new QueueFullLog(cfg, deps.logger);
    this.queue = new BridgeQueue(cfg.name, cfg, deps.lmdb);
    this.inbound = new InboundQoS2Store(cfg.name, deps.lmdb);
    if (this.queue.depth > 0) deps.logger.info({ bridge: cfg.name, queued: this.queue.depth }, `bridge ${cfg.name}: ${this.queue.depth} messages queued from before the restart`);
    this.upstream = new Upstream(cfg, deps.logger, {
      connected: (client, connack, _url, ids) => this.onConnected(client, connack, ids),
      disconnected: () => this.onDisconnected(),
      message: (packet, done) => this.onMessage(packet, done),
      stores: () => this.sessionStores(),
      connack: (connack) => this.onConnack(connack),
    });
    this.timer = setInterval(() => this.watch(), Math.min(1000, Math.max(50, cfg.ackTimeoutMs / 4)));
    this.timer.unref();
  }

  start(): void {
    this.upstream.start();
  }

  get connected(): boolean {
    return this.upstream.connected;
  }

  get inflightCount(): number {
    return this.inflight.size;
  }

  get sendWindow(): number {
    return this.window;
  }

  /** Whether some `out` mapping takes this local topic (cheap pre-check on the publish path). */
  wants(topic: string): boolean {
    return this.cfg.out.length > 0 && toRemote(this.cfg.out, topic) !== null;
  }

  /**
   * A local message that may cross. Resolves once it is stored in the queue (or
   * decided not to cross); QoS 0 resolves without waiting for the disk.
   */
  async offer(topic: string, payload: Buffer, qos: number, retain: boolean, publisher: string, v5?: { properties?: Record<string, unknown>; messageExpiry?: number }): Promise<void> {
    // Never inside the caller's synchronous stack: this may run from within another
    // chain call (a plugin's extra publish), and the chain's outcome object is shared.
    await null;
    // Even while closing: the message was accepted locally, so it goes into the queue (sent after the restart).
    const mapped = toRemote(this.cfg.out, topic);
    if (!mapped) return;
    let remoteTopic = mapped.topic;
    let body = payload;
    let q = Math.min(qos, mapped.qos) as 0 | 1 | 2;
    // Properties cross only to a v5 upstream; the expiry counts down in the queue either way.
    let fields: CrossingFields | null = v5 && (v5.properties || v5.messageExpiry !== undefined) ? { ...v5 } : null;
    if (fields && this.cfg.protocolVersion !== 5) delete fields.properties;
    const { chain } = this.deps;
    if (chain?.has("deliver")) {
      const leaving = { topic, payload, qos: q, retain, dup: false, peer: publisher, fields: fields ?? {} };
      const out = crossChain(chain, "deliver", this.msg, this.clientId, this.cfg.protocolVersion, leaving);
      if (!out) {
        this.counters.filtered.out++;
        return;
      }
      if (out.modified) {
        // A rewritten topic is mapped again; outside every mapping it keeps the matched one's remote prefix.
        remoteTopic = toRemote(this.cfg.out, out.topic)?.topic ?? mapped.prefix + out.topic;
        body = out.payload;
        q = out.qos; // the retain flag stays the publisher's
      }
      if (out.fields) fields = out.fields;
    }
    const extras: MessageExtras | undefined = fields
      ? { properties: this.cfg.protocolVersion === 5 ? crossing(fields.properties) : undefined, expiresAt: fields.messageExpiry ?? deadlineOf(fields.properties) }
      : undefined;
    const r = this.queue.enqueue(remoteTopic, body, q, retain, extras);
    if (!r.stored) this.full("drop-new", 1);
    else if (r.dropped > 0) this.full("drop-oldest", r.dropped);
    else if (this.fullLog.full) this.fullLog.roomAgain();
    this.scheduleDrain();
    if (q === 0) {
      r.durable.catch((err: Error) => this.deps.logger.warn({ bridge: this.cfg.name, err: err.message }, "bridge queue write failed"));
      return;
    }
    await r.durable;
  }

  private full(policy: "drop-oldest" | "drop-new", n: number): void {
    this.counters.dropped[policy] += n;
    this.fullLog.dropped(policy, n, this.queue);
  }

  private scheduleDrain(): void {
    if (this.drainScheduled || !this.client) return;
    this.drainScheduled = true;
    setImmediate(() => {
      this.drainScheduled = false;
      this.drain();
    });
  }

  private drain(): void {
    const client = this.client;
    if (!client || this.closed) return;
    let budget = SENDS_PER_TURN;
    const expiredBefore = this.queue.expired;
    while (this.inflight.size < this.window && budget > 0) {
      // The oldest queued message may be in flight or awaiting PUBCOMP: its id is still taken.
      const oldest = this.queue.oldestSeq;
      const upcoming = this.queue.peekSeq();
      if (upcoming === null || (oldest !== null && upcoming - oldest >= ID_SPACE)) break;
      const m = this.queue.next();
      if (!m) break;
      budget--;
      this.send(client, m);
    }
    this.counters.dropped.expired += this.queue.expired - expiredBefore;
    if (budget === 0) this.scheduleDrain();
  }

  /** mqtt.js session stores for a new connection attempt (qos2.ts). */
  private sessionStores(): { outgoingStore: IStore; incomingStore: IStore } {
    const resumed = new Map<number, number>();
    const tracker: ReleaseTracker = {
      released: (id) => {
        const seq = this.qos2ById.get(id);
        return seq === undefined ? Promise.resolve() : this.queue.markReleased(seq);
      },
      resumable: () =>
        this.queue.releasedSeqs().map((seq) => {
          const id = idOf(seq);
          resumed.set(id, seq);
          this.resumedSeqs.add(seq);
          this.resumeProgressAt = Date.now();
          this.counters.pubrelResent++;
          return id;
        }),
      completed: (id) => {
        const seq = resumed.get(id);
        if (seq === undefined || this.session !== tracker) return;
        resumed.delete(id);
        this.resumedSeqs.delete(seq);
        this.resumeProgressAt = Date.now();
        this.counters.forwarded++;
        this.queue.ack(seq);
        this.scheduleDrain();
      },
    };
    this.session = tracker;
    this.resumedSeqs.clear(); // a new attempt: what an earlier one resumed is resumed again (or published, session lost)
    return { outgoingStore: new OutgoingSession(tracker), incomingStore: this.inbound };
  }

  /** Before mqtt.js resumes the session: if the upstream lost it, nothing can be resumed. */
  private onConnack(connack: IConnackPacket): void {
    if (connack.sessionPresent) return;
    // [MQTT-4.4.0-1] applies to a kept session only. Without one, a QoS 2 message whose PUBREC arrived
    // goes out again as a PUBLISH (it may be a duplicate at the upstream; not sending it could lose it).
    const n = this.queue.forgetReleased();
    if (n > 0) this.deps.logger.warn({ bridge: this.cfg.name, messages: n }, `bridge ${this.cfg.name}: the upstream did not keep the session; ${n} QoS 2 messages awaiting PUBCOMP are published again (exactly-once needs a kept session)`);
    this.inbound.clear();
  }

  private send(client: MqttClient, m: NonNullable<ReturnType<BridgeQueue["next"]>>): void {
    const gen = this.generation;
    if (m.dup) this.counters.resent++;
    this.inflight.set(m.seq, Date.now());
    if (this.echoFilterOn() && this.cfg.in.length) this.recentOut.remember(m.topic, m.payload);
    const id = idOf(m.seq);
    if (m.qos === 2) this.qos2ById.set(id, m.seq);
    const done = (err?: Error & { code?: number }) => {
      if (gen !== this.generation) return; // that connection is gone; the message goes out again
      this.inflight.delete(m.seq);
      if (m.qos === 2) this.qos2ById.delete(id);
      if (err) {
        // The upstream answered with a failure reason code (v5): it will not take this message.
        this.counters.dropped.rejected++;
        this.deps.logger.warn({ bridge: this.cfg.name, topic: m.topic, err: err.message }, `bridge ${this.cfg.name}: upstream refused a message on ${m.topic}: ${err.message}`);
      } else {
        this.counters.forwarded++;
        this.counters.bytesOut += m.payload.length;
      }
      this.queue.ack(m.seq);
      this.scheduleDrain();
    };
    // [MQTT-4.4.0-1] a resend reuses the packet identifier: derived from the sequence number.
    if (m.qos > 0) this.ids!.push(id);
    const properties = this.cfg.protocolVersion === 5 ? outgoingProperties(m.properties, m.expiresAt) : undefined;
    client.publish(m.topic, m.payload, { qos: m.qos, retain: m.retain, dup: m.dup && m.qos > 0, ...(properties ? { properties } : {}) }, (err) => {
      // mqtt.js reports a closed connection as an error too; only a live connection's answer counts.
      if (err && !client.connected) return;
      done(err as (Error & { code?: number }) | undefined);
    });
  }

  private onConnected(client: MqttClient, connack: IConnackPacket, ids: ChosenIds): void {
    this.generation++;
    this.client = client;
    this.ids = ids;
    this.inflight.clear();
    this.qos2ById.clear();
    // [MQTT-3.3.4-9] v5: never more unacknowledged QoS 1/2 PUBLISHes than the remote's Receive Maximum.
    const receiveMaximum = connack.properties?.receiveMaximum;
    this.window = Math.max(1, Math.min(this.cfg.inflight, receiveMaximum ?? Infinity));
    const subs = remoteFilters(this.cfg.in);
    if (subs.length) {
      const v5 = this.cfg.protocolVersion === 5;
      const topics = Object.fromEntries(subs.map((s) => [s.topic, v5 ? { qos: s.qos, nl: true, rap: true } : { qos: s.qos }]));
      client.subscribe(topics as Parameters<MqttClient["subscribe"]>[0] & object, (err, granted) => {
        if (err) this.deps.logger.warn({ bridge: this.cfg.name, err: err.message }, `bridge ${this.cfg.name}: subscribing at the upstream failed`);
        for (const g of granted ?? []) {
          if (g.qos === 128 || (typeof g.qos === "number" && g.qos >= 0x80)) this.deps.logger.warn({ bridge: this.cfg.name, topic: g.topic }, `bridge ${this.cfg.name}: upstream refused the subscription to ${g.topic}`);
        }
      });
    }
    this.queue.rewind();
    this.scheduleDrain();
  }

  private onDisconnected(): void {
    this.generation++;
    this.client = null;
    this.ids = null;
    this.session = null;
    this.inflight.clear();
    this.resumedSeqs.clear();
    this.qos2ById.clear();
    this.queue.rewind();
  }

  /** Every tick: a frozen upstream stops acknowledging; expire echo records. */
  private watch(): void {
    // How far sending got, for DUP after a restart: once per tick, not per send (a lagging mark only costs a DUP flag).
    this.queue.persistSentMark();
    // The oldest unanswered PUBLISH, or resumed PUBREL ([MQTT-4.4.0-1]: resent on the next connection).
    // mqtt.js reports "connect" only once every resumed PUBREL is complete, so these are timed from CONNACK on.
    const sent = this.inflight.values().next();
    const sentAt = sent.done ? Infinity : sent.value;
    const resumeAt = this.resumedSeqs.size ? this.resumeProgressAt : Infinity;
    const oldest = Math.min(sentAt, resumeAt);
    if (Date.now() - oldest > this.cfg.ackTimeoutMs) {
      this.counters.ackTimeouts++;
      const what = resumeAt < sentAt ? "PUBCOMP for a resumed PUBREL" : "acknowledgement";
      this.upstream.drop(`no ${what} from the upstream for ${Math.round((Date.now() - oldest) / 1000)} s (ackTimeoutMs ${this.cfg.ackTimeoutMs})`);
    }
    this.counters.dropped.expired += this.queue.dropExpired();
    this.recentOut.expire();
  }

  /**
   * The topic+payload echo heuristic, for an upstream that may send the bridge's
   * own messages back: "auto" only over MQTT 3.1.1 when the upstream refused the
   * bridge flag (with it, Mosquitto and wasmq never echo; v5 has no-local).
   */
  echoFilterOn(): boolean {
    const mode = this.cfg.echoFilter;
    if (mode !== "auto") return mode === "on";
    return this.cfg.protocolVersion === 4 && !this.upstream.bridgeFlag;
  }

  private onMessage(packet: IPublishPacket, done: (err?: Error) => void): void {
    const payload = Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload);
    if (this.echoFilterOn() && this.recentOut.isEcho(packet.topic, payload)) {
      this.counters.echoes++;
      return done();
    }
    const mapped = toLocal(this.cfg.in, packet.topic);
    if (!mapped || this.closed) return done();
    let topic = mapped.topic;
    let body = payload;
    let qos = Math.min(packet.qos, mapped.qos) as 0 | 1 | 2;
    let retain = packet.retain;
    // v5 upstream: the message's properties cross; its expiry keeps counting down here ([MQTT-3.3.2-6]).
    let fields: CrossingFields = {};
    const properties = crossing(packet.properties as Record<string, unknown> | undefined);
    if (properties) fields.properties = properties as Record<string, unknown>;
    const expiresAt = deadlineOf(packet.properties as Record<string, unknown> | undefined);
    if (expiresAt !== undefined) fields.messageExpiry = expiresAt;
    const { chain } = this.deps;
    if (chain?.has("publish")) {
      // The plugin sees the v5 fields as the upstream sent them (the bridge's protocol level).
      const out = crossChain(chain, "publish", this.msg, this.clientId, this.cfg.protocolVersion, { topic, payload: body, qos, retain, dup: packet.dup, peer: "", fields });
      if (!out) {
        this.counters.filtered.in++;
        return done(); // acknowledged upstream, published nowhere: the plugin's decision
      }
      ({ topic, payload: body, qos, retain } = out);
      if (out.fields) fields = out.fields;
    }
    const local: PublishPacket & { properties?: Record<string, unknown>; messageExpiry?: number } = { cmd: "publish", topic, payload: body, qos, retain, dup: false };
    if (fields.properties && Object.keys(fields.properties).length) local.properties = fields.properties;
    if (fields.messageExpiry !== undefined) local.messageExpiry = fields.messageExpiry;
    this.deps.markInbound(local, this);
    this.deps.aedes.publish(local, (err?: Error) => {
      if (err) {
        this.deps.logger.warn({ bridge: this.cfg.name, topic, err: err.message }, `bridge ${this.cfg.name}: local publish of an inbound message failed`);
        return done(err);
      }
      this.counters.received++;
      this.counters.bytesIn += body.length;
      done();
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    this.queue.persistSentMark();
    await this.upstream.stop();
  }
}

/** Packet id of a queued message: derived from its sequence number, so a resend reuses it. */
function idOf(seq: number): number {
  return (seq % ID_SPACE) + 1;
}

/** PUBLISH properties for a v5 upstream: the crossing ones plus what is left of the expiry interval. */
function outgoingProperties(props: CrossingProperties | undefined, expiresAt: number | undefined): Record<string, unknown> | undefined {
  if (!props && expiresAt === undefined) return undefined;
  const out: Record<string, unknown> = { ...props };
  if (expiresAt !== undefined) out.messageExpiryInterval = Math.max(1, secondsLeft(expiresAt));
  return out;
}
