/**
 * The packets a broker writes most — PUBLISH and its acknowledgements, in
 * MQTT 3.1.1 — serialized into one buffer and written with one `write`.
 *
 * mqtt-packet's `writeToStream` writes a PUBLISH as five to six pieces
 * (header byte, remaining length, topic length, topic as a string, packet
 * identifier, payload) and an acknowledgement as three, each a separate
 * `stream.write`: per piece the stream allocates a write request, converts a
 * string, and hands libuv one more iovec. Under the bench's QoS 1 traffic
 * that is ~8 writes per message through one broker; here it is 2. The bytes
 * are exactly mqtt-packet's (test/whole-packet.test.ts compares them).
 *
 * MQTT 5 too, where the packet carries no property but a Topic Alias (a
 * PUBLISH) or a reason code (an acknowledgement): what the bench's and most
 * v5 traffic looks like once the encoder (mqtt5/encoder.ts) fitted it.
 *
 * Payloads above INLINE_PAYLOAD go out as a second write instead of being
 * copied. Anything else — other packets, other properties, odd input
 * mqtt-packet would refuse — returns null and goes through mqtt-packet.
 */

/** Payloads up to this size are copied behind the header (one write); larger ones are written as they are. */
const INLINE_PAYLOAD = 2048;
const VARBYTEINT_MAX = 268_435_455;

interface Sink {
  write(chunk: Buffer): boolean;
}

interface PublishLike {
  cmd: string;
  topic?: unknown;
  payload?: unknown;
  qos?: number;
  dup?: boolean;
  retain?: boolean;
  messageId?: unknown;
  properties?: Record<string, unknown>;
  reasonCode?: unknown;
}

/**
 * Bytes of an MQTT 5 PUBLISH's properties this module writes (the length
 * byte included): none (1), or a Topic Alias alone (4); -1 for anything else.
 */
function v5PublishProperties(props: Record<string, unknown> | undefined): number {
  if (props === undefined) return 1;
  let alias = false;
  for (const name in props) {
    if (props[name] === undefined) continue;
    const v = props[name];
    if (name !== "topicAlias" || typeof v !== "number" || !Number.isInteger(v) || v < 1 || v > 0xffff) return -1;
    alias = true;
  }
  return alias ? 4 : 1;
}

function varByteIntLength(n: number): number {
  return n < 128 ? 1 : n < 16_384 ? 2 : n < 2_097_152 ? 3 : 4;
}

function writeVarByteInt(buf: Buffer, at: number, n: number): number {
  do {
    let byte = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) byte |= 0x80;
    buf[at++] = byte;
  } while (n > 0);
  return at;
}

/** An ASCII topic (the common case) is written byte per byte without an encoder call. */
function asciiLength(s: string): number {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0x7f) return -1;
  return s.length;
}

function publish(p: PublishLike, out: Sink, version: number): boolean | null {
  const propsLength = version === 5 ? v5PublishProperties(p.properties) : 0;
  if (propsLength < 0) return null;
  const topic = p.topic;
  const payload = p.payload ?? EMPTY;
  const qos = p.qos ?? 0;
  if (typeof topic !== "string" || !Buffer.isBuffer(payload) || qos < 0 || qos > 2) return null;
  if (qos > 0 && (typeof p.messageId !== "number" || p.messageId < 0 || p.messageId > 0xffff)) return null;
  const ascii = asciiLength(topic);
  const topicLength = ascii >= 0 ? ascii : Buffer.byteLength(topic);
  if (topicLength > 0xffff) return null;
  const remaining = 2 + topicLength + (qos > 0 ? 2 : 0) + propsLength + payload.length;
  if (remaining > VARBYTEINT_MAX) return null;
  const inline = payload.length <= INLINE_PAYLOAD;
  const headLength = 1 + varByteIntLength(remaining) + remaining - (inline ? 0 : payload.length);
  const buf = Buffer.allocUnsafe(headLength);
  buf[0] = 0x30 | (p.dup ? 0x08 : 0) | (qos << 1) | (p.retain ? 0x01 : 0);
  let at = writeVarByteInt(buf, 1, remaining);
  buf[at++] = topicLength >> 8;
  buf[at++] = topicLength & 0xff;
  if (ascii >= 0) for (let i = 0; i < ascii; i++) buf[at++] = topic.charCodeAt(i);
  else at += buf.write(topic, at, "utf8");
  if (qos > 0) {
    const id = p.messageId as number;
    buf[at++] = id >> 8;
    buf[at++] = id & 0xff;
  }
  if (propsLength === 1) buf[at++] = 0;
  else if (propsLength === 4) {
    // [MQTT-3.3.2.3.4] Topic Alias: identifier 0x23, two-byte integer
    const alias = p.properties!.topicAlias as number;
    buf[at++] = 3;
    buf[at++] = 0x23;
    buf[at++] = alias >> 8;
    buf[at++] = alias & 0xff;
  }
  if (!inline) {
    out.write(buf);
    return out.write(payload);
  }
  payload.copy(buf, at);
  return out.write(buf);
}

/**
 * PUBACK, PUBREC, PUBREL (QoS 1 bit set, [MQTT-3.6.1-1]) and PUBCOMP: four
 * bytes; in MQTT 5 with a reason code other than Success, the code and an
 * empty property length follow ([MQTT-3.4.2-1]: both may be left out for 0x00).
 */
function confirmation(p: PublishLike, type: number, out: Sink, version: number): boolean | null {
  const id = p.messageId;
  if (typeof id !== "number" || id < 0 || id > 0xffff) return null;
  let code = 0;
  if (version === 5) {
    if (p.properties !== undefined || typeof p.reasonCode !== "number" || p.reasonCode < 0 || p.reasonCode > 0xff) return null;
    code = p.reasonCode;
  }
  const buf = Buffer.allocUnsafe(code === 0 ? 4 : 6);
  buf[0] = type;
  buf[1] = code === 0 ? 2 : 4;
  buf[2] = id >> 8;
  buf[3] = id & 0xff;
  if (code !== 0) {
    buf[4] = code;
    buf[5] = 0;
  }
  return out.write(buf);
}

const EMPTY = Buffer.alloc(0);

/**
 * Serialize `packet` (MQTT 3.1.1, or 5 with `version` 5) and write it to `out`
 * in one piece (two for a large payload). Returns what the last write
 * returned, or null when this packet is not one of those handled here
 * (nothing was written): the caller then uses mqtt-packet.
 */
export function writeWholePacket(packet: object, out: Sink, version = 4): boolean | null {
  const p = packet as PublishLike;
  switch (p.cmd) {
    case "publish":
      return publish(p, out, version);
    case "puback":
      return confirmation(p, 0x40, out, version);
    case "pubrec":
      return confirmation(p, 0x50, out, version);
    case "pubrel":
      // mqtt-packet sets DUP on a PUBREL when asked (a 3.1 habit); left to it
      return p.dup ? null : confirmation(p, 0x62, out, version);
    case "pubcomp":
      return confirmation(p, 0x70, out, version);
    default:
      return null;
  }
}
