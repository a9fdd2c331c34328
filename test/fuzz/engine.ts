// The fuzzer: valid MQTT packets from mqtt-packet, then mutated (truncated,
// wrong remaining length, flipped bits, invalid flags and types, ill-formed
// UTF-8, oversize, garbage), written over many short-lived TCP connections.
// Deterministic for a given seed, so a failure can be replayed.
import { createRequire } from "node:module";
import { connect as tcpConnect } from "node:net";
import { prng } from "../prng.js";
export { prng };

const mqttPacketModule = createRequire(import.meta.url)("mqtt-packet") as {
  generate(packet: object, opts?: object): Buffer;
  parser(opts?: object): NodeJS.EventEmitter & { parse(buf: Buffer): number };
};
/** Packets of the connection being built are generated for its protocol version (4, or 5 with properties). */
let wireVersion = 4;
const mqttPacket = {
  generate: (packet: object) => mqttPacketModule.generate(packet, { protocolVersion: wireVersion }),
  parser: (opts: { protocolVersion: number }) => mqttPacketModule.parser(opts),
};


export interface FuzzOptions {
  port: number;
  host?: string;
  /** Malformed or mutated packets to write (valid ones come on top; the last connection finishes its batch). */
  packets: number;
  concurrency: number;
  seed: number;
  /** The broker's maxPacketSize: some packets are made just larger. */
  maxPacketSize: number;
  onProgress?: (written: number) => void;
}

export interface FuzzResult {
  packets: number;
  mutated: number;
  connections: number;
  /** Connections that opened with an MQTT 5 CONNECT (with properties, some misplaced). */
  v5Connections: number;
  bytes: number;
  byMutation: Record<string, number>;
}

const BAD_UTF8 = [
  Buffer.from([0xff]),
  Buffer.from([0xc0, 0x80]), // overlong NUL
  Buffer.from([0xed, 0xa0, 0x80]), // UTF-16 surrogate
  Buffer.from([0xe2, 0x82]), // truncated sequence
  Buffer.from([0x00]), // U+0000
  Buffer.from([0xf8, 0x88, 0x80, 0x80, 0x80]), // 5-byte form
];

const TOPICS = ["fz/a", "fz/b/c", "fz/+/c", "fz/#", "#", "+", "+/+", "$SYS/fz", "$fz/x", "a//b", "/", "fz/ü/€", "fz/" + "x".repeat(300), Array(120).fill("l").join("/")];

function pick<T>(rnd: () => number, items: readonly T[]): T {
  return items[Math.floor(rnd() * items.length)]!;
}
function int(rnd: () => number, max: number): number {
  return Math.floor(rnd() * max);
}
function bytes(rnd: () => number, n: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = int(rnd, 256);
  return b;
}

function varint(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    out.push(b);
  } while (n > 0);
  return out;
}
function frame(first: number, body: Buffer): Buffer {
  return Buffer.concat([Buffer.from([first, ...varint(body.length)]), body]);
}
function str(b: Buffer): Buffer {
  const len = Buffer.alloc(2);
  len.writeUInt16BE(b.length & 0xffff);
  return Buffer.concat([len, b]);
}

export class PacketFactory {
  private n = 0;
  constructor(
    private readonly rnd: () => number,
    private readonly maxPacketSize: number,
  ) {}

  /** The protocol version of the connection being built (one in three is MQTT 5). */
  version = 4;

  connect(): Buffer {
    const r = this.rnd;
    this.version = r() < 0.33 ? 5 : 4;
    wireVersion = this.version;
    const clientId = r() < 0.1 ? "" : `fz-${this.n++}-${int(r, 1e6)}`;
    const v5 = this.version === 5;
    return mqttPacket.generate({
      cmd: "connect",
      protocolId: "MQTT",
      protocolVersion: this.version,
      ...(v5 ? { properties: this.properties("connect") } : {}),
      // Few persistent sessions: each keeps (by design, without bound in aedes) the QoS 1/2
      // messages published to its filters while it is away, which would read as heap growth.
      clean: clientId === "" || r() < 0.95,
      clientId,
      keepalive: pick(r, [0, 0, 1, 30, 65535]),
      ...(r() < 0.3 ? { username: `u${int(r, 10)}`, password: bytes(r, int(r, 8)) } : {}),
      ...(r() < 0.2 ? { will: { topic: pick(r, TOPICS.filter((t) => !t.includes("+") && !t.includes("#"))), payload: bytes(r, int(r, 32)), qos: int(r, 3), retain: r() < 0.2 } } : {}),
    });
  }

