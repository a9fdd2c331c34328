/**
 * Cluster mode's storage and routing on Redis, from the aedes ecosystem:
 *
 *   aedes-persistence-redis  persistent sessions (subscriptions, offline QoS 1/2
 *                            queues, in-flight packets), retained messages, wills
 *   mqemitter-redis          fan-out of every publish to every node (Redis pub/sub)
 *   RedisKvStore             plugin key-value state (redis-kv.ts)
 *
 * The emitter is wrapped so that a publish reaches this node's own subscribers
 * at once, and goes through Redis only to reach the other nodes (its echo is
 * recognised by id and skipped). mqemitter-redis alone delivers even local
 * messages only on their way back from Redis, so while Redis is unreachable —
 * or a connection is re-subscribing after a reconnect — nothing would reach
 * anyone. Other nodes miss what is published while the link is down — Redis
 * pub/sub is at-most-once; persistent sessions recover through their queues.
 * A QoS 1/2 publish calls back once this node's own routing has (what it
 * stores is then stored) and Redis has answered.
 */
import { createRequire } from "node:module";
import type { Redis } from "ioredis";
import MQEmitterRedis from "mqemitter-redis";
import type { Logger } from "pino";
import type { KvStore } from "../../host/kv.js";
import type { RedisLink } from "../cluster/redis-link.js";
import { RedisKvStore } from "./redis-kv.js";
import type { Notices } from "../cluster/notices.js";

const require = createRequire(import.meta.url);
// The encoding mqemitter-redis puts on the wire, from its own dependency.
const msgpack = createRequire(require.resolve("mqemitter-redis"))("msgpack-lite") as { encode(v: unknown): Buffer; decode(b: Buffer): unknown };

/**
 * Whether an encoded {id, msg} (msgpack: fixmap of 2, key "id", then the id as
 * fixstr or str8) carries an id starting with `prefix`: this node's own message.
 */
function isOwnEcho(payload: Buffer, prefix: Buffer): boolean {
  if (payload[0] !== 0x82 || payload[1] !== 0xa2 || payload[2] !== 0x69 || payload[3] !== 0x64) return false;
  const head = payload[4]!;
  const [start, length] = (head & 0xe0) === 0xa0 ? [5, head & 0x1f] : head === 0xd9 ? [6, payload[5]!] : [0, 0];
  return length > prefix.length && payload.compare(prefix, 0, prefix.length, start, start + prefix.length) === 0;
}
// The callback/stream wrapper (aedes-persistence's CallBackPersistence): aedes 1.2 pipes the retained and outgoing streams.
const redisPersistence = require("aedes-persistence-redis") as (opts: { conn: Redis; packetTTL: (packet: object) => number; maxSessionDelivery: number }) => RedisAedesPersistence;

export interface RedisAedesPersistence {
  setup(broker: unknown): Promise<void>;
  putWill(client: object, will: object): Promise<void>;
  storeRetained(packet: { topic: string; payload: Buffer }): Promise<void>;
  streamWill(brokers?: object): AsyncIterable<unknown>;
  destroy(): Promise<void>;
  [method: string]: unknown;
}

/** aedes-persistence-redis' key for a session's queue (asyncPersistence.js outgoingKey). */
export const outgoingKey = (clientId: string) => `outgoing:${encodeURIComponent(clientId)}`;
/** Bytes waiting in the emitter's Redis connection before QoS 0 publishers are paced too. */
const QOS0_UNPACED_BYTES = 4 * 1024 * 1024;
/** Retained message expiry (the persist hook's TTL): topic → expiry time in ms. */
const RETAINED_EXPIRY = "wasmq:retained-expiry";

