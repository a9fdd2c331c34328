// The inbound PUBLISH fast path (broker/protocol/publish-parser.ts) must give
// aedes exactly what mqtt-packet's parser gives it: the same packets (fields,
// key order, payload bytes), in the same order, and the same errors — over
// every split of a stream into chunks — while complete PUBLISH packets no
// longer go through mqtt-packet at all. Then through a real broker: a real
// client's mixed traffic, with messages a plugin drops in between, arrives
// complete and in order.
import { test } from "node:test";
import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import { createRequire } from "node:module";
import type { MqttClient } from "mqtt";
import { FIRST_GROUP, parseWithFastPublish, readLater, type MqttParser } from "../broker/protocol/publish-parser.js";
import { mqttPacket } from "../broker/protocol/mqtt.js";
import { connect, end, startTestBroker, subscribe, wasm } from "./helpers.js";

interface Parser extends MqttParser {
  parse(buf: Buffer): number;
  on(event: string, listener: (x: unknown) => void): void;
}
const newParser = createRequire(import.meta.url)("mqtt-packet").parser as (opts?: object) => Parser;
const originalParse = newParser().parse as (this: MqttParser, buf: Buffer) => number;

/** What a parser emitted: packets as [keys, JSON] (payloads as hex), and errors by message. */
function record(parser: Parser): string[] {
  const out: string[] = [];
  parser.on("packet", (p) => {
    const packet = p as Record<string, unknown>;
    const view = Object.keys(packet).map((k) => [k, Buffer.isBuffer(packet[k]) ? `hex:${(packet[k] as Buffer).toString("hex")}` : packet[k]]);
    out.push(JSON.stringify(view));
  });
  parser.on("error", (e) => out.push(`error: ${(e as Error).message}`));
  return out;
}

/** Feed `chunks` to a plain mqtt-packet parser and to one behind the fast path; return both records and how often the fast one fell back. */
function both(chunks: Buffer[], settings?: object): { plain: string[]; fast: string[]; fallbacks: number } {
  const plain = newParser();
  const fast = newParser();
  if (settings) {
    plain.settings = settings;
    fast.settings = settings;
  }
  const a = record(plain);
  const b = record(fast);
  let fallbacks = 0;
  const counted = function (this: MqttParser, buf: Buffer): number {
    fallbacks++;
    return originalParse.call(this, buf);
  };
  for (const c of chunks) {
    plain.parse(c);
    parseWithFastPublish(fast, c, counted);
  }
  return { plain: a, fast: b, fallbacks };
}

const gen = (p: object) => mqttPacket.generate(p);

function publishes(): Buffer[] {
  const out: Buffer[] = [];
  let id = 1;
  for (const topic of ["bench/0/data", "a", "héllo/wörld/✓", "😀/emoji", "t/".repeat(70) + "x"]) {
    // 0/64 B, and around the remaining-length byte boundaries (127/128, 16383/16384)
    for (const size of [0, 64, 110, 125, 16_370, 16_380]) {
      for (const qos of [0, 1, 2] as const) {
        for (const [dup, retain] of [[false, false], [true, false], [false, true]] as const) {
          out.push(gen({ cmd: "publish", topic, payload: Buffer.alloc(size, 0x61 + (size % 26)), qos, dup, retain, ...(qos ? { messageId: id++ } : {}) }));
        }
      }
    }
  }
  return out;
}

test("complete PUBLISH packets: mqtt-packet's packets, and mqtt-packet is not called", () => {
  const packets = publishes();
  // one chunk per packet, and all of them in one chunk
  for (const chunks of [packets, [Buffer.concat(packets)]]) {
    const r = both(chunks);
    assert.equal(r.fast.length, packets.length);
    assert.deepEqual(r.fast, r.plain);
    assert.equal(r.fallbacks, 0, "every packet was read on the fast path");
  }
});

