// MQTT 5 enhanced authentication (MQTT 5.0 section 4.12, AUTH 3.15) delegated
// to plugins (host/abi-auth.ts, broker/protocol/mqtt5/enhanced-auth.ts): the
// scram plugin (Wasm and native twin) driven by mqtt.js v5 and by raw
// mqtt-packet frames on real sockets, a trapping fixture, and old binaries.
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { after, before, describe, test } from "node:test";
import type { MqttClient } from "mqtt";
import { deriveCredentials } from "../plugins-as/scram/native.js";
import { buildFixture } from "./fixtures.js";
import { connect, connectRefused, end, native, startTestBroker, subscribe, tempDir, wasm, type TestBroker } from "./helpers.js";
import { connect5, Raw5, uid, type Packet5 } from "./mqtt5-raw.js";
import { BEFORE_V2, buildPluginAt, hasCommit } from "./old-sdk.js";
import { ScramClient } from "./scram-client.js";

const METHOD = "SCRAM-SHA-256";
const scramConfig = { users: [deriveCredentials("alice", "wonderland"), deriveCredentials("bob,=x", "builder", 5000)] };

let wasmBroker: TestBroker;
let nativeBroker: TestBroker;
/**
 * For the two timeout tests only: a client that never answers meets this
 * deadline. It also bounds their first, complete exchange, so it is not much
 * shorter: 400 ms (once on every broker here) failed ordinary exchanges when
 * the machine was loaded.
 */
const AUTH_TIMEOUT_MS = 3000;
let impatientBroker: TestBroker;
before(async () => {
  impatientBroker = await startTestBroker({
    persistence: "memory",
    mqtt5: { authTimeoutMs: AUTH_TIMEOUT_MS },
    plugins: [{ name: "scram", wasm: wasm("scram"), config: { ...scramConfig, required: false } }],
  });
  // The default exchange timeout (mqtt5.authTimeoutMs): see AUTH_TIMEOUT_MS.
  wasmBroker = await startTestBroker({
    persistence: "memory",
    plugins: [
      // required: false — clients without SCRAM go on to the rest of the chain (here: none)
      { name: "scram", wasm: wasm("scram"), config: { ...scramConfig, required: false } },
      { name: "authtrap", wasm: await buildFixture("authtrap"), limits: { fuel: 2_000_000 }, breaker: { failures: 1000 } },
    ],
  });
  // required (the default): every client must complete SCRAM
  nativeBroker = await startTestBroker({
    persistence: "memory",
    plugins: [
      { name: "scram", native: native("scram"), config: scramConfig },
      { name: "authtrap", wasm: await buildFixture("authtrap"), onError: "fail-open", limits: { fuel: 2_000_000 }, breaker: { failures: 1000 } },
    ],
  });
});
after(async () => {
  await wasmBroker?.stop();
  await nativeBroker?.stop();
  await impatientBroker?.stop();
});

const port = (b: TestBroker) => b.port("tcp");
const url = (b: TestBroker) => `mqtt://127.0.0.1:${port(b)}`;

/** mqtt.js v5 runs the SCRAM exchange through handleAuth. */
async function scramConnect(broker: TestBroker, user: string, password: string): Promise<{ client: MqttClient; connack: Packet5; scram: ScramClient }> {
  const scram = new ScramClient(user, password);
  const client = (await import("mqtt")).default.connect(url(broker), {
    protocolVersion: 5,
    reconnectPeriod: 0,
    connectTimeout: 30_000, // a safety net: two PBKDF2 rounds on a loaded machine can take seconds
    clientId: uid("scram"),
    properties: { authenticationMethod: METHOD, authenticationData: scram.clientFirst() },
  });
  client.handleAuth = (packet, callback) => {
    const data = packet.properties?.authenticationData;
    callback(null as unknown as Error, { cmd: "auth", reasonCode: 0x18, properties: { authenticationMethod: METHOD, authenticationData: scram.clientFinal(data!) } });
  };
  const connack = await new Promise<Packet5>((resolve, reject) => {
    client.once("connect", (p) => resolve(p as unknown as Packet5));
    client.once("error", reject);
  });
  client.on("error", () => {});
  return { client, connack, scram };
}

