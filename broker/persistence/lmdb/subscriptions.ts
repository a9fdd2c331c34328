/**
 * Persistent sessions' subscriptions: the `subs` database, mirrored in memory
 * (per client, and in a trie for subscriptionsByTopic).
 */
import { Readable } from "node:stream";
import { QlobberSub, type ClientLike, type SubscriptionLike } from "./aedes-parts.js";
import { PersistenceOpenError, type StoreContext } from "./environment.js";
import { clientPrefix, MAX_SUB_TOPIC_KEY, QLOBBER_OPTIONS, topicKeyPart, type SubRecord } from "./keys.js";

export class SubscriptionStore {
  #trie = new QlobberSub(QLOBBER_OPTIONS);
  /** clientId -> topic -> subscription (mirror of the `subs` database). */
  #subs = new Map<string, Map<string, SubRecord>>();

  constructor(private readonly ctx: StoreContext, path: string) {
    try {
      this.#rebuildSubscriptions();
    } catch (err) {
      throw new PersistenceOpenError(path, `failed to read subscriptions: ${(err as Error).message}`, { cause: err });
    }
  }


  #rebuildSubscriptions(): void {
    for (const { value } of this.ctx.dbs.subs.getRange({})) {
      if (!value || typeof value.c !== "string" || typeof value.t !== "string") continue;
      let stored = this.#subs.get(value.c);
      if (!stored) {
        stored = new Map();
        this.#subs.set(value.c, stored);
      }
      stored.set(value.t, value.s);
      if (value.s.qos > 0) this.#trie.add(value.t, this.#trieValue(value.c, value.t, value.s));
    }
  }

  #trieValue(clientId: string, topic: string, s: SubRecord) {
    return { clientId, topic, qos: s.qos, rh: s.rh, rap: s.rap, nl: s.nl };
  }

  async addSubscriptions(client: ClientLike, subs: SubscriptionLike[]): Promise<void> {
    this.ctx.live();
    if (!subs || subs.length === 0) return;
    const clientId = client.id;
    let stored = this.#subs.get(clientId);
    if (!stored) {
      stored = new Map();
      this.#subs.set(clientId, stored);
    }
    const touched = new Set<string>();
    for (const sub of subs) {
      const storedSub = stored.get(sub.topic);
      const record: SubRecord = { qos: sub.qos, rh: sub.rh, rap: sub.rap, nl: sub.nl };
      if (sub.subscriptionIdentifier !== undefined) record.subscriptionIdentifier = sub.subscriptionIdentifier;
      if (sub.qos > 0) this.#trie.add(sub.topic, this.#trieValue(clientId, sub.topic, record));
      else if (storedSub && storedSub.qos > 0) this.#trie.remove(sub.topic, { clientId, topic: sub.topic });
      stored.set(sub.topic, record);
      touched.add(sub.topic);
    }
    const prefix = clientPrefix(clientId);
    const writes: Array<Promise<unknown>> = [];
    for (const topic of touched) {
      const s = stored.get(topic)!;
      writes.push(this.ctx.dbs.subs.put(this.#subKey(prefix, topic), { c: clientId, t: topic, s }));
    }
    await this.ctx.settle(writes);
  }

  #subKey(prefix: Buffer, topic: string): Buffer {
    return Buffer.concat([prefix, topicKeyPart(topic, MAX_SUB_TOPIC_KEY)]);
  }

  async removeSubscriptions(client: ClientLike, topics: string[]): Promise<void> {
    this.ctx.live();
    const stored = this.#subs.get(client.id);
    if (!stored) return;
    const prefix = clientPrefix(client.id);
    const writes: Array<Promise<unknown>> = [];
    for (const topic of topics) {
      const storedSub = stored.get(topic);
      if (storedSub === undefined) continue;
      if (storedSub.qos > 0) this.#trie.remove(topic, { clientId: client.id, topic });
      stored.delete(topic);
      writes.push(this.ctx.dbs.subs.remove(this.#subKey(prefix, topic)));
    }
    if (stored.size === 0) this.#subs.delete(client.id);
    await this.ctx.settle(writes);
  }

  async subscriptionsByClient(client: ClientLike): Promise<Array<Record<string, unknown>>> {
    const subs: Array<Record<string, unknown>> = [];
    const stored = this.#subs.get(client.id);
    if (stored) for (const [topic, s] of stored) subs.push({ topic, ...s });
    return subs;
  }

  async countOffline(): Promise<{ subsCount: number; clientsCount: number }> {
    return { subsCount: this.#trie.subscriptionsCount, clientsCount: this.#subs.size };
  }

  /** By count: the trie holds exactly the stored QoS > 0 subscriptions, and a fleet without persistent sessions has none. */
  mayHaveStoredSubscriptions(_topic: string): boolean {
    return this.#trie.subscriptionsCount > 0;
  }

  async subscriptionsByTopic(pattern: string): Promise<Array<Record<string, unknown>>> {
    return this.#trie.match(pattern);
  }

  async cleanSubscriptions(client: ClientLike): Promise<void> {
    this.ctx.live();
    const stored = this.#subs.get(client.id);
    if (!stored) return;
    const prefix = clientPrefix(client.id);
    const writes: Array<Promise<unknown>> = [];
    for (const [topic, s] of stored) {
      if (s.qos > 0) this.#trie.remove(topic, { clientId: client.id, topic });
      writes.push(this.ctx.dbs.subs.remove(this.#subKey(prefix, topic)));
    }
    this.#subs.delete(client.id);
    await this.ctx.settle(writes);
  }

  getClientList(topic: string): Readable {
    const ids: string[] = [];
    for (const [clientId, stored] of this.#subs) if (stored.has(topic)) ids.push(clientId);
    return Readable.from(ids);
  }
}
