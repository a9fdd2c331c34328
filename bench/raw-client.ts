/**
 * A minimal MQTT 3.1.1 / 5 client over a raw TCP socket for the load generator:
 * incoming bytes are framed by a FrameScanner; the handshake's packets
 * (CONNACK, SUBACK) are parsed with `mqtt-packet`, while on the measurement
 * path (`onFrames`) the generator reads each frame's few fields in place.
 * PUBLISHes are pre-encoded by the caller and written in batches, PUBACKs are
 * packed into one buffer (one write per client per event-loop turn), so the
 * generator spends its time on the broker's traffic, not on a client
 * library's bookkeeping — and costs every target alike.
 */
import { createConnection, type Socket } from "node:net";
import mqttPacket, { type IPublishPacket, type Packet } from "mqtt-packet";
import { FrameScanner, type FrameHandler } from "./frame-scanner.js";

export interface ConnectOptions {
  port: number;
  clientId: string;
  clean: boolean;
  credentials: { username: string; password: string } | null;
  /** 4 = MQTT 3.1.1 (default), 5 = MQTT 5 (no CONNECT properties but the Topic Alias Maximum below). */
  protocolVersion?: 4 | 5;
  /** MQTT 5: aliases the broker may use on what it sends this client. */
  topicAliasMaximum?: number;
}

export type PacketHandler = (packet: Packet) => void;


export class RawClient {
  readonly socket: Socket;
  private readonly parser: ReturnType<typeof mqttPacket.parser>;
  readonly protocolVersion: 4 | 5;
  private handler: PacketHandler = () => {};
  /** The measurement path: frames handed over unparsed (onFrames). */
  private frames: FrameHandler | null = null;
  private readonly scanner: FrameScanner;
  private pending: Buffer[] = [];
  /** PUBACKs packed for the next flush (4 bytes each). */
  private acks: Buffer | null = null;
  private ackLength = 0;
  /** Called after each chunk of incoming data has been parsed (the generator's pump point). */
  onChunk: () => void = () => {};
  closed = false;
  /** Reads from the socket so far (per message: how batched the broker's writes arrive). */
  reads = 0;
  /** MQTT 5: the broker's Receive Maximum from CONNACK ([MQTT-3.3.4-7]: QoS 1/2 PUBLISHes this client may have unacknowledged); 65535 when absent. */
  receiveMaximum = 65535;

  private constructor(socket: Socket, protocolVersion: 4 | 5) {
    this.socket = socket;
    this.protocolVersion = protocolVersion;
    this.parser = mqttPacket.parser({ protocolVersion });
    socket.setNoDelay(true);
    this.parser.on("packet", (p: Packet) => this.handler(p));
    this.parser.on("error", (err: Error) => socket.destroy(err));
    this.scanner = new FrameScanner(
      (buf, header, body, end, start) => {
        if (this.frames) this.frames(buf, header, body, end, start);
        else this.parser.parse(Buffer.from(buf.subarray(start, end))); // a copy: the scanner reuses buf
      },
      (err) => socket.destroy(err),
    );
    socket.on("close", () => (this.closed = true));
  }

  /** Bytes read from the socket (reads into one reused buffer: `onread`). */
  private received(buf: Buffer, length: number): void {
    this.reads++;
    this.scanner.push(buf, length);
    this.onChunk();
  }