/** A raw client through the first step: CONNECT with client-first, and the server-first it got back. */
async function rawFirstStep(broker: TestBroker, scram: ScramClient, extra: Record<string, unknown> = {}): Promise<{ c: Raw5; challenge: Packet5 }> {
  const c = await Raw5.open(port(broker));
  c.send({ cmd: "connect", protocolId: "MQTT", protocolVersion: 5, clean: true, clientId: uid("raw"), keepalive: 0, properties: { authenticationMethod: METHOD, authenticationData: scram.clientFirst() }, ...extra });
  const challenge = await c.next("auth");
  return { c, challenge };
}

function authPacket(reasonCode: number, data: Buffer, method = METHOD): Record<string, unknown> {
  return { cmd: "auth", reasonCode, properties: { authenticationMethod: method, authenticationData: data } };
}

/** A raw client authenticated with SCRAM (CONNACK 0x00). */
async function rawAuthenticated(broker: TestBroker, user = "alice", password = "wonderland"): Promise<Raw5> {
  const scram = new ScramClient(user, password);
  const { c, challenge } = await rawFirstStep(broker, scram);
  c.send(authPacket(0x18, scram.clientFinal(challenge.properties!.authenticationData as Buffer)));
  const connack = await c.next("connack");
  assert.equal(connack.reasonCode, 0);
  return c;
}

