// A TCP proxy between a bridge and its upstream that cuts the link at one
// exact point of the MQTT exchange: it splits each direction into MQTT frames
// (fixed header + remaining length), and on the first frame of a chosen type in
// a chosen direction it either forwards that frame and then cuts (e.g. "just
// after PUBREC") or drops it and cuts (e.g. "PUBCOMP never arrives"). After a
// cut it refuses connections until `passThrough()`.
import { once } from "node:events";
import { createConnection, createServer, type Server, type Socket } from "node:net";

const TYPES: Record<string, number> = { connect: 1, connack: 2, publish: 3, puback: 4, pubrec: 5, pubrel: 6, pubcomp: 7 };

export type Direction = "toUpstream" | "toBridge";

export interface CutRule {
  direction: Direction;
  type: keyof typeof TYPES;
  /** true: the frame is delivered, then the link is cut; false: the frame is lost with the link. */
  forward: boolean;
}

/** Splits a byte stream into whole MQTT frames. */
class FrameSplitter {
  private buf: Buffer = Buffer.alloc(0);
  push(chunk: Buffer): Buffer[] {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    const frames: Buffer[] = [];
    for (;;) {
      if (this.buf.length < 2) break;
      let len = 0;
      let mult = 1;
      let i = 1;
      let complete = false;
      for (; i < 5 && i < this.buf.length; i++) {
        const b = this.buf[i]!;
        len += (b & 0x7f) * mult;
        mult *= 128;
        if ((b & 0x80) === 0) {
          complete = true;
          break;
        }
      }
      if (!complete) break;
      const total = i + 1 + len;
      if (this.buf.length < total) break;
      frames.push(this.buf.subarray(0, total));
      this.buf = this.buf.subarray(total);
    }
    return frames;
  }
}

/** Offset of the protocol level byte in a CONNECT frame: after the remaining length, 00 04 "MQTT". */
function levelOffset(frame: Buffer): number {
  let i = 1;
  while (frame[i]! & 0x80) i++;
  return i + 1 + 2 + 4;
}

export class CutProxy {
  private readonly server: Server;
  private rule: CutRule | null;
  private blocked = false;
  private readonly sockets = new Set<Socket>();
  /** Frames seen, by direction and type name (for the test's own checks). */
  readonly seen: Record<Direction, Record<string, number>> = { toUpstream: {}, toBridge: {} };
  private cutResolve!: () => void;
  /** Resolves when the rule fired. */
  readonly cut: Promise<void>;

  private constructor(
    readonly port: number,
    private readonly upstreamPort: number,
    rule: CutRule | null,
    server: Server,
  ) {
    this.rule = rule;
    this.server = server;
    this.cut = new Promise((r) => (this.cutResolve = r));
    server.on("connection", (s) => this.accept(s));
  }

  static async start(upstreamPort: number, rule: CutRule | null = null): Promise<CutProxy> {
    const server = createServer();
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    const port = (server.address() as { port: number }).port;
    return new CutProxy(port, upstreamPort, rule, server);
  }

  get url(): string {
    return `mqtt://127.0.0.1:${this.port}`;
  }

  /** Clear the bridge bit (0x80) of CONNECT's protocol level on its way up: the upstream sees a plain client (and echoes). */
  stripBridgeFlag = false;

  /**
   * Drop every frame of this type in this direction, keeping the link up (and
   * everything else, PINGRESP included, flowing): an upstream that has stalled
   * on one exchange while keep alive still looks healthy.
   */
  withhold: { direction: Direction; type: keyof typeof TYPES } | null = null;

  /**
   * Answer a CONNECT that carries the bridge bit (0x80 on the protocol level)
   * with CONNACK 0x01 "unacceptable protocol version" and close, as a 3.1.1
   * broker that does not know Mosquitto's try_private does; a CONNECT without
   * the bit goes through. Counted in `refusedBridgeConnects`.
   */
  refuseBridgeFlag = false;
  refusedBridgeConnects = 0;

  /** Refuse connections (and cut the current ones) until passThrough(): the upstream looks down. */
  block(): void {
    this.blocked = true;
    for (const s of this.sockets) s.destroy();
  }

  /** Forward everything from now on, and accept connections again. */
  passThrough(): void {
    this.rule = null;
    this.blocked = false;
  }

  private accept(client: Socket): void {
    if (this.blocked) {
      client.destroy();
      return;
    }
    const upstream = createConnection({ port: this.upstreamPort, host: "127.0.0.1" });
    this.sockets.add(client).add(upstream);
    // Once cut, nothing more crosses in either direction (the cut frame itself aside).
    let dead = false;
    const closeBoth = () => {
      client.destroy();
      upstream.destroy();
      this.sockets.delete(client);
      this.sockets.delete(upstream);
    };
    client.on("error", closeBoth).on("close", closeBoth);
    upstream.on("error", closeBoth).on("close", closeBoth);
    const pipe = (from: Socket, to: Socket, direction: Direction) => {
      const splitter = new FrameSplitter();
      from.on("data", (chunk: Buffer) => {
        for (let frame of splitter.push(chunk)) {
          if (dead || to.destroyed) return;
          const type = frame[0]! >> 4;
          const name = Object.keys(TYPES).find((k) => TYPES[k] === type) ?? String(type);
          this.seen[direction][name] = (this.seen[direction][name] ?? 0) + 1;
          const r = this.rule;
          if (r && r.direction === direction && TYPES[r.type] === type) {
            this.rule = null;
            this.blocked = true;
            dead = true;
            if (r.forward) to.write(frame, () => closeBoth());
            else closeBoth();
            this.cutResolve();
            return;
          }
          const w = this.withhold;
          if (w && w.direction === direction && TYPES[w.type] === type) continue;
          if (this.refuseBridgeFlag && direction === "toUpstream" && type === TYPES.connect && frame[levelOffset(frame)]! & 0x80) {
            this.refusedBridgeConnects++;
            dead = true;
            // CONNACK: no session present, return code 1 [MQTT-3.1.2-2]; then close [MQTT-3.2.2-5].
            from.write(Buffer.from([0x20, 0x02, 0x00, 0x01]), () => closeBoth());
            return;
          }
          if (this.stripBridgeFlag && direction === "toUpstream" && type === TYPES.connect) {
            const level = levelOffset(frame);
            frame = Buffer.from(frame);
            frame[level] = frame[level]! & 0x7f;
          }
          to.write(frame);
        }
      });
    };
    pipe(client, upstream, "toUpstream");
    pipe(upstream, client, "toBridge");
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}
