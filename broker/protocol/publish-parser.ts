/**
 * The inbound fast path for the packet a broker reads most: a PUBLISH (MQTT
 * 3.1/3.1.1, or MQTT 5 without properties) that arrives whole in the chunk
 * read from the socket.
 *
 * mqtt-packet's parser (inside aedes) appends every chunk to a `bl` buffer
 * list and walks a four-state machine per packet; each step reads through the
 * list, and each read allocates: an `[index, offset]` array per lookup, a
 * Buffer view per `consume`, one per `readUInt8`/`toString`/`slice`. Under the
 * bench's 64 B QoS 0 traffic that was 27% of the broker's allocation per
 * message (sampling heap profile: bl's `copy` 18.9%, Buffer views 5.5%, the
 * header state 2.6%) and ~11% of its CPU (mqtt-packet, bl and Buffer views).
 *
 * Here, when the parser stands between packets with nothing buffered, the
 * chunk's complete PUBLISH packets are read in place: one packet object (the
 * parser's own class, fields set in the order mqtt-packet sets them, so both
 * paths give aedes objects of one shape), the topic decoded as mqtt-packet
 * decodes it (lenient UTF-8: conformance.ts checks it), the payload a view of
 * the chunk as mqtt-packet's own slice of a single chunk is. Each is emitted
 * as the parser emits it. At the first byte that is anything else — another
 * packet type, a packet cut by the chunk's end, an MQTT 5 PUBLISH with
 * properties, anything mqtt-packet would refuse — the rest
 * of the chunk goes to mqtt-packet unchanged, so every error and every other
 * packet is still mqtt-packet's (test/publish-parser.test.ts compares the two
 * over every split of a stream).
 *
 * Order is kept when a packet's handling completes synchronously and aedes
 * reads the socket again from inside the emit (a dropped message does): a
 * chunk that arrives while a chunk is being read waits, and is read after it.
 */
import { createRequire } from "node:module";

/** mqtt-packet's packet class (the same module object aedes' parser uses: CommonJS cache). */
const MqttPacket = createRequire(import.meta.url)("mqtt-packet/packet.js") as new () => ParsedPublish;

interface ParsedPublish {
  cmd: string | null;
  retain: boolean;
  qos: number;
  dup: boolean;
  length: number;
  topic: string | null;
  payload: Buffer | null;
  messageId?: number;
}

/** The fields of mqtt-packet's Parser this reads (mqtt-packet 9: parser.js). */
export interface MqttParser {
  _list: { length: number };
  _stateCounter: number;
  error: Error | null;
  settings: { protocolVersion?: number } | null;
  emit(event: "packet", packet: object): boolean;
}

const PUBLISH = 3;

/*
 * The parsers reading a chunk right now (one, or a few when one client's
 * handling synchronously makes another's parser read), and the chunks read
 * meanwhile: module state rather than fields on each parser, which would
 * cost every idle connection its slots (bench: idle19k-conns).
 */
const reading: MqttParser[] = [];
const waiting = new Map<MqttParser, Buffer[]>();

/**
 * Parse `buf` on `parser`: its leading complete PUBLISH packets here,
 * the rest with `parse` (mqtt-packet's own, called with the parser as `this`).
 * Returns what mqtt-packet's parse returns (bytes it holds of an incomplete
 * packet), 0 when nothing is left.
 */
export function parseWithFastPublish(parser: MqttParser, buf: Buffer, parse: (this: MqttParser, buf: Buffer) => number): number {
  if (reading.length > 0 && reading.includes(parser)) {
    // Read from inside an emit below: after the chunk being read, in order.
    const list = waiting.get(parser);
    if (list === undefined) waiting.set(parser, [buf]);
    else list.push(buf);
    return 0;
  }
  reading.push(parser);
  let held: number;
  try {
    held = readChunk(parser, buf, parse);
  } catch (err) {
    waiting.delete(parser); // the stream is broken: what waited is not read
    throw err;
  } finally {
    reading.pop(); // nested reads end first: the last entry is this parser's (splice would allocate per chunk)
  }
  if (waiting.size === 0) return held;
  const later = waiting.get(parser);
  if (later !== undefined) {
    waiting.delete(parser);
    for (let i = 0; i < later.length; i++) held = parseWithFastPublish(parser, later[i]!, parse);
  }
  return held;
}

function readChunk(parser: MqttParser, buf: Buffer, parse: (this: MqttParser, buf: Buffer) => number): number {
  // Only between packets with nothing buffered.
  if (parser._list.length !== 0 || parser._stateCounter !== 0 || parser.error !== null) return parse.call(parser, buf);
  // What mqtt-packet decides by: the CONNECT it parsed (or the v5 layer's settings).
  const v5 = parser.settings?.protocolVersion === 5;
  const n = buf.length;
  let at = 0;
  while (at < n) {
    const first = buf[at]!;
    const qos = (first >> 1) & 3;
    if (first >> 4 !== PUBLISH || qos === 3) break; // QoS 3 is mqtt-packet's error to raise
    // Remaining length ([MQTT-2.2.3]): at most four bytes.
    let length = 0;
    let multiplier = 1;
    let i = at + 1;
    let complete = false;
    for (let k = 0; k < 4 && i < n; k++) {
      const b = buf[i++]!;
      length += (b & 0x7f) * multiplier;
      multiplier *= 128;
      if ((b & 0x80) === 0) {
        complete = true;
        break;
      }
    }
    const end = i + length;
    if (!complete || end > n || length < 2) break;
    const topicLength = (buf[i]! << 8) | buf[i + 1]!;
    const topicEnd = i + 2 + topicLength;
    let payloadStart = qos > 0 ? topicEnd + 2 : topicEnd;
    if (payloadStart > end) break; // topic or packet identifier past the packet: mqtt-packet's error
    if (v5) {
      // MQTT 5: only a PUBLISH without properties (property length 0, section 3.3.2.3.1), which
      // mqtt-packet parses to the same packet as 3.1.1's (no `properties` field); any other to mqtt-packet
      if (payloadStart === end || buf[payloadStart] !== 0) break;
      payloadStart++;
    }
    const packet = new MqttPacket();
    packet.cmd = "publish";
    packet.retain = (first & 0x01) !== 0;
    packet.qos = qos;
    packet.dup = (first & 0x08) !== 0;
    packet.length = length;
    packet.topic = buf.toString("utf8", i + 2, topicEnd);
    if (qos > 0) packet.messageId = (buf[topicEnd]! << 8) | buf[topicEnd + 1]!;
    packet.payload = buf.subarray(payloadStart, end);
    at = end;
    parser.emit("packet", packet);
  }
  if (at === n) return 0;
  return parse.call(parser, at === 0 ? buf : buf.subarray(at));
}
