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

test("record format: a version 1 record (before MQTT 5 properties) still drains; version 2 keeps properties in order and the expiry deadline", async () => {
  const p = await open("format");
  try {
    // What the queue wrote before format 2: no `v`, no properties, no expiry.
    const db = p.lmdb!.root.openDB<unknown, [string, number]>({ name: "bridges" });
    await db.put(["old", 0], { t: "t/old", p: Buffer.from("v1"), q: 1, r: false, a: Date.now() });
    const old = new BridgeQueue("old", LIMITS, p.lmdb);
    const m = old.next()!;
    assert.deepEqual([m.topic, m.payload.toString(), m.qos, m.properties, m.expiresAt], ["t/old", "v1", 1, undefined, undefined]);

    const props = { userProperties: { z: "1", a: ["2", "3"] }, contentType: "text/plain", payloadFormatIndicator: true, responseTopic: "r/1", correlationData: Buffer.from([0, 1, 2]) };
    const expiresAt = Date.now() + 60_000;
    let q = new BridgeQueue("v2", LIMITS, p.lmdb);
    await q.enqueue("t/new", Buffer.from("v2"), 2, false, { properties: props, expiresAt }).durable;
    await q.enqueue("t/gone", Buffer.from("expired"), 1, false, { expiresAt: Date.now() - 1 }).durable;
    q = new BridgeQueue("v2", LIMITS, p.lmdb);
    const n = q.next()!;
    assert.equal(n.payload.toString(), "v2");
    assert.deepEqual(n.properties, props);
    assert.deepEqual(Object.keys(n.properties!.userProperties!), ["z", "a"], "user property order kept");
    assert.equal(n.expiresAt, expiresAt);
    // The expired one is dropped, not returned, and counted.
    assert.equal(q.next(), null);
    assert.equal(q.expired, 1);
    assert.equal(q.depth, 1);
  } finally {
    await p.close();
  }
});

test("PUBREC marks survive a reopen: the message is not handed out again as a PUBLISH; acknowledging it removes the mark", async () => {
  const p = await open("released");
  try {
    let q = new BridgeQueue("cloud", LIMITS, p.lmdb);
    for (let i = 0; i < 3; i++) await q.enqueue("t/x", Buffer.from(`r${i}`), 2, false).durable;
    const first = q.next()!;
    await q.markReleased(first.seq);
    q = new BridgeQueue("cloud", LIMITS, p.lmdb);
    assert.deepEqual(q.releasedSeqs(), [first.seq]);
    assert.deepEqual([q.next()!.payload.toString(), q.next()!.payload.toString(), q.next()], ["r1", "r2", null]);
    q.ack(first.seq);
    await p.lmdb!.root.flushed;
    q = new BridgeQueue("cloud", LIMITS, p.lmdb);
    assert.deepEqual(q.releasedSeqs(), []);
    assert.equal(q.depth, 2);
    // A lost session: the marks are forgotten and the messages go out as PUBLISH again.
    const again = q.next()!;
    await q.markReleased(again.seq);
    assert.equal(q.forgetReleased(), 1);
    q.rewind();
    assert.equal(q.next()!.seq, again.seq);
  } finally {
    await p.close();
  }
});