test("a stream of mixed packets split at every byte: the same packets and errors as mqtt-packet", () => {
  const stream = Buffer.concat([
    gen({ cmd: "publish", topic: "x/y", payload: Buffer.from("one"), qos: 0 }),
    gen({ cmd: "puback", messageId: 7 }),
    gen({ cmd: "publish", topic: "ünï/✓", payload: Buffer.alloc(200, 0x62), qos: 1, messageId: 9 }),
    gen({ cmd: "pubrec", messageId: 0x1234 }),
    gen({ cmd: "pubrel", messageId: 0xfedc }),
    gen({ cmd: "pubcomp", messageId: 1 }),
    gen({ cmd: "pingreq" }),
    gen({ cmd: "subscribe", messageId: 3, subscriptions: [{ topic: "a/#", qos: 1 }] }),
    gen({ cmd: "publish", topic: "z", payload: Buffer.alloc(0), qos: 2, messageId: 65535, retain: true }),
    gen({ cmd: "publish", topic: "bench/1/data", payload: Buffer.alloc(64, 0x63), qos: 0 }),
  ]);
  let expected: string[] | null = null;
  for (let cut = 0; cut <= stream.length; cut++) {
    const r = both([stream.subarray(0, cut), stream.subarray(cut)]);
    assert.deepEqual(r.fast, r.plain, `split at ${cut}`);
    expected ??= r.plain;
    assert.deepEqual(r.fast, expected, `split at ${cut}: the same as unsplit`);
  }
  // one byte at a time, and three-way splits
  assert.deepEqual(both([...stream].map((b) => Buffer.from([b]))).fast, expected);
  for (let a = 1; a < stream.length; a += 17) for (let b = a; b < stream.length; b += 23) {
    assert.deepEqual(both([stream.subarray(0, a), stream.subarray(a, b), stream.subarray(b)]).fast, expected, `splits ${a}, ${b}`);
  }
});

test("acknowledgements: mqtt-packet's packets without mqtt-packet, in MQTT 3.1.1 and 5; any other form is mqtt-packet's", () => {
  const acks = (opts?: object) =>
    (["puback", "pubrec", "pubrel", "pubcomp"] as const).flatMap((cmd) => [0, 1, 0x7f80, 0xffff].map((messageId) => mqttPacket.generate({ cmd, messageId, reasonCode: 0 } as object, opts as object)));
  for (const settings of [undefined, { protocolVersion: 5 }]) {
    const packets = acks(settings);
    assert.ok(packets.every((p) => p.length === 4), "generated in their four-byte form");
    for (const chunks of [packets, [Buffer.concat(packets)]]) {
      const r = both(chunks, settings);
      assert.equal(r.fast.length, packets.length);
      assert.deepEqual(r.fast, r.plain);
      assert.equal(r.fallbacks, 0, "every acknowledgement was read on the fast path");
    }
    if (settings) assert.match(both(packets, settings).fast[0]!, /"reasonCode",0/);
    else assert.doesNotMatch(both(packets).fast.join(), /reasonCode/);
  }
  const good = gen({ cmd: "puback", messageId: 5 });
  const others = [
    Buffer.from([0x42, 0x02, 0x00, 0x01]), // PUBACK with reserved flags set: mqtt-packet's error [MQTT-2.2.2-2]
    Buffer.from([0x60, 0x02, 0x00, 0x01]), // PUBREL without its 0010 flags
    Buffer.from([0x40, 0x03, 0x00, 0x01, 0x00]), // remaining length 3: mqtt-packet reads it (a reason code in MQTT 5)
    Buffer.from([0x40, 0x00]), // no packet identifier
    Buffer.from([0x40, 0x04, 0x00, 0x01, 0x10, 0x00]), // MQTT 5 form with a reason code and properties
  ];
  for (const settings of [undefined, { protocolVersion: 5 }]) {
    for (const o of others) {
      const r = both([Buffer.concat([good, o, good])], settings);
      assert.deepEqual(r.fast, r.plain, o.toString("hex"));
      assert.equal(r.fallbacks, 1, `${o.toString("hex")}: the rest went to mqtt-packet`);
    }
    // cut inside an acknowledgement: the piece waits in mqtt-packet, as anything cut does
    for (let cut = 1; cut < 4; cut++) {
      const r = both([Buffer.concat([good, good.subarray(0, cut)]), good.subarray(cut)], settings);
      assert.deepEqual(r.fast, r.plain, `cut at ${cut}`);
      assert.equal(r.fast.length, 2);
    }
  }
});

