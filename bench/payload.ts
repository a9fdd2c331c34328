/**
 * The bench's payload: a JSON reading of an exact size, so the filter and router
 * plugins parse real JSON, with fixed-width digit fields the load generator
 * stamps into a pre-encoded packet without re-encoding it:
 *
 *   {"t":"<send time, µs, 11 digits>","s":"<publisher 3 digits><seq 9 digits>","value":21.5,"x":"<padding>"}
 *
 * The stamped fields are strings because JSON numbers may not have leading zeros.
 */

const HEAD = '{"t":"';
const T_DIGITS = 11;
const MID = '","s":"';
const P_DIGITS = 3;
const SEQ_DIGITS = 9;
const TAIL_OPEN = '","value":21.5,"x":"';
const TAIL_CLOSE = '"}';

/** Offset of the send time in the payload, and of the publisher/sequence field. */
export const T_OFFSET = HEAD.length;
export const S_OFFSET = HEAD.length + T_DIGITS + MID.length;
export const MIN_PAYLOAD = HEAD.length + T_DIGITS + MID.length + P_DIGITS + SEQ_DIGITS + TAIL_OPEN.length + TAIL_CLOSE.length;
export const MAX_PUBLISHERS = 10 ** P_DIGITS;
export const MAX_SEQ = 10 ** SEQ_DIGITS;

/** A payload template of exactly `size` bytes (zeros in the stamped fields). */
export function payloadTemplate(size: number): Buffer {
  if (size < MIN_PAYLOAD) throw new Error(`payload size ${size} is below the bench minimum of ${MIN_PAYLOAD} bytes`);
  const pad = "x".repeat(size - MIN_PAYLOAD);
  const text = HEAD + "0".repeat(T_DIGITS) + MID + "0".repeat(P_DIGITS + SEQ_DIGITS) + TAIL_OPEN + pad + TAIL_CLOSE;
  const buf = Buffer.from(text, "latin1");
  if (buf.length !== size) throw new Error(`payload template is ${buf.length} bytes, wanted ${size}`);
  return buf;
}

function writeDigits(buf: Buffer, offset: number, width: number, value: number): void {
  for (let i = offset + width - 1; i >= offset; i--) {
    buf[i] = 48 + (value % 10);
    value = Math.floor(value / 10);
  }
}

function readDigits(buf: Uint8Array, offset: number, width: number): number {
  let v = 0;
  for (let i = offset; i < offset + width; i++) {
    const d = buf[i]! - 48;
    if (d < 0 || d > 9) return -1;
    v = v * 10 + d;
  }
  return v;
}

/** Stamp send time (µs), publisher and sequence number at `base` (the payload's offset in a packet). */
export function stamp(buf: Buffer, base: number, timeUs: number, publisher: number, seq: number): void {
  writeDigits(buf, base + T_OFFSET, T_DIGITS, Math.floor(timeUs));
  writeDigits(buf, base + S_OFFSET, P_DIGITS, publisher);
  writeDigits(buf, base + S_OFFSET + P_DIGITS, SEQ_DIGITS, seq);
}

export interface Stamp {
  timeUs: number;
  publisher: number;
  seq: number;
}

const T_KEY = Buffer.from(HEAD, "latin1");

/**
 * Read the stamp back. The fields sit at fixed offsets unless a plugin rewrote
 * the payload, in which case they are searched for. Returns false when absent.
 */
export function readStamp(payload: Buffer, out: Stamp): boolean {
  return readStampAt(payload, 0, payload.length, out);
}

/** readStamp of the payload at buf[start, end), in place (the generator's frame path: no slice per message). */
export function readStampAt(buf: Buffer, start: number, end: number, out: Stamp): boolean {
  let base = start;
  if (buf[start] !== 0x7b || buf[start + 1] !== 0x22 || buf[start + 2] !== 0x74) {
    const at = buf.indexOf(T_KEY, start);
    if (at < 0 || at >= end) return false;
    base = at;
  }
  if (end < base + S_OFFSET + P_DIGITS + SEQ_DIGITS) return false;
  const t = readDigits(buf, base + T_OFFSET, T_DIGITS);
  const p = readDigits(buf, base + S_OFFSET, P_DIGITS);
  const s = readDigits(buf, base + S_OFFSET + P_DIGITS, SEQ_DIGITS);
  if (t < 0 || p < 0 || s < 0) return false;
  out.timeUs = t;
  out.publisher = p;
  out.seq = s;
  return true;
}
