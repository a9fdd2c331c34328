/**
 * `limits.maxQueuedMessages` counted cluster-wide: the stored queue of a
 * persistent session lives in Redis (aedes-persistence-redis' list
 * `outgoing:<client id>`), whichever node enqueues. Before a QoS 1/2 message is
 * queued, one pipeline reads each matching session's queue length and whether
 * some node holds the client connected (its owner record, ownership.ts): a
 * connected client's entries are its in-flight deliveries and are never
 * refused, as on a single node (protocol/limits.ts limitOfflineQueues).
 *
 * Two nodes queueing for one session at the same moment can each see room for
 * the last slot: the limit can be exceeded by (nodes - 1) messages at most.
 */
import type { AedesPublishPacket } from "aedes";
import type { Redis } from "ioredis";
import { outgoingKey } from "../persistence/redis.js";
import { ownerKey } from "./ownership.js";

interface Enqueuing {
  outgoingEnqueue(sub: { clientId: string }, packet: AedesPublishPacket): Promise<void>;
  outgoingEnqueueCombi(subs: { clientId: string }[], packet: AedesPublishPacket): Promise<void>;
}

export function limitClusterQueues<P>(
  persistence: P,
  opts: { redis: Redis; maxQueuedMessages: number; onDrop: (clientId: string, queued: number, packet: AedesPublishPacket) => void },
): P {
  const { redis, maxQueuedMessages: max, onDrop } = opts;
  if (max === 0) return persistence;
  const p = persistence as P & Enqueuing;
  const enqueueCombi = p.outgoingEnqueueCombi.bind(p);
  const withRoom = async (subs: { clientId: string }[], packet: AedesPublishPacket) => {
    const pipe = redis.pipeline();
    for (const sub of subs) pipe.llen(outgoingKey(sub.clientId)).hexists(ownerKey(sub.clientId), "node");
    const replies = (await pipe.exec()) ?? [];
    return subs.filter((sub, i) => {
      const queued = Number(replies[2 * i]?.[1] ?? 0);
      const connected = Number(replies[2 * i + 1]?.[1] ?? 0) === 1;
      if (connected || queued < max) return true;
      onDrop(sub.clientId, queued, packet);
      return false;
    });
  };
  p.outgoingEnqueueCombi = async (subs, packet) => {
    if (!subs || subs.length === 0) return;
    const keep = await withRoom(subs, packet);
    if (keep.length > 0) await enqueueCombi(keep, packet);
  };
  p.outgoingEnqueue = (sub, packet) => p.outgoingEnqueueCombi([sub], packet);
  return persistence;
}