  /**
   * MQTT 5 properties for a packet: mostly ones that belong there, sometimes
   * one that does not (a Protocol Error / Malformed Packet the broker must
   * answer by closing only this connection).
   */
  properties(kind: "connect" | "publish" | "subscribe" | "disconnect"): Record<string, unknown> {
    const r = this.rnd;
    const p: Record<string, unknown> = {};
    if (r() < 0.5) p.userProperties = { k: `v${int(r, 100)}`, [`n${int(r, 5)}`]: ["a", "b"] };
    if (kind === "connect") {
      if (r() < 0.3) p.receiveMaximum = int(r, 4);
      if (r() < 0.3) p.maximumPacketSize = int(r, 300);
      if (r() < 0.3) p.topicAliasMaximum = int(r, 10);
      if (r() < 0.1) p.authenticationMethod = "SCRAM-SHA-1";
    } else if (kind === "publish") {
      if (r() < 0.4) p.topicAlias = int(r, 100);
      if (r() < 0.3) p.messageExpiryInterval = int(r, 3);
      if (r() < 0.3) p.contentType = "fz/ct";
      if (r() < 0.2) p.responseTopic = pick(r, TOPICS);
      if (r() < 0.2) p.correlationData = bytes(r, int(r, 16));
    } else if (kind === "subscribe") {
      if (r() < 0.4) p.subscriptionIdentifier = int(r, 300);
    } else if (r() < 0.5) p.sessionExpiryInterval = int(r, 5);
    // misplaced: a property of another packet type
    if (r() < 0.1) p[pick(r, ["sessionExpiryInterval", "topicAlias", "serverKeepAlive", "willDelayInterval", "subscriptionIdentifier"])] = 1 + int(r, 9);
    return p;
  }

  /** A well-formed packet of a random type (what a client might send after CONNECT). */
  valid(): Buffer {
    const r = this.rnd;
    const id = 1 + int(r, 65535);
    const v5 = this.version === 5;
    switch (int(r, 9)) {
      case 0:
      case 1: {
        const qos = int(r, 3);
        const topic = v5 && r() < 0.2 ? "" : pick(r, TOPICS.filter((t) => !t.includes("+") && !t.includes("#")));
        const props = v5 ? { properties: this.properties("publish") } : {};
        return mqttPacket.generate({ cmd: "publish", topic, payload: bytes(r, int(r, 512)), qos, retain: r() < 0.1, dup: r() < 0.1, ...(qos ? { messageId: id } : {}), ...props });
      }
      case 2: {
        const options = v5 ? { nl: r() < 0.3, rap: r() < 0.3, rh: int(r, 3) } : {};
        const props = v5 ? { properties: this.properties("subscribe") } : {};
        const topic = v5 && r() < 0.2 ? `$share/${pick(r, ["g", "g+", ""])}/${pick(r, TOPICS)}` : pick(r, TOPICS);
        return mqttPacket.generate({ cmd: "subscribe", messageId: id, subscriptions: [{ topic, qos: int(r, 3), ...options }], ...props });
      }
      case 3:
        return mqttPacket.generate({ cmd: "unsubscribe", messageId: id, unsubscriptions: [pick(r, TOPICS)] });
      case 4:
        return mqttPacket.generate({ cmd: pick(r, ["puback", "pubrec", "pubrel", "pubcomp"]), messageId: id });
      case 5:
        // v5: sometimes an AUTH (enhanced authentication is not set up here: a Protocol Error the broker answers by closing this connection)
        if (v5 && r() < 0.4) return mqttPacket.generate({ cmd: "auth", reasonCode: pick(r, [0x18, 0x19]), properties: { authenticationMethod: pick(r, ["SCRAM-SHA-256", "x"]), authenticationData: bytes(r, int(r, 32)) } });
        return mqttPacket.generate({ cmd: "pingreq" });
      case 6:
        return this.connect(); // a second CONNECT
      case 7:
        return mqttPacket.generate({ cmd: "disconnect", ...(v5 ? { reasonCode: pick(r, [0, 4, 0x80]), properties: this.properties("disconnect") } : {}) });
      default: {
        const qos = 1 + int(r, 2);
        return mqttPacket.generate({ cmd: "publish", topic: `fz/${int(r, 100)}`, payload: bytes(r, int(r, 64)), qos, messageId: id });
      }
    }
  }

