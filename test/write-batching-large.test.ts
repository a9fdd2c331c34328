// broker/protocol/write-batching.ts: large PUBLISHes (a payload of at least the stream's
// high-water mark) delivered in one turn share writes of up to ~64 KB instead of one write
// each, while every write() reports a full buffer exactly as it does unbatched (the
// send-queue limits count the same) and smaller packets still flush first.
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import type { Writable } from "node:stream";
import { test } from "node:test";
import { batchWrites } from "../broker/protocol/write-batching.js";
import { recorder } from "./write-recorder.js";

const mqttPacket = createRequire(import.meta.url)("mqtt-packet") as { writeToStream(packet: object, stream: Writable): boolean };


const publish = (payload: Buffer, messageId?: number) => ({ cmd: "publish", topic: "bench/0/data", payload, qos: messageId ? 1 : 0, retain: false, dup: false, messageId });

/** Write the packets each in its own tick of one event-loop turn (as aedes delivers, one setImmediate each); returns how many writes reported a full buffer. */
async function oneTurn(stream: Writable, packets: object[]): Promise<number> {
  let full = 0;
  for (const p of packets) {
    if (!mqttPacket.writeToStream(p, stream)) full++;
    await new Promise<void>((resolve) => process.nextTick(resolve));
  }
  await new Promise((resolve) => setImmediate(resolve));
  await new Promise((resolve) => setImmediate(resolve));
  return full;
}

test("16 KB publishes of one turn leave in writes of ~64 KB, not one write each; the same bytes, the same full-buffer answers", async () => {
  const payloads = Array.from({ length: 8 }, (_, i) => Buffer.alloc(16 * 1024, 0x61 + i));
  const packets = payloads.map((p) => publish(p));

  const plain = recorder();
  const plainFull = await oneTurn(plain.stream, packets);
  const batched = recorder();
  batchWrites(batched.stream);
  const batchedFull = await oneTurn(batched.stream, packets);

  assert.equal(plainFull, 8, "unbatched, every 16 KB publish fills the high-water mark");
  assert.equal(batchedFull, plainFull, "batched, write() answers the same (the send-queue limits count the same)");
  assert.deepEqual(Buffer.concat(batched.bytes), Buffer.concat(plain.bytes), "the same bytes, in order");
  assert.equal(batched.sizes.length, 2, `8 × 16 KB in writes of ${batched.sizes.join(", ")} bytes`);
  for (const n of batched.sizes) assert.ok(n <= 64 * 1024 + 16 * 1024 + 64, `a write of ${n} bytes stays near 64 KB`);
  assert.equal(batched.stream.writableCorked, 0, "nothing left corked");
});

test("a small packet after large ones flushes them first; payloads below the high-water mark keep the 8 KB rule", async () => {
  const large = Buffer.alloc(16 * 1024, 0x62);
  const batched = recorder();
  batchWrites(batched.stream);
  await oneTurn(batched.stream, [publish(large), publish(large), { cmd: "puback", messageId: 7 }, publish(Buffer.from("{}"))]);
  assert.equal(batched.sizes.length, 2, `writes of ${batched.sizes.join(", ")} bytes`);
  assert.ok(batched.sizes[0]! > 32 * 1024, "the two large publishes went together");

  // 10 KB payloads: each write fits under the high-water mark on its own, so the batch is
  // flushed before each one (past 8 KB) and no write reports a full buffer.
  const mid = recorder();
  batchWrites(mid.stream);
  const full = await oneTurn(mid.stream, Array.from({ length: 4 }, () => publish(Buffer.alloc(10 * 1024, 0x63))));
  assert.equal(full, 0, "no 10 KB publish looked like a slow consumer");
  assert.equal(mid.sizes.length, 4, `writes of ${mid.sizes.join(", ")} bytes`);
});