describe("SCRAM-SHA-256 exchange at CONNECT [MQTT-4.12.0-*]", { timeout: 60_000 }, () => {
  for (const [kind, broker] of [["wasm", () => wasmBroker], ["native", () => nativeBroker]] as const) {
    test(`${kind}: mqtt.js authenticates; CONNACK 0x00 carries the method and a server signature the client verifies; the session works`, async () => {
      const { client, connack, scram } = await scramConnect(broker(), "alice", "wonderland");
      const { client: other } = await scramConnect(broker(), "bob,=x", "builder");
      try {
        assert.equal(connack.reasonCode, 0);
        assert.equal(connack.properties?.authenticationMethod, METHOD);
        assert.ok(scram.verifyServerFinal(connack.properties?.authenticationData as Buffer), "server-final-message proves the server's key");
        const topic = uid("t");
        await subscribe(other, topic, 1);
        const got = new Promise<string>((r) => other.once("message", (_t, p) => r(String(p))));
        await client.publishAsync(topic, "after auth", { qos: 1 });
        assert.equal(await got, "after auth");
      } finally {
        await end(client, other);
      }
    });

    test(`${kind}: a CONNECT User Name other than the SCRAM user is refused with 0x86 once the exchange names the identity (the broker checks it, ABI v2-r4); the same name passes`, async () => {
      const scram = new ScramClient("alice", "wonderland");
      const { c, challenge: asked } = await rawFirstStep(broker(), scram, { username: "admin" });
      c.send(authPacket(0x18, scram.clientFinal(asked.properties!.authenticationData as Buffer)));
      const connack = await c.next("connack");
      assert.equal(connack.reasonCode, 0x86);
      assert.match(String(connack.properties?.reasonString), /User Name "admin" is not the authenticated identity "alice"/);
      await c.waitClosed();
      const same = new ScramClient("alice", "wonderland");
      const { c: ok, challenge } = await rawFirstStep(broker(), same, { username: "alice" });
      ok.send(authPacket(0x18, same.clientFinal(challenge.properties!.authenticationData as Buffer)));
      assert.equal((await ok.next("connack")).reasonCode, 0);
      ok.destroy();
    });

    test(`${kind}: a user name with ',' and '=' (saslname escapes) authenticates`, async () => {
      const { client, connack } = await scramConnect(broker(), "bob,=x", "builder");
      assert.equal(connack.reasonCode, 0);
      await end(client);
    });

    test(`${kind}: a wrong password and an unknown user both get CONNACK 0x86 after the same two steps [MQTT-4.12.0-4]`, async () => {
      for (const [user, password] of [["alice", "wrong"], ["mallory", "wonderland"]]) {
        const scram = new ScramClient(user!, password!);
        const { c, challenge } = await rawFirstStep(broker(), scram);
        assert.equal(challenge.reasonCode, 0x18, "AUTH Continue authentication");
        assert.equal(challenge.properties?.authenticationMethod, METHOD);
        assert.match(String(challenge.properties?.authenticationData), /^r=.+,s=.+,i=\d+$/);
        c.send(authPacket(0x18, scram.clientFinal(challenge.properties!.authenticationData as Buffer)));
        const connack = await c.next("connack");
        assert.equal(connack.reasonCode, 0x86, `${user}: Bad User Name or Password`);
        await c.waitClosed();
      }
    });
  }

  test("an Authentication Method no plugin declared gets CONNACK 0x8C [MQTT-4.12.0-1]", async () => {
    const { c, connack } = await Raw5.connect(port(wasmBroker), { properties: { authenticationMethod: "KERBEROS", authenticationData: Buffer.from("x") } });
    assert.equal(connack.reasonCode, 0x8c);
    await c.waitClosed();
  });

  test("an AUTH with another method during the exchange is a Protocol Error: CONNACK 0x82 [MQTT-4.12.0-5]", async () => {
    const scram = new ScramClient("alice", "wonderland");
    const { c, challenge } = await rawFirstStep(wasmBroker, scram);
    c.send(authPacket(0x18, scram.clientFinal(challenge.properties!.authenticationData as Buffer), "SCRAM-SHA-1"));
    assert.equal((await c.next("connack")).reasonCode, 0x82);
    await c.waitClosed();
  });

  test("[MQTT-3.1.2-30] a PUBLISH before the exchange finished is a Protocol Error: CONNACK 0x82, and it is not delivered", async () => {
    const watcher = await connect(url(wasmBroker), { protocolVersion: 5 });
    const topic = uid("early");
    await subscribe(watcher, topic, 0);
    const seen: string[] = [];
    watcher.on("message", (_t, p) => seen.push(String(p)));
    const scram = new ScramClient("alice", "wonderland");
    const { c } = await rawFirstStep(wasmBroker, scram);
    c.send({ cmd: "publish", topic, payload: Buffer.from("too early"), qos: 0 });
    assert.equal((await c.next("connack")).reasonCode, 0x82);
    await c.waitClosed();
    // a publish from another client afterwards arrives alone: the early one was never routed
    const after = await connect(url(wasmBroker));
    const got = new Promise<void>((r) => watcher.on("message", (_t, p) => String(p) === "later" && r()));
    after.publish(topic, "later");
    await got;
    assert.deepEqual(seen, ["later"]);
    await end(watcher, after);
  });

  test("Authentication Data without an Authentication Method is a Protocol Error: CONNACK 0x82 (section 3.1.2.11.10)", async () => {
    const { c, connack } = await Raw5.connect(port(wasmBroker), { properties: { authenticationData: Buffer.from("x") } });
    assert.equal(connack.reasonCode, 0x82);
    c.destroy();
  });

  test("aedes does not see the CONNECT before Success: the client id is not taken over by an unfinished exchange", async () => {
    const id = uid("held");
    const first = await rawAuthenticatedWithId(id);
    // a second connection with the same id that never finishes its exchange leaves the first one alone
    const scram = new ScramClient("alice", "wonderland");
    const { c: second } = await rawFirstStep(wasmBroker, scram, { clientId: id });
    first.send({ cmd: "pingreq" });
    await first.next("pingresp");
    assert.equal(first.closed, false, "no takeover while the second exchange is unfinished");
    second.destroy();
    first.destroy();
  });

  test("the exchange state is the broker's: a plugin reloaded between two steps finishes the exchange", async () => {
    const scram = new ScramClient("alice", "wonderland");
    const { c, challenge } = await rawFirstStep(wasmBroker, scram);
    const reloads = wasmBroker.chain.slot("scram")!.stats.reloads;
    const [result] = await wasmBroker.chain.reload("scram");
    assert.equal(result?.ok, true, result?.error ?? "");
    assert.equal(wasmBroker.chain.slot("scram")!.stats.reloads, reloads + 1);
    c.send(authPacket(0x18, scram.clientFinal(challenge.properties!.authenticationData as Buffer)));
    const connack = await c.next("connack");
    assert.equal(connack.reasonCode, 0);
    assert.ok(scram.verifyServerFinal(connack.properties?.authenticationData as Buffer));
    c.destroy();
  });

  test("an exchange not finished within mqtt5.authTimeoutMs gets CONNACK 0x87 and the connection closes", async () => {
    const scram = new ScramClient("alice", "wonderland");
    const { c } = await rawFirstStep(impatientBroker, scram);
    // no answer to the challenge
    const connack = await c.next("connack");
    assert.equal(connack.reasonCode, 0x87);
    assert.match(String(connack.properties?.reasonString), new RegExp(`not completed within ${AUTH_TIMEOUT_MS} ms`));
    await c.waitClosed();
  });

  test("a plugin that traps (or runs out of fuel) mid-exchange: CONNACK 0x87 (fail-closed) or 0x80 (fail-open), and the broker keeps serving", async () => {
    for (const method of ["TRAP", "LOOP"]) {
      const c = await Raw5.open(port(wasmBroker));
      c.send({ cmd: "connect", protocolId: "MQTT", protocolVersion: 5, clean: true, clientId: uid("trap"), keepalive: 0, properties: { authenticationMethod: method } });
      const challenge = await c.next("auth");
      assert.equal(String(challenge.properties?.authenticationData), "go on");
      c.send(authPacket(0x18, Buffer.from("answer"), method));
      assert.equal((await c.next("connack")).reasonCode, 0x87, method);
      await c.waitClosed();
    }
    // fail-open cannot let a client in: the exchange fails with 0x80 Unspecified error instead of 0x87
    const c = await Raw5.open(port(nativeBroker));
    c.send({ cmd: "connect", protocolId: "MQTT", protocolVersion: 5, clean: true, clientId: uid("trap"), keepalive: 0, properties: { authenticationMethod: "TRAP" } });
    await c.next("auth");
    c.send(authPacket(0x18, Buffer.from("answer"), "TRAP"));
    assert.equal((await c.next("connack")).reasonCode, 0x80, "fail-open");
    await c.waitClosed();
    const traps = wasmBroker.chain.slot("authtrap")!.stats.traps;
    assert.equal(traps.unreachable ?? 0, 1, JSON.stringify(traps));
    assert.equal(traps.fuel ?? 0, 1, JSON.stringify(traps));
    const again = await rawAuthenticated(wasmBroker);
    again.destroy();
  });
});

