/**
 * Finds MQTT packet boundaries in a byte stream without parsing packets, to
 * enforce `maxPacketSize` before the bytes are buffered. mqtt-packet's parser
 * (inside aedes) keeps appending a packet's bytes until its full declared
 * length (up to 256 MB) has arrived; this scanner reads only the fixed header,
 * so a packet that declares too large a size is refused at its first bytes.
 */
export const FRAME_OK = -1;
/** The remaining-length field ran past its four bytes ([MQTT-2.2.3]): malformed. */
export const FRAME_MALFORMED = -2;

/** The weight of each digit of the remaining length: 128^n. */
const DIGIT_WEIGHT = [1, 128, 128 * 128, 128 * 128 * 128];

const enum State {
  Header,
  Length,
  Body,
}

/**
 * Where a scan stands between chunks (kept on the connection's state: one
 * object per client, not a framer each). `frameLength` is the remaining
 * length being read while in the length field, then the body bytes still to
 * skip; the next digit's weight is 128^frameLengthBytes.
 */
export interface FrameState {
  frameState: number;
  frameLength: number;
  frameLengthBytes: number;
}

/**
 * Advance `s` over `chunk`. Returns FRAME_OK, FRAME_MALFORMED, or the total
 * size (fixed header included) of the first packet larger than `maxPacketSize`.
 */
export function scanFrames(s: FrameState, chunk: Uint8Array, maxPacketSize: number): number {
  let i = 0;
  const n = chunk.length;
  while (i < n) {
    if (s.frameState === State.Body) {
      const take = Math.min(s.frameLength, n - i);
      i += take;
      s.frameLength -= take;
      if (s.frameLength === 0) s.frameState = State.Header;
      continue;
    }
    const byte = chunk[i++]!;
    if (s.frameState === State.Header) {
      s.frameState = State.Length;
      s.frameLength = 0;
      s.frameLengthBytes = 0;
      continue;
    }
    // [MQTT-2.2.3] variable byte integer, least significant digit first
    s.frameLength += (byte & 0x7f) * DIGIT_WEIGHT[s.frameLengthBytes]!;
    s.frameLengthBytes++;
    if (byte & 0x80) {
      if (s.frameLengthBytes === 4) return FRAME_MALFORMED;
      continue;
    }
    const total = 1 + s.frameLengthBytes + s.frameLength;
    if (total > maxPacketSize) return total;
    s.frameState = s.frameLength === 0 ? State.Header : State.Body;
  }
  return FRAME_OK;
}

/** A framer of its own, for a byte stream that has no connection state. */
export class PacketFramer implements FrameState {
  frameState: number = State.Header;
  frameLength = 0;
  frameLengthBytes = 0;

  constructor(private readonly maxPacketSize: number) {}

  scan(chunk: Uint8Array): number {
    return scanFrames(this, chunk, this.maxPacketSize);
  }
}
