// The authenticated identity (ABI v2-r4, set_auth_identity): a SCRAM client is
// the SCRAM user everywhere downstream — ACL %u on publish, subscribe and
// delivery, the admin API's client list — whether or not its CONNECT carried a
// User Name; a CONNECT User Name that differs is refused (0x86), a
// re-authentication as someone else is refused (DISCONNECT 0x87, the connection
// closes); a scram binary built before v2-r4 keeps loading. Both twins (Wasm
// scram + acl, native scram + acl), mqtt.js v5 and raw frames on real sockets.
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { after, before, describe, test } from "node:test";
import { deriveCredentials } from "../plugins-as/scram/native.js";
import { collect, connect, end, native, startTestBroker, subscribe, tempDir, wasm, type TestBroker } from "./helpers.js";
import { Raw5, sleep, uid } from "./mqtt5-raw.js";
import { buildPluginAt, hasCommit } from "./old-sdk.js";
import { ScramClient, scramConnect } from "./scram-client.js";

const METHOD = "SCRAM-SHA-256";
const TOKEN = "identity-token-0123456789";
const users = [deriveCredentials("alice", "wonderland"), deriveCredentials("bob", "builder")];
const acl = {
  default: "deny",
  rules: [
    { topic: "users/%u/#", access: "readwrite" },
    // the deliver hook re-checks deny rules with the subscriber's username
    { username: "alice", topic: "users/alice/muted", access: "deny" },
    { username: "ops", topic: "#", access: "read" },
    { username: "writer", topic: "#", access: "write" },
  ],
};

const brokers: Record<"wasm" | "native", TestBroker | undefined> = { wasm: undefined, native: undefined };
before(async () => {
  for (const kind of ["wasm", "native"] as const) {
    const plugin = (name: string) => (kind === "wasm" ? { wasm: wasm(name) } : { native: native(name) });
    brokers[kind] = await startTestBroker({
      persistence: "memory",
      metrics: { port: 0, token: TOKEN },
      plugins: [
        // required: false lets the plain "ops"/"writer" clients on (no password plugin here)
        { name: "scram", ...plugin("scram"), config: { users, required: false } },
        { name: "acl", ...plugin("acl"), config: acl },
      ],
    });
  }
});
after(async () => {
  await brokers.wasm?.stop();
  await brokers.native?.stop();
});

async function listedUsername(broker: TestBroker, clientId: string): Promise<string | null | undefined> {
  const res = await fetch(`${broker.admin!.url}/clients`, { headers: { authorization: `Bearer ${TOKEN}`, "x-wasmq-request": "1" } });
  assert.equal(res.status, 200);
  const body = (await res.json()) as { clients: { id: string; username: string | null }[] };
  return body.clients.find((c) => c.id === clientId)?.username;
}

function authPacket(reasonCode: number, data: Buffer): Record<string, unknown> {
  return { cmd: "auth", reasonCode, properties: { authenticationMethod: METHOD, authenticationData: data } };
}

/** A raw v5 client through a full SCRAM exchange; resolves to the CONNACK's reason code. */
async function rawScram(port: number, user: string, password: string, connect: Record<string, unknown> = {}): Promise<{ c: Raw5; code: number }> {
  const scram = new ScramClient(user, password);
  const c = await Raw5.open(port);
  c.send({ cmd: "connect", protocolId: "MQTT", protocolVersion: 5, clean: true, clientId: uid("raw"), keepalive: 0, properties: { authenticationMethod: METHOD, authenticationData: scram.clientFirst() }, ...connect });
  const challenge = await c.next("auth");
  c.send(authPacket(0x18, scram.clientFinal(challenge.properties!.authenticationData as Buffer)));
  return { c, code: (await c.next("connack")).reasonCode! };
}

/** Re-authenticates `c` as `user`; resolves to the packet that ends it (AUTH 0x00 or DISCONNECT). */
async function reauthenticate(c: Raw5, user: string, password: string): Promise<{ cmd: string; reasonCode?: number }> {
  const scram = new ScramClient(user, password);
  c.send(authPacket(0x19, scram.clientFirst()));
  const challenge = await c.next("auth", (p) => p.reasonCode === 0x18);
  const from = c.packets.length;
  c.send(authPacket(0x18, scram.clientFinal(challenge.properties!.authenticationData as Buffer)));
  // whichever comes first; a safety deadline against a hang, not a speed assertion
  for (const deadline = Date.now() + 30_000; Date.now() < deadline; await sleep(20)) {
    const end = c.packets.slice(from).find((p) => (p.cmd === "auth" && p.reasonCode === 0) || p.cmd === "disconnect");
    if (end) return end;
    if (c.closed) throw new Error(`closed without AUTH 0x00 or DISCONNECT; got ${c.packets.map((p) => p.cmd).join(",")}`);
  }
  throw new Error("no answer to the re-authentication");
}

