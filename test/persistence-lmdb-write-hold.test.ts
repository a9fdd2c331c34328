/**
 * The store's side of `writeHoldMs` (broker/persistence/lmdb/held-puts.ts):
 * 0 means no ack gate at all, so an enqueue resolves — and aedes routes the
 * message — only once its record is on disk; above 0 a delivery to a
 * connected session is held, and the hold's counters say what became of
 * each held delivery (dropped unwritten, or written) and how long the
 * written ones were held.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { LmdbPersistence } from "../broker/persistence/lmdb.js";
import { createLmdbPersistence } from "../broker/persistence/lmdb.js";
import { broker, close, freshDir, list, openP, Packet } from "./lmdb-support.js";

/** Records committed in the outgoing database (a read transaction sees committed data only). */
function queuedOnDisk(p: LmdbPersistence): number {
  return p.asyncPersistence.dbs.outgoing.getKeysCount();
}

/** Publish as the publish adapter does when the store has a gate: open a ticket, enqueue, seal. */
function publishWithTicket(p: LmdbPersistence, online: (id: string) => boolean, subs: string[], payload: string) {
  const gate = p.ackGate;
  assert.ok(gate, "the store has an ack gate");
  const original: Record<string, unknown> = { cmd: "publish", topic: "t", payload: Buffer.from(payload), qos: 1, retain: false };
  const ticket = gate.open(original, broker, {}, online);
  const packet = new Packet(original, broker);
  const enqueued = p.asyncPersistence.outgoingEnqueueCombi(subs.map((clientId) => ({ clientId })), packet);
  const acked = enqueued.then(() => new Promise<void>((resolve, reject) => gate.seal(ticket, (err) => (err ? reject(err) : resolve()))));
  return { packet, enqueued, acked };
}

describe("LMDB: writeHoldMs", () => {
  test("0: no ack gate, and a QoS 1 enqueue for a connected session resolves only once its record is on disk", async () => {
    const p = await openP(freshDir(), { writeHoldMs: 0 });
    assert.equal(p.ackGate, undefined, "no publisher waits on a ticket: the adapter takes the write-first path");
    const packet = new Packet({ cmd: "publish", topic: "t", payload: Buffer.from("first"), qos: 1, retain: false }, broker);
    await p.asyncPersistence.outgoingEnqueueCombi([{ clientId: "online-sub" }], packet);
    assert.equal(queuedOnDisk(p), 1, "committed before the enqueue resolved (before aedes delivers it)");
    const f = p.asyncPersistence.holdFigures();
    assert.deepEqual(
      { ...f, writtenWaitSeconds: undefined },
      { holdMs: 0, mode: "adaptive", held: 0, droppedUnwritten: 0, written: 0, current: 0, writtenWaitSeconds: undefined, writtenFirst: 0, sessionsHolding: 0, sessionsWritingFirst: 0 },
    );
    await close(p);
  });

  test("the default holds: the same enqueue resolves with nothing on disk yet", async () => {
    const p = await openP(freshDir());
    assert.equal(p.asyncPersistence.writeHoldMs, 5);
    const { enqueued, acked } = publishWithTicket(p, () => true, ["online-sub"], "held");
    await enqueued;
    assert.equal(queuedOnDisk(p), 0, "held, not written, when aedes routes it");
    assert.equal(p.asyncPersistence.holdFigures().current, 1);
    await acked; // never acknowledged: written and flushed after the hold
    assert.equal(queuedOnDisk(p), 1);
    await close(p);
  });

  test("counters: held, dropped unwritten, written, held now, and the written ones' time in the hold", async () => {
    const holdMs = 50;
    const dir = freshDir();
    let p = await openP(dir, { writeHoldMs: holdMs });
    const online = (id: string) => id !== "offline";
    const { packet, enqueued, acked } = publishWithTicket(p, online, ["a", "b", "c", "offline"], "m");
    await enqueued;
    assert.deepEqual(pick(p), { held: 3, droppedUnwritten: 0, written: 0, current: 3 }, "the offline copy is written at once, not held");
    // a and b acknowledge within the hold; c never does
    for (const id of ["a", "b"]) {
      await p.asyncPersistence.outgoingUpdate({ id }, { ...packet, messageId: 7 });
      await p.asyncPersistence.outgoingClearMessageId({ id }, { messageId: 7 });
    }
    assert.deepEqual(pick(p), { held: 3, droppedUnwritten: 2, written: 0, current: 1 });
    await acked; // complete ⇒ c's copy was written and flushed
    const f = p.asyncPersistence.holdFigures();
    assert.deepEqual(pick(p), { held: 3, droppedUnwritten: 2, written: 1, current: 0 });
    assert.ok(f.writtenWaitSeconds >= holdMs / 1000, `a delivery is written only once it was held ${holdMs} ms (counted ${f.writtenWaitSeconds} s)`);
    assert.equal(queuedOnDisk(p), 2, "c's and the offline session's copies");
    await close(p);
    p = await openP(dir, { writeHoldMs: holdMs });
    for (const [id, n] of [["a", 0], ["b", 0], ["c", 1], ["offline", 1]] as const) {
      assert.equal((await list(p.outgoingStream({ id }))).length, n, `${id} after a restart`);
    }
    await close(p);
  });

  test("close() writes what is still held and counts it as written", async () => {
    const p = await openP(freshDir(), { writeHoldMs: 1000 });
    const { enqueued, acked } = publishWithTicket(p, () => true, ["sub"], "at-close");
    await enqueued;
    const figures = p.asyncPersistence;
    await close(p);
    await acked;
    assert.deepEqual({ held: figures.holdFigures().held, written: figures.holdFigures().written, current: figures.holdFigures().current }, { held: 1, written: 1, current: 0 });
  });

  test("a value outside 0..1000 whole ms is refused, naming the option", () => {
    for (const bad of [-1, 1001, 2.5, Number.NaN]) {
      assert.throws(() => createLmdbPersistence({ path: freshDir(), writeHoldMs: bad }), /writeHoldMs must be an integer from 0 to 1000/, String(bad));
    }
  });
});

function pick(p: LmdbPersistence) {
  const { held, droppedUnwritten, written, current } = p.asyncPersistence.holdFigures();
  return { held, droppedUnwritten, written, current };
}