  static connect(opts: ConnectOptions, timeoutMs = 10_000): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      // `onread`: libuv reads into this one buffer and calls back, with no Buffer
      // allocated and no Readable stream machinery per read — per-read cost is
      // most of the generator's when a broker sends each packet in its own segment
      const holder: { client: RawClient | null } = { client: null };
      const readBuffer = Buffer.allocUnsafe(READ_BUFFER);
      const socket = createConnection({
        port: opts.port,
        host: "127.0.0.1",
        onread: {
          buffer: readBuffer,
          callback: (n) => {
            holder.client!.received(readBuffer, n);
            return true;
          },
        },
      });
      const version = opts.protocolVersion ?? 4;
      const client = new RawClient(socket, version);
      holder.client = client;
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
        const code = version === 5 ? p.reasonCode : p.returnCode;
        if (code) return fail(new Error(`${opts.clientId}: connection refused with ${version === 5 ? "reason" : "return"} code ${code}`));
        const receiveMaximum = (p.properties as { receiveMaximum?: number } | undefined)?.receiveMaximum;
        if (version === 5 && receiveMaximum) client.receiveMaximum = receiveMaximum;
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
            protocolVersion: version,
            clientId: opts.clientId,
            clean: opts.clean,
            keepalive: 0,
            ...(opts.credentials ? { username: opts.credentials.username, password: Buffer.from(opts.credentials.password) } : {}),
            // v5: a persistent subscriber's session must outlive the connection (Session Expiry Interval, [MQTT-3.1.2-11])
            ...(version === 5 ? { properties: { ...(opts.clean ? {} : { sessionExpiryInterval: 0xffffffff }), ...(opts.topicAliasMaximum ? { topicAliasMaximum: opts.topicAliasMaximum } : {}) } } : {}),
          }, { protocolVersion: version }),
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
        if (granted >= 0x80) reject(new Error(`subscription to ${topic} refused (SUBACK 0x${granted.toString(16)})`));
        else resolve();
      };
      this.socket.write(mqttPacket.generate({ cmd: "subscribe", messageId: 1, subscriptions: [{ topic, qos }] }, { protocolVersion: this.protocolVersion }));
    });
  }

  /** Route every further packet to `handler`, parsed by mqtt-packet. */
  onPacket(handler: PacketHandler): void {
    this.handler = handler;
  }

  /** Hand every further frame to `handler` unparsed (the measurement path: no allocation per packet). */
  onFrames(handler: FrameHandler): void {
    this.frames = handler;
  }

  /** Queue a PUBACK for the next flush, packed with the others of this turn; returns true when nothing was queued before. */
  queueAck(messageId: number): boolean {
    const first = this.pending.length === 0 && this.ackLength === 0;
    if (!this.acks) this.acks = Buffer.allocUnsafe(ACK_BATCH);
    const b = this.acks;
    const at = this.ackLength;
    b[at] = 0x40; // PUBACK, remaining length 2, packet identifier
    b[at + 1] = 0x02;
    b[at + 2] = messageId >> 8;
    b[at + 3] = messageId & 0xff;
    this.ackLength = at + 4;
    if (this.ackLength === ACK_BATCH) this.takeAcks();
    return first;
  }

  /** Move the packed PUBACKs to the write queue (the socket keeps the buffer: a fresh one is taken for the next). */
  private takeAcks(): void {
    if (this.ackLength === 0) return;
    this.pending.push(this.acks!.subarray(0, this.ackLength));
    this.acks = null;
    this.ackLength = 0;
  }

  /** Queue bytes for the next flush; returns true when the queue was empty (the caller tracks clients to flush). */
  queue(buf: Buffer): boolean {
    this.pending.push(buf);
    return this.pending.length === 1;
  }

  flush(): void {
    this.takeAcks();
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
      this.socket.end(mqttPacket.generate({ cmd: "disconnect" }, { protocolVersion: this.protocolVersion }));
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

/** How a publisher's messages are encoded: the first one may differ (MQTT 5 topic alias: it carries the topic that sets the alias). */
export interface PublishTemplates {
  first: EncodedPublish;
  rest: EncodedPublish;
}

/**
 * A publisher's PUBLISH templates. MQTT 5 messages carry no property but,
 * with `topicAlias`, the Topic Alias: the first message sets it with the
 * topic ([MQTT-3.3.2-12]), the others send an empty topic ([MQTT-3.3.4-?]).
 */
export function encodePublish(topic: string, payload: Buffer, qos: 0 | 1, protocolVersion: 4 | 5 = 4, topicAlias = 0): PublishTemplates {
  const encode = (t: string): EncodedPublish => {
    const packet: IPublishPacket = {
      cmd: "publish",
      topic: t,
      payload,
      qos,
      retain: false,
      dup: false,
      ...(qos ? { messageId: 1 } : {}),
      ...(protocolVersion === 5 && topicAlias ? { properties: { topicAlias } } : {}),
    };
    const bytes = mqttPacket.generate(packet, { protocolVersion });
    // fixed header (type byte + remaining length varint), topic (2 + length), then the packet identifier
    let at = 1;
    while (bytes[at]! & 0x80) at++;
    const messageIdOffset = qos ? at + 1 + 2 + Buffer.byteLength(t) : -1;
    return { bytes, payloadOffset: bytes.length - payload.length, messageIdOffset };
  };
  const first = encode(topic);
  return { first, rest: protocolVersion === 5 && topicAlias ? encode("") : first };
}

/** The reused read buffer per client: as large as one read from a loopback socket usually is. */
const READ_BUFFER = 64 * 1024;

/** PUBACKs per packed buffer: below Buffer.poolSize / 2, so each comes from Node's shared pool. */
const ACK_BATCH = 4 * 512;