test("a parser whose emit is wrapped (as MQTT 5 enhanced auth wraps it), or that has two 'packet' listeners, gets every packet through emit", () => {
  const chunk = Buffer.concat([gen({ cmd: "publish", topic: "w/1", payload: Buffer.from("a"), qos: 0 }), gen({ cmd: "puback", messageId: 3 })]);
  const wrapped = newParser();
  const got = record(wrapped);
  const screened: string[] = [];
  const emit = wrapped.emit as (this: unknown, event: string, packet?: { cmd: string }) => boolean;
  (wrapped as unknown as { emit: typeof emit }).emit = function (event, packet) {
    if (event === "packet") screened.push(packet!.cmd);
    return emit.call(this, event, packet);
  };
  parseWithFastPublish(wrapped, chunk, originalParse);
  assert.deepEqual(screened, ["publish", "puback"], "the wrapper saw both");
  assert.equal(got.length, 2);
  const twice = newParser();
  const first = record(twice);
  const second: string[] = [];
  twice.on("packet", (p) => second.push((p as { cmd: string }).cmd));
  parseWithFastPublish(twice, chunk, originalParse);
  assert.equal(first.length, 2);
  assert.deepEqual(second, ["publish", "puback"]);
});

test("malformed PUBLISH packets get mqtt-packet's own error, after the good packets before them", () => {
  const good = gen({ cmd: "publish", topic: "ok", payload: Buffer.from("fine"), qos: 0 });
  const bad = [
    Buffer.from([0x36, 0x04, 0x00, 0x01, 0x61, 0x62]), // QoS 3
    Buffer.from([0x30, 0x03, 0x00, 0x05, 0x61]), // topic longer than the packet
    Buffer.from([0x32, 0x03, 0x00, 0x01, 0x61]), // QoS 1 without a packet identifier
    Buffer.from([0x30, 0x01, 0x00]), // remaining length 1: no room for the topic length
    Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x01]), // remaining length over four bytes
    Buffer.from([0x30, 0x08, 0x00, 0x02, 0xc3, 0x28, 0x61, 0x62, 0x63, 0x64]), // ill-formed UTF-8: decoded leniently, as mqtt-packet does
  ];
  for (const b of bad) {
    const r = both([Buffer.concat([good, b, good])]);
    assert.deepEqual(r.fast, r.plain, b.toString("hex"));
    assert.ok(r.fast.length >= 2, "the good packet and the verdict on the bad one");
  }
});

test("MQTT 5 PUBLISH without properties: mqtt-packet's packets over every split, whole ones without mqtt-packet", () => {
  const V5 = { protocolVersion: 5 };
  const g5 = (p: object) => mqttPacket.generate(p, V5 as object);
  const packets = [
    g5({ cmd: "publish", topic: "bench/0/data", payload: Buffer.alloc(64, 0x61), qos: 0 }),
    g5({ cmd: "publish", topic: "ünï/✓", payload: Buffer.alloc(130, 0x62), qos: 1, messageId: 77, dup: true }),
    g5({ cmd: "publish", topic: "r", payload: Buffer.alloc(0), qos: 2, messageId: 65535, retain: true }),
  ];
  const whole = both(packets, V5);
  assert.deepEqual(whole.fast, whole.plain);
  assert.equal(whole.fallbacks, 0, "read on the fast path");
  assert.doesNotMatch(whole.fast.join(), /properties/);
  const stream = Buffer.concat([...packets, g5({ cmd: "publish", topic: "p", payload: Buffer.from("x"), qos: 0, properties: { contentType: "a" } }), ...packets]);
  for (let cut = 0; cut <= stream.length; cut++) {
    const r = both([stream.subarray(0, cut), stream.subarray(cut)], V5);
    assert.deepEqual(r.fast, r.plain, `split at ${cut}`);
  }
  // no property length byte at all, and a property length past the packet: mqtt-packet's verdicts
  for (const bad of [Buffer.from([0x30, 0x03, 0x00, 0x01, 0x61]), Buffer.from([0x30, 0x05, 0x00, 0x01, 0x61, 0x09, 0x01])]) {
    const r = both([Buffer.concat([packets[0]!, bad, packets[0]!])], V5);
    assert.deepEqual(r.fast, r.plain, bad.toString("hex"));
  }
});

