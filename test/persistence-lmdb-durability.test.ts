/**
 * The LMDB store's group-commit rules (broker/OPERATIONS.md "Durability
 * model"): writes complete in the order they were issued even when lmdb-js
 * resolves the flushes of consecutive batches out of order, and the packet
 * identifier of a QoS 1 delivery in flight lives in memory until it is written
 * ID_WRITE_DELAY_MS later (or never, when the PUBACK comes first) while QoS 2
 * identifiers are on disk before outgoingUpdate resolves.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { ID_WRITE_DELAY_MS } from "../broker/persistence/lmdb/queues.js";
import { clientPrefix, u64 } from "../broker/persistence/lmdb/keys.js";
import type { LmdbPersistence } from "../broker/persistence/lmdb.js";
import { close, freshDir, list, openP, pub } from "./lmdb-support.js";

const turn = () => new Promise((r) => setImmediate(r));

/** The stored record of a client's n-th queued message (seq numbers start at 1 in a fresh store). */
function storedRecord(p: LmdbPersistence, clientId: string, seq: number): { p: { messageId?: number } } | undefined {
  return p.asyncPersistence.dbs.outgoing.get(Buffer.concat([clientPrefix(clientId), u64(seq)])) as { p: { messageId?: number } } | undefined;
}

describe("LMDB durability: group commit", () => {
  test("enqueues complete in the order they were issued, across many batches (durability sync)", async () => {
    const p = await openP(freshDir());
    const done: number[] = [];
    const all: Array<Promise<void>> = [];
    let n = 0;
    for (let t = 0; t < 1500; t++) {
      // a few writers per event-loop turn, as concurrent publishers would
      for (let j = 0; j <= t % 5; j++) {
        const i = n++;
        all.push(p.asyncPersistence.outgoingEnqueueCombi([{ clientId: "c" }], pub("t", `m${i}`)).then(() => void done.push(i)));
      }
      await turn();
    }
    await Promise.all(all);
    const inversions = done.filter((v, i) => i > 0 && v < done[i - 1]!).length;
    assert.equal(inversions, 0, `${inversions} enqueues completed before an earlier one`);
    const queued = await list(p.outgoingStream({ id: "c" }));
    assert.deepEqual(queued.map((q) => String(q.payload)), Array.from({ length: n }, (_, i) => `m${i}`));
    await close(p);
  });

  test("a QoS 1 delivery's packet identifier is kept in memory; a PUBACK before the write means it is never written", async () => {
    const p = await openP(freshDir());
    const packet = pub("t", "one");
    await p.asyncPersistence.outgoingEnqueue({ clientId: "c" }, packet);
    await p.asyncPersistence.outgoingUpdate({ id: "c" }, { ...packet, messageId: 7 });
    assert.equal(storedRecord(p, "c", 1)?.p.messageId, undefined, "not written at once");
    const [replayed] = await list(p.outgoingStream({ id: "c" }));
    assert.equal(replayed!.messageId, 7, "a reconnect resends it with its identifier");
    const acked = await p.asyncPersistence.outgoingClearMessageId({ id: "c" }, { messageId: 7 });
    assert.equal(acked?.messageId, 7);
    assert.equal(String(acked?.payload), "one");
    await new Promise((r) => setTimeout(r, ID_WRITE_DELAY_MS + 200));
    await p.root.flushed;
    assert.equal(p.asyncPersistence.dbs.outgoing.getKeysCount(), 0, "nothing left, nothing rewritten");
    await close(p);
  });

  test("an unacknowledged QoS 1 identifier is written after ID_WRITE_DELAY_MS, and at close", async () => {
    const dir = freshDir();
    let p = await openP(dir);
    const a = pub("t", "a");
    const b = pub("t", "b");
    await p.asyncPersistence.outgoingEnqueueCombi([{ clientId: "c" }], a);
    await p.asyncPersistence.outgoingEnqueueCombi([{ clientId: "c" }], b);
    await p.asyncPersistence.outgoingUpdate({ id: "c" }, { ...a, messageId: 11 });
    await new Promise((r) => setTimeout(r, ID_WRITE_DELAY_MS + 200));
    await p.root.flushed;
    assert.equal(storedRecord(p, "c", 1)?.p.messageId, 11, "written by the timer");
    await p.asyncPersistence.outgoingUpdate({ id: "c" }, { ...b, messageId: 12 });
    await close(p);
    p = await openP(dir);
    const queued = await list(p.outgoingStream({ id: "c" }));
    assert.deepEqual(queued.map((q) => [String(q.payload), q.messageId]), [["a", 11], ["b", 12]], "close wrote the pending one");
    await close(p);
  });

  test("a QoS 2 delivery's identifier is on disk when outgoingUpdate resolves", async () => {
    const p = await openP(freshDir());
    const packet = pub("t", "two", { qos: 2 });
    await p.asyncPersistence.outgoingEnqueue({ clientId: "c" }, packet);
    await p.asyncPersistence.outgoingUpdate({ id: "c" }, { ...packet, messageId: 5 });
    assert.equal(storedRecord(p, "c", 1)?.p.messageId, 5);
    await close(p);
  });
});
