/**
 * Plugin KV in Redis (broker/persistence/redis-kv.ts), two stores as two nodes
 * would hold them, on a real redis-server: the cache semantics the plugin
 * README documents — read-your-writes, another node sees a write once its
 * notice arrived, concurrent writers converge on Redis' order, limits as on
 * LMDB, and a reload after a lost link.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { Redis } from "ioredis";
import { pino } from "pino";
import { KvLimitError } from "../host/kv.js";
import { Notices } from "../broker/cluster/notices.js";
import { RedisKvStore } from "../broker/persistence/redis-kv.js";
import { startRedis, waitFor, type RedisServer } from "./cluster-support.js";

const key = (s: string) => Buffer.from(s);
const text = (v: Uint8Array | undefined) => (v ? Buffer.from(v).toString() : undefined);

describe("plugin KV on Redis", () => {
  let redis: RedisServer;
  const conns: Redis[] = [];
  const stores: RedisKvStore[] = [];
  async function store(node: string): Promise<RedisKvStore> {
    const records = new Redis({ port: redis.port, host: "127.0.0.1", maxRetriesPerRequest: null });
    const sub = new Redis({ port: redis.port, host: "127.0.0.1", maxRetriesPerRequest: null });
    conns.push(records, sub);
    const kv = new RedisKvStore({ redis: records, notices: new Notices(sub, records), node, logger: pino({ level: "silent" }), limits: { maxValueBytes: 1024, maxKeyBytes: 64, maxNamespaceBytes: 4096 } });
    await kv.load();
    stores.push(kv);
    return kv;
  }
  before(async () => {
    redis = await startRedis();
  });
  after(async () => {
    for (const c of conns) c.disconnect();
    await redis.stop();
  });

  test("read-your-writes at once; the other node reads the write once its notice arrived; deletes likewise", async () => {
    const [a, b] = await Promise.all([store("a"), store("b")]);
    a.put("p", key("k"), key("v1"));
    assert.equal(text(a.get("p", key("k"))), "v1");
    await waitFor(() => text(b.get("p", key("k"))) === "v1", "b to read a's write");
    assert.equal(text(b.get("other", key("k"))), undefined, "namespaces are separate");
    assert.equal(b.delete("p", key("k")), true);
    await waitFor(() => a.get("p", key("k")) === undefined, "a to see b's delete");
  });

  test("concurrent writers to one key converge on the same value everywhere: Redis' last write", async () => {
    const [a, b] = [stores[0]!, stores[1]!];
    for (let i = 0; i < 200; i++) {
      a.put("race", key("k"), key(`a${i}`));
      b.put("race", key("k"), key(`b${i}`));
    }
    const db = redis.client();
    await waitFor(async () => {
      const stored = (await db.hgetBuffer("wasmq:kv:race", "k"))?.toString();
      return stored !== undefined && text(a.get("race", key("k"))) === stored && text(b.get("race", key("k"))) === stored;
    }, "both copies to equal Redis");
  });

  test("limits as on LMDB: value, key and namespace size, counted on the shared state", async () => {
    const [a, b] = [stores[0]!, stores[1]!];
    assert.throws(() => a.put("lim", key("k"), Buffer.alloc(2000)), KvLimitError);
    assert.throws(() => a.put("lim", Buffer.alloc(100), key("v")), KvLimitError);
    for (let i = 0; i < 4; i++) a.put("lim", key(`k${i}`), Buffer.alloc(1000));
    await waitFor(() => b.get("lim", key("k3")) !== undefined, "b to see a's keys");
    assert.throws(() => b.put("lim", key("k4"), Buffer.alloc(1000)), /namespace "lim" would exceed 4096 bytes/);
  });

  test("a store that missed notices (a lost link) reloads everything from Redis", async () => {
    const c = await store("c");
    const a = stores[0]!;
    await c.resync();
    // Written behind c's back, with no notice: only a reload can show it.
    await redis.client().hset("wasmq:kv:p", "hidden", "x");
    assert.equal(c.get("p", key("hidden")), undefined);
    await c.resync();
    assert.equal(text(c.get("p", key("hidden"))), "x");
    assert.equal(text(c.get("race", key("k"))), text(a.get("race", key("k"))));
  });
});