export interface OpenedRedisPersistence {
  persistence: RedisAedesPersistence;
  kv: RedisKvStore & KvStore;
  expiry: { setRetainedExpiry(packet: { topic: string }, expiresAtMs: number): void; setQueueExpiry(packet: object, expiresAtMs: number): void };
  mode: "redis";
  /** The aedes `mq` option. */
  emitter: ClusterEmitter;
  /** QoS 1/2 messages stored for a session, as last read from Redis (refreshed on each call). */
  queuedCount(clientId: string): number;
  /** Messages delivered only locally because Redis was unreachable. */
  localOnlyPublishes(): number;
  close(): Promise<void>;
}

export type ClusterEmitter = ReturnType<typeof MQEmitterRedis> & { _emit(msg: unknown, cb?: () => void): void; pubConn: Redis };

export async function openRedisPersistence(opts: {
  link: RedisLink;
  records: Redis;
  notices: Notices;
  node: string;
  logger: Logger;
  /** limits.maxQueuedMessages (0 = no limit): how much of a session's queue a reconnect replays. */
  maxQueuedMessages: number;
}): Promise<OpenedRedisPersistence> {
  const { link, records, notices, logger } = opts;
  const queueExpiry = new WeakMap<object, number>();
  const persistence = redisPersistence({
    // aedes-persistence-redis replays at most this many queued messages per reconnect (its default: 1,000).
    maxSessionDelivery: opts.maxQueuedMessages > 0 ? opts.maxQueuedMessages : 1_000_000,
    conn: link.connect(`wasmq-persistence:${opts.node}`),
    // The persist hook's TTL for queued messages becomes the Redis key's EXPIRE.
    packetTTL: (packet) => {
      const at = queueExpiry.get(packet);
      return at === undefined ? 0 : Math.max(1, Math.ceil((at - Date.now()) / 1000));
    },
  });

  // While Redis is unreachable, the clean-up steps of a clean session's CONNECT
  // and disconnect (and a will's bookkeeping) are sent to the offline queue and
  // not waited for, so a node can still admit clean sessions and serve them
  // locally; they run, in order, when Redis is back. What must be stored before
  // it is acknowledged (queues, retained messages, QoS 2 state) still waits.
  const p = persistence as unknown as Record<string, (client: { clean?: boolean }, ...rest: unknown[]) => Promise<unknown>>;
  for (const method of ["cleanSubscriptions", "cleanIncoming", "delWill", "putWill", "outgoingClearMessageId"]) {
    const inner = p[method]!.bind(persistence);
    p[method] = (client, ...rest) => {
      const result = inner(client, ...rest);
      if (link.up || (method === "outgoingClearMessageId" && client.clean === false)) return result;
      result.catch(() => {});
      return Promise.resolve(method === "delWill" ? null : undefined);
    };
  }

  // aedes 1.x calls setup(), not the `broker` setter that marks the wrapper ready: callback-style callers would wait forever.
  const setup = persistence.setup.bind(persistence);
  persistence.setup = async (broker: unknown) => {
    await setup(broker);
    const wrapper = persistence as unknown as { ready: boolean; emit(e: string): void };
    wrapper.ready = true;
    wrapper.emit("ready");
  };

  // A PUBLISH cut off by a lost connection is not sent again later: it would arrive late and out of order.
  // No auto-pipelining (mqemitter-redis turns it on for connections it makes itself): it saves a write
  // syscall per message, but after a Redis restart under traffic the connection's PUBLISHes stopped
  // being answered in about one run in three of the restart test (ioredis 5.11), so it stays off.
  const pubConn = link.connect(`wasmq-emitter-pub:${opts.node}`, { autoResendUnfulfilledCommands: false, enableAutoPipelining: false });
  const subConn = link.connect(`wasmq-emitter-sub:${opts.node}`);
  // The id cache (for a message matched by a channel and a pattern subscription) holds the last 100k ids.
  const emitter = MQEmitterRedis({ pubConn, subConn, matchEmptyLevels: true, maxLRUCache: 100_000 }) as ClusterEmitter;
  const seen = (emitter as unknown as { _cache: { get(id: string): unknown; set(id: string, v: boolean): void } })._cache;
  // Receiving: mqemitter-redis decodes every message, its own echoes included, to
  // read the id. An echo is recognised from the encoded id's prefix instead and
  // dropped undecoded; others are decoded and emitted once (a channel and a
  // pattern subscription can both match one message: the id cache drops the second).
  const ownId = Buffer.from(`${opts.node}/`);
  const ignored = (emitter as unknown as { _ignoredTopicsSet: Set<string> })._ignoredTopicsSet;
  const receive = (channel: Buffer, payload: Buffer) => {
    if (isOwnEcho(payload, ownId) || ignored.has(channel.toString())) return;
    const packet = msgpack.decode(payload) as { id: string; msg: unknown };
    if (seen.get(packet.id)) return;
    seen.set(packet.id, true);
    emitter._emit(packet.msg);
  };
  subConn.removeAllListeners("messageBuffer");
  subConn.removeAllListeners("pmessageBuffer");
  subConn.on("messageBuffer", (channel: Buffer, payload: Buffer) => receive(channel, payload));
  subConn.on("pmessageBuffer", (_pattern: Buffer, channel: Buffer, payload: Buffer) => receive(channel, payload));
  let localOnly = 0;
  let sequence = 0;
  const inFlight = new Set<(cut: boolean) => void>();
  const sendBuffered = () => (pubConn as unknown as { stream?: { writableLength?: number } }).stream?.writableLength ?? 0;
  emitter.emit = ((msg: { topic: string }, done?: (err?: Error) => void) => {
    if (emitterClosed) return done?.(new Error("mqemitter-redis is closed"));
    // mqemitter-redis' wire format: {id, msg}; an id it has seen is not emitted again.
    const id = `${opts.node}/${++sequence}`;
    // A QoS 1/2 publisher's callback (its PUBACK) also waits for this node's own
    // routing: what must be stored before it is acknowledged is written there
    // (a shared subscription's choice and an away member's queue,
    // cluster/shared-groups.ts). It waited for Redis' reply only, which can
    // come first: a node killed then lost an acknowledged message.
    const qos0 = (msg as { qos?: number }).qos === 0;
    let waiting = qos0 ? 1 : 2;
    let failed: Error | undefined;
    // (the local routing's error, as a single node's emitter passes it on; Redis' reply has none)
    const settled = (err?: Error | null) => {
      failed ??= err ?? undefined;
      if (--waiting === 0) done?.(failed);
    };
    emitter._emit(msg, qos0 ? undefined : settled);
    if (pubConn.status !== "ready") {
      // Not queued for a link that may stay down: late delivery would arrive out of order and in a flood.
      localOnly++;
      return settled();
    }
    // Waiting for Redis' reply paces each publisher by the link; a reply that will
    // never come (the connection dropped) stops that wait at once, as if the link
    // had been down already: the message was delivered here, other nodes missed it.
    // (A QoS 1/2 publisher still waits for its local routing, which may itself wait
    // for the link: a shared subscription's choice, a persistent session's store.
    // What must be stored before it is acknowledged waits, as everywhere here.)
    let finished = false;
    const finish = (cut: boolean) => {
      if (finished) return;
      finished = true;
      inFlight.delete(finish);
      if (cut) localOnly++;
      settled();
    };
    inFlight.add(finish);
    pubConn.publish(msg.topic, msgpack.encode({ id, msg })).then(
      () => finish(false),
      () => finish(true),
    );
    // QoS 0 promises nothing, so its publisher is not held to Redis' round trip
    // (one PUBLISH at a time per client otherwise) — unless Redis falls behind and
    // the connection's send buffer grows: then it is paced like QoS 1/2.
    if (qos0 && sendBuffered() < QOS0_UNPACED_BYTES) {
      finished = true;
      inFlight.delete(finish);
      settled();
    }
  }) as typeof emitter.emit;
  pubConn.on("close", () => {
    for (const finish of [...inFlight]) finish(true);
  });
  // A subscription made or dropped while the subscriber connection is down: the
  // local listener changes at once and the caller is not held up (a SUBACK, a
  // client closing, the broker shutting down); the (P)SUBSCRIBE/(P)UNSUBSCRIBE
  // waits in the offline queue and runs after ioredis' own re-subscription.
  for (const method of ["on", "removeListener"] as const) {
    const viaRedis = (emitter[method] as (...a: unknown[]) => unknown).bind(emitter);
    (emitter as unknown as Record<string, unknown>)[method] = (topic: string, fn: unknown, done?: () => void) => {
      if (subConn.status === "ready") return viaRedis(topic, fn, done);
      viaRedis(topic, fn, () => {}); // a callback, so a refused command is not an unhandled rejection
      if (done) setImmediate(done);
      return emitter;
    };
  }

  // mqemitter-redis closes with QUIT and waits for 'end', which never comes while
  // Redis is down (and aedes closes the emitter on shutdown): disconnect instead.
  const closeEmitter = (emitter as unknown as { _close(cb: () => void): void })._close.bind(emitter);
  let emitterClosed = false;
  emitter.close = ((cb?: () => void) => {
    if (emitterClosed) return cb?.();
    emitterClosed = true;
    (emitter as unknown as { closing: boolean }).closing = true;
    pubConn.disconnect();
    subConn.disconnect();
    closeEmitter(() => cb?.());
  }) as typeof emitter.close;
  (emitter as unknown as { state: NodeJS.EventEmitter }).state.on("error", (err: Error) => logger.debug({ err: err.message }, "cluster emitter: Redis error"));

  // Retained messages with a TTL: aedes-persistence-redis keeps them in one hash
  // (no per-field expiry before Redis 7.4), so a sorted set remembers when each
  // expires and a sweep removes them.
  const storeRetained = persistence.storeRetained.bind(persistence);
  const retainedExpiry = new WeakMap<object, number>();
  persistence.storeRetained = async (packet) => {
    await storeRetained(packet);
    const at = retainedExpiry.get(packet);
    if (at !== undefined && packet.payload.length > 0) await records.zadd(RETAINED_EXPIRY, at, packet.topic);
    else await records.zrem(RETAINED_EXPIRY, packet.topic);
  };
  const sweep = setInterval(() => {
    if (!link.up) return;
    void (async () => {
      const due = await records.zrangebyscore(RETAINED_EXPIRY, "-inf", Date.now());
      for (const topic of due) {
        // Only if no newer message replaced it meanwhile (that one would have reset the score).
        const score = await records.zscore(RETAINED_EXPIRY, topic);
        if (score !== null && Number(score) <= Date.now()) {
          await records.multi().hdel("retained", topic).zrem(RETAINED_EXPIRY, topic).exec();
        }
      }
    })().catch((err: Error) => logger.warn({ err: err.message }, "cluster: retained-message expiry sweep failed"));
  }, 5000);
  sweep.unref();

  const kv = new RedisKvStore({ redis: records, notices, node: opts.node, logger });
  await kv.load();

  const counts = new Map<string, number>();
  return {
    persistence,
    kv,
    expiry: {
      setRetainedExpiry: (packet, at) => retainedExpiry.set(packet, at),
      setQueueExpiry: (packet, at) => queueExpiry.set(packet, at),
    },
    mode: "redis",
    emitter,
    queuedCount(clientId) {
      if (link.up) {
        void records.llen(outgoingKey(clientId)).then(
          (n) => counts.set(clientId, n),
          () => {},
        );
      }
      return counts.get(clientId) ?? 0;
    },
    localOnlyPublishes: () => localOnly,
    close: async () => {
      clearInterval(sweep);
      await new Promise<void>((resolve) => emitter.close(() => resolve()));
      await persistence.destroy().catch(() => {});
    },
  };
}
