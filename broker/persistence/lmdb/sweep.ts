/**
 * The periodic expiry sweep: retained messages and never-sent queued messages
 * whose expiry has passed are removed, through the TTL indexes.
 */
import type { StoreContext } from "./environment.js";
import { flushedNow } from "./group-commit.js";
import { readU64, u64 } from "./keys.js";
import type { QueueStore } from "./queues.js";

export async function sweepExpired(ctx: StoreContext, queues: QueueStore, now: number = Date.now()): Promise<{ retained: number; queued: number }> {
  if (ctx.destroyed) return { retained: 0, queued: 0 };
  const { root, retained, retainedTtl, outgoing, outgoingTtl } = ctx.dbs;
  const end = u64(Math.floor(now) + 1);
  const tx = root.transaction(() => {
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
  // The flush of the batch this transaction joined, taken now (group-commit.ts): after the commit, `root.flushed` is a later batch's.
  const flushed = ctx.durability === "sync" ? flushedNow(root) : null;
  flushed?.catch(() => {}); // awaited below only when something was removed
  const result = await tx;
  queues.forgetIdle();
  if (flushed && (result.retained > 0 || result.queued > 0)) await flushed;
  return result;
}
