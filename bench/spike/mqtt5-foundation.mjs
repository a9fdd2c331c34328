// Spike for issue #12: which foundation for MQTT 5? Runs the same v5 checks
// against a broker and prints one PASS/FAIL line per check. Not part of
// `npm test` (the conformance suites in test/mqtt5-*.test.ts are); kept so
// the table in broker/protocol/MQTT5.md can be re-measured.
//
//   node bench/spike/mqtt5-foundation.mjs bare  <path to an aedes package>
//   node bench/spike/mqtt5-foundation.mjs url   mqtt://127.0.0.1:1883
import { createRequire } from "node:module";
import { createServer, connect as tcp } from "node:net";
import { pathToFileURL } from "node:url";
import { join } from "node:path";

const require = createRequire(import.meta.url);
const mqtt = require("mqtt");
const mqttPacket = require("mqtt-packet");

const [mode, target] = process.argv.slice(2);
let url = target;
let server = null;
if (mode === "bare") {
  const { Aedes } = await import(pathToFileURL(join(target, "aedes.js")).href);
  const aedes = await Aedes.createBroker();
  server = createServer(aedes.handle);
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  url = `mqtt://127.0.0.1:${server.address().port}`;
}
const port = Number(new URL(url).port);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const uid = (p) => `${p}-${Math.random().toString(36).slice(2, 8)}`;

function v5(opts = {}) {
  const c = mqtt.connect(url, { protocolVersion: 5, reconnectPeriod: 0, connectTimeout: 3000, ...opts });
  return new Promise((resolve, reject) => {
    c.once("connect", (connack) => resolve({ c, connack }));
    c.once("error", reject);
    c.once("close", () => reject(new Error("closed before CONNACK")));
  });
}
function raw() {
  const s = tcp({ port, host: "127.0.0.1" });
  const packets = [];
  const parser = mqttPacket.parser({ protocolVersion: 5 });
  parser.on("packet", (p) => packets.push(p));
  parser.on("error", () => {});
  s.on("data", (b) => parser.parse(b));
  s.on("error", () => {});
  let closed = false;
  s.on("close", () => (closed = true));
  return {
    packets,
    send: (p) => s.write(mqttPacket.generate(p, { protocolVersion: 5 })),
    sendRaw: (b) => s.write(b),
    closed: () => closed,
    end: () => s.destroy(),
  };
}
const connect5 = (id, props = {}, extra = {}) => ({ cmd: "connect", protocolId: "MQTT", protocolVersion: 5, clean: true, clientId: id, keepalive: 0, properties: props, ...extra });