  /** A mutated packet and the name of the mutation. */
  mutated(): [string, Buffer] {
    const r = this.rnd;
    const base = this.valid();
    switch (int(r, 12)) {
      case 0:
        return ["truncated", base.subarray(0, int(r, base.length))];
      case 1: {
        // wrong remaining length: keep the body, rewrite the length field
        const { start } = bodyStart(base);
        const claimed = pick(r, [0, 1, int(r, base.length * 2 + 1), 127, 128, 16383, 16384, 268_435_455]);
        return ["wrong-length", Buffer.concat([Buffer.from([base[0]!, ...varint(claimed)]), base.subarray(start)])];
      }
      case 2: {
        const out = Buffer.from(base);
        for (let k = 1 + int(r, 4); k > 0; k--) {
          const i = int(r, out.length);
          out[i] = out[i]! ^ (1 << int(r, 8));
        }
        return ["bit-flip", out];
      }
      case 3: {
        const out = Buffer.from(base);
        out[0] = (out[0]! & 0xf0) | int(r, 16);
        return ["invalid-flags", out];
      }
      case 4: {
        const out = Buffer.from(base);
        out[0] = (pick(r, [0, 15, int(r, 16)]) << 4) | (out[0]! & 0x0f);
        return ["invalid-type", out];
      }
      case 5: {
        const topic = Buffer.concat([Buffer.from("fz/"), pick(r, BAD_UTF8), Buffer.from("/t")]);
        const kind = int(r, 3);
        if (kind === 0) return ["bad-utf8", frame(0x30, Buffer.concat([str(topic), bytes(r, 8)]))];
        if (kind === 1) return ["bad-utf8", frame(0x82, Buffer.concat([Buffer.from([0, 1]), str(topic), Buffer.from([0])]))];
        return ["bad-utf8", frame(0x10, Buffer.concat([str(Buffer.from("MQTT")), Buffer.from([4, 0x02, 0, 0]), str(Buffer.concat([Buffer.from("id"), pick(r, BAD_UTF8)]))]))];
      }
      case 6: {
        if (r() < 0.05) {
          // Really oversize: a body just over the broker's limit (rarely: it costs bandwidth).
          return ["oversize", frame(0x30, Buffer.concat([str(Buffer.from("fz/big")), Buffer.alloc(this.maxPacketSize, 0x61)]))];
        }
        // Declares a huge packet and sends a little of it.
        return ["oversize-claim", Buffer.concat([Buffer.from([0x30, ...varint(this.maxPacketSize + 1 + int(r, 1_000_000))]), bytes(r, int(r, 64))])];
      }
      case 7:
        return ["garbage", bytes(r, 1 + int(r, 64))];
      case 8:
        return ["varint-5-bytes", Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x01, 0x00])];
      case 9: {
        const out = Buffer.from(base);
        const at = int(r, out.length + 1);
        return ["inserted", Buffer.concat([out.subarray(0, at), bytes(r, 1 + int(r, 8)), out.subarray(at)])];
      }
      case 10:
        return ["zero-id", frame(pick(r, [0x32, 0x34, 0x82, 0xa2]), Buffer.concat([...(r() < 0.5 ? [str(Buffer.from("fz/z"))] : []), Buffer.from([0, 0]), str(Buffer.from("fz/z")), Buffer.from([1])]))];
      default: {
        const out = Buffer.from(base);
        const at = int(r, out.length);
        return ["deleted", Buffer.concat([out.subarray(0, at), out.subarray(Math.min(out.length, at + 1 + int(r, 4)))])];
      }
    }
  }
}

