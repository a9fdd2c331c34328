/**
 * Held QoS 1 deliveries (broker/persistence/ack-gate.ts, lmdb/unwritten.ts):
 * a delivery to a connected session whose publisher waits on a ticket is not
 * written at once; its subscriber's PUBACK within the hold (writeHoldMs) drops the put
 * (no transaction at all), otherwise it is written and the ticket completes
 * only after the flush. Tickets of one publisher complete in order; an offline
 * session's copy is written at once; close() writes what is still held.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { AckGate } from "../broker/persistence/ack-gate.js";
import { DEFAULT_WRITE_HOLD_MS as HOLD_MS } from "../broker/persistence/lmdb/unwritten.js";
import type { LmdbPersistence } from "../broker/persistence/lmdb.js";
import { broker, close, freshDir, list, openP, Packet } from "./lmdb-support.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The id of the last committed LMDB transaction: it does not move unless something was written. */
function lastTxn(p: LmdbPersistence): number {
  return (p.root.getStats() as { lastTxnId: number }).lastTxnId;
}

function queuedOnDisk(p: LmdbPersistence): number {
  return p.asyncPersistence.dbs.outgoing.getKeysCount();
}

/** Publish the way the publish adapter does: open a ticket, enqueue, seal; resolves when the PUBACK may go. */
function publishWithTicket(
  p: LmdbPersistence,
  publisher: object,
  online: (id: string) => boolean,
  subs: string[],
  payload: string,
): { packet: Record<string, unknown>; acked: Promise<void>; enqueued: Promise<void> } {
  const gate: AckGate = p.ackGate!;
  const original: Record<string, unknown> = { cmd: "publish", topic: "t", payload: Buffer.from(payload), qos: 1, retain: false };
  const ticket = gate.open(original, broker, publisher, online);
  const packet = new Packet(original, broker);
  const enqueued = p.asyncPersistence.outgoingEnqueueCombi(
    subs.map((clientId) => ({ clientId })),
    packet,
  );
  const acked = enqueued.then(
    () =>
      new Promise<void>((resolve, reject) => {
        gate.seal(ticket, (err) => (err ? reject(err) : resolve()));
      }),
  );
  return { packet, acked, enqueued };
}

describe("LMDB: deliveries acknowledged before they are written", () => {
  test("a PUBACK within the hold drops the put: no transaction, and the publisher's ticket completes", async () => {
    const p = await openP(freshDir());
    await p.root.flushed;
    const txn = lastTxn(p);
    const { packet, acked } = publishWithTicket(p, {}, () => true, ["sub"], "m");
    // delivered: aedes numbers it, the subscriber answers
    await p.asyncPersistence.outgoingUpdate({ id: "sub" }, { ...packet, messageId: 3 });
    const [inFlight] = await list(p.outgoingStream({ id: "sub" }));
    assert.equal(String(inFlight!.payload), "m", "readable while held (a reconnect would get it)");
    const cleared = await p.asyncPersistence.outgoingClearMessageId({ id: "sub" }, { messageId: 3 });
    assert.equal(String(cleared?.payload), "m");
    await acked;
    await sleep(HOLD_MS * 3);
    await p.root.flushed;
    assert.equal(lastTxn(p), txn, "nothing was written for the delivery");
    assert.equal(queuedOnDisk(p), 0);
    await close(p);
  });

  test("without a PUBACK the put is written, and the ticket completes only once it is on disk", async () => {
    const dir = freshDir();
    let p = await openP(dir);
    const { acked } = publishWithTicket(p, {}, () => true, ["sub"], "kept");
    let completed = false;
    void acked.then(() => (completed = true));
    await sleep(0);
    assert.equal(completed, false, "not before the hold ran out");
    await acked;
    // complete ⇒ flushed: the record is in the committed data
    assert.equal(queuedOnDisk(p), 1, "written before the publisher's PUBACK");
    await close(p);
    p = await openP(dir);
    const queued = await list(p.outgoingStream({ id: "sub" }));
    assert.deepEqual(queued.map((q) => String(q.payload)), ["kept"]);
    await close(p);
  });

  test("a copy for an offline session is written at once; the ticket waits for all copies", async () => {
    const p = await openP(freshDir());
    const online = (id: string) => id === "on";
    const { packet, acked } = publishWithTicket(p, {}, online, ["on", "off"], "both");
    await p.asyncPersistence.outgoingUpdate({ id: "on" }, { ...packet, messageId: 1 });
    await p.asyncPersistence.outgoingClearMessageId({ id: "on" }, { messageId: 1 });
    await acked;
    assert.equal(queuedOnDisk(p), 1, "the offline copy is on disk when the PUBACK may go");
    const offline = await list(p.outgoingStream({ id: "off" }));
    assert.deepEqual(offline.map((q) => String(q.payload)), ["both"]);
    assert.deepEqual(await list(p.outgoingStream({ id: "on" })), []);
    await close(p);
  });

  test("one publisher's tickets complete in publish order, another publisher's do not wait for them", async () => {
    const p = await openP(freshDir());
    const slow = {};
    const fast = {};
    const order: string[] = [];
    const a = publishWithTicket(p, slow, () => true, ["s1"], "a"); // never acknowledged: waits for hold + flush
    const b = publishWithTicket(p, slow, () => true, ["s2"], "b");
    const c = publishWithTicket(p, fast, () => true, ["s3"], "c");
    void a.acked.then(() => order.push("a"));
    void b.acked.then(() => order.push("b"));
    void c.acked.then(() => order.push("c"));
    for (const [m, id] of [[b, "s2"], [c, "s3"]] as const) {
      await m.enqueued;
      await p.asyncPersistence.outgoingUpdate({ id }, { ...m.packet, messageId: 9 });
      await p.asyncPersistence.outgoingClearMessageId({ id }, { messageId: 9 });
    }
    await c.acked;
    assert.deepEqual(order, ["c"], "b is acknowledged by its subscriber but waits for a, c does not");
    await Promise.all([a.acked, b.acked]);
    assert.deepEqual(order, ["c", "a", "b"]);
    await close(p);
  });

  test("close() writes what is still held; it is queued after a restart", async () => {
    const dir = freshDir();
    let p = await openP(dir);
    const { acked } = publishWithTicket(p, {}, () => true, ["sub"], "at-close");
    await sleep(0);
    await close(p);
    await acked;
    p = await openP(dir);
    const queued = await list(p.outgoingStream({ id: "sub" }));
    assert.deepEqual(queued.map((q) => String(q.payload)), ["at-close"]);
    await close(p);
  });

  test("a QoS 2 update of a held delivery writes the held put first (its record is never overwritten by the older one)", async () => {
    const dir = freshDir();
    let p = await openP(dir);
    const { packet, acked } = publishWithTicket(p, {}, () => true, ["sub"], "q2");
    await p.asyncPersistence.outgoingUpdate({ id: "sub" }, { ...packet, qos: 2, messageId: 5 });
    await acked;
    await sleep(HOLD_MS * 3);
    await p.root.flushed;
    await close(p);
    p = await openP(dir);
    const queued = await list(p.outgoingStream({ id: "sub" }));
    assert.equal(queued.length, 1);
    assert.equal(queued[0]!.messageId, 5, "the identifier written by the update survives");
    await close(p);
  });
});