const checks = {
  async "v5 CONNECT accepted (CONNACK 0x00)"() {
    const { c, connack } = await v5({ clientId: uid("a") });
    c.end(true);
    return connack.reasonCode === 0;
  },
  async "assigned client identifier for empty id"() {
    const { c, connack } = await v5({ clientId: "" });
    c.end(true);
    return typeof connack.properties?.assignedClientIdentifier === "string";
  },
  async "user properties, content type, response topic, correlation data pass through"() {
    const { c: sub } = await v5({ clientId: uid("s") });
    const { c: pub } = await v5({ clientId: uid("p") });
    const t = uid("t");
    await sub.subscribeAsync(t, { qos: 1 });
    const got = new Promise((r) => sub.once("message", (_t, _p, pk) => r(pk)));
    const props = { userProperties: { a: "1", b: "2" }, contentType: "text/x", responseTopic: "r/1", correlationData: Buffer.from("cd"), payloadFormatIndicator: true };
    await pub.publishAsync(t, "x", { qos: 1, properties: props });
    const pk = await Promise.race([got, sleep(2000).then(() => null)]);
    sub.end(true); pub.end(true);
    const p = pk?.properties ?? {};
    return p.contentType === "text/x" && p.responseTopic === "r/1" && String(p.correlationData) === "cd" && p.userProperties?.a === "1" && p.payloadFormatIndicator === true;
  },
  async "message expiry: expired message not delivered from an offline queue"() {
    const id = uid("e");
    const t = uid("t");
    const { c: s1 } = await v5({ clientId: id, clean: false, properties: { sessionExpiryInterval: 60 } });
    await s1.subscribeAsync(t, { qos: 1 });
    await s1.endAsync();
    const { c: pub } = await v5({ clientId: uid("p") });
    await pub.publishAsync(t, "dies", { qos: 1, properties: { messageExpiryInterval: 1 } });
    await pub.publishAsync(t, "lives", { qos: 1 });
    await sleep(2100);
    const got = [];
    const c = mqtt.connect(url, { protocolVersion: 5, clientId: id, clean: false, reconnectPeriod: 0, properties: { sessionExpiryInterval: 60 } });
    c.on("message", (_t, p) => got.push(String(p)));
    await sleep(1000);
    c.end(true); pub.end(true);
    return got.length === 1 && got[0] === "lives";
  },
  async "inbound topic alias resolved"() {
    const { c: sub } = await v5({ clientId: uid("s") });
    const t = uid("t");
    await sub.subscribeAsync(t);
    const got = [];
    sub.on("message", (topic) => got.push(topic));
    const r = raw();
    r.send(connect5(uid("r")));
    await sleep(200);
    r.send({ cmd: "publish", topic: t, payload: "1", qos: 0, properties: { topicAlias: 1 } });
    r.send({ cmd: "publish", topic: "", payload: "2", qos: 0, properties: { topicAlias: 1 } });
    await sleep(500);
    r.end(); sub.end(true);
    return got.length === 2 && got[1] === t;
  },
  async "receive maximum inbound: exceeding it gets DISCONNECT 0x93"() {
    const r = raw();
    r.send(connect5(uid("rm")));
    await sleep(200);
    const max = r.packets[0]?.properties?.receiveMaximum ?? 65535;
    if (max > 100) return false; // cannot exceed a large window cheaply; a broker must advertise one it enforces
    for (let i = 1; i <= max + 1; i++) r.send({ cmd: "publish", topic: "rm", payload: "x", qos: 2, messageId: i });
    await sleep(500);
    r.end();
    return r.packets.some((p) => p.cmd === "disconnect" && p.reasonCode === 0x93);
  },
  async "receive maximum outbound: at most N unacknowledged QoS 1 to the client"() {
    const t = uid("t");
    const r = raw();
    r.send(connect5(uid("ro"), { receiveMaximum: 2 }));
    await sleep(200);
    r.send({ cmd: "subscribe", messageId: 1, subscriptions: [{ topic: t, qos: 1 }] });
    await sleep(200);
    const { c: pub } = await v5({ clientId: uid("p") });
    for (let i = 0; i < 5; i++) await pub.publishAsync(t, String(i), { qos: 1 });
    await sleep(500);
    const n = r.packets.filter((p) => p.cmd === "publish").length;
    r.end(); pub.end(true);
    return n === 2;
  },
  async "maximum packet size outbound: too-large message not sent to that client"() {
    const t = uid("t");
    const r = raw();
    r.send(connect5(uid("mp"), { maximumPacketSize: 64 }));
    await sleep(200);
    r.send({ cmd: "subscribe", messageId: 1, subscriptions: [{ topic: t, qos: 0 }] });
    await sleep(200);
    const { c: pub } = await v5({ clientId: uid("p") });
    await pub.publishAsync(t, "x".repeat(200));
    await pub.publishAsync(t, "small");
    await sleep(400);
    const pubs = r.packets.filter((p) => p.cmd === "publish");
    r.end(); pub.end(true);
    return !r.closed() && pubs.length === 1 && String(pubs[0].payload) === "small";
  },
  async "no local"() {
    const { c } = await v5({ clientId: uid("nl") });
    const t = uid("t");
    await c.subscribeAsync(t, { nl: true });
    let got = 0;
    c.on("message", () => got++);
    await c.publishAsync(t, "x", { qos: 1 });
    await sleep(300);
    c.end(true);
    return got === 0;
  },
  async "retain handling 2: no retained messages on subscribe"() {
    const t = uid("t");
    const { c: p } = await v5({ clientId: uid("p") });
    await p.publishAsync(t, "kept", { qos: 1, retain: true });
    const { c } = await v5({ clientId: uid("rh") });
    let got = 0;
    c.on("message", () => got++);
    await c.subscribeAsync(t, { rh: 2 });
    await sleep(300);
    c.removeAllListeners("message");
    await p.publishAsync(t, "", { qos: 1, retain: true });
    c.end(true); p.end(true);
    return got === 0;
  },
  async "retain as published"() {
    const t = uid("t");
    const { c } = await v5({ clientId: uid("rap") });
    const { c: p } = await v5({ clientId: uid("p") });
    await c.subscribeAsync(t, { rap: true });
    const got = new Promise((r) => c.once("message", (_t, _p, pk) => r(pk.retain)));
    await p.publishAsync(t, "x", { qos: 1, retain: true });
    const retain = await Promise.race([got, sleep(1000).then(() => null)]);
    await p.publishAsync(t, "", { qos: 1, retain: true });
    c.end(true); p.end(true);
    return retain === true;
  },
  async "subscription identifiers: every matching one on one message"() {
    const t = uid("t");
    const { c } = await v5({ clientId: uid("sid") });
    await c.subscribeAsync(t, { properties: { subscriptionIdentifier: 7 } });
    await c.subscribeAsync(`${t}/#`.replace(`${t}/#`, "#"), { properties: { subscriptionIdentifier: 9 } });
    const got = [];
    c.on("message", (_t, _p, pk) => got.push(pk.properties?.subscriptionIdentifier));
    await c.publishAsync(t, "x");
    await sleep(400);
    c.end(true);
    const ids = [got[0]].flat().sort();
    return got.length === 1 && ids.length === 2 && ids[0] === 7 && ids[1] === 9;
  },
  async "shared subscription: one delivery per group, round robin"() {
    const t = uid("t");
    const { c: a } = await v5({ clientId: uid("a") });
    const { c: b } = await v5({ clientId: uid("b") });
    const { c: p } = await v5({ clientId: uid("p") });
    let na = 0, nb = 0;
    a.on("message", () => na++);
    b.on("message", () => nb++);
    try {
      await a.subscribeAsync(`$share/g/${t}`, { qos: 1 });
      await b.subscribeAsync(`$share/g/${t}`, { qos: 1 });
    } catch { a.end(true); b.end(true); p.end(true); return false; }
    for (let i = 0; i < 4; i++) await p.publishAsync(t, "x", { qos: 1 });
    await sleep(400);
    a.end(true); b.end(true); p.end(true);
    return na === 2 && nb === 2;
  },
  async "session takeover: old connection gets DISCONNECT 0x8E"() {
    const id = uid("to");
    const r = raw();
    r.send(connect5(id));
    await sleep(200);
    const { c } = await v5({ clientId: id });
    await sleep(300);
    c.end(true); r.end();
    return r.packets.some((p) => p.cmd === "disconnect" && p.reasonCode === 0x8e);
  },
  async "AUTH method without support: CONNACK 0x8C"() {
    const r = raw();
    r.send(connect5(uid("au"), { authenticationMethod: "SCRAM-SHA-256" }));
    await sleep(300);
    r.end();
    return r.packets[0]?.cmd === "connack" && r.packets[0].reasonCode === 0x8c;
  },
  async "PUBACK 0x10 when nobody subscribes"() {
    const r = raw();
    r.send(connect5(uid("nm")));
    await sleep(200);
    r.send({ cmd: "publish", topic: uid("nobody"), payload: "x", qos: 1, messageId: 5 });
    await sleep(300);
    r.end();
    const ack = r.packets.find((p) => p.cmd === "puback");
    return ack?.reasonCode === 0x10;
  },
  async "will delay interval not delivered as a PUBLISH property"() {
    const t = uid("will");
    const { c: sub } = await v5({ clientId: uid("s") });
    await sub.subscribeAsync(t);
    const got = new Promise((r) => sub.once("message", (_t, _p, pk) => r(pk)));
    const r = raw();
    r.send(connect5(uid("w"), { sessionExpiryInterval: 10 }, { will: { topic: t, payload: Buffer.from("bye"), qos: 0, retain: false, properties: { willDelayInterval: 1, contentType: "w/x" } } }));
    await sleep(200);
    r.end();
    const pk = await Promise.race([got, sleep(3000).then(() => null)]);
    sub.end(true);
    return !!pk && pk.properties?.contentType === "w/x" && pk.properties?.willDelayInterval === undefined;
  },
  async "repeated single-value property is a protocol error (DISCONNECT 0x82 or close)"() {
    const r = raw();
    r.send(connect5(uid("dp")));
    await sleep(200);
    // PUBLISH QoS 0, topic "d", properties: content type twice
    const ct = Buffer.concat([Buffer.from([0x03, 0, 1]), Buffer.from("a")]);
    const props = Buffer.concat([ct, ct]);
    const body = Buffer.concat([Buffer.from([0, 1]), Buffer.from("d"), Buffer.from([props.length]), props, Buffer.from("x")]);
    r.sendRaw(Buffer.concat([Buffer.from([0x30, body.length]), body]));
    await sleep(300);
    const ok = r.closed() && !r.packets.some((p) => p.cmd === "disconnect" && p.reasonCode !== 0x82);
    r.end();
    return ok;
  },
  async "property not allowed in the packet (session expiry on PUBLISH) is malformed"() {
    const r = raw();
    r.send(connect5(uid("np")));
    await sleep(200);
    const props = Buffer.from([0x11, 0, 0, 0, 5]);
    const body = Buffer.concat([Buffer.from([0, 1]), Buffer.from("d"), Buffer.from([props.length]), props, Buffer.from("x")]);
    r.sendRaw(Buffer.concat([Buffer.from([0x30, body.length]), body]));
    await sleep(300);
    const ok = r.closed();
    r.end();
    return ok;
  },
};

let pass = 0;
for (const [name, fn] of Object.entries(checks)) {
  let ok = false;
  let why = "";
  try {
    ok = await Promise.race([fn(), sleep(8000).then(() => { why = " (timeout)"; return false; })]);
  } catch (e) {
    why = ` (${e.message})`;
  }
  if (ok) pass++;
  console.log(`${ok ? "PASS" : "FAIL"}  ${name}${ok ? "" : why}`);
}
console.log(`${pass}/${Object.keys(checks).length} passed`);
server?.close();
process.exit(0);
