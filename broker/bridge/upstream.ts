/**
 * The connection to the upstream broker: one mqtt.js client per attempt (its
 * own reconnect is off, so failover, backoff and what happens to messages in
 * flight are decided here), URLs tried in turn, jittered exponential backoff
 * between attempts.
 *
 * A connection counts as down when the socket closes, when CONNACK does not
 * come within `connectTimeoutMs`, when PINGRESP does not come within the keep
 * alive (mqtt.js), or when the bridge finds a message unacknowledged for
 * `ackTimeoutMs` and calls `drop()` — a frozen upstream (TCP open, nothing
 * answered, e.g. SIGSTOP) is detected by the last three.
 */
import { readFileSync } from "node:fs";
import mqtt, { type IClientOptions, type IConnackPacket, type IPublishPacket, type IStore, type MqttClient } from "mqtt";
import type { Logger } from "pino";
import type { BridgeConfig } from "./config.js";
import { connectKeepingOrder } from "../protocol/mqtt5/repeated-properties.js";

/** mqtt.js message ids chosen by the bridge (derived from queue sequence numbers, so a resend reuses the id). */
export class ChosenIds {
  private readonly wanted: number[] = [];
  private last = 1;
  private control = 65000;
  /** The id the next QoS 1/2 publish on this client will carry. */
  push(id: number): void {
    this.wanted.push(id);
  }
  allocate(): number | null {
    // Queued messages bring their own id; anything else (SUBSCRIBE) takes one above the messages' range.
    const wanted = this.wanted.shift();
    if (wanted !== undefined) return (this.last = wanted);
    this.control = this.control >= 65535 ? 65001 : this.control + 1;
    return (this.last = this.control);
  }
  getLastAllocated(): number | null {
    return this.last;
  }
  register(): boolean {
    return true;
  }
  deallocate(): void {}
  clear(): void {
    this.wanted.length = 0;
  }
}

/**
 * Mosquitto's try_private: 0x80 added to the protocol level of CONNECT tells the
 * remote this is a bridge (Mosquitto then never sends the bridge's own messages
 * back to it; a wasmq remote also keeps what arrives this way to one hop).
 * mqtt-packet writes the bit when the CONNECT packet has `bridgeMode`, but
 * mqtt.js builds that packet without it. mqtt.js emits its public `packetsend`
 * event with the packet object just before it serialises it, so the flag is set
 * there. test/bridge-flag.test.ts reads the CONNECT's bytes off a raw socket and
 * fails if a future mqtt.js stops honouring this.
 */
function flagAsBridge(client: MqttClient): void {
  client.on("packetsend", (packet) => {
    if (packet.cmd === "connect") (packet as { bridgeMode?: boolean }).bridgeMode = true;
  });
}

/** CONNECT user property by which a v5 bridge tells a wasmq upstream what it is (see broker/bridge/index.ts). */
export const BRIDGE_USER_PROPERTY = "wasmq-bridge";

export interface UpstreamHandlers {
  /** CONNACK received: start sending. */
  connected(client: MqttClient, connack: IConnackPacket, url: string, ids: ChosenIds): void;
  /** The connection is gone (or an attempt failed); what was in flight is unacknowledged. */
  disconnected(reason: string): void;
  /** A PUBLISH from upstream; call done() when it is safe to acknowledge it. */
  message(packet: IPublishPacket, done: (err?: Error) => void): void;
  /**
   * The QoS 1/2 session state mqtt.js keeps for one connection (see qos2.ts):
   * asked for once per attempt, before CONNECT is sent.
   */
  stores(): { outgoingStore: IStore; incomingStore: IStore };
  /** CONNACK arrived, before mqtt.js resumes the session (sends PUBRELs kept in the outgoing store) and before `connected`. */
  connack(connack: IConnackPacket): void;
}

export class Upstream {
  private client: MqttClient | null = null;
  private urlIndex = 0;
  private failures = 0;
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;
  private tryPrivate: boolean;
  private up = false;
  /** Last reason the connection went down or an attempt failed. */
  lastError: string | null = null;
  /** URL of the current (or last) connection. */
  url: string;
  connects = 0;

  constructor(
    private readonly cfg: BridgeConfig,
    private readonly logger: Logger,
    private readonly on: UpstreamHandlers,
  ) {
    this.url = cfg.urls[0]!;
    this.tryPrivate = cfg.protocolVersion === 4 && cfg.bridgeFlag;
  }

  get connected(): boolean {
    return this.up;
  }

  /** Whether connections carry the bridge flag (MQTT 3.1.1 and not refused by the upstream). */
  get bridgeFlag(): boolean {
    return this.cfg.protocolVersion === 4 && this.tryPrivate;
  }

  start(): void {
    this.attempt();
  }

  /** Treat the connection as dead now (e.g. acknowledgements stopped) and reconnect after backoff. */
  drop(reason: string): void {
    if (!this.client) return;
    this.logger.warn({ bridge: this.cfg.name, url: this.url, reason }, `bridge ${this.cfg.name}: ${reason}; reconnecting`);
    this.lost(this.client, reason);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    const c = this.client;
    this.client = null;
    const wasUp = this.up;
    this.up = false;
    // A clean stop sends DISCONNECT, so the will is not published: say "0" first (written before the socket closes).
    if (c && wasUp && this.cfg.notificationTopic) await c.publishAsync(this.cfg.notificationTopic, "0", { qos: 0, retain: true }).catch(() => {});
    if (c) await new Promise<void>((resolve) => c.end(true, {}, () => resolve()));
  }

