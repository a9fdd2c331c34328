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

const enum State {
  Header,
  Length,
  Body,
}

export class PacketFramer {
  private state = State.Header;
  private length = 0;
  private multiplier = 1;
  private lengthBytes = 0;
  private remaining = 0;

  constructor(private readonly maxPacketSize: number) {}

  /**
   * Advance over `chunk`. Returns FRAME_OK, FRAME_MALFORMED, or the total size
   * (fixed header included) of the first packet larger than the limit.
   */
  scan(chunk: Uint8Array): number {
    let i = 0;
    const n = chunk.length;
    while (i < n) {
      if (this.state === State.Body) {
        const take = Math.min(this.remaining, n - i);
        i += take;
        this.remaining -= take;
        if (this.remaining === 0) this.state = State.Header;
        continue;
      }
      const byte = chunk[i++]!;
      if (this.state === State.Header) {
        this.state = State.Length;
        this.length = 0;
        this.multiplier = 1;
        this.lengthBytes = 0;
        continue;
      }
      this.length += (byte & 0x7f) * this.multiplier;
      this.multiplier *= 128;
      this.lengthBytes++;
      if (byte & 0x80) {
        if (this.lengthBytes === 4) return FRAME_MALFORMED;
        continue;
      }
      const total = 1 + this.lengthBytes + this.length;
      if (total > this.maxPacketSize) return total;
      this.remaining = this.length;
      this.state = this.remaining === 0 ? State.Header : State.Body;
    }
    return FRAME_OK;
  }
}