describe("the authenticated identity is the client's username (ABI v2-r4)", { timeout: 120_000 }, () => {
  for (const kind of ["wasm", "native"] as const) {
    const broker = () => brokers[kind]!;

    test(`${kind}: a SCRAM client without a CONNECT User Name publishes under its own name (ACL users/%u/#) and not under another's; the admin API lists it as alice`, async () => {
      const ops = await connect(broker().url, { clientId: uid("ops"), username: "ops" });
      const seen = collect(ops);
      await subscribe(ops, "users/#", 1);
      const clientId = uid("alice");
      const { client: alice } = await scramConnect(broker().url, "alice", "wonderland", { clientId });
      try {
        assert.equal(await listedUsername(broker(), clientId), "alice", "admin API: the SCRAM user is the username");
        // another's space: refused (v5: PUBACK 0x87 from acl's drop/deny), and never delivered
        await alice.publishAsync("users/bob/x", "not mine", { qos: 1 }).catch(() => {});
        await alice.publishAsync("users/alice/x", "mine", { qos: 1 });
        await seen.waitFor(1);
        assert.deepEqual(seen.messages.map((m) => `${m.topic}=${m.payload}`), ["users/alice/x=mine"]);
        // subscribe: its own space granted, another's refused
        assert.deepEqual(await subscribe(alice, "users/alice/#", 1), [1]);
        assert.ok((await subscribe(alice, "users/bob/#", 1))[0]! >= 0x80, "users/bob/# is refused");
      } finally {
        await end(ops, alice);
      }
    });

    test(`${kind}: the deliver hook sees the SCRAM user as the subscriber's username (acl's deny rule for alice drops users/alice/muted)`, async () => {
      const { client: alice } = await scramConnect(broker().url, "alice", "wonderland", { clientId: uid("alice") });
      const writer = await connect(broker().url, { clientId: uid("writer"), username: "writer" });
      try {
        const got = collect(alice);
        await subscribe(alice, "users/alice/#", 1);
        await writer.publishAsync("users/alice/muted", "dropped on delivery", { qos: 1 });
        await writer.publishAsync("users/alice/ok", "delivered", { qos: 1 });
        await got.waitFor(1);
        assert.deepEqual(got.messages.map((m) => m.topic), ["users/alice/ok"]);
      } finally {
        await end(alice, writer);
      }
    });

    test(`${kind}: a CONNECT User Name equal to the SCRAM user passes; one that differs gets CONNACK 0x86 after the exchange`, async () => {
      const same = await rawScram(broker().port("tcp"), "alice", "wonderland", { username: "alice" });
      assert.equal(same.code, 0);
      same.c.destroy();
      const other = await rawScram(broker().port("tcp"), "alice", "wonderland", { username: "bob" });
      assert.equal(other.code, 0x86, "Bad User Name or Password (MQTT 5.0 section 3.2.2.2)");
      await other.c.waitClosed();
    });

    test(`${kind}: re-authentication as the same user succeeds (AUTH 0x00); as another user (with that user's right password) gets DISCONNECT 0x87 and the connection closes [MQTT-4.12.1-2]`, async () => {
      const { c, code } = await rawScram(broker().port("tcp"), "alice", "wonderland");
      assert.equal(code, 0);
      const again = await reauthenticate(c, "alice", "wonderland");
      assert.deepEqual([again.cmd, again.reasonCode], ["auth", 0]);
      const swap = await reauthenticate(c, "bob", "builder");
      assert.deepEqual([swap.cmd, swap.reasonCode], ["disconnect", 0x87]);
      await c.waitClosed();
    });
  }

  test("a scram binary built before ABI v2-r4 (88adb37) keeps loading and authenticating; it names no identity, so a client without a User Name has none (as before)", { skip: !hasCommit("88adb37") && "commit 88adb37 is not in this clone" }, async () => {
    const dir = tempDir("wasmq-scram-old-");
    const broker = await startTestBroker({ persistence: "memory", metrics: { port: 0, token: TOKEN }, plugins: [{ name: "scram", wasm: await buildPluginAt("88adb37", "scram", dir), config: { users } }] });
    try {
      const clientId = uid("old");
      const { client } = await scramConnect(broker.url, "alice", "wonderland", { clientId });
      assert.equal(await listedUsername(broker, clientId), null);
      await end(client);
    } finally {
      await broker.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
