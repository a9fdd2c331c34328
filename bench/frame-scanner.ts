/**
 * MQTT framing for the load generator's receive path, without parsing: finds
 * each control packet's fixed header and remaining length (MQTT 3.1.1 §2.2,
 * MQTT 5 §2.1) and hands the frame to a callback as (buffer, first byte, body
 * start, body end). The callback reads what it needs at fixed offsets — a
 * delivery's topic length, packet identifier and stamp, a PUBACK's packet
 * identifier — so a delivery costs no object, string or buffer allocation
 * (mqtt-packet's parser makes a packet object, a topic string, a payload
 * slice and buffer-list copies per message: at 64 B that was most of the
 * generator's CPU, and the generator was the limit for Mosquitto).
 *
 * A frame split across TCP reads is completed in one reusable carry buffer;
 * the callback must not keep `buf` past its return (the carry is reused).
 */

/** body/end/start: offsets in `buf` of the frame's variable header, of the byte after the frame, and of its first byte. */
export type FrameHandler = (buf: Buffer, header: number, body: number, end: number, start: number) => void;

/** Larger than any frame the bench receives at 16 KB payloads; grows if a larger one comes. */
const INITIAL_CARRY = 64 * 1024;
/** A remaining length takes at most four bytes ([MQTT-1.5.5-1]). */
const MAX_LENGTH_BYTES = 4;

export class FrameScanner {
  private carry = Buffer.allocUnsafe(INITIAL_CARRY);
  private carryLength = 0;

  constructor(
    private readonly onFrame: FrameHandler,
    private readonly onError: (err: Error) => void,
  ) {}

  /** Frame the bytes of one read (chunk[0, length)); a trailing partial frame waits in the carry for the next. */
  push(chunk: Buffer, length = chunk.length): void {
    if (this.carryLength === 0) {
      const used = this.scan(chunk, length);
      if (used >= 0 && used < length) this.keep(chunk, used, length);
      return;
    }
    this.keep(chunk, 0, length);
    const used = this.scan(this.carry, this.carryLength);
    if (used < 0) return;
    this.carry.copy(this.carry, 0, used, this.carryLength);
    this.carryLength -= used;
  }

  /** Frames in buf[0, to): calls back for each whole one; returns where the first incomplete one starts (-1 after an error). */
  private scan(buf: Buffer, to: number): number {
    let at = 0;
    while (at < to) {
      let length = 0;
      let multiplier = 1;
      let i = at + 1;
      for (let n = 0; ; n++) {
        if (n === MAX_LENGTH_BYTES) {
          this.carryLength = 0;
          this.onError(new Error("malformed remaining length (more than four bytes)"));
          return -1;
        }
        if (i >= to) return at;
        const b = buf[i++]!;
        length += (b & 0x7f) * multiplier;
        if ((b & 0x80) === 0) break;
        multiplier *= 128;
      }
      const end = i + length;
      if (end > to) return at;
      this.onFrame(buf, buf[at]!, i, end, at);
      at = end;
    }
    return at;
  }

  private keep(src: Buffer, from: number, to: number): void {
    const need = this.carryLength + (to - from);
    if (need > this.carry.length) {
      const grown = Buffer.allocUnsafe(Math.max(need, this.carry.length * 2));
      this.carry.copy(grown, 0, 0, this.carryLength);
      this.carry = grown;
    }
    src.copy(this.carry, this.carryLength, from, to);
    this.carryLength = need;
  }
}

/**
 * Skip a variable byte integer at `at` (an MQTT 5 property length) and what it
 * counts: returns the offset after both, or -1 when malformed or past `end`.
 */
export function skipLengthPrefixed(buf: Buffer, at: number, end: number): number {
  let value = 0;
  let multiplier = 1;
  for (let n = 0; n < MAX_LENGTH_BYTES && at < end; n++) {
    const b = buf[at++]!;
    value += (b & 0x7f) * multiplier;
    if ((b & 0x80) === 0) return at + value <= end ? at + value : -1;
    multiplier *= 128;
  }
  return -1;
}
