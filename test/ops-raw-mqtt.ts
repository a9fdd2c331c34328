// A bare MQTT 3.1.1 client over a raw TCP socket, for tests that must send what
// a well-behaved client library never would (bad flags, wrong lengths, a second
// CONNECT) or must watch exactly what the broker writes and when it hangs up.
import { createRequire } from "node:module";
import { connect as tcpConnect, type Socket } from "node:net";

interface MqttPacketModule {
  generate(packet: object): Buffer;
  parser(opts?: object): NodeJS.EventEmitter & { parse(buf: Buffer): number };
}
export const mqttPacket = createRequire(import.meta.url)("mqtt-packet") as MqttPacketModule;

export interface Packet {
  cmd: string;
  returnCode?: number;
  sessionPresent?: boolean;
  messageId?: number;
  topic?: string;
  payload?: Buffer;
  qos?: number;
  retain?: boolean;
  dup?: boolean;
  granted?: number[];
}

export interface ConnectOptions {
  clientId?: string;
  clean?: boolean;
  keepalive?: number;
  username?: string;
  password?: Buffer;
  will?: { topic: string; payload: Buffer; qos?: 0 | 1 | 2; retain?: boolean };
  protocolVersion?: number;
}

export function connectPacket(opts: ConnectOptions = {}): Buffer {
  return mqttPacket.generate({
    cmd: "connect",
    protocolId: "MQTT",
    protocolVersion: opts.protocolVersion ?? 4,
    clean: opts.clean ?? true,
    clientId: opts.clientId ?? `raw-${Math.random().toString(36).slice(2, 10)}`,
    keepalive: opts.keepalive ?? 0,
    ...(opts.username !== undefined ? { username: opts.username } : {}),
    ...(opts.password !== undefined ? { password: opts.password } : {}),
    ...(opts.will ? { will: { qos: 0, retain: false, ...opts.will } } : {}),
  });
}

export class RawClient {
  readonly packets: Packet[] = [];
  closed = false;
  private waiters: { cmd: string | null; resolve: (p: Packet) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }[] = [];
  private closeWaiters: (() => void)[] = [];
  private cursor = 0;

  private constructor(readonly socket: Socket) {
    const parser = mqttPacket.parser({ protocolVersion: 4 });
    parser.on("packet", (p: Packet) => {
      this.packets.push(p);
      this.deliver();
    });
    parser.on("error", () => socket.destroy());
    socket.on("data", (buf) => parser.parse(buf));
    socket.on("error", () => {});
    socket.on("close", () => {
      this.closed = true;
      for (const w of this.waiters) {
        clearTimeout(w.timer);
        w.reject(new Error(`connection closed while waiting for ${w.cmd ?? "a packet"}`));
      }
      this.waiters = [];
      for (const fn of this.closeWaiters) fn();
      this.closeWaiters = [];
    });
  }

  static open(port: number, host = "127.0.0.1"): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const socket = tcpConnect({ port, host, noDelay: true });
      socket.once("connect", () => resolve(new RawClient(socket)));
      socket.once("error", reject);
    });
  }

  /** Open a socket, CONNECT, and return the client with its CONNACK. */
  static async connect(port: number, opts: ConnectOptions = {}): Promise<{ client: RawClient; connack: Packet }> {
    const client = await RawClient.open(port);
    client.write(connectPacket(opts));
    const connack = await client.next("connack");
    return { client, connack };
  }

  write(data: Buffer | object): void {
    if (this.closed) return;
    this.socket.write(Buffer.isBuffer(data) ? data : mqttPacket.generate(data));
  }

  private deliver(): void {
    while (this.waiters.length) {
      const w = this.waiters[0]!;
      const index = this.packets.findIndex((p, i) => i >= this.cursor && (w.cmd === null || p.cmd === w.cmd));
      if (index < 0) return;
      this.cursor = index + 1;
      this.waiters.shift();
      clearTimeout(w.timer);
      w.resolve(this.packets[index]!);
    }
  }

  /** The next packet (of this type) the broker sends after the last one returned. */
  next(cmd: string | null = null, timeoutMs = 5000): Promise<Packet> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w.timer !== timer);
        reject(new Error(`no ${cmd ?? "packet"} within ${timeoutMs} ms; got ${JSON.stringify(this.packets.map((p) => p.cmd))}`));
      }, timeoutMs);
      this.waiters.push({ cmd, resolve, reject, timer });
      this.deliver();
      if (this.closed && this.waiters.some((w) => w.timer === timer)) {
        this.waiters = this.waiters.filter((w) => w.timer !== timer);
        clearTimeout(timer);
        reject(new Error(`connection closed while waiting for ${cmd ?? "a packet"}`));
      }
    });
  }

  /** Resolves when the broker has closed the connection; rejects if it is still open after `timeoutMs` (a safety net, not a speed check). */
  waitClosed(timeoutMs = 10_000): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`connection still open after ${timeoutMs} ms`)), timeoutMs);
      this.closeWaiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /** True if the connection is still open after a round trip (PINGREQ answered). */
  async alive(): Promise<boolean> {
    if (this.closed) return false;
    this.write({ cmd: "pingreq" });
    try {
      await this.next("pingresp", 3000);
      return true;
    } catch {
      return false;
    }
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** Hand-assembled packets: a fixed header byte, then the body with a correct remaining length. */
export function rawPacket(firstByte: number, body: Buffer): Buffer {
  const len: number[] = [];
  let n = body.length;
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    len.push(b);
  } while (n > 0);
  return Buffer.concat([Buffer.from([firstByte, ...len]), body]);
}

/** A length-prefixed MQTT string from raw bytes (may be ill-formed UTF-8 on purpose). */
export function mqttString(bytes: Buffer | string): Buffer {
  const b = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes, "utf8");
  const len = Buffer.alloc(2);
  len.writeUInt16BE(b.length);
  return Buffer.concat([len, b]);
}
