// MQTT 5 CONNECT / CONNACK / server DISCONNECT (broker/protocol/mqtt5/connect.ts,
// encoder.ts, disconnect.ts). Test names cite the MQTT 5.0 normative statements.
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { after, before, describe, test } from "node:test";
import { brokerForgot, native, startTestBroker, tempDir, type TestBroker } from "./helpers.js";
import { makeSelfSignedCert } from "./broker-support.js";
import { connect5, Raw5, uid } from "./mqtt5-raw.js";

let broker: TestBroker;
let port: number;
let certDir: string;
const TOKEN = "mqtt5-admin-token-0123456789";

before(async () => {
  certDir = tempDir("wasmq-mqtt5-tls-");
  const cert = makeSelfSignedCert(certDir);
  broker = await startTestBroker({
    persistence: "lmdb",
    tls: { port: 0, cert: cert.certFile, key: cert.keyFile },
    metrics: { port: 0, token: TOKEN },
    limits: { maxPacketSize: 4096 },
    mqtt5: { serverKeepAlive: 30, maxSessionExpiry: 3600, receiveMaximum: 20, maxTopicAlias: 8 },
  });
  port = broker.port("tcp");
});
after(async () => {
  await broker.stop();
  rmSync(certDir, { recursive: true, force: true });
});

