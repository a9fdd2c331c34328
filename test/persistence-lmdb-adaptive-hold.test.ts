/**
 * The adaptive write hold (`writeHold: "adaptive"`, broker/persistence/lmdb/
 * ack-pace.ts, held-puts.ts) on a real LMDB store, driven the way the publish
 * adapter and aedes drive it (ticket → enqueue → outgoingUpdate →
 * outgoingClearMessageId): a subscriber that acknowledges at once is held
 * (its deliveries dropped unwritten), one that never acknowledges within the
 * cap is written first once its estimate settles — its publisher then waits
 * for the flush only, and its records are on disk — and one that speeds up is
 * held again. `"fixed"` keeps holding every delivery. Counters, not clocks:
 * a "fast" subscriber acknowledges in the same run of code (well within the
 * 100 ms cap), a "slow" one only after its publisher got the PUBACK, i.e.
 * never before its hold ran out.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { LmdbPersistence } from "../broker/persistence/lmdb.js";
import { createLmdbPersistence } from "../broker/persistence/lmdb.js";
import { DECIDE_EVERY, TIMEOUT_RUN } from "../broker/persistence/lmdb/ack-pace.js";
import { broker, close, freshDir, list, openP, Packet } from "./lmdb-support.js";

const CAP_MS = 100;

function queuedOnDisk(p: LmdbPersistence): number {
  return p.asyncPersistence.dbs.outgoing.getKeysCount();
}

/** The broker counters of the queue records committed to LMDB. */
function countersOnDisk(p: LmdbPersistence): Set<unknown> {
  const out = new Set<unknown>();
  for (const { value } of p.asyncPersistence.dbs.outgoing.getRange()) out.add((value as { p: { brokerCounter?: unknown } }).p.brokerCounter);
  return out;
}

let nextId = 1;

/** One QoS 1 message to `sub` (connected), as the publish adapter and aedes route it; `acked` = its publisher's PUBACK may go. */
async function deliver(p: LmdbPersistence, sub: string, ack: "now" | "never" | "after-puback"): Promise<unknown> {
  const gate = p.ackGate!;
  const original: Record<string, unknown> = { cmd: "publish", topic: "t", payload: Buffer.from("m"), qos: 1, retain: false };
  const ticket = gate.open(original, broker, {}, () => true);
  const packet = new Packet(original, broker);
  await p.asyncPersistence.outgoingEnqueueCombi([{ clientId: sub }], packet);
  const acked = new Promise<void>((resolve, reject) => gate.seal(ticket, (err) => (err ? reject(err) : resolve())));
  const messageId = nextId++;
  await p.asyncPersistence.outgoingUpdate({ id: sub }, { ...packet, messageId });
  const subscriberAcks = () => p.asyncPersistence.outgoingClearMessageId({ id: sub }, { messageId });
  if (ack === "now") await subscriberAcks();
  await acked;
  if (ack === "after-puback") await subscriberAcks();
  return packet.brokerCounter;
}

function figures(p: LmdbPersistence) {
  const { mode, held, droppedUnwritten, written, writtenFirst, current, sessionsHolding, sessionsWritingFirst } = p.asyncPersistence.holdFigures();
  return { mode, held, droppedUnwritten, written, writtenFirst, current, sessionsHolding, sessionsWritingFirst };
}

/** Deliver to `sub`, which acknowledges only after its hold ran out, until it is written first (bounded). */
async function slowUntilWrittenFirst(p: LmdbPersistence, sub: string): Promise<void> {
  for (let n = 0; figures(p).sessionsWritingFirst === 0; n++) {
    assert.ok(n < TIMEOUT_RUN + SETTLE, "decided within a bounded number of deliveries");
    await deliver(p, sub, "after-puback");
  }
}

/** Deliveries until the first decision is taken. */
const SETTLE = DECIDE_EVERY;

