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
 * chunk's complete PUBLISH packets — and the four-byte acknowledgements
 * (PUBACK, PUBREC, PUBREL, PUBCOMP) QoS 1/2 subscribers send back for each
 * delivery, which through mqtt-packet cost about a tenth of the garbage per
 * 64 B QoS 1 message (bench/README.md "gc9") — are read in place: one packet object (the
 * parser's own class, fields set in the order mqtt-packet sets them, so both
 * paths give aedes objects of one shape), the topic decoded as mqtt-packet
 * decodes it (lenient UTF-8: conformance.ts checks it), the payload a view of
 * the chunk as mqtt-packet's own slice of a single chunk is. Each is emitted
 * as the parser emits it. At the first byte that is anything else — another
 * packet type, a packet cut by the chunk's end, an MQTT 5 PUBLISH with
 * properties, an MQTT 5 acknowledgement with a reason code, anything
 * mqtt-packet would refuse — the rest
 * of the chunk goes to mqtt-packet unchanged, so every error and every other
 * packet is still mqtt-packet's (test/publish-parser.test.ts compares the two
 * over every split of a stream).
 *
 * Order is kept when a packet's handling completes synchronously and aedes
 * reads the socket again from inside the emit (a dropped message does): a
 * chunk that arrives while a chunk is being read waits, and is read after it.
 *
 * A chunk of many PUBLISHes is read in groups, one per event-loop turn
 * (tail5, bench/README.md "The QoS 0 tail, part 5"). Everything a chunk's
 * PUBLISHes cause — the delivery batch (outgoing-publish.ts), the write sweep
 * (write-batching.ts), a persistent session's QoS 1 writes — runs from immediates queued while they
 * are routed, so before this nothing left the broker until the whole chunk
 * had been routed: the first message of a chunk of n waited for n - 1 others
 * (5–6 µs each, tail4). Chunks grow exactly when the broker or its publisher
 * fell behind, which is when those waits land in the latency tail. So after
 * FIRST_GROUP PUBLISHes the parser stops: the rest of the chunk, and every
 * chunk read after it, wait in the parser's backlog for the next turn, when
 * the next group is read; the groups double (16, 16, 32, 64, …) so a backlog
 * costs a logarithmic number of turns and is always caught up with. While a
 * backlog waits, aedes' read loop counts it as one more packet in hand
 * (`_parsingBatch`): aedes reads the socket again only once the backlog is
 * read and its packets are done, as for any packet. A client closed between
 * turns has the rest of its backlog dropped unread, as a closed client's
 * packets are (aedes removes its packet listener): nothing after a malformed
 * packet, a refused one that closed the connection, or a DISCONNECT is
 * handled. Only parsers of a connection (`client`, aedes') stop; a parser of
 * its own reads every chunk whole.
 */
import { EventEmitter } from "node:events";
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
  reasonCode?: number;
}

/** What the read-ahead stop uses of the parser's connection (aedes 1.2: lib/client.js). */
export interface ChunkReader {
  closed: boolean;
  conn: {
    destroyed: boolean;
    destroy(err?: Error): unknown;
    prependOnceListener(event: "end", listener: () => void): unknown;
    removeListener(event: "end", listener: () => void): unknown;
  };
  /** Packets in hand; aedes reads the socket again when it falls to 0. */
  _parsingBatch: number;
  /** A packet is done: aedes' read loop (reads the socket once none is in hand). */
  _nextBatch(err?: Error | null): void;
}

/** The fields of mqtt-packet's Parser this reads (mqtt-packet 9: parser.js). */
export interface MqttParser {
  _list: { length: number };
  _stateCounter: number;
  error: Error | null;
  settings: { protocolVersion?: number } | null;
  /** Set by aedes on its clients' parsers: only these stop between groups. */
  client?: ChunkReader;
  /** The parser's own entry point (connection-limits.ts' guarded parse on a connection). */
  parse(buf: Buffer): number;
  emit(event: "packet", packet: object): boolean;
  /** EventEmitter's listener table (Node's events.js): one function, or an array of them. */
  _events?: Record<string, unknown>;
}

type Parse = (this: MqttParser, buf: Buffer) => number;

const PUBLISH = 3;
/** The header bytes of the acknowledgements read here, by value: their packet's `cmd`. */
const CONFIRMATIONS: Readonly<Record<number, string>> = { 0x40: "puback", 0x50: "pubrec", 0x62: "pubrel", 0x70: "pubcomp" };
/** PUBLISHes of the first group of a chunk; each later group is as large as all before it. */
export const FIRST_GROUP = 16;
/** readChunk stopped after its group: the rest waits in the backlog. */
const STOPPED = -1;

/*
 * The parsers reading a chunk right now (one, or a few when one client's
 * handling synchronously makes another's parser read), and the chunks read
 * meanwhile: module state rather than fields on each parser, which would
 * cost every idle connection its slots (bench: idle19k-conns).
 */
