/**
 * The load generator's frame scanner (bench/frame-scanner.ts) against
 * mqtt-packet's encoder: every frame comes out whole and in order however the
 * bytes are split across reads, remaining lengths of one to three bytes
 * included, and a malformed length is an error, not a hang.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import mqttPacket from "mqtt-packet";
import { FrameScanner, skipLengthPrefixed } from "../bench/frame-scanner.js";
import { payloadTemplate, readStampAt, stamp, type Stamp } from "../bench/payload.js";

interface Seen {
  header: number;
  bytes: Buffer;
}

function frames(): Buffer[] {
  const out: Buffer[] = [];
  // payload sizes around the one-, two- and three-byte remaining-length boundaries
  for (const size of [64, 100, 127 - 20, 200, 16_384, 20_000, 200_000]) {
    const payload = payloadTemplate(size);
    stamp(payload, 0, 12_345_678_901, 7, size);
    out.push(mqttPacket.generate({ cmd: "publish", topic: "bench/7/data", payload, qos: 1, messageId: size & 0xffff, retain: false, dup: false }));
    out.push(mqttPacket.generate({ cmd: "puback", messageId: size & 0xffff }));
  }
  out.push(mqttPacket.generate({ cmd: "pingresp" })); // remaining length 0
  return out;
}

function scanInPieces(stream: Buffer, pieces: number[]): Seen[] {
  const seen: Seen[] = [];
  const scanner = new FrameScanner(
    (buf, header, body, end, start) => {
      assert.equal(buf[start], header);
      seen.push({ header, bytes: Buffer.from(buf.subarray(start, end)) });
      assert.ok(body > start && body <= end);
    },
    (err) => assert.fail(err),
  );
  // the scanner reads from a reused buffer, as the generator's onread does: overwrite it after each push
  const readBuffer = Buffer.alloc(Math.max(...pieces, 1));
  let at = 0;
  let i = 0;
  while (at < stream.length) {
    const n = Math.min(pieces[i++ % pieces.length]!, stream.length - at);
    stream.copy(readBuffer, 0, at, at + n);
    scanner.push(readBuffer, n);
    readBuffer.fill(0xee);
    at += n;
  }
  return seen;
}

test("frames come out whole and in order for any split of the bytes across reads", () => {
  const expected = frames();
  const stream = Buffer.concat(expected);
  for (const pieces of [[stream.length], [1], [2, 3], [7, 1, 64 * 1024], [65_536], [4096, 1, 1, 1]]) {
    const seen = scanInPieces(stream, pieces);
    assert.equal(seen.length, expected.length, `pieces ${pieces.join(",")}`);
    seen.forEach((s, i) => assert.ok(s.bytes.equals(expected[i]!), `frame ${i} with pieces ${pieces.join(",")}`));
  }
});

test("a delivery's stamp is read in place from the frame", () => {
  const payload = payloadTemplate(64);
  stamp(payload, 0, 98_765_432_109, 3, 42);
  const frame = mqttPacket.generate({ cmd: "publish", topic: "bench/3/data", payload, qos: 0, retain: false, dup: false });
  let got: Stamp | null = null;
  new FrameScanner(
    (buf, _header, body, end) => {
      const topicLength = (buf[body]! << 8) | buf[body + 1]!;
      const st: Stamp = { timeUs: 0, publisher: 0, seq: 0 };
      assert.ok(readStampAt(buf, body + 2 + topicLength, end, st));
      got = st;
    },
    (err) => assert.fail(err),
  ).push(frame);
  assert.deepEqual(got, { timeUs: 98_765_432_109, publisher: 3, seq: 42 });
});

test("a remaining length of more than four bytes is reported as an error", () => {
  const errors: Error[] = [];
  const scanner = new FrameScanner(() => assert.fail("no frame expected"), (err) => errors.push(err));
  scanner.push(Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x01]));
  assert.equal(errors.length, 1);
  assert.match(errors[0]!.message, /remaining length/);
});

test("MQTT 5 property lengths are skipped, and a length past the frame is refused", () => {
  const props = Buffer.from([0x03, 0x23, 0x00, 0x01, 0xaa]); // length 3: Topic Alias 1; then the payload
  assert.equal(skipLengthPrefixed(props, 0, props.length), 4);
  assert.equal(skipLengthPrefixed(Buffer.from([0x05, 0x23]), 0, 2), -1);
  assert.equal(skipLengthPrefixed(Buffer.from([0x80, 0x80, 0x80, 0x80, 0x01]), 0, 5), -1);
});
