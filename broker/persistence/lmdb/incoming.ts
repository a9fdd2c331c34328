/** Inbound QoS 2 packets awaiting PUBREL (the `incoming` database). */
import { Packet, type ClientLike, type StoredPacket } from "./aedes-parts.js";
import type { StoreContext } from "./environment.js";
import { flushedNow } from "./group-commit.js";
import { clientPrefix, prefixEnd } from "./keys.js";

export class IncomingStore {
  constructor(private readonly ctx: StoreContext) {}


  #inKey(clientId: string, messageId: unknown): Buffer {
    const id = Number(messageId);
    if (!Number.isInteger(id) || id < 0 || id > 0xffffffff) throw new Error("no such packet");
    const prefix = clientPrefix(clientId);
    const out = Buffer.allocUnsafe(prefix.length + 4);
    prefix.copy(out, 0);
    out.writeUInt32BE(id, prefix.length);
    return out;
  }

  async incomingStorePacket(client: ClientLike, packet: StoredPacket): Promise<void> {
    this.ctx.live();
    const p = new Packet(packet);
    p.messageId = packet.messageId;
    await this.ctx.settle([this.ctx.dbs.incoming.put(this.#inKey(client.id, packet.messageId), p)]);
  }

  async incomingGetPacket(client: ClientLike, packet: StoredPacket): Promise<StoredPacket> {
    this.ctx.live();
    const p = this.ctx.dbs.incoming.get(this.#inKey(client.id, packet.messageId));
    if (!p) throw new Error("no such packet");
    return p;
  }

  async incomingDelPacket(client: ClientLike, packet: StoredPacket): Promise<void> {
    this.ctx.live();
    const key = this.#inKey(client.id, packet.messageId);
    if (!this.ctx.dbs.incoming.doesExist(key)) throw new Error("no such packet");
    await this.ctx.settle([this.ctx.dbs.incoming.remove(key)]);
  }

  async cleanIncoming(client: ClientLike): Promise<void> {
    this.ctx.live();
    const prefix = clientPrefix(client.id);
    const { root, incoming } = this.ctx.dbs;
    // one transaction: a key-range clear of this client's (clientId, messageId) keys
    const tx = root.transaction(() => {
      const keys = [...incoming.getKeys({ start: prefix, end: prefixEnd(prefix) })];
      for (const key of keys) incoming.remove(key);
      return keys.length;
    });
    // The flush of the batch this transaction joined, taken now (group-commit.ts): after the commit, `root.flushed` is a later batch's.
    const flushed = this.ctx.durability === "sync" ? flushedNow(root) : null;
    flushed?.catch(() => {}); // awaited below only when something was removed
    const removed = await tx;
    if (removed > 0 && flushed) await flushed;
  }
}
