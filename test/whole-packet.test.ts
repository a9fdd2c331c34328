// The broker writes MQTT 3.1.1 PUBLISH and acknowledgements in one piece
// (broker/protocol/whole-packet.ts). The bytes must be exactly mqtt-packet's:
// compared here with mqtt-packet's own generate() over every header flag,
// ASCII and multi-byte topics, payloads around the inline limit and the
// remaining-length boundaries, and refused where mqtt-packet would refuse.
// Then through a real broker: a real client receives what it was sent.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mqttPacket } from "../broker/protocol/mqtt.js";
import { writeWholePacket } from "../broker/protocol/whole-packet.js";
import { connect, startTestBroker } from "./helpers.js";

function whole(packet: object, version = 4): Buffer | null {
  const chunks: Buffer[] = [];
  const r = writeWholePacket(packet, { write: (c) => (chunks.push(c), true) }, version);
  return r === null ? null : Buffer.concat(chunks);
}

test("PUBLISH: the same bytes as mqtt-packet for every QoS, DUP and RETAIN, topic and payload size", () => {
  const topics = ["a", "bench/0/data", "héllo/wörld/✓", "t/".repeat(200) + "x", "😀/emoji"];
  // 127/128 and 16383/16384 cross the remaining-length byte counts; 2048/2049 the inline limit
  const sizes = [0, 1, 64, 120, 125, 2040, 2048, 2049, 16_380, 16_384, 70_000];
  let n = 0;
  for (const topic of topics) {
    for (const size of sizes) {
      const payload = Buffer.alloc(size, 0x61 + (size % 26));
      for (const qos of [0, 1, 2] as const) {
        for (const dup of [false, true]) {
          for (const retain of [false, true]) {
            const packet = { cmd: "publish" as const, topic, payload, qos, dup, retain, ...(qos ? { messageId: 1 + ((n * 7919) % 65535) } : {}) };
            const expected = mqttPacket.generate(packet);
            assert.deepEqual(whole(packet), expected, `${topic} ${size} B qos ${qos} dup ${dup} retain ${retain}`);
            n++;
          }
        }
      }
    }
  }
});

test("acknowledgements: the same four bytes as mqtt-packet", () => {
  for (const cmd of ["puback", "pubrec", "pubrel", "pubcomp"] as const) {
    for (const messageId of [1, 2, 255, 256, 4660, 65535]) {
      const packet = { cmd, messageId };
      assert.deepEqual(whole(packet), mqttPacket.generate(packet), `${cmd} ${messageId}`);
    }
  }
});

test("MQTT 5: PUBLISH without properties or with a Topic Alias, acknowledgements with a reason code — mqtt-packet's bytes", () => {
  const V5 = { protocolVersion: 5 };
  for (const properties of [undefined, {}, { topicAlias: 1 }, { topicAlias: 300 }, { topicAlias: 65535 }, { topicAlias: undefined }]) {
    for (const topic of ["bench/0/data", "", "ünï/✓"]) {
      for (const size of [0, 64, 2049, 20_000]) {
        for (const qos of [0, 1, 2] as const) {
          const packet = { cmd: "publish" as const, topic, payload: Buffer.alloc(size, 0x62), qos, dup: qos === 1, retain: qos === 2, ...(qos ? { messageId: 4242 } : {}), ...(properties ? { properties } : {}) };
          assert.deepEqual(whole(packet, 5), mqttPacket.generate(packet, V5), `${JSON.stringify(properties)} "${topic}" ${size} B qos ${qos}`);
        }
      }
    }
  }
  for (const cmd of ["puback", "pubrec", "pubrel", "pubcomp"] as const) {
    for (const reasonCode of [0, 0x10, 0x87, 0x92]) {
      const packet = { cmd, messageId: 513, reasonCode };
      assert.deepEqual(whole(packet, 5), mqttPacket.generate(packet, V5), `${cmd} 0x${reasonCode.toString(16)}`);
    }
  }
  const refused: object[] = [
    { cmd: "publish", topic: "a", payload: Buffer.alloc(1), qos: 0, properties: { userProperties: { a: "b" } } },
    { cmd: "publish", topic: "a", payload: Buffer.alloc(1), qos: 0, properties: { topicAlias: 1, contentType: "text/plain" } },
    { cmd: "publish", topic: "a", payload: Buffer.alloc(1), qos: 0, properties: { subscriptionIdentifier: 3 } },
    { cmd: "publish", topic: "a", payload: Buffer.alloc(1), qos: 0, properties: { topicAlias: 70_000 } },
    { cmd: "publish", topic: "a", payload: Buffer.alloc(1), qos: 0, properties: { topicAlias: 0 } },
    { cmd: "puback", messageId: 1, reasonCode: 0x87, properties: { reasonString: "no" } },
    { cmd: "puback", messageId: 1 }, // mqtt-packet writes an explicit 0x00 then
  ];
  for (const packet of refused) assert.equal(whole(packet, 5), null, JSON.stringify(packet));
});

