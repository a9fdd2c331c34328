/**
 * The periodic expiry sweep: retained messages and never-sent queued messages
 * whose expiry has passed are removed, through the TTL indexes.
 */
import type { StoreContext } from "./environment.js";
import { readU64, u64 } from "./keys.js";
import type { QueueStore } from "./queues.js";

export async function sweepExpired(ctx: StoreContext, queues: QueueStore, now: number = Date.now()): Promise<{ retained: number; queued: number }> {
  if (ctx.destroyed) return { retained: 0, queued: 0 };
  const { root, retained, retainedTtl, outgoing, outgoingTtl } = ctx.dbs;
  const end = u64(Math.floor(now) + 1);
  const result = await root.transaction(() => {
    let r = 0;
    let qd = 0;
    for (const k of [...retainedTtl.getKeys({ end })]) {
      const e = readU64(k, 0);
      const key = Buffer.from(k.subarray(8));
      const rec = retained.get(key);
      if (rec && rec.e === e) {
        retained.remove(key);
        r++;
      }
      retainedTtl.remove(k);
    }
    for (const k of [...outgoingTtl.getKeys({ end })]) {
      const e = readU64(k, 0);
      const key = Buffer.from(k.subarray(8));
      const rec = outgoing.get(key);
      if (rec && rec.e === e && (rec.p.messageId === undefined || rec.p.messageId === null)) {
        const q = queues.loaded(rec.c);
        if (q && key.subarray(0, q.prefix.length).equals(q.prefix)) {
          const seq = readU64(key, q.prefix.length);
          const meta = q.entries.get(seq);
          // an in-memory update not yet committed wins over the sweep
          if (meta && meta.messageId !== undefined && meta.messageId !== null) {
            outgoingTtl.remove(k);
            continue;
          }
          if (meta) queues.dropEntry(q, meta);
        }
        outgoing.remove(key);
        qd++;
      }
      outgoingTtl.remove(k);
    }
    return { retained: r, queued: qd };
  });
  queues.forgetIdle();
  if (ctx.durability === "sync" && (result.retained > 0 || result.queued > 0)) await root.flushed;
  return result;
}
