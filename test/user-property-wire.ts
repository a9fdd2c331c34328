// User properties as they are on the wire, read from the bytes without
// mqtt-packet (whose parser groups them by name): what a subscriber really
// received, and a check that what a test sends really is interleaved.
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import type { Socket } from "node:net";
import { Raw5, type Packet5 } from "./mqtt5-raw.js";

export type Pairs = [string, string][];

const mqttPacket = createRequire(import.meta.url)("mqtt-packet") as { generate(packet: object, opts?: object): Buffer };
const V5 = { protocolVersion: 5 };

/** mqtt-packet writes an array-valued property entry by entry: one single-entry object per user property, in this order. */
export function inOrder(pairs: Pairs): Record<string, string>[] {
  return pairs.map(([k, v]) => ({ [k]: v }));
}

/** Bytes of each property value by identifier (MQTT 5.0 table 2-4); -1 varint, -2 two-byte length prefix, -3 string pair. */
const SIZE: Record<number, number> = { 0x01: 1, 0x02: 4, 0x03: -2, 0x08: -2, 0x09: -2, 0x0b: -1, 0x11: 4, 0x15: -2, 0x16: -2, 0x17: 1, 0x18: 4, 0x19: 1, 0x1a: -2, 0x1c: -2, 0x1f: -2, 0x21: 2, 0x22: 2, 0x23: 2, 0x24: 1, 0x25: 1, 0x26: -3, 0x27: 4, 0x28: 1, 0x29: 1, 0x2a: 1 };

function varint(b: Buffer, at: number): [number, number] {
  let n = 0;
  let mul = 1;
  for (;;) {
    const byte = b[at++]!;
    n += (byte & 0x7f) * mul;
    mul *= 128;
    if (!(byte & 0x80)) return [n, at];
  }
}

/** The user properties of a properties section starting at `at` (its length first). */
function sectionUserProperties(b: Buffer, at: number): Pairs {
  const [length, start] = varint(b, at);
  const end = start + length;
  const out: Pairs = [];
  let pos = start;
  const str = () => {
    const n = b.readUInt16BE(pos);
    const s = b.toString("utf8", pos + 2, pos + 2 + n);
    pos += 2 + n;
    return s;
  };
  while (pos < end) {
    const id = b[pos++]!;
    const size = SIZE[id];
    assert.ok(size !== undefined, `unknown property identifier ${id}`);
    if (size > 0) pos += size;
    else if (size === -1) pos = varint(b, pos)[1];
    else if (size === -2) pos += 2 + b.readUInt16BE(pos);
    else out.push([str(), str()]);
  }
  return out;
}

/** A PUBLISH frame's topic and user properties, in wire order. */
export function publishOnWire(frame: Buffer): { topic: string; userProperties: Pairs } {
  assert.equal(frame[0]! >> 4, 3, "a PUBLISH frame");
  const qos = (frame[0]! >> 1) & 3;
  let [, at] = varint(frame, 1);
  const topicLength = frame.readUInt16BE(at);
  const topic = frame.toString("utf8", at + 2, at + 2 + topicLength);
  at += 2 + topicLength + (qos > 0 ? 2 : 0);
  return { topic, userProperties: sectionUserProperties(frame, at) };
}

/** Splits what a socket receives into MQTT frames. */
class Frames {
  readonly frames: Buffer[] = [];
  private pending = Buffer.alloc(0);
  constructor(socket: Socket) {
    socket.on("data", (chunk: Buffer) => {
      this.pending = Buffer.concat([this.pending, chunk]);
      for (;;) {
        if (this.pending.length < 2) return;
        let length = 0;
        let mul = 1;
        let at = 1;
        let done = false;
        while (at < this.pending.length && at <= 4) {
          const byte = this.pending[at++]!;
          length += (byte & 0x7f) * mul;
          mul *= 128;
          if (!(byte & 0x80)) {
            done = true;
            break;
          }
        }
        if (!done || this.pending.length < at + length) return;
        this.frames.push(this.pending.subarray(0, at + length));
        this.pending = this.pending.subarray(at + length);
      }
    });
  }
}

/** A raw MQTT 5 connection that also keeps the bytes of every frame it receives. */
export class WireClient {
  private readonly taken = new Map<string, number>();
  private constructor(
    readonly raw: Raw5,
    private readonly recorded: Frames,
    readonly clientId: string,
  ) {}

