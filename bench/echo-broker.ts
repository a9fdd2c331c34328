/**
 * The `echo` bench target: the least a broker can do for the latency
 * scenarios, to measure the load generator's and the machine's own floor.
 * A Node TCP relay (no aedes, no plugins, no topic matching): it answers
 * CONNECT and SUBSCRIBE, forwards every PUBLISH's bytes unchanged to every
 * subscribed connection, acknowledges QoS 1 PUBLISHes itself and ignores the
 * subscribers' PUBACKs. A read's PUBLISHes leave in one write per subscriber,
 * from the same callback that read them. Runs in a bench target process like
 * bare aedes, so it gets the same Node flags, event-loop and GC figures.
 * MQTT 3.1.1 and 5 without properties on what it answers; not a broker.
 */
import { createServer, type Server, type Socket } from "node:net";
import { FrameScanner } from "./frame-scanner.js";

const CONNECT = 1;
const PUBLISH = 3;
const SUBSCRIBE = 8;
const PINGREQ = 12;
const DISCONNECT = 14;

export interface EchoBroker {
  port: number;
  close(): Promise<void>;
}

export async function startEchoBroker(): Promise<EchoBroker> {
  const subscribers = new Set<Socket>();
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    socket.setNoDelay(true);
    sockets.add(socket);
    let version = 4;
    /** This read's forwarded PUBLISH bytes and PUBACKs, written once the read is framed. */
    let forward: Buffer[] = [];
    let acks: Buffer[] = [];
    const scanner = new FrameScanner(
      (buf, header, body, end, start) => {
        const type = header >> 4;
        if (type === PUBLISH) {
          forward.push(Buffer.from(buf.subarray(start, end))); // a copy: the scanner reuses buf
          if (((header >> 1) & 3) === 1) {
            const at = body + 2 + ((buf[body]! << 8) | buf[body + 1]!);
            acks.push(Buffer.from([0x40, 0x02, buf[at]!, buf[at + 1]!]));
          }
        } else if (type === CONNECT) {
          version = buf[body + 6]!; // after the protocol name "MQTT" (2 + 4 bytes)
          socket.write(version === 5 ? Buffer.from([0x20, 0x03, 0x00, 0x00, 0x00]) : Buffer.from([0x20, 0x02, 0x00, 0x00]));
        } else if (type === SUBSCRIBE) {
          let at = body + 2;
          if (version === 5) at += 1 + buf[at]!; // property length (the generator sends none, a 1-byte length)
          const granted: number[] = [];
          while (at < end) {
            at += 2 + ((buf[at]! << 8) | buf[at + 1]!);
            granted.push(buf[at++]! & 3);
          }
          const head = version === 5 ? [buf[body]!, buf[body + 1]!, 0x00] : [buf[body]!, buf[body + 1]!];
          socket.write(Buffer.from([0x90, head.length + granted.length, ...head, ...granted]));
          subscribers.add(socket);
        } else if (type === PINGREQ) {
          socket.write(Buffer.from([0xd0, 0x00]));
        } else if (type === DISCONNECT) {
          socket.end();
        }
        // PUBACKs from subscribers and anything else: ignored
      },
      () => socket.destroy(),
    );
    socket.on("data", (chunk: Buffer) => {
      scanner.push(chunk);
      if (forward.length) {
        const bytes = forward.length === 1 ? forward[0]! : Buffer.concat(forward);
        for (const s of subscribers) s.write(bytes);
        forward = [];
      }
      if (acks.length) {
        socket.write(acks.length === 1 ? acks[0]! : Buffer.concat(acks));
        acks = [];
      }
    });
    socket.on("error", () => {});
    socket.on("close", () => {
      subscribers.delete(socket);
      sockets.delete(socket);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  return {
    port: (server.address() as { port: number }).port,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
