/** Wills of connected clients (the `wills` database), kept until published or replaced. */
import { Readable } from "node:stream";
import type { ClientLike, StoredPacket } from "./aedes-parts.js";
import type { StoreContext } from "./environment.js";
import { clientPrefix, plainPacket } from "./keys.js";

export class WillStore {
  constructor(private readonly ctx: StoreContext) {}


  async putWill(client: ClientLike, packet: StoredPacket): Promise<void> {
    this.ctx.live();
    packet.brokerId = this.ctx.brokerId;
    packet.clientId = client.id;
    await this.ctx.settle([this.ctx.dbs.wills.put(clientPrefix(client.id), plainPacket(packet))]);
  }

  async getWill(client: ClientLike): Promise<StoredPacket | undefined> {
    this.ctx.live();
    return this.ctx.dbs.wills.get(clientPrefix(client.id));
  }

  async delWill(client: ClientLike): Promise<StoredPacket | undefined> {
    this.ctx.live();
    const key = clientPrefix(client.id);
    const will = this.ctx.dbs.wills.get(key);
    if (will) await this.ctx.settle([this.ctx.dbs.wills.remove(key)]);
    return will;
  }

  streamWill(brokers: Record<string, unknown> = {}): Readable {
    if (this.ctx.destroyed) return Readable.from([]);
    const wills: StoredPacket[] = [];
    for (const { value } of this.ctx.dbs.wills.getRange({})) {
      if (value && !brokers[String(value.brokerId)]) wills.push(value);
    }
    return Readable.from(wills);
  }
}