  static async connect(port: number, connect: Record<string, unknown> = {}): Promise<{ c: WireClient; connack: Packet5 }> {
    const raw = await Raw5.open(port);
    const recorded = new Frames(raw.socket); // before anything can arrive
    const packet = { cmd: "connect", protocolId: "MQTT", protocolVersion: 5, clean: true, clientId: `wire-${Math.random().toString(36).slice(2, 10)}`, keepalive: 0, ...connect };
    raw.send(packet);
    const connack = await raw.next("connack");
    return { c: new WireClient(raw, recorded, packet.clientId), connack };
  }

  async subscribe(filter: string, qos = 1): Promise<void> {
    this.raw.send({ cmd: "subscribe", messageId: 1, subscriptions: [{ topic: filter, qos }] });
    const suback = await this.raw.next("suback");
    assert.ok((suback.granted?.[0] ?? 0x80) < 0x80, `subscribed to ${filter}`);
  }

  /** The user properties of the next PUBLISH on `topic`, as they were on the wire (acknowledged when QoS 1). */
  async nextOn(topic: string): Promise<Pairs> {
    const p = await this.raw.next("publish", (x) => x.topic === topic);
    if (p.qos === 1) this.raw.send({ cmd: "puback", messageId: p.messageId });
    if (p.qos === 2) this.raw.send({ cmd: "pubrec", messageId: p.messageId });
    // the n-th PUBLISH parsed on this topic is the n-th such frame
    const n = this.taken.get(topic) ?? 0;
    this.taken.set(topic, n + 1);
    const seen = this.recorded.frames.filter((f) => f[0]! >> 4 === 3).map(publishOnWire).filter((f) => f.topic === topic);
    assert.ok(seen.length > n, `frame ${n + 1} for ${topic}`);
    return seen[n]!.userProperties;
  }

  /** Send a PUBLISH whose user properties are `pairs` in this order (checked on the bytes before sending). */
  async publish(topic: string, pairs: Pairs, opts: { qos?: 0 | 1 | 2; retain?: boolean; payload?: string } = {}): Promise<void> {
    const qos = opts.qos ?? 1;
    const frame = publishFrame(topic, pairs, { ...opts, qos });
    this.raw.sendRaw(frame);
    if (qos === 1) await this.raw.next("puback", (p) => p.messageId === 7);
    if (qos === 2) {
      await this.raw.next("pubrec", (p) => p.messageId === 7);
      this.raw.send({ cmd: "pubrel", messageId: 7 });
      await this.raw.next("pubcomp", (p) => p.messageId === 7);
    }
  }

  end(): void {
    this.raw.send({ cmd: "disconnect" });
    this.raw.destroy();
  }

  destroy(): void {
    this.raw.destroy();
  }
}

/** A PUBLISH frame (packet id 7) with `pairs` as its user properties, in order. */
export function publishFrame(topic: string, pairs: Pairs, opts: { qos?: 0 | 1 | 2; retain?: boolean; payload?: string } = {}): Buffer {
  const qos = opts.qos ?? 1;
  const frame = mqttPacket.generate(
    { cmd: "publish", topic, payload: opts.payload ?? "x", qos, retain: !!opts.retain, ...(qos ? { messageId: 7 } : {}), ...(pairs.length ? { properties: { userProperties: inOrder(pairs) } } : {}) },
    V5,
  );
  assert.deepEqual(publishOnWire(frame).userProperties, pairs, "the test sends the user properties in this order");
  return frame;
}

/** A CONNECT frame whose will carries `pairs` as user properties, in order (checked on the bytes). */
export function connectWithWill(clientId: string, willTopic: string, pairs: Pairs): Buffer {
  const frame = mqttPacket.generate(
    { cmd: "connect", protocolId: "MQTT", protocolVersion: 5, clean: true, clientId, keepalive: 0, will: { topic: willTopic, payload: Buffer.from("gone"), qos: 1, retain: false, properties: { userProperties: inOrder(pairs) } } },
    V5,
  );
  // CONNECT: fixed header, variable header (protocol name, level, flags, keep alive, properties), client id, then the will properties
  let [, at] = varint(frame, 1);
  at += 2 + 4 + 1 + 1 + 2; // "MQTT", level, flags, keep alive
  const [propsLength, propsStart] = varint(frame, at);
  at = propsStart + propsLength;
  at += 2 + frame.readUInt16BE(at); // client id
  assert.deepEqual(sectionUserProperties(frame, at), pairs, "the test sends the will's user properties in this order");
  return frame;
}
