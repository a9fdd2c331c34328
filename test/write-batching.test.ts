// broker/protocol/write-batching.ts: packets written in separate ticks of one event-loop
// turn leave in one write, as mqtt-packet alone batches only one synchronous run.
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import type { Writable } from "node:stream";
import { test } from "node:test";
import { batchWrites } from "../broker/protocol/write-batching.js";
import { recorder } from "./write-recorder.js";

const mqttPacket = createRequire(import.meta.url)("mqtt-packet") as { writeToStream(packet: object, stream: Writable): boolean };


/** Three PUBACKs, each written in its own tick of the same turn (as wasmq's publish path does). */
async function threeTicks(stream: Writable): Promise<void> {
  for (const messageId of [1, 2, 3]) {
    mqttPacket.writeToStream({ cmd: "puback", messageId }, stream);
    await new Promise<void>((resolve) => process.nextTick(resolve));
  }
  await new Promise((resolve) => setImmediate(resolve));
  await new Promise((resolve) => setImmediate(resolve));
}

test("writes from several ticks of one turn leave together; without it, one write per tick", async () => {
  const plain = recorder();
  await threeTicks(plain.stream);
  assert.equal(plain.chunks.length, 3, "mqtt-packet alone: a write per tick");

  const batched = recorder();
  batchWrites(batched.stream);
  await threeTicks(batched.stream);
  assert.equal(batched.chunks.length, 1, "one write for the turn");
  // mqtt-packet writes a PUBACK in three pieces; a batched connection writes each packet whole (whole-packet.ts)
  assert.equal(plain.chunks.reduce((a, b) => a + b, 0), 9);
  assert.equal(batched.chunks[0], 3, "carrying the three packets, one chunk each");
  assert.deepEqual(Buffer.concat(batched.bytes), Buffer.concat(plain.bytes), "the same bytes");

  // The next turn starts a new batch.
  await threeTicks(batched.stream);
  assert.equal(batched.chunks.length, 2);
  assert.equal(batched.stream.writableCorked, 0, "nothing left corked");
});

test("a turn's batch is flushed early past 8 KB, so batching never looks like a slow consumer", async () => {
  const batched = recorder();
  batchWrites(batched.stream);
  const payload = Buffer.alloc(1000, 0x61);
  let refused = 0;
  for (let i = 0; i < 40; i++) {
    if (!mqttPacket.writeToStream({ cmd: "publish", topic: "t", payload, qos: 0, retain: false, dup: false }, batched.stream)) refused++;
    await new Promise<void>((resolve) => process.nextTick(resolve));
  }
  await new Promise((resolve) => setImmediate(resolve));
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(refused, 0, "write() never reported the stream over its high-water mark");
  assert.ok(batched.chunks.length >= 4 && batched.chunks.length <= 8, `40 KB in ${batched.chunks.length} writes`);
  assert.equal(batched.stream.writableCorked, 0);
});