describe("LMDB: the adaptive write hold", { timeout: 120_000 }, () => {
  test("the default mode is adaptive; a subscriber that acknowledges at once stays held, its deliveries dropped unwritten", async () => {
    const p = await openP(freshDir(), { writeHoldMs: CAP_MS });
    assert.equal(p.asyncPersistence.writeHold, "adaptive");
    for (let i = 0; i < 3 * SETTLE; i++) await deliver(p, "fast", "now");
    assert.deepEqual(figures(p), {
      mode: "adaptive",
      held: 3 * SETTLE,
      droppedUnwritten: 3 * SETTLE,
      written: 0,
      writtenFirst: 0,
      current: 0,
      sessionsHolding: 1,
      sessionsWritingFirst: 0,
    });
    assert.equal(queuedOnDisk(p), 0, "nothing was written for it");
    await close(p);
  });

  test("a subscriber that does not acknowledge within the cap is written first once its estimate settles; then held again when it speeds up", async () => {
    const dir = freshDir();
    const p = await openP(dir, { writeHoldMs: CAP_MS });
    // 1. Its first deliveries are held for the cap (no evidence yet) and run out: each is written after the hold.
    //    (A held entry the 1 s packet-identifier write touches is written then, unsampled: hence "until".)
    let n = 0;
    while (figures(p).sessionsWritingFirst === 0) {
      await deliver(p, "slow", "after-puback");
      assert.ok(++n <= TIMEOUT_RUN + SETTLE, "decided within a bounded number of deliveries");
    }
    let f = figures(p);
    assert.deepEqual(f, { mode: "adaptive", held: n, droppedUnwritten: 0, written: n, writtenFirst: 0, current: 0, sessionsHolding: 0, sessionsWritingFirst: 1 });
    // 2. Settled: its next deliveries are not held but written at once, and its publisher's PUBACK follows their flush.
    for (let i = 0; i < 5; i++) {
      const counter = await deliver(p, "slow", "never");
      assert.ok(countersOnDisk(p).has(counter), "on disk by the time its publisher may get the PUBACK");
    }
    f = figures(p);
    assert.equal(f.held, n, "no more held");
    assert.equal(f.writtenFirst, 5, "written first");
    // 3. It speeds up: written-first deliveries it acknowledges at once are samples too, and it is held again.
    n = 0;
    while (figures(p).sessionsHolding === 0) {
      await deliver(p, "slow", "now");
      assert.ok(++n <= 16 * SETTLE, "held again within a bounded number of fast acknowledgements");
    }
    const heldBefore = figures(p).held;
    const droppedBefore = figures(p).droppedUnwritten;
    for (let i = 0; i < SETTLE; i++) await deliver(p, "slow", "now");
    f = figures(p);
    assert.equal(f.held - heldBefore, SETTLE, "held again");
    assert.equal(f.droppedUnwritten - droppedBefore, SETTLE, "and dropped unwritten");
    assert.equal(f.sessionsWritingFirst, 0);
    await close(p);
    // The 5 never acknowledged are still owed to it after a restart.
    const again = await openP(dir, { writeHoldMs: CAP_MS });
    assert.equal((await list(again.outgoingStream({ id: "slow" }))).length, 5);
    await close(again);
  });

  test("sessions are decided separately: a slow one written first does not stop a fast one being held", async () => {
    const p = await openP(freshDir(), { writeHoldMs: CAP_MS });
    await slowUntilWrittenFirst(p, "slow");
    for (let i = 0; i < SETTLE; i++) await deliver(p, "fast", "now");
    const before = figures(p);
    await deliver(p, "slow", "after-puback");
    await deliver(p, "fast", "now");
    const after = figures(p);
    assert.equal(after.writtenFirst - before.writtenFirst, 1, "slow: written first");
    assert.equal(after.droppedUnwritten - before.droppedUnwritten, 1, "fast: held and dropped");
    assert.deepEqual([after.sessionsHolding, after.sessionsWritingFirst], [1, 1]);
    await close(p);
  });

  test('"fixed" holds every delivery for the cap, however slow the subscriber', async () => {
    const p = await openP(freshDir(), { writeHoldMs: 50, writeHold: "fixed" });
    for (let i = 0; i < 2 * SETTLE; i++) await deliver(p, "slow", "after-puback");
    assert.deepEqual(figures(p), {
      mode: "fixed",
      held: 2 * SETTLE,
      droppedUnwritten: 0,
      written: 2 * SETTLE,
      writtenFirst: 0,
      current: 0,
      sessionsHolding: 0,
      sessionsWritingFirst: 0,
    });
    await close(p);
  });

  test("a session that goes offline is learned afresh when it comes back", async () => {
    const p = await openP(freshDir(), { writeHoldMs: CAP_MS });
    await slowUntilWrittenFirst(p, "slow");
    assert.equal(figures(p).sessionsWritingFirst, 1);
    // a message while it is offline: written at once, and its estimate is dropped
    const gate = p.ackGate!;
    const original: Record<string, unknown> = { cmd: "publish", topic: "t", payload: Buffer.from("m"), qos: 1, retain: false };
    const ticket = gate.open(original, broker, {}, () => false);
    await p.asyncPersistence.outgoingEnqueueCombi([{ clientId: "slow" }], new Packet(original, broker));
    await new Promise<void>((resolve, reject) => gate.seal(ticket, (err) => (err ? reject(err) : resolve())));
    assert.deepEqual([figures(p).sessionsHolding, figures(p).sessionsWritingFirst], [0, 0]);
    const heldBefore = figures(p).held;
    await deliver(p, "slow", "now");
    assert.equal(figures(p).held - heldBefore, 1, "back online: held again (no evidence yet)");
    await close(p);
  });

  test("a writeHold other than adaptive or fixed is refused, naming the option", () => {
    for (const bad of ["auto", "", 1]) {
      assert.throws(() => createLmdbPersistence({ path: freshDir(), writeHold: bad as "fixed" }), /writeHold must be "adaptive" or "fixed"/, String(bad));
    }
  });
});