function bodyStart(packet: Buffer): { start: number } {
  let i = 1;
  while (i < packet.length && i < 5 && packet[i]! & 0x80) i++;
  return { start: Math.min(packet.length, i + 1) };
}

/**
 * Run the fuzzer against a broker. Each connection sends a CONNECT (one in ten
 * mutated) and waits for the answer, so the broker handles what follows as a
 * connected client's packets (not queued behind a CONNECT in progress). Then
 * it sends a batch of packets (mostly mutated), split into random chunks, and a
 * PINGREQ; it closes its side once the PINGRESP shows the broker got through the
 * batch, or the broker closed the connection, or nothing happened for a while
 * (a mutated length can leave the broker waiting for bytes that never come).
 */
export async function fuzz(opts: FuzzOptions): Promise<FuzzResult> {
  const rnd = prng(opts.seed);
  const factory = new PacketFactory(rnd, opts.maxPacketSize);
  const result: FuzzResult = { packets: 0, mutated: 0, connections: 0, v5Connections: 0, bytes: 0, byMutation: {} };
  const PINGREQ = Buffer.from([0xc0, 0x00]);

  const mutated = (): Buffer => {
    const [name, p] = factory.mutated();
    result.byMutation[name] = (result.byMutation[name] ?? 0) + 1;
    result.mutated++;
    return p;
  };

  const connection = (): Promise<void> =>
    new Promise((resolve) => {
      const first = rnd() < 0.9 ? factory.connect() : mutated();
      if (factory.version === 5) result.v5Connections++;
      const parts: Buffer[] = [];
      // Short batches: the broker closes at the first fatal packet, so long ones would mostly go unread.
      for (let k = 1 + int(rnd, 6); k > 0; k--) parts.push(rnd() < 0.3 ? factory.valid() : mutated());
      const rest = Buffer.concat([...parts, PINGREQ]);
      result.packets += 1 + parts.length;
      result.bytes += first.length + rest.length;
      result.connections++;

      const socket = tcpConnect({ port: opts.port, host: opts.host ?? "127.0.0.1" });
      const answers = mqttPacket.parser({ protocolVersion: factory.version });
      answers.on("error", () => {});
      let stage: "connect" | "batch" | "closing" = "connect";
      let quiet: NodeJS.Timeout | null = null;
      const wait = (ms: number) => {
        if (quiet) clearTimeout(quiet);
        quiet = setTimeout(next, ms);
      };
      const sendBatch = () => {
        stage = "batch";
        // Split at random points: the parser must cope with packets cut across reads.
        let at = 0;
        while (at < rest.length) {
          const size = rnd() < 0.5 ? rest.length - at : 1 + int(rnd, Math.max(1, rest.length - at));
          socket.write(rest.subarray(at, at + size));
          at += size;
        }
        wait(150);
      };
      function next() {
        if (stage === "connect") return sendBatch(); // no CONNACK (mutated CONNECT): send the batch anyway
        if (stage === "batch") {
          stage = "closing";
          socket.end();
          wait(2000);
          return;
        }
        socket.destroy();
      }
      answers.on("packet", (p: { cmd: string }) => {
        if (stage === "connect" && p.cmd === "connack") sendBatch();
        else if (stage === "batch" && p.cmd === "pingresp") next();
      });
      socket.on("error", () => {});
      socket.on("data", (d: Buffer) => {
        try {
          answers.parse(d);
        } catch {
          // the broker's answers are not under test here
        }
      });
      socket.on("close", () => {
        if (quiet) clearTimeout(quiet);
        resolve();
      });
      socket.once("connect", () => {
        socket.write(first);
        wait(1000);
      });
    });

  let reported = 0;
  await Promise.all(
    Array.from({ length: opts.concurrency }, async () => {
      while (result.mutated < opts.packets) {
        await connection();
        if (opts.onProgress && result.mutated - reported >= 10_000) {
          reported = result.mutated;
          opts.onProgress(result.mutated);
        }
      }
    }),
  );
  return result;
}