const reading: MqttParser[] = [];
const waiting = new Map<MqttParser, Buffer[]>();

/** What a parser that stopped mid-chunk has still to read. */
class Backlog {
  /**
   * In order: the first `scanned` already passed the packet-size scan in front
   * of this parser (the rest of the chunk that stopped, chunks read while it
   * was read), then chunks the socket gave since (scanned when read).
   */
  readonly queue: Buffer[] = [];
  scanned = 0;
  /** PUBLISHes read from this backlog's chunks so far: the size of the next group. */
  read = 0;
  /** resume() is reading it; `stopped`: and its group is done. */
  resuming = false;
  stopped = false;
  /** The client's FIN while this waits: the rest is read at once (readRestOnEnd). */
  readonly onEnd: () => void;

  constructor(
    readonly parser: MqttParser,
    readonly parse: Parse,
  ) {
    this.onEnd = readRestOnEnd.bind(this);
  }
}
const backlogs = new Map<MqttParser, Backlog>();
/** PUBLISHes the current group may still read (resume sets it; a fresh chunk starts a group of its own). */
let groupLeft = 0;

/**
 * Whether `buf`, just read from the socket, must wait behind the backlog of a
 * parser that stopped (then it is queued, and read in turn). Call before
 * anything else looks at the chunk: it is scanned when its turn comes.
 */
export function readLater(parser: MqttParser, buf: Buffer): boolean {
  if (backlogs.size === 0) return false;
  const backlog = backlogs.get(parser);
  // resume() hands its own chunks back to the parser; one read from inside their handling waits
  if (backlog === undefined || (backlog.resuming && !reading.includes(parser))) return false;
  backlog.queue.push(buf);
  return true;
}

/**
 * Parse `buf` on `parser`: its leading complete PUBLISH packets here,
 * the rest with `parse` (mqtt-packet's own, called with the parser as `this`).
 * Returns what mqtt-packet's parse returns (bytes it holds of an incomplete
 * packet), 0 when nothing is left or the rest waits for the next turn.
 */