async function rawAuthenticatedWithId(clientId: string): Promise<Raw5> {
  const scram = new ScramClient("alice", "wonderland");
  const { c, challenge } = await rawFirstStep(wasmBroker, scram, { clientId });
  c.send(authPacket(0x18, scram.clientFinal(challenge.properties!.authenticationData as Buffer)));
  assert.equal((await c.next("connack")).reasonCode, 0);
  return c;
}

describe("re-authentication [MQTT-4.12.1-*]", { timeout: 60_000 }, () => {
  for (const [kind, broker] of [["wasm", () => wasmBroker], ["native", () => nativeBroker]] as const) {
    test(`${kind}: AUTH 0x19 runs the exchange again and ends in AUTH 0x00 with the server signature; the connection keeps working`, async () => {
      const c = await rawAuthenticated(broker());
      try {
        const scram = new ScramClient("alice", "wonderland");
        c.send(authPacket(0x19, scram.clientFirst()));
        const challenge = await c.next("auth");
        assert.equal(challenge.reasonCode, 0x18);
        c.send(authPacket(0x18, scram.clientFinal(challenge.properties!.authenticationData as Buffer)));
        const done = await c.next("auth", (p) => p.reasonCode === 0);
        assert.equal(done.properties?.authenticationMethod, METHOD);
        assert.ok(scram.verifyServerFinal(done.properties?.authenticationData as Buffer));
        c.send({ cmd: "pingreq" });
        await c.next("pingresp");
        assert.equal(c.closed, false);
      } finally {
        c.destroy();
      }
    });

    test(`${kind}: a failed re-authentication gets DISCONNECT 0x87 (the plugin's 0x86 is CONNACK-only) and the connection closes`, async () => {
      const c = await rawAuthenticated(broker());
      const scram = new ScramClient("alice", "not-the-password");
      c.send(authPacket(0x19, scram.clientFirst()));
      const challenge = await c.next("auth");
      c.send(authPacket(0x18, scram.clientFinal(challenge.properties!.authenticationData as Buffer)));
      assert.equal((await c.next("disconnect")).reasonCode, 0x87);
      await c.waitClosed();
    });
  }

  test("re-authentication with another method is a Protocol Error: DISCONNECT 0x82 [MQTT-4.12.1-1]", async () => {
    const c = await rawAuthenticated(wasmBroker);
    c.send(authPacket(0x19, Buffer.from("n,,n=alice,r=abc"), "SCRAM-SHA-1"));
    assert.equal((await c.next("disconnect")).reasonCode, 0x82);
    await c.waitClosed();
  });

  test("AUTH 0x18 outside an exchange is a Protocol Error: DISCONNECT 0x82", async () => {
    const c = await rawAuthenticated(wasmBroker);
    c.send(authPacket(0x18, Buffer.from("x")));
    assert.equal((await c.next("disconnect")).reasonCode, 0x82);
    await c.waitClosed();
  });

  test("a re-authentication not finished in time gets DISCONNECT 0x87", async () => {
    const c = await rawAuthenticated(impatientBroker);
    c.send(authPacket(0x19, new ScramClient("alice", "wonderland").clientFirst()));
    await c.next("auth");
    const d = await c.next("disconnect");
    assert.equal(d.reasonCode, 0x87);
    await c.waitClosed();
  });

  test("AUTH from a client that did not use enhanced authentication: DISCONNECT 0x82 [MQTT-4.12.0-7]", async () => {
    const { c, connack } = await Raw5.connect(port(wasmBroker));
    assert.equal(connack.reasonCode, 0);
    c.send(authPacket(0x19, new ScramClient("alice", "wonderland").clientFirst()));
    assert.equal((await c.next("disconnect")).reasonCode, 0x82);
    await c.waitClosed();
  });
});