test("an MQTT 5 PUBLISH with properties is left to mqtt-packet", () => {
  const v5 = mqttPacket.generate({ cmd: "publish", topic: "p", payload: Buffer.from("x"), qos: 0, properties: { contentType: "text/plain" } } as object, { protocolVersion: 5 } as object);
  const r = both([v5], { protocolVersion: 5 });
  assert.deepEqual(r.fast, r.plain);
  assert.match(r.fast[0]!, /contentType/);
  assert.equal(r.fallbacks, 1);
});

test("a chunk read from inside a packet's handling waits for the chunk being read (order kept)", () => {
  const first = Buffer.concat([1, 2, 3].map((i) => gen({ cmd: "publish", topic: `t/${i}`, payload: Buffer.from(String(i)), qos: 0 })));
  const second = Buffer.concat([4, 5].map((i) => gen({ cmd: "publish", topic: `t/${i}`, payload: Buffer.from(String(i)), qos: 0 })));
  const run = (parse: (p: Parser, b: Buffer) => void): string[] => {
    const parser = newParser();
    const seen: string[] = [];
    let nested = false;
    parser.on("packet", (p) => {
      seen.push((p as { topic: string }).topic);
      // as aedes does when a message's handling completes synchronously: read the socket again
      if (!nested) {
        nested = true;
        parse(parser, second);
      }
    });
    parse(parser, first);
    return seen;
  };
  // (mqtt-packet's own parse, re-entered like this, emits t/1 twice and then an empty packet: aedes'
  // socket has nothing left to read at that point in practice, so only the fast path is checked)
  assert.deepEqual(run((p, b) => parseWithFastPublish(p, b, originalParse)), ["t/1", "t/2", "t/3", "t/4", "t/5"]);
});

test("through a broker: mixed QoS and topics, with messages a plugin drops in between, arrive whole and in order", { timeout: 60_000 }, async () => {
  const broker = await startTestBroker({
    persistence: "memory",
    plugins: [{ name: "filter", wasm: wasm("filter"), config: { rules: [{ topic: "fp/+/temp", field: "value", min: 0, max: 100 }] } }],
  });
  let pub: MqttClient | null = null;
  let sub: MqttClient | null = null;
  try {
    sub = await connect(broker.url);
    await subscribe(sub, "fp/#", 2);
    const got: string[] = [];
    const want: string[] = [];
    const all = new Promise<void>((resolve) => {
      sub!.on("message", (topic, payload) => {
        got.push(`${topic} ${payload.toString()}`);
        if (got.length === want.length) resolve();
      });
    });
    pub = await connect(broker.url);
    const topics = ["fp/a/temp", "fp/ü/temp", "fp/b/other"];
    for (let i = 0; i < 240; i++) { // (80 at QoS 2: below aedes' 100 awaiting PUBREL)
      const topic = topics[i % 3]!;
      // every fourth reading is out of range: filter drops it (synchronously, in the publish hook)
      const value = i % 4 === 0 ? 1000 : i % 100;
      const payload = JSON.stringify({ value, i, pad: "x".repeat(i % 150) });
      if (!(topic.endsWith("/temp") && value === 1000)) want.push(`${topic} ${payload}`);
      pub.publish(topic, payload, { qos: (i % 3) as 0 | 1 | 2 });
    }
    await all;
    // each topic has one QoS (i % 3): in order per topic; across QoS levels the flows may interleave
    const byTopic = (list: string[]) => topics.map((t) => list.filter((m) => m.startsWith(`${t} `)));
    assert.deepEqual(byTopic(got), byTopic(want));
    assert.equal(got.length, want.length);
  } finally {
    if (pub) await end(pub);
    if (sub) await end(sub);
    await broker.stop();
  }
});

// -- Reading a chunk in groups, one per event-loop turn (tail5) ---------------------------------
// A connection's parser stops after FIRST_GROUP PUBLISHes of a chunk and reads the rest on a
// later turn. The reader below is aedes' read loop (lib/client.js `nextBatch`: the socket is read
// when no packet is in hand; each packet counts one until its handling calls back; an error
// closes the client), over chunks the "socket" gives one per read. The parser's entry point is
// connection-limits.ts' (readLater, then the fast path), without the packet-size scan.

interface Reader {
  closed: boolean;
  conn: EventEmitter & { destroyed: boolean; destroy(): void };
  _parsingBatch: number;
  _nextBatch(err?: Error | null): void;
}

