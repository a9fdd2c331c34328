/**
 * outgoingUpdate's index (broker/persistence/lmdb/counter-index.ts) answers
 * exactly as the reference's in-order scan: the newest of many deliveries in
 * flight is found by its counter, and an earlier entry of another broker with
 * the same packet identifier still wins (it is replaced, as by a PUBREL).
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { broker, close, freshDir, list, openP, Packet, pub } from "./lmdb-support.js";

describe("LMDB: outgoingUpdate lookup", () => {
  test("each of 300 queued deliveries is numbered by its own counter", async () => {
    const p = await openP(freshDir());
    const packets = [];
    for (let i = 0; i < 300; i++) {
      const packet = pub("t", `m${i}`);
      packets.push(packet);
      await p.asyncPersistence.outgoingEnqueueCombi([{ clientId: "c" }], packet);
    }
    // newest first: the scan would walk the whole queue each time
    for (let i = 299; i >= 0; i--) await p.asyncPersistence.outgoingUpdate({ id: "c" }, { ...packets[i]!, messageId: 1000 + i });
    const queued = await list(p.outgoingStream({ id: "c" }));
    assert.deepEqual(
      queued.map((q) => [String(q.payload), q.messageId]),
      packets.map((_, i) => [`m${i}`, 1000 + i]),
    );
    await assert.rejects(p.asyncPersistence.outgoingUpdate({ id: "c" }, { ...pub("t", "never queued"), messageId: 1 }), /no such packet/);
    await close(p);
  });

  test("an earlier entry of another broker with the same identifier is replaced first (reference order)", async () => {
    const p = await openP(freshDir());
    const foreign = new Packet({ cmd: "publish", topic: "t", payload: "old", qos: 2, retain: false, brokerId: "other-broker", brokerCounter: 77 });
    await p.asyncPersistence.outgoingEnqueueCombi([{ clientId: "c" }], foreign);
    await p.asyncPersistence.outgoingUpdate({ id: "c" }, { ...foreign, messageId: 5 }); // restored from another run, in flight as 5
    const own = pub("t", "new");
    await p.asyncPersistence.outgoingEnqueueCombi([{ clientId: "c" }], own);
    await p.asyncPersistence.outgoingUpdate({ id: "c" }, { ...own, messageId: 5 });
    const queued = await list(p.outgoingStream({ id: "c" }));
    assert.equal(queued.length, 2);
    assert.equal(queued[0]!.brokerId, broker.id, "the other broker's entry took the update");
    assert.equal(queued[0]!.brokerCounter, own.brokerCounter);
    assert.equal(queued[1]!.messageId, undefined, "the own entry was not numbered");
    await close(p);
  });
});
