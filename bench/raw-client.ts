/**
 * A minimal MQTT 3.1.1 client over a raw TCP socket for the load generator.
 * The handshake (CONNECT/CONNACK, SUBSCRIBE/SUBACK) is generated and parsed
 * with `mqtt-packet`. The measured traffic is not: PUBLISHes are pre-encoded by
 * the caller and written in batches, and incoming PUBLISH and PUBACK frames are
 * read by a frame scanner that hands over the payload without building packet
 * objects — with `mqtt-packet`'s parser on that path, the generator used a full
 * core at ~80k deliveries/s in the fan-out scenario and became the limit.
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

/** The measurement path: what the frame scanner reports. */
export interface FrameHandlers {
  publish(payload: Buffer, qos: number, messageId: number): void;
  puback(messageId: number): void;
}

export class ProtocolError extends Error {}

export class RawClient {
  readonly socket: Socket;
  private readonly parser = mqttPacket.parser({ protocolVersion: 4 });
  private handler: PacketHandler = () => {};
  private pending: Buffer[] = [];
  /** Called after each chunk of incoming data has been parsed (the generator's pump point). */
  onChunk: () => void = () => {};
  closed = false;

  private frames: FrameHandlers | null = null;
  /** Bytes of an incomplete frame, kept until the rest arrives. */
  private partial: Buffer | null = null;

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.setNoDelay(true);
    this.parser.on("packet", (p: Packet) => this.handler(p));
    this.parser.on("error", (err: Error) => socket.destroy(err));
    socket.on("data", (chunk: Buffer) => {
      if (this.frames) this.scan(chunk);
      else this.parser.parse(chunk);
      this.onChunk();
    });
    socket.on("close", () => (this.closed = true));
  }

  /**
   * Switch incoming data to the frame scanner (after the handshake, when the
   * broker sends only PUBLISH and PUBACK). Any other packet type is a protocol
   * error here and closes the connection.
   */
  scanFrames(handlers: FrameHandlers): void {
    this.frames = handlers;
  }

  private scan(chunk: Buffer): void {
    const buf = this.partial ? Buffer.concat([this.partial, chunk]) : chunk;
    this.partial = null;
    const end = buf.length;
    let off = 0;
    while (off < end) {
      // Fixed header: type/flags byte, then the remaining length (1–4 bytes, 7 bits each).
      let i = off + 1;
      let len = 0;
      let mult = 1;
      let complete = false;
      while (i < end && i - off <= 4) {
        const b = buf[i++]!;
        len += (b & 127) * mult;
        mult *= 128;
        if ((b & 128) === 0) {
          complete = true;
          break;
        }
      }
      if (!complete || i + len > end) {
        if (i - off > 4 && !complete) return void this.socket.destroy(new ProtocolError("malformed remaining length"));
        break;
      }
      const header = buf[off]!;
      const type = header >> 4;
      if (type === 3) {
        const qos = (header >> 1) & 3;
        let p = i + 2 + buf.readUInt16BE(i);
        let id = 0;
        if (qos > 0) {
          id = buf.readUInt16BE(p);
          p += 2;
        }
        this.frames!.publish(buf.subarray(p, i + len), qos, id);
      } else if (type === 4 && len === 2) {
        this.frames!.puback(buf.readUInt16BE(i));
      } else {
        return void this.socket.destroy(new ProtocolError(`unexpected packet type ${type} during the measurement`));
      }
      off = i + len;
    }
    if (off < end) this.partial = buf.subarray(off);
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
