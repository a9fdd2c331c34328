// A bare MQTT 5 client over a raw TCP socket, for what mqtt.js hides or
// refuses to send: topic aliases on the wire, withheld acknowledgements,
// malformed or misplaced properties, and exactly what the broker writes.
import { createRequire } from "node:module";
import { connect as tcpConnect, type Socket } from "node:net";
import mqtt, { type IClientOptions, type MqttClient } from "mqtt";

export interface Packet5 {
  cmd: string;
  reasonCode?: number;
  sessionPresent?: boolean;
  messageId?: number;
  topic?: string;
  payload?: Buffer;
  qos?: number;
  retain?: boolean;
  dup?: boolean;
  granted?: number[];
  properties?: Record<string, unknown>;
}

const V5 = { protocolVersion: 5 };
/** Waits here are for a packet or a close that must come; this only stops a hang. */
const SAFETY_MS = 30_000;
const mqttPacket = createRequire(import.meta.url)("mqtt-packet") as {
  generate(packet: object, opts?: object): Buffer;
  parser(opts?: object): NodeJS.EventEmitter & { parse(buf: Buffer): number };
};

export class Raw5 {
  readonly packets: Packet5[] = [];
  closed = false;
  private waiters: (() => void)[] = [];

  private constructor(readonly socket: Socket) {
    const parser = mqttPacket.parser(V5);
    parser.on("packet", (p: Packet5) => {
      this.packets.push(p);
      this.wake();
    });
    parser.on("error", () => socket.destroy());
    socket.on("data", (buf) => parser.parse(buf));
    socket.on("error", () => {});
    socket.on("close", () => {
      this.closed = true;
      this.wake();
    });
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const fn of w) fn();
  }

  static open(port: number): Promise<Raw5> {
    return new Promise((resolve, reject) => {
      const socket = tcpConnect({ port, host: "127.0.0.1", noDelay: true });
      socket.once("connect", () => resolve(new Raw5(socket)));
      socket.once("error", reject);
    });
  }

  /** Open, send CONNECT (v5) and wait for CONNACK. */
  static async connect(port: number, connect: Record<string, unknown> = {}): Promise<{ c: Raw5; connack: Packet5 }> {
    const c = await Raw5.open(port);
    const packet = { cmd: "connect", protocolId: "MQTT", protocolVersion: 5, clean: true, clientId: `raw5-${Math.random().toString(36).slice(2, 10)}`, keepalive: 0, ...connect };
    if (packet.clientId === "" && packet.clean === false) {
      // mqtt-packet refuses to build this (a 3.1.1 rule); v5 allows it ([MQTT-3.1.3-6]): clear the Clean Start flag by hand
      const buf = mqttPacket.generate({ ...packet, clean: true }, V5);
      buf[9]! &= ~0x02; // fixed header (2 bytes) + "MQTT" (6) + level (1) → connect flags
      c.sendRaw(buf);
    } else c.send(packet);
    const connack = await c.next("connack");
    return { c, connack };
  }

  send(packet: Record<string, unknown>): void {
    this.socket.write(mqttPacket.generate(packet, V5));
  }

  sendRaw(buf: Buffer): void {
    this.socket.write(buf);
  }

  /** Wait for a packet matching `cmd` (and `pred`) that arrived since the last one taken; a safety timeout against a hang (a loaded machine can take seconds). */
  async next(cmd: string, pred: (p: Packet5) => boolean = () => true): Promise<Packet5> {
    const deadline = Date.now() + SAFETY_MS;
    for (;;) {
      const found = this.packets.find((p) => p.cmd === cmd && pred(p) && !taken.has(p));
      if (found) {
        taken.add(found);
        return found;
      }
      if (this.closed) throw new Error(`closed while waiting for ${cmd}; got ${this.packets.map((p) => p.cmd).join(",")}`);
      if (Date.now() > deadline) throw new Error(`no ${cmd}; got ${this.packets.map((p) => p.cmd).join(",")}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 100);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  waitClosed(): Promise<void> {
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error("still open")), SAFETY_MS);
      const check = () => {
        if (this.closed) {
          clearTimeout(t);
          resolve();
        } else this.waiters.push(check);
      };
      check();
    });
  }

  publishes(): Packet5[] {
    return this.packets.filter((p) => p.cmd === "publish");
  }

  destroy(): void {
    this.socket.destroy();
  }
}

const taken = new WeakSet<Packet5>();

/** A raw PUBLISH (QoS 0, topic "d", payload "x") carrying `props` as raw property bytes. */
export function publishWithRawProperties(props: Buffer, topic = "d"): Buffer {
  const body = Buffer.concat([Buffer.from([0, topic.length]), Buffer.from(topic), Buffer.from([props.length]), props, Buffer.from("x")]);
  return Buffer.concat([Buffer.from([0x30, body.length]), body]);
}

/** mqtt.js with protocolVersion 5; resolves with the client and its CONNACK. */
export function connect5(url: string, opts: IClientOptions = {}): Promise<{ client: MqttClient; connack: Packet5 }> {
  const client = mqtt.connect(url, { protocolVersion: 5, reconnectPeriod: 0, connectTimeout: 5000, ...opts });
  return new Promise((resolve, reject) => {
    client.once("connect", (connack) => {
      client.removeAllListeners("error");
      client.on("error", () => {});
      resolve({ client, connack: connack as unknown as Packet5 });
    });
    client.once("error", reject);
    client.once("close", () => reject(new Error("closed before CONNACK")));
  });
}

export const uid = (prefix: string) => `${prefix}-${Math.random().toString(36).slice(2, 8)}`;
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