describe("clients and binaries without enhanced authentication", { timeout: 120_000 }, () => {
  test("scram with required (the default): its connect hook refuses clients that did not complete SCRAM (v5 0x87 with a reason string, 3.1.1 return code 5)", async () => {
    const { c, connack } = await Raw5.connect(port(nativeBroker));
    assert.equal(connack.reasonCode, 0x87);
    assert.match(String(connack.properties?.reasonString), /SCRAM-SHA-256 authentication is required/);
    c.destroy();
    assert.equal(await connectRefused(url(nativeBroker), { username: "alice", password: "wonderland" }), 5);
    // a SCRAM client passes the same connect hook (ConnectFlag.enhancedAuth)
    const ok = await rawAuthenticated(nativeBroker);
    ok.destroy();
  });

  test("3.1.1 and plain v5 clients connect to a broker that runs SCRAM as before", async () => {
    const v4 = await connect(url(wasmBroker), { clientId: uid("v4"), username: "alice", password: "ignored" });
    const { client: v5, connack } = await connect5(url(wasmBroker), { clientId: uid("v5") });
    try {
      assert.equal(v4.connected, true);
      assert.equal(connack.reasonCode, 0);
      assert.equal(connack.properties?.authenticationMethod, undefined);
    } finally {
      await end(v4, v5);
    }
  });

  const commits = [
    ["v1 (before ABI v2)", BEFORE_V2],
    ["v2 (before onAuth)", "3dcc86e"],
  ] as const;
  for (const [label, commit] of commits) {
    test(`auth plugin built ${label}: a CONNECT with an Authentication Method still gets 0x8C; passwords are checked as before`, { skip: !hasCommit(commit) && `commit ${commit} is not in this clone` }, async () => {
      const dir = tempDir("wasmq-auth-old-");
      const users = [{ username: "alice", hash: "pbkdf2-sha256$10000$Uv+nGkmo6T8uZzWclttDog==$AULcg/VAzVyIg11Ppjg0pz1xuPd41F6+zrxooTbecmM=" }];
      const broker = await startTestBroker({ persistence: "memory", plugins: [{ name: "auth", wasm: await buildPluginAt(commit, "auth", dir), config: { users } }] });
      try {
        const { c, connack } = await Raw5.connect(port(broker), { properties: { authenticationMethod: METHOD, authenticationData: Buffer.from("n,,n=alice,r=x") } });
        assert.equal(connack.reasonCode, 0x8c);
        c.destroy();
        assert.equal(await connectRefused(url(broker), { username: "alice", password: "nope" }), 4);
      } finally {
        await broker.stop();
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});