interface GroupedRead {
  /** As record(): packets and errors, in order. */
  record: string[];
  /** The event-loop turn each packet was emitted in, counted from the first. */
  turns: number[];
}

/**
 * Feed `chunks` through a connection's parser with an aedes-like reader. Each packet is handled
 * synchronously (`sync`: as a dropped message is, which makes aedes read again from inside the
 * emit) or on the next turn. `onPacket` may close the client. Resolves when all was read and
 * handled (nothing moved for a few turns).
 */
function readLikeAedes(chunks: Buffer[], sync: boolean, opts: { settings?: object; onPacket?: (n: number, reader: Reader) => void } = {}): Promise<GroupedRead> {
  const parser = newParser();
  if (opts.settings) parser.settings = opts.settings;
  const seen = record(parser);
  const turns: number[] = [];
  let turn = 0;
  const socket = chunks.slice();
  const reader: Reader = {
    closed: false,
    // (an emitter: the parser listens for the socket's 'end' while a backlog waits)
    conn: Object.assign(new EventEmitter(), {
      destroyed: false,
      destroy(this: { destroyed: boolean }) {
        this.destroyed = true;
        reader.closed = true; // aedes closes a client whose socket is destroyed
      },
    }),
    _parsingBatch: 1,
    _nextBatch(err) {
      if (err) return;
      reader._parsingBatch--;
      if (reader._parsingBatch <= 0 && !reader.closed) {
        reader._parsingBatch = 0;
        const buf = socket.shift();
        if (buf) parser.parse(buf);
      }
    },
  };
  parser.client = reader;
  parser.parse = function (this: MqttParser, buf: Buffer) {
    return readLater(this, buf) ? 0 : parseWithFastPublish(this, buf, originalParse);
  };
  let emitted = 0;
  parser.on("packet", () => {
    turns.push(turn);
    opts.onPacket?.(++emitted, reader);
    if (reader.closed) return; // aedes' close removes its packet listener
    reader._parsingBatch++;
    if (sync) reader._nextBatch();
    else setImmediate(() => reader._nextBatch());
  });
  parser.on("error", () => {
    reader.closed = true; // as aedes: the client closes, nothing more is read
    reader.conn.destroy();
  });
  return new Promise((resolve) => {
    let idle = 0;
    let last = -1;
    const tick = () => {
      turn++;
      idle = seen.length === last ? idle + 1 : 0;
      last = seen.length;
      if (idle > 5 && (socket.length === 0 || reader.closed || reader.conn.destroyed)) return resolve({ record: seen, turns });
      // the socket's 'readable' for data still to come: aedes' nextBatch counts it as a packet done
      // (the read loop does not know what is in hand), so reads can happen while a backlog waits
      if (socket.length > 0) reader._nextBatch();
      setImmediate(tick);
    };
    reader._nextBatch(); // the socket's 'readable'
    setImmediate(tick);
  });
}

const gen0 = (i: number, topic = `g/${i % 3}`) => gen({ cmd: "publish", topic, payload: Buffer.from(`m${i}`), qos: 0 });
const gen1 = (i: number) => gen({ cmd: "publish", topic: `q/${i % 2}`, payload: Buffer.from(`n${i}`), qos: 1, messageId: i + 1 });

/** How many turns the packets were emitted over. */
const turnsUsed = (turns: number[]) => new Set(turns).size;

test("a chunk of many PUBLISHes is read in groups of 16, 16, 32, … over several turns, with mqtt-packet's packets in order", async () => {
  const packets = Array.from({ length: 100 }, (_, i) => (i % 4 === 3 ? gen1(i) : gen0(i)));
  const plain = both([Buffer.concat(packets)]).plain;
  for (const sync of [false, true]) {
    const r = await readLikeAedes([Buffer.concat(packets)], sync);
    assert.deepEqual(r.record, plain, `sync ${sync}`);
    // 16 + 16 + 32 + 36: four turns, the first group exactly FIRST_GROUP
    assert.equal(FIRST_GROUP, 16);
    assert.equal(r.turns.filter((t) => t === r.turns[0]).length, FIRST_GROUP, "the first group");
    assert.equal(turnsUsed(r.turns), 4, `groups over turns: ${JSON.stringify(r.turns)}`);
  }
  // a parser of its own (no connection) reads the chunk whole, as before
  const whole = both([Buffer.concat(packets)]);
  assert.equal(whole.fallbacks, 0);
  assert.equal(whole.fast.length, 100);
});

