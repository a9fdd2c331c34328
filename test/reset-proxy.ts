// A TCP proxy to a Redis (or Sentinel) port that can reset the connections
// going through it: mid-command, all at once, and every new one for a while.
import { once } from "node:events";
import { createServer, connect as tcpConnect, type Server, type Socket } from "node:net";

/** A TCP proxy to Redis that can reset the connections going through it. */
export class ResetProxy {
  port = 0;
  private readonly server: Server;
  private readonly pairs = new Set<{ node: Socket; redis: Socket }>();
  private refusing = false;
  private cut: (() => void) | null = null;

  constructor(redisPort: number) {
    this.server = createServer((node) => {
      node.on("error", () => {});
      if (this.refusing) return node.resetAndDestroy();
      const redis = tcpConnect(redisPort, "127.0.0.1");
      redis.on("error", () => {});
      const pair = { node, redis };
      this.pairs.add(pair);
      node.on("data", (chunk: Buffer) => {
        if (this.cut && chunk.length > 1) {
          // Mid-command: Redis gets the first half of what the node sent, the node a reset.
          const done = this.cut;
          this.cut = null;
          redis.end(chunk.subarray(0, chunk.length >> 1));
          node.resetAndDestroy();
          done();
          return;
        }
        redis.write(chunk);
      });
      redis.pipe(node);
      const drop = () => {
        this.pairs.delete(pair);
        redis.destroy();
        if (!node.destroyed) node.resetAndDestroy();
      };
      node.on("close", drop);
      redis.on("close", drop);
    });
  }

  async start(): Promise<this> {
    this.server.listen(0, "127.0.0.1");
    await once(this.server, "listening");
    this.port = (this.server.address() as { port: number }).port;
    return this;
  }

  /** Reset the next connection that sends something, halfway through what it sends. */
  cutNextCommand(): Promise<void> {
    return new Promise((resolve) => (this.cut = resolve));
  }

  /** Reset every connection, and every new one for `ms`. */
  async resetAll(ms: number): Promise<void> {
    this.refusing = true;
    for (const { node } of this.pairs) node.resetAndDestroy();
    await new Promise((r) => setTimeout(r, ms));
    this.refusing = false;
  }

  /** A TLS application-data record no key decrypts, to every connection (then a reset, in case one survives it). */
  async corruptTls(): Promise<void> {
    for (const { node } of this.pairs) node.write(Buffer.concat([Buffer.from([0x17, 0x03, 0x03, 0x00, 0x20]), Buffer.alloc(32, 0x5a)]));
    await new Promise((r) => setTimeout(r, 50));
    for (const { node } of this.pairs) node.resetAndDestroy();
  }

  async close(): Promise<void> {
    for (const { node } of this.pairs) node.destroy();
    this.server.close();
  }
}