test("what it does not handle is left to mqtt-packet, with nothing written", () => {
  const refused: object[] = [
    { cmd: "connack", returnCode: 0, sessionPresent: false },
    { cmd: "suback", messageId: 1, granted: [0] },
    { cmd: "publish", topic: Buffer.from("a"), payload: Buffer.alloc(1), qos: 0 }, // topic as bytes
    { cmd: "publish", topic: "a", payload: "text", qos: 0 }, // payload as a string
    { cmd: "publish", topic: "a", payload: Buffer.alloc(1), qos: 1 }, // no packet identifier
    { cmd: "publish", topic: "a", payload: Buffer.alloc(1), qos: 1, messageId: 70_000 },
    { cmd: "publish", topic: "a", payload: Buffer.alloc(1), qos: 3 },
    { cmd: "pubrel", messageId: 1, dup: true },
    { cmd: "puback" },
  ];
  for (const packet of refused) {
    let writes = 0;
    assert.equal(writeWholePacket(packet, { write: () => (writes++, true) }), null, JSON.stringify(packet));
    assert.equal(writes, 0);
  }
});

test("through a broker: QoS 0/1/2 messages of every size arrive intact, acknowledged", { timeout: 30_000 }, async () => {
  const broker = await startTestBroker();
  const sub = await connect(broker.url, { clientId: "whole-sub", protocolVersion: 4 });
  const pub = await connect(broker.url, { clientId: "whole-pub", protocolVersion: 4 });
  try {
    await sub.subscribeAsync("w/#", { qos: 2 });
    const got: { topic: string; payload: Buffer; qos: number }[] = [];
    sub.on("message", (topic, payload, packet) => got.push({ topic, payload, qos: packet.qos }));
    const sent: { topic: string; payload: Buffer; qos: 0 | 1 | 2 }[] = [];
    for (const [i, size] of [0, 64, 2048, 2049, 20_000].entries()) {
      for (const qos of [0, 1, 2] as const) {
        const m = { topic: `w/${i}/ünï/${qos}`, payload: Buffer.alloc(size, 48 + qos), qos };
        sent.push(m);
        await pub.publishAsync(m.topic, m.payload, { qos }); // QoS 1/2 resolve on PUBACK / PUBCOMP
      }
    }
    const deadline = Date.now() + 10_000;
    while (got.length < sent.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.equal(got.length, sent.length);
    for (const m of sent) {
      const r = got.find((g) => g.topic === m.topic);
      assert.ok(r, `${m.topic} arrived`);
      assert.equal(r.qos, m.qos);
      assert.ok(r.payload.equals(m.payload), `${m.topic}: payload intact`);
    }
  } finally {
    await Promise.all([sub.endAsync(), pub.endAsync()]);
    await broker.stop();
  }
});