test("grouped reads over every split of a mixed stream: mqtt-packet's packets and errors, in order", async () => {
  const parts = [
    ...Array.from({ length: 20 }, (_, i) => gen0(i)),
    gen({ cmd: "puback", messageId: 7 }),
    ...Array.from({ length: 18 }, (_, i) => gen1(i + 20)),
    gen({ cmd: "pingreq" }),
    gen({ cmd: "subscribe", messageId: 3, subscriptions: [{ topic: "a/#", qos: 1 }] }),
    ...Array.from({ length: 20 }, (_, i) => gen0(i + 40, "ünï/✓")),
  ];
  const stream = Buffer.concat(parts);
  const expected = both([stream]).plain;
  assert.equal(expected.length, parts.length);
  for (let cut = 0; cut <= stream.length; cut += 3) {
    for (const sync of [false, true]) {
      const r = await readLikeAedes([stream.subarray(0, cut), stream.subarray(cut)], sync);
      assert.deepEqual(r.record, expected, `split at ${cut}, sync ${sync}`);
    }
  }
  // three chunks, and one small chunk per packet (a backlog of many chunks)
  for (let a = 1; a < stream.length; a += 97) for (let b = a; b < stream.length; b += 131) {
    assert.deepEqual((await readLikeAedes([stream.subarray(0, a), stream.subarray(a, b), stream.subarray(b)], false)).record, expected, `splits ${a}, ${b}`);
  }
  assert.deepEqual((await readLikeAedes(parts, false)).record, expected);
  assert.deepEqual((await readLikeAedes(parts, true)).record, expected);
});

test("MQTT 5 PUBLISHes without properties are read in groups too, with mqtt-packet's packets", async () => {
  const V5 = { protocolVersion: 5 };
  const packets = Array.from({ length: 40 }, (_, i) => mqttPacket.generate({ cmd: "publish", topic: `v5/${i}`, payload: Buffer.from(`p${i}`), qos: i % 2, ...(i % 2 ? { messageId: i } : {}) } as object, V5 as object));
  const plain = both([Buffer.concat(packets)], V5).plain;
  const r = await readLikeAedes([Buffer.concat(packets)], false, { settings: V5 });
  assert.deepEqual(r.record, plain);
  assert.equal(turnsUsed(r.turns), 3, "16 + 16 + 8");
});

test("a malformed packet after the first group: the packets before it, mqtt-packet's error, nothing after", async () => {
  const good = Array.from({ length: 40 }, (_, i) => gen0(i));
  const bad = Buffer.from([0x36, 0x04, 0x00, 0x01, 0x61, 0x62]); // QoS 3
  const stream = Buffer.concat([...good, bad, ...good]);
  const plain = both([stream]).plain;
  const upToError = plain.slice(0, plain.findIndex((x) => x.startsWith("error")) + 1);
  assert.equal(upToError.length, 41);
  for (const chunks of [[stream], [stream.subarray(0, 700), stream.subarray(700)], [Buffer.concat(good), Buffer.concat([bad, ...good])]]) {
    const r = await readLikeAedes(chunks, false);
    assert.deepEqual(r.record, upToError);
  }
});

test("a client closed between turns: the rest of its chunk and what it sent after are not read", async () => {
  const packets = Array.from({ length: 100 }, (_, i) => gen0(i));
  // closed from outside while its second group is handled (as a kick, a takeover or a socket error would)
  const r = await readLikeAedes([Buffer.concat(packets), Buffer.concat(packets)], false, {
    onPacket: (n, reader) => {
      if (n === FIRST_GROUP + 3) setImmediate(() => (reader.closed = true));
    },
  });
  assert.equal(r.record.length, 2 * FIRST_GROUP, "the second group was the last one read");
  assert.deepEqual(r.record, both([Buffer.concat(packets)]).plain.slice(0, 2 * FIRST_GROUP));
  // and by its socket being destroyed
  const d = await readLikeAedes([Buffer.concat(packets)], false, {
    onPacket: (n, reader) => {
      if (n === 1) setImmediate(() => (reader.conn.destroyed = true)); // (before aedes' close has run)
    },
  });
  assert.equal(d.record.length, FIRST_GROUP);
});