describe("CONNECT and CONNACK", { timeout: 30_000 }, () => {
  test("[MQTT-3.2.2-*] a v5 CONNECT is accepted on TCP, TLS and WebSocket, and CONNACK carries the broker's limits", async () => {
    const urls = [broker.url, `mqtts://127.0.0.1:${broker.port("tls")}`, `ws://127.0.0.1:${broker.port("ws")}/mqtt`];
    for (const url of urls) {
      const { client, connack } = await connect5(url, { clientId: uid("any"), rejectUnauthorized: false, keepalive: 10 });
      assert.equal(connack.reasonCode, 0, url);
      const p = connack.properties!;
      assert.equal(p.receiveMaximum, 20, url);
      assert.equal(p.maximumPacketSize, 4096, url);
      assert.equal(p.topicAliasMaximum, 8, url);
      assert.equal(p.sharedSubscriptionAvailable, true, url);
      assert.equal(p.subscriptionIdentifiersAvailable, true, url);
      // round trip with properties on this transport
      const t = uid("t");
      await client.subscribeAsync(t, { qos: 1 });
      const got = new Promise<Record<string, unknown> | undefined>((r) => client.once("message", (_t, _p, pk) => r(pk.properties as Record<string, unknown>)));
      await client.publishAsync(t, "x", { qos: 1, properties: { contentType: "text/plain" } });
      assert.equal((await got)?.contentType, "text/plain", url);
      await client.endAsync();
    }
  });

  test("[MQTT-3.1.3-6] [MQTT-3.2.2-16] an empty client id gets an Assigned Client Identifier, with Clean Start 0 too", async () => {
    for (const clean of [true, false]) {
      const { c, connack } = await Raw5.connect(port, { clientId: "", clean, properties: { sessionExpiryInterval: 10 } });
      assert.equal(connack.reasonCode, 0);
      const id = connack.properties?.assignedClientIdentifier;
      assert.equal(typeof id, "string");
      assert.ok((id as string).length > 0);
      assert.ok(id! as string in (broker.aedes as unknown as { clients: Record<string, unknown> }).clients);
      c.destroy();
    }
  });

  test("[MQTT-3.2.2-21] Server Keep Alive: a keep alive above the cap (or 0) is replaced by it", async () => {
    for (const keepalive of [0, 600]) {
      const { c, connack } = await Raw5.connect(port, { keepalive });
      assert.equal(connack.properties?.serverKeepAlive, 30, `keepalive ${keepalive}`);
      c.destroy();
    }
    const { c, connack } = await Raw5.connect(port, { keepalive: 20 });
    assert.equal(connack.properties?.serverKeepAlive, undefined, "within the cap: not sent");
    c.destroy();
  });

  test("[MQTT-3.2.2-*] a Session Expiry Interval above mqtt5.maxSessionExpiry is granted at the cap and sent back", async () => {
    const { c, connack } = await Raw5.connect(port, { clean: false, clientId: uid("se"), properties: { sessionExpiryInterval: 999999 } });
    assert.equal(connack.properties?.sessionExpiryInterval, 3600);
    c.destroy();
  });

  test("[MQTT-3.1.2-4] [MQTT-3.2.2-2] Clean Start 0 resumes a session kept by its expiry (Session Present 1); Clean Start 1 discards it", async () => {
    const id = uid("sess");
    const t = uid("t");
    const first = await connect5(broker.url, { clientId: id, clean: false, properties: { sessionExpiryInterval: 60 } });
    await first.client.subscribeAsync(t, { qos: 1 });
    await first.client.endAsync();
    const back = await connect5(broker.url, { clientId: id, clean: false, properties: { sessionExpiryInterval: 60 } });
    assert.equal(back.connack.sessionPresent, true);
    await back.client.endAsync();
    const fresh = await connect5(broker.url, { clientId: id, clean: true, properties: { sessionExpiryInterval: 60 } });
    assert.equal(fresh.connack.sessionPresent, false);
    await fresh.client.endAsync();
    const again = await connect5(broker.url, { clientId: id, clean: false, properties: { sessionExpiryInterval: 60 } });
    assert.equal(again.connack.sessionPresent, true, "the fresh session (expiry 60) was kept");
    const subs = await (broker.aedes as unknown as { persistence: { subscriptionsByClient(c: object): Promise<unknown[]> } }).persistence.subscriptionsByClient({ id });
    assert.equal(subs.length, 0, "Clean Start 1 wiped the old subscriptions");
    await again.client.endAsync();
  });

  test("[MQTT-3.1.2-23] Session Expiry Interval 0 (the default) ends the session with the connection, even with Clean Start 0", async () => {
    const id = uid("zero");
    const a = await connect5(broker.url, { clientId: id, clean: false, properties: { sessionExpiryInterval: 60 } });
    await a.client.subscribeAsync(uid("t"), { qos: 1 });
    await a.client.endAsync();
    // resume it with expiry 0: present now, gone after this connection
    const b = await connect5(broker.url, { clientId: id, clean: false });
    assert.equal(b.connack.sessionPresent, true);
    await b.client.endAsync();
    await brokerForgot(broker, id);
    const c = await connect5(broker.url, { clientId: id, clean: false });
    assert.equal(c.connack.sessionPresent, false);
    await c.client.endAsync();
  });

  test("[MQTT-3.14.2-2] DISCONNECT may shorten the session expiry (to 0: the session ends) but not raise it from 0", async () => {
    const id = uid("disc");
    const { c } = await Raw5.connect(port, { clientId: id, clean: false, properties: { sessionExpiryInterval: 60 } });
    c.send({ cmd: "subscribe", messageId: 1, subscriptions: [{ topic: uid("t"), qos: 1 }] });
    await c.next("suback");
    c.send({ cmd: "disconnect", reasonCode: 0, properties: { sessionExpiryInterval: 0 } });
    await c.waitClosed();
    await brokerForgot(broker, id);
    const back = await Raw5.connect(port, { clientId: id, clean: false, properties: { sessionExpiryInterval: 60 } });
    assert.equal(back.connack.sessionPresent, false);
    back.c.destroy();

    const zero = await Raw5.connect(port, { clientId: uid("disc0") });
    zero.c.send({ cmd: "disconnect", reasonCode: 0, properties: { sessionExpiryInterval: 30 } });
    const d = await zero.c.next("disconnect");
    assert.equal(d.reasonCode, 0x82);
    await zero.c.waitClosed();
  });

  test("[MQTT-4.12.0-1] an Authentication Method (enhanced auth, not offered yet) gets CONNACK 0x8C and the connection closes", async () => {
    const { c, connack } = await Raw5.connect(port, { properties: { authenticationMethod: "SCRAM-SHA-256" } });
    assert.equal(connack.reasonCode, 0x8c);
    assert.equal(typeof connack.properties?.reasonString, "string");
    await c.waitClosed();
  });

  test("[MQTT-3.1.2-*] Receive Maximum 0 is a Protocol Error: CONNACK 0x82", async () => {
    const { c, connack } = await Raw5.connect(port, { properties: { receiveMaximum: 0 } });
    assert.equal(connack.reasonCode, 0x82);
    await c.waitClosed();
  });

  test("[MQTT-2.2.2-2] a property not allowed in CONNECT (Topic Alias) gets CONNACK 0x81; with Request Problem Information 0 no reason string", async () => {
    const { c, connack } = await Raw5.connect(port, { properties: { topicAlias: 3 } });
    assert.equal(connack.reasonCode, 0x81);
    assert.match(String(connack.properties?.reasonString), /topicAlias/);
    await c.waitClosed();
    const quiet = await Raw5.connect(port, { properties: { topicAlias: 3, requestProblemInformation: false } });
    assert.equal(quiet.connack.reasonCode, 0x81);
    assert.equal(quiet.connack.properties?.reasonString, undefined);
    await quiet.c.waitClosed();
  });
});