export function parseWithFastPublish(parser: MqttParser, buf: Buffer, parse: Parse): number {
  if (reading.length > 0 && reading.includes(parser)) {
    // Read from inside an emit below: after the chunk being read, in order.
    const list = waiting.get(parser);
    if (list === undefined) waiting.set(parser, [buf]);
    else list.push(buf);
    return 0;
  }
  if (backlogs.size > 0) {
    const backlog = backlogs.get(parser);
    if (backlog !== undefined && (!backlog.resuming || backlog.stopped)) {
      // read before the chunks queued since the parser stopped, after the rest of the one that stopped
      backlog.queue.splice(backlog.scanned, 0, buf);
      backlog.scanned++;
      return 0;
    }
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
  if (waiting.size !== 0) {
    const later = waiting.get(parser);
    if (later !== undefined) {
      waiting.delete(parser);
      for (let i = 0; i < later.length; i++) held = parseWithFastPublish(parser, later[i]!, parse);
    }
  }
  return held === STOPPED ? 0 : held;
}

/** The parser read its group: the rest of `buf` from `at` and what follows wait for the next turn. */
function stop(parser: MqttParser, buf: Buffer, at: number, parse: Parse, read: number): void {
  let backlog = backlogs.get(parser);
  if (backlog === undefined) {
    backlog = new Backlog(parser, parse);
    backlogs.set(parser, backlog);
    // one more packet in hand for aedes: the socket is not read again before the backlog is
    parser.client!._parsingBatch++;
    // ahead of aedes' own 'end' listener, which closes the client
    parser.client!.conn.prependOnceListener("end", backlog.onEnd);
    setImmediate(afterThisTurn, parser);
  } else {
    backlog.stopped = true; // resume() queues the next turn
  }
  backlog.read += read;
  backlog.queue.unshift(buf.subarray(at));
  backlog.scanned++;
}

/*
 * The next group is read on the next turn of the event loop, not in this
 * turn's check phase: the immediates the last group queued (the delivery batch,
 * stored QoS 1 writes, the write sweep that sends them) may sit behind this one in
 * the queue, and must run first.
 */
function afterThisTurn(parser: MqttParser): void {
  setImmediate(resume, parser);
}

function resume(parser: MqttParser): void {
  const backlog = backlogs.get(parser);
  if (backlog !== undefined) readBacklog(backlog, Math.max(FIRST_GROUP, backlog.read));
}

/**
 * The client half-closed (its FIN) while a backlog waits. aedes closes the
 * client on 'end', which Node emits once the socket's buffer is empty — and
 * grouping emptied it into the backlog — so the rest is read now, whole, as
 * it was read before groups existed: nothing the client sent before its FIN is
 * lost, and a DISCONNECT in it is handled before the close, so the Will is
 * discarded [MQTT-3.14.4-3] rather than published.
 */
function readRestOnEnd(this: Backlog): void {
  if (backlogs.get(this.parser) === this && !this.resuming) readBacklog(this, Infinity);
}

/** Read up to `group` PUBLISHes from the backlog (and every other packet up to there). */
function readBacklog(backlog: Backlog, group: number): void {
  const parser = backlog.parser;
  const client = parser.client!;
  backlog.resuming = true;
  backlog.stopped = false;
  groupLeft = group;
  try {
    while (backlog.queue.length > 0 && !backlog.stopped) {
      if (client.closed || client.conn.destroyed) {
        finish(backlog); // nothing after a close is read
        return;
      }
      const buf = backlog.queue.shift()!;
      if (backlog.scanned > 0) {
        backlog.scanned--;
        parseWithFastPublish(parser, buf, backlog.parse);
      } else {
        parser.parse(buf); // the connection's own entry point: scanned as any chunk read from the socket
      }
    }
  } catch (err) {
    // (a chunk read from the socket throws into aedes' read loop; here the connection is what fails)
    finish(backlog);
    client.conn.destroy(err as Error);
    return;
  } finally {
    backlog.resuming = false;
  }
  if (backlog.stopped) {
    setImmediate(afterThisTurn, parser);
    return;
  }
  finish(backlog);
  if (!client.closed) client._nextBatch(); // the backlog is done: aedes reads the socket again once its packets are
}

function finish(backlog: Backlog): void {
  backlogs.delete(backlog.parser);
  backlog.parser.client!.conn.removeListener("end", backlog.onEnd);
}

/**
 * `parser.emit("packet", packet)`, without the argument array EventEmitter's
 * emit allocates per call (56 B per message): a parser's one listener (aedes'
 * handler behind the inspectors, inbound-tap.ts) is called as emit calls it.
 * With several listeners, or none, or an `emit` of the parser's own (MQTT 5
 * connections: mqtt5/enhanced-auth.ts screens their packets there), emit runs.
 */
function emitPacket(parser: MqttParser, packet: object): void {
  const listener = parser._events?.packet;
  if (typeof listener === "function" && parser.emit === eventEmitterEmit) (listener as (this: MqttParser, packet: object) => void).call(parser, packet);
  else parser.emit("packet", packet);
}
const eventEmitterEmit = EventEmitter.prototype.emit;

function readChunk(parser: MqttParser, buf: Buffer, parse: Parse): number {
  // Only between packets with nothing buffered.
  if (parser._list.length !== 0 || parser._stateCounter !== 0 || parser.error !== null) return parse.call(parser, buf);
  // What mqtt-packet decides by: the CONNECT it parsed (or the v5 layer's settings).
  const v5 = parser.settings?.protocolVersion === 5;
  const n = buf.length;
  // The PUBLISHes this group may still read: a connection's parser stops after them (see the top).
  // (resume() reading this parser's backlog: its group spans the chunks it reads)
  const backlog = backlogs.size > 0 ? backlogs.get(parser) : undefined;
  const resuming = backlog !== undefined && backlog.resuming;
  let left = parser.client === undefined ? Infinity : resuming ? groupLeft : FIRST_GROUP;
  let at = 0;
  while (at < n) {
    if (left === 0) {
      stop(parser, buf, at, parse, resuming ? 0 : FIRST_GROUP);
      return STOPPED;
    }
    const first = buf[at]!;
    const qos = (first >> 1) & 3;
    if (first >> 4 !== PUBLISH) {
      // PUBACK, PUBREC, PUBREL, PUBCOMP with remaining length 2 (MQTT 3.1.1 sections 3.4–3.7): what
      // every QoS 1/2 delivery brings back. Exactly the header byte mqtt-packet accepts ([MQTT-2.2.2-1]:
      // PUBREL's flags are 0010, the others' 0000): anything else is mqtt-packet's, errors included.
      const cmd = CONFIRMATIONS[first];
      if (cmd === undefined || buf[at + 1] !== 2 || at + 4 > n) break;
      const packet = new MqttPacket();
      packet.cmd = cmd;
      packet.qos = qos;
      packet.length = 2;
      packet.messageId = (buf[at + 2]! << 8) | buf[at + 3]!;
      // [MQTT-3.4.2-1]: an MQTT 5 acknowledgement without a reason code means Success (mqtt-packet sets it)
      if (v5) packet.reasonCode = 0;
      at += 4;
      emitPacket(parser, packet);
      continue;
    }
    if (qos === 3) break; // QoS 3 is mqtt-packet's error to raise
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
    left--;
    if (resuming) {
      groupLeft--;
      backlog.read++;
    }
    emitPacket(parser, packet);
  }
  if (at === n) return 0;
  return parse.call(parser, at === 0 ? buf : buf.subarray(at));
}
