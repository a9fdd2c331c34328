/**
 * wasmq's own cluster notices over Redis pub/sub (takeovers, plugin KV
 * changes, deploys), on one subscriber connection per node. Pub/sub is
 * at-most-once: every user of a channel also resynchronises from the records
 * in Redis when the link comes back ("up" on RedisLink).
 */
import type { Redis } from "ioredis";

export const CHANNELS = {
  takeover: "wasmq:notice:takeover",
  kv: "wasmq:notice:kv",
  deploy: "wasmq:notice:deploy",
  share: "wasmq:notice:share",
} as const;

export type Channel = (typeof CHANNELS)[keyof typeof CHANNELS];

export class Notices {
  private readonly handlers = new Map<string, ((message: Buffer) => void)[]>();

  constructor(
    private readonly sub: Redis,
    private readonly pub: Redis,
  ) {
    sub.on("messageBuffer", (channel: Buffer, message: Buffer) => {
      for (const h of this.handlers.get(channel.toString()) ?? []) h(message);
    });
  }

  /** Resolves once subscribed (ioredis re-subscribes by itself after a reconnect). */
  async on(channel: Channel, handler: (message: Buffer) => void): Promise<void> {
    const list = this.handlers.get(channel);
    if (list) {
      list.push(handler);
      return;
    }
    this.handlers.set(channel, [handler]);
    await this.sub.subscribe(channel);
  }

  publish(channel: Channel, message: Buffer | string): Promise<number> {
    return this.pub.publish(channel, message);
  }
}