describe("session expiry across a restart", { timeout: 30_000 }, () => {
  test("[MQTT-4.1.0-?] a session whose expiry passed while the broker was down is not resumed; one still in time is", async () => {
    const dir = tempDir("wasmq-mqtt5-restart-");
    try {
      let b = await startTestBroker({ persistence: "lmdb" }, { dataDir: dir });
      const short = uid("short");
      const long = uid("long");
      for (const [id, expiry] of [[short, 1], [long, 600]] as const) {
        const { client } = await connect5(b.url, { clientId: id, clean: false, properties: { sessionExpiryInterval: expiry } });
        await client.subscribeAsync(`${id}/t`, { qos: 1 });
        await client.endAsync();
        await brokerForgot(b, id);
      }
      await b.stop();
      await new Promise((r) => setTimeout(r, 1200)); // the short session's second passes while the broker is down
      b = await startTestBroker({ persistence: "lmdb" }, { dataDir: dir });
      try {
        const gone = await connect5(b.url, { clientId: short, clean: false, properties: { sessionExpiryInterval: 60 } });
        assert.equal(gone.connack.sessionPresent, false);
        const subs = await (b.aedes as unknown as { persistence: { subscriptionsByClient(c: object): Promise<unknown[]> } }).persistence.subscriptionsByClient({ id: short });
        assert.equal(subs.length, 0, "its subscriptions went with it");
        await gone.client.endAsync();
        const kept = await connect5(b.url, { clientId: long, clean: false, properties: { sessionExpiryInterval: 600 } });
        assert.equal(kept.connack.sessionPresent, true);
        await kept.client.endAsync();
      } finally {
        await b.stop();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("server DISCONNECT", { timeout: 30_000 }, () => {
  test("[MQTT-3.1.4-3] session takeover: the old connection gets DISCONNECT 0x8E", async () => {
    const id = uid("take");
    const { c: old } = await Raw5.connect(port, { clientId: id });
    const { c: taker } = await Raw5.connect(port, { clientId: id });
    const d = await old.next("disconnect");
    assert.equal(d.reasonCode, 0x8e);
    await old.waitClosed();
    assert.ok(!taker.closed);
    taker.destroy();
  });

  test("[MQTT-3.1.2-22] keep alive expired: DISCONNECT 0x8D", async () => {
    const { c, connack } = await Raw5.connect(port, { keepalive: 1 });
    assert.equal(connack.reasonCode, 0);
    const d = await c.next("disconnect"); // 1.5 × keep alive without a packet
    assert.equal(d.reasonCode, 0x8d);
    await c.waitClosed();
  });

  test("[MQTT-3.2.2-15] a packet above our Maximum Packet Size: DISCONNECT 0x95", async () => {
    const { c } = await Raw5.connect(port);
    c.send({ cmd: "publish", topic: "big", payload: Buffer.alloc(5000), qos: 0 });
    const d = await c.next("disconnect");
    assert.equal(d.reasonCode, 0x95);
    await c.waitClosed();
  });

  test("a slow consumer cut off by a limit (here drainTimeoutMs with messages held): DISCONNECT 0x97 Quota exceeded", async () => {
    const slow = await startTestBroker({ persistence: "memory", limits: { maxInflightOutbound: 1, drainTimeoutMs: 300 } });
    try {
      const { c } = await Raw5.connect(slow.port("tcp"));
      c.send({ cmd: "subscribe", messageId: 1, subscriptions: [{ topic: "slow", qos: 1 }] });
      await c.next("suback");
      const { client } = await connect5(slow.url, { clientId: uid("pub") });
      for (let i = 0; i < 3; i++) await client.publishAsync("slow", String(i), { qos: 1 }); // never acknowledged
      assert.equal((await c.next("disconnect")).reasonCode, 0x97);
      await c.waitClosed();
      await client.endAsync();
    } finally {
      await slow.stop();
    }
  });

  test("admin kick (DELETE /clients/:id): DISCONNECT 0x98 Administrative action", async () => {
    const id = uid("kick");
    const { c } = await Raw5.connect(port, { clientId: id });
    const res = await fetch(`${broker.admin!.url}/clients/${id}`, { method: "DELETE", headers: { authorization: `Bearer ${TOKEN}`, "x-wasmq-request": "1" } });
    assert.equal(res.status, 200);
    const d = await c.next("disconnect");
    assert.equal(d.reasonCode, 0x98);
    await c.waitClosed();
  });
});

describe("CONNACK reason codes from a plugin's 3.1.1 return codes", { timeout: 60_000 }, () => {
  let authBroker: TestBroker;
  before(async () => {
    const { hashPassword } = (await import(native("auth"))) as { hashPassword: (p: string, i?: number) => string };
    authBroker = await startTestBroker({
      persistence: "memory",
      plugins: [{ name: "auth", native: native("auth"), config: { users: [{ username: "alice", hash: hashPassword("pw", 1000) }] } }],
    });
  });
  after(() => authBroker.stop());

  test("[MQTT-3.2.2-8] bad password (4) → 0x86, no credentials (5) → 0x87; the right ones connect", async () => {
    const p = authBroker.port("tcp");
    const bad = await Raw5.connect(p, { username: "alice", password: Buffer.from("nope") });
    assert.equal(bad.connack.reasonCode, 0x86);
    await bad.c.waitClosed();
    const none = await Raw5.connect(p, {});
    assert.equal(none.connack.reasonCode, 0x87);
    await none.c.waitClosed();
    const ok = await Raw5.connect(p, { username: "alice", password: Buffer.from("pw") });
    assert.equal(ok.connack.reasonCode, 0);
    ok.c.destroy();
  });
});

describe("mqtt5 config", () => {
  test("a bad mqtt5 value is refused naming the key and the file", async () => {
    const { parseRawConfig } = await import("../broker/config.js");
    assert.throws(() => parseRawConfig({ mqtt5: { receiveMaximum: 0 } }, "/etc/wasmq.json"), /\/etc\/wasmq\.json.*mqtt5\.receiveMaximum|mqtt5\.receiveMaximum.*\/etc\/wasmq\.json/s);
    assert.throws(() => parseRawConfig({ mqtt5: { maxTopicAlias: 70000 } }, "c.json"), /mqtt5\.maxTopicAlias/);
    assert.throws(() => parseRawConfig({ mqtt5: { topicAliases: 5 } }, "c.json"), /mqtt5\.topicAliases/);
  });

  test("Receive Maximum is never advertised above limits.maxInflight (which aedes enforces without a reason code)", async () => {
    const small = await startTestBroker({ persistence: "memory", limits: { maxInflight: 5 }, mqtt5: { receiveMaximum: 50 } });
    try {
      const { c, connack } = await Raw5.connect(small.port("tcp"));
      assert.equal(connack.properties?.receiveMaximum, 5);
      c.destroy();
    } finally {
      await small.stop();
    }
  });
});
