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
 */
import { createHash } from "node:crypto";
import type { Aedes, PublishPacket } from "aedes";
import type { IConnackPacket, IPublishPacket, MqttClient } from "mqtt";
import type { Logger } from "pino";
import { emptyMessage, Verdict, type PluginChain } from "../../host/index.js";
import type { BridgeConfig } from "./config.js";
import { BridgeQueue } from "./queue.js";
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

export interface BridgeCounters {
  /** Messages the upstream acknowledged (QoS 1/2) or that were written to it (QoS 0). */
  forwarded: number;
  /** Messages received from the upstream and published locally. */
  received: number;
  /** Messages lost to a full queue (by policy) or refused by the upstream. */
  dropped: { "drop-oldest": number; "drop-new": number; rejected: number };
  /** Messages sent again after a reconnect or restart (DUP). */
  resent: number;
  /** Messages a plugin kept from crossing, by direction. */
  filtered: { out: number; in: number };
  /** Inbound copies of messages this bridge had just sent up (no no-local at the remote). */
  echoes: number;
  bytesOut: number;
  bytesIn: number;
}

/** Pacing: at most this many sends per event-loop turn, so local clients are served between batches. */
const SENDS_PER_TURN = 500;
const ECHO_WINDOW_MS = 60_000;
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
  readonly counters: BridgeCounters = {
    forwarded: 0,
    received: 0,
    dropped: { "drop-oldest": 0, "drop-new": 0, rejected: 0 },
    resent: 0,
    filtered: { out: 0, in: 0 },
    echoes: 0,
    bytesOut: 0,
    bytesIn: 0,
  };
  private client: MqttClient | null = null;
  private ids: ChosenIds | null = null;
  /** Bumped on every connect/disconnect: callbacks of an older connection are ignored. */
  private generation = 0;
  /** seq → when sent; insertion order is send order, so the first entry is the oldest. */
  private readonly inflight = new Map<number, number>();
  private window: number;
  private drainScheduled = false;
  private readonly timer: NodeJS.Timeout;
  private fullSince: number | null = null;
  private droppedWhileFull = 0;
  /** v3.1.1 has no no-local: what this bridge sent up, to recognise it coming back. */
  private readonly recentOut = new Map<string, { count: number; at: number }>();
  private readonly msg = emptyMessage();
  private closed = false;

  constructor(
    readonly cfg: BridgeConfig,
    private readonly deps: BridgeDeps,
  ) {
    this.clientId = `$bridge/${cfg.name}`;
    this.window = cfg.inflight;
    this.queue = new BridgeQueue(cfg.name, cfg, deps.lmdb);
    if (this.queue.depth > 0) deps.logger.info({ bridge: cfg.name, queued: this.queue.depth }, `bridge ${cfg.name}: ${this.queue.depth} messages queued from before the restart`);
    this.upstream = new Upstream(cfg, deps.logger, {
      connected: (client, connack, _url, ids) => this.onConnected(client, connack, ids),
      disconnected: () => this.onDisconnected(),
      message: (packet, done) => this.onMessage(packet, done),
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
  async offer(topic: string, payload: Buffer, qos: number, retain: boolean, publisher: string): Promise<void> {
    // Never inside the caller's synchronous stack: this may run from within another
    // chain call (a plugin's extra publish), and the chain's outcome object is shared.
    await null;
    // Even while closing: the message was accepted locally, so it goes into the queue (sent after the restart).
    const mapped = toRemote(this.cfg.out, topic);
    if (!mapped) return;
    let remoteTopic = mapped.topic;
    let body = payload;
    let q = Math.min(qos, mapped.qos) as 0 | 1 | 2;
    const { chain } = this.deps;
    if (chain?.has("deliver")) {
      const m = this.msg;
      m.topic = topic;
      m.payload = payload;
      m.clientId = this.clientId;
      m.username = null;
      m.password = null;
      m.qos = q;
      m.retain = retain;
      m.dup = false;
      m.flags = 0;
      m.peer = publisher;
      const out = chain.run("deliver", m);
      if (out.verdict !== Verdict.Continue) {
        this.counters.filtered.out++;
        return;
      }
      if (out.modified) {
        // A rewritten topic is mapped again; outside every mapping it keeps the matched one's remote prefix.
        remoteTopic = toRemote(this.cfg.out, m.topic)?.topic ?? mapped.prefix + m.topic;
        body = Buffer.isBuffer(m.payload) ? m.payload : Buffer.from(m.payload);
        q = Math.min(q, m.qos) as 0 | 1 | 2;
      }
    }
    const r = this.queue.enqueue(remoteTopic, body, q, retain);
    if (!r.stored) this.full("drop-new", 1);
    else if (r.dropped > 0) this.full("drop-oldest", r.dropped);
    else if (this.fullSince !== null) this.roomAgain();
    this.scheduleDrain();
    if (q === 0) {
      r.durable.catch((err: Error) => this.deps.logger.warn({ bridge: this.cfg.name, err: err.message }, "bridge queue write failed"));
      return;
    }
    await r.durable;
  }

  private full(policy: "drop-oldest" | "drop-new", n: number): void {
    this.counters.dropped[policy] += n;
    this.droppedWhileFull += n;
    if (this.fullSince === null) {
      this.fullSince = Date.now();
      const what = policy === "drop-new" ? "new messages are dropped" : "the oldest messages are dropped to make room";
      this.deps.logger.warn(
        { bridge: this.cfg.name, queued: this.queue.depth, bytes: this.queue.bytes, maxMessages: this.cfg.maxMessages, maxBytes: this.cfg.maxBytes, onFull: policy },
        `bridge ${this.cfg.name}: queue full (${this.queue.depth} messages, ${this.queue.bytes} bytes): ${what}`,
      );
    }
  }

  private roomAgain(): void {
    this.deps.logger.info(
      { bridge: this.cfg.name, dropped: this.droppedWhileFull, fullForMs: Date.now() - this.fullSince! },
      `bridge ${this.cfg.name}: queue has room again (${this.droppedWhileFull} messages dropped while full)`,
    );
    this.fullSince = null;
    this.droppedWhileFull = 0;
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
    while (this.inflight.size < this.window && budget > 0) {
      const oldest = this.inflight.keys().next();
      const upcoming = this.queue.peekSeq();
      if (upcoming === null || (!oldest.done && upcoming - oldest.value >= ID_SPACE)) break;
      const m = this.queue.next();
      if (!m) break;
      budget--;
      this.send(client, m);
    }
    if (budget === 0) this.scheduleDrain();
  }

  private send(client: MqttClient, m: NonNullable<ReturnType<BridgeQueue["next"]>>): void {
    const gen = this.generation;
    if (m.dup) this.counters.resent++;
    this.inflight.set(m.seq, Date.now());
    if (this.cfg.protocolVersion === 4 && this.cfg.in.length) this.rememberOut(m.topic, m.payload);
    const done = (err?: Error & { code?: number }) => {
      if (gen !== this.generation) return; // that connection is gone; the message goes out again
      this.inflight.delete(m.seq);
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
    if (m.qos > 0) this.ids!.push((m.seq % ID_SPACE) + 1);
    client.publish(m.topic, m.payload, { qos: m.qos, retain: m.retain, dup: m.dup && m.qos > 0 }, (err) => {
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
    this.inflight.clear();
    this.queue.rewind();
  }

  /** Every tick: a frozen upstream stops acknowledging; expire echo records. */
  private watch(): void {
    // How far sending got, for DUP after a restart: once per tick, not per send (a lagging mark only costs a DUP flag).
    this.queue.persistSentMark();
    const oldest = this.inflight.values().next();
    if (!oldest.done && Date.now() - oldest.value > this.cfg.ackTimeoutMs) {
      this.upstream.drop(`no acknowledgement from the upstream for ${Math.round((Date.now() - oldest.value) / 1000)} s (ackTimeoutMs ${this.cfg.ackTimeoutMs})`);
    }
    if (this.recentOut.size) {
      const cutoff = Date.now() - ECHO_WINDOW_MS;
      for (const [k, v] of this.recentOut) if (v.at < cutoff) this.recentOut.delete(k);
    }
  }

  private echoKey(topic: string, payload: Buffer): string {
    return `${topic}\u0000${createHash("sha1").update(payload).digest("base64")}`;
  }

  private rememberOut(topic: string, payload: Buffer): void {
    const key = this.echoKey(topic, payload);
    const e = this.recentOut.get(key);
    if (e) {
      e.count++;
      e.at = Date.now();
    } else this.recentOut.set(key, { count: 1, at: Date.now() });
  }

  private isEcho(topic: string, payload: Buffer): boolean {
    if (this.recentOut.size === 0) return false;
    const key = this.echoKey(topic, payload);
    const e = this.recentOut.get(key);
    if (!e) return false;
    if (--e.count === 0) this.recentOut.delete(key);
    return true;
  }

  private onMessage(packet: IPublishPacket, done: (err?: Error) => void): void {
    const payload = Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload);
    if (this.isEcho(packet.topic, payload)) {
      this.counters.echoes++;
      return done();
    }
    const mapped = toLocal(this.cfg.in, packet.topic);
    if (!mapped || this.closed) return done();
    let topic = mapped.topic;
    let body = payload;
    let qos = Math.min(packet.qos, mapped.qos) as 0 | 1 | 2;
    let retain = packet.retain;
    const { chain } = this.deps;
    if (chain?.has("publish")) {
      const m = this.msg;
      m.topic = topic;
      m.payload = body;
      m.clientId = this.clientId;
      m.username = null;
      m.password = null;
      m.qos = qos;
      m.retain = retain;
      m.dup = packet.dup;
      m.flags = 0;
      m.peer = "";
      const out = chain.run("publish", m);
      if (out.verdict !== Verdict.Continue) {
        this.counters.filtered.in++;
        return done(); // acknowledged upstream, published nowhere: the plugin's decision
      }
      if (out.modified) {
        topic = m.topic;
        body = Buffer.isBuffer(m.payload) ? m.payload : Buffer.from(m.payload);
        qos = Math.min(qos, m.qos) as 0 | 1 | 2;
        retain = m.retain;
      }
    }
    const local: PublishPacket = { cmd: "publish", topic, payload: body, qos, retain, dup: false };
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