  private options(): IClientOptions {
    const { cfg } = this;
    const tls = cfg.tls;
    return {
      clientId: cfg.clientId,
      ...(cfg.username !== undefined ? { username: cfg.username } : {}),
      ...(cfg.password !== undefined ? { password: cfg.password } : {}),
      // 0x80 on the protocol level marks a bridge (Mosquitto's try_private): the remote may then skip echoes.
      protocolVersion: cfg.protocolVersion,
      clean: cfg.cleanSession,
      keepalive: cfg.keepaliveSec,
      connectTimeout: cfg.connectTimeoutMs,
      reconnectPeriod: 0,
      resubscribe: false,
      queueQoSZero: false,
      // v5 has no bridge bit (mqtt-packet cannot write it with v5 either): a user property says the same.
      ...(cfg.protocolVersion === 5
        ? { properties: { sessionExpiryInterval: cfg.cleanSession ? 0 : 0xffffffff, userProperties: { [BRIDGE_USER_PROPERTY]: cfg.name } } }
        : {}),
      // Mosquitto's notifications: the upstream publishes "0" (retained) when the link dies without DISCONNECT.
      ...(cfg.notificationTopic ? { will: { topic: cfg.notificationTopic, payload: Buffer.from("0"), qos: 1 as const, retain: true } } : {}),
      ...(tls.ca ? { ca: readFileSync(tls.ca) } : {}),
      ...(tls.cert ? { cert: readFileSync(tls.cert) } : {}),
      ...(tls.key ? { key: readFileSync(tls.key) } : {}),
      rejectUnauthorized: tls.rejectUnauthorized,
      ...(tls.servername ? { servername: tls.servername } : {}),
    };
  }

  private attempt(): void {
    this.timer = null;
    if (this.stopped) return;
    this.url = this.cfg.urls[this.urlIndex]!;
    const ids = new ChosenIds();
    let client: MqttClient;
    try {
      client = mqtt.connect(this.url, { ...this.options(), ...this.on.stores(), messageIdProvider: ids, manualConnect: true });
      if (this.cfg.protocolVersion === 4 && this.tryPrivate) flagAsBridge(client);
      client.on("packetreceive", (packet) => {
        if (packet.cmd === "connack" && this.client === client && !packet.reasonCode && !packet.returnCode) this.on.connack(packet);
      });
      // [MQTT-3.3.2-18] what the upstream sends keeps its user properties' order (mqtt-packet groups them by name)
      connectKeepingOrder(() => client.connect());
    } catch (err) {
      this.failed(`cannot connect to ${this.url}: ${(err as Error).message}`);
      return;
    }
    this.client = client;
    client.handleMessage = (packet, done) => this.on.message(packet, (err) => done(err));
    client.on("error", (err) => {
      if (this.client !== client) return;
      const code = (err as { code?: number }).code;
      // A remote that does not take the bridge flag answers "unacceptable protocol version" (3.1.1: 1, v5: 0x84): retry without it.
      if ((code === 1 || code === 0x84) && this.tryPrivate) {
        this.tryPrivate = false;
        this.logger.info({ bridge: this.cfg.name, url: this.url }, `bridge ${this.cfg.name}: remote refused the bridge flag, connecting as a plain MQTT client`);
      }
      this.lastError = err.message;
    });
    client.on("connect", (connack) => {
      if (this.client !== client) return;
      this.up = true;
      this.failures = 0;
      this.connects++;
      this.lastError = null;
      this.logger.info({ bridge: this.cfg.name, url: this.url, sessionPresent: connack.sessionPresent }, `bridge ${this.cfg.name} connected to ${this.url}`);
      // Before the drain starts, so it takes a control packet id, not a queued message's.
      if (this.cfg.notificationTopic) client.publish(this.cfg.notificationTopic, "1", { qos: 1, retain: true });
      this.on.connected(client, connack, this.url, ids);
    });
    client.on("close", () => {
      if (this.client !== client) return;
      this.lost(client, this.lastError ?? "connection closed");
    });
  }

  private lost(client: MqttClient, reason: string): void {
    if (this.client !== client) return;
    this.client = null;
    const wasUp = this.up;
    this.up = false;
    client.removeAllListeners("close");
    client.on("error", () => {});
    client.end(true);
    if (wasUp) {
      this.logger.warn({ bridge: this.cfg.name, url: this.url, reason }, `bridge ${this.cfg.name} lost its connection to ${this.url}: ${reason}`);
      this.on.disconnected(reason);
    }
    this.failed(reason);
  }

  private failed(reason: string): void {
    this.lastError = reason;
    if (this.stopped) return;
    this.failures++;
    // One line when a streak of failures starts, then one per 20 attempts.
    if (this.failures % 20 === 1) {
      this.logger.warn({ bridge: this.cfg.name, url: this.url, reason, attempts: this.failures }, `bridge ${this.cfg.name}: cannot connect to ${this.url}: ${reason}`);
    }
    // Failover: the next URL on every failure; the backoff grows with each round through the list.
    this.urlIndex = (this.urlIndex + 1) % this.cfg.urls.length;
    const round = Math.floor((this.failures - 1) / this.cfg.urls.length);
    const ceiling = Math.min(this.cfg.reconnectMaxMs, this.cfg.reconnectMinMs * 2 ** Math.min(round, 20));
    // Equal jitter: half fixed, half random, so many edges restarting together spread out.
    const delay = ceiling / 2 + Math.random() * (ceiling / 2);
    this.logger.debug({ bridge: this.cfg.name, reason, next: this.cfg.urls[this.urlIndex], delayMs: Math.round(delay) }, "bridge reconnect scheduled");
    this.timer = setTimeout(() => this.attempt(), delay);
    this.timer.unref();
  }
}
