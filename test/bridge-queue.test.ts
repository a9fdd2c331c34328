/**
 * The bridge's durable queue on a real LMDB environment (the broker's own):
 * order across a reopen, DUP for what may have been sent before, removal on
 * acknowledgement, and the byte limit under both policies.
 */
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { after, test } from "node:test";
import { BridgeQueue } from "../broker/bridge/queue.js";
import { openPersistence } from "../broker/persistence/index.js";
import { tempDir } from "./helpers.js";

const dir = tempDir("wasmq-bridge-queue-");
after(() => rmSync(dir, { recursive: true, force: true }));

const LIMITS = { maxMessages: 1000, maxBytes: 1 << 20, onFull: "drop-oldest" as const };

async function open(name: string) {
  const p = await openPersistence({ persistence: "lmdb", data: join(dir, name), durability: "sync" });
  return p;
}

test("queued messages survive a reopen in order; those sent before come back with DUP; acknowledged ones are gone", async () => {
  let p = await open("order");
  let q = new BridgeQueue("cloud", LIMITS, p.lmdb);
  for (let i = 0; i < 10; i++) await q.enqueue(`t/${i % 3}`, Buffer.from(`m${i}`), 1, false).durable;
  const first = [q.next()!, q.next()!, q.next()!];
  assert.deepEqual(first.map((m) => [m.payload.toString(), m.dup]), [["m0", false], ["m1", false], ["m2", false]]);
  q.ack(first[0]!.seq); // the upstream acknowledged m0
  q.persistSentMark();
  await p.close();

  p = await open("order");
  q = new BridgeQueue("cloud", LIMITS, p.lmdb);
  assert.equal(q.depth, 9);
  const again: [string, boolean][] = [];
  for (let m = q.next(); m; m = q.next()) again.push([m.payload.toString(), m.dup]);
  assert.deepEqual(again, [
    ["m1", true],
    ["m2", true],
    ...Array.from({ length: 7 }, (_, i): [string, boolean] => [`m${i + 3}`, false]),
  ]);
  // Another bridge in the same environment has a queue of its own.
  const other = new BridgeQueue("other", LIMITS, p.lmdb);
  assert.equal(other.depth, 0);
  await p.close();
});

test("maxBytes: drop-oldest makes room by removing the oldest, drop-new refuses the newcomer", async () => {
  const p = await open("bytes");
  try {
    const oldest = new BridgeQueue("a", { maxMessages: 1000, maxBytes: 30, onFull: "drop-oldest" }, p.lmdb);
    const fresh = new BridgeQueue("b", { maxMessages: 1000, maxBytes: 30, onFull: "drop-new" }, p.lmdb);
    // Each message is 3 (topic) + 7 (payload) = 10 bytes: three fit.
    const results = [];
    for (let i = 0; i < 5; i++) {
      results.push(oldest.enqueue("t/x", Buffer.from(`msg-00${i}`), 1, false));
      const r = fresh.enqueue("t/x", Buffer.from(`msg-00${i}`), 1, false);
      assert.equal(r.stored, i < 3, `drop-new stores message ${i} only while there is room`);
    }
    await Promise.all(results.map((r) => r.durable));
    assert.deepEqual(results.map((r) => r.dropped), [0, 0, 0, 1, 1]);
    assert.equal(oldest.bytes, 30);
    assert.equal(fresh.bytes, 30);
    const kept = (q: BridgeQueue) => {
      const out = [];
      for (let m = q.next(); m; m = q.next()) out.push(m.payload.toString());
      return out;
    };
    assert.deepEqual(kept(oldest), ["msg-002", "msg-003", "msg-004"]);
    assert.deepEqual(kept(fresh), ["msg-000", "msg-001", "msg-002"]);
    // A message larger than maxBytes never fits, whatever the policy.
    assert.equal(oldest.enqueue("t/x", Buffer.alloc(64), 1, false).stored, false);
  } finally {
    await p.close();
  }
});
