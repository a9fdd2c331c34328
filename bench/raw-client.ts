/**
 * A minimal MQTT 3.1.1 client over a raw TCP socket for the load generator:
 * incoming packets are parsed with `mqtt-packet`; PUBLISHes are pre-encoded by
 * the caller and written in batches (one write per client per event-loop
 * turn), so the generator spends its time on the broker's traffic, not on a
 * client library's bookkeeping.
 */
import { createConnection, type Socket } from "node:net";
import mqttPacket, { type IPublishPacket, type Packet } from "mqtt-packet";

export interface ConnectOptions {
  port: number;
  clientId: string;
  clean: boolean;
  credentials: { username: string; password: string } | null;
}

export type PacketHandler = (packet: Packet) => void;


export class RawClient {
  readonly socket: Socket;
  private readonly parser = mqttPacket.parser({ protocolVersion: 4 });
  private handler: PacketHandler = () => {};
  private pending: Buffer[] = [];
  /** Called after each chunk of incoming data has been parsed (the generator's pump point). */
  onChunk: () => void = () => {};
  closed = false;

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.setNoDelay(true);
    this.parser.on("packet", (p: Packet) => this.handler(p));
    this.parser.on("error", (err: Error) => socket.destroy(err));
    socket.on("data", (chunk: Buffer) => {
      this.parser.parse(chunk);
      this.onChunk();
    });
    socket.on("close", () => (this.closed = true));
  }

  static connect(opts: ConnectOptions, timeoutMs = 10_000): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const socket = createConnection({ port: opts.port, host: "127.0.0.1" });
      const client = new RawClient(socket);
      const timer = setTimeout(() => fail(new Error(`${opts.clientId}: no CONNACK within ${timeoutMs} ms`)), timeoutMs);
      const fail = (err: Error) => {
        clearTimeout(timer);
        socket.destroy();
        reject(err);
      };
      socket.once("error", fail);
      socket.once("close", () => fail(new Error(`${opts.clientId}: connection closed before CONNACK`)));
      client.handler = (p) => {
        if (p.cmd !== "connack") return fail(new Error(`${opts.clientId}: expected CONNACK, got ${p.cmd}`));
        if (p.returnCode !== 0) return fail(new Error(`${opts.clientId}: connection refused with return code ${p.returnCode}`));
        clearTimeout(timer);
        socket.removeAllListeners("error");
        socket.removeAllListeners("close");
        socket.on("close", () => (client.closed = true));
        socket.on("error", () => {});
        client.handler = () => {};
        resolve(client);
      };
      socket.once("connect", () => {
        socket.write(
          mqttPacket.generate({
            cmd: "connect",
            protocolId: "MQTT",
            protocolVersion: 4,
            clientId: opts.clientId,
            clean: opts.clean,
            keepalive: 0,
            ...(opts.credentials ? { username: opts.credentials.username, password: Buffer.from(opts.credentials.password) } : {}),
          }),
        );
      });
    });
  }

  /** Subscribe to one filter; rejects when the broker refuses it (SUBACK 0x80). */
  subscribe(topic: string, qos: 0 | 1, timeoutMs = 10_000): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no SUBACK for ${topic} within ${timeoutMs} ms`)), timeoutMs);
      this.handler = (p) => {
        if (p.cmd !== "suback") return;
        clearTimeout(timer);
        this.handler = () => {};
        const granted = p.granted[0] as number;
        if (granted === 128) reject(new Error(`subscription to ${topic} refused (SUBACK 0x80)`));
        else resolve();
      };
      this.socket.write(mqttPacket.generate({ cmd: "subscribe", messageId: 1, subscriptions: [{ topic, qos }] }));
    });
  }

  /** Route every further packet to `handler` (the measurement path). */
  onPacket(handler: PacketHandler): void {
    this.handler = handler;
  }

  /** Queue bytes for the next flush; returns true when the queue was empty (the caller tracks clients to flush). */
  queue(buf: Buffer): boolean {
    this.pending.push(buf);
    return this.pending.length === 1;
  }

  flush(): void {
    const n = this.pending.length;
    if (n === 0) return;
    if (this.closed) {
      this.pending = [];
      return;
    }
    if (n === 1) {
      this.socket.write(this.pending[0]!);
    } else {
      this.socket.cork();
      for (let i = 0; i < n; i++) this.socket.write(this.pending[i]!);
      this.socket.uncork();
    }
    this.pending = [];
  }

  disconnect(): Promise<void> {
    return new Promise((resolve) => {
      if (this.closed) return resolve();
      this.socket.once("close", () => resolve());
      this.socket.end(mqttPacket.generate({ cmd: "disconnect" }));
      setTimeout(() => {
        this.socket.destroy();
        resolve();
      }, 1000).unref();
    });
  }
}

/** A PUBLISH packet as bytes plus where its payload starts, for stamping without re-encoding. */
export interface EncodedPublish {
  bytes: Buffer;
  payloadOffset: number;
  /** Offset of the 2-byte packet identifier (QoS 1), or -1. */
  messageIdOffset: number;
}

export function encodePublish(topic: string, payload: Buffer, qos: 0 | 1): EncodedPublish {
  const packet: IPublishPacket = { cmd: "publish", topic, payload, qos, retain: false, dup: false, ...(qos ? { messageId: 1 } : {}) };
  const bytes = mqttPacket.generate(packet);
  const payloadOffset = bytes.length - payload.length;
  return { bytes, payloadOffset, messageIdOffset: qos ? payloadOffset - 2 : -1 };
}

const PUBACKS: Buffer[] = [];
/** PUBACK for a packet identifier (cached: a subscriber acknowledges every QoS 1 delivery). */
export function puback(messageId: number): Buffer {
  let b = PUBACKS[messageId];
  if (!b) {
    b = Buffer.from([0x40, 0x02, messageId >> 8, messageId & 0xff]);
    PUBACKS[messageId] = b;
  }
  return b;
}
