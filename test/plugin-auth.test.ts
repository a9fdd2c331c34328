// auth: PBKDF2-HMAC-SHA256 password checks at CONNECT. Both builds get PBKDF2
// from node:crypto: the Wasm build through the SDK's crypto host import (the
// host computes it and charges fuel), the native twin directly; the
// differential run checks that they decode hashes and decide alike.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { pbkdf2Sync } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import { runPlugin, type HarnessMessage } from "../host/harness.js";
import { emptyMessage, MemoryKvStore, PluginChain, Verdict } from "../host/index.js";
import { Rng, assertTwinsAgree, assertTwinsRefuse, randomIdentity, verdictCounts } from "./differential.js";
import { ROOT, connect, connectRefused, end, native, startTestBroker, wasm, type TestBroker } from "./helpers.js";

const run = promisify(execFile);
const { hashPassword } = (await import(native("auth"))) as { hashPassword: (password: string, iterations?: number, salt?: Uint8Array) => string };

// Fuel: 8 000 per PBKDF2 iteration (see plugins-as/auth/README.md); some generated users have more than the default covers.
const LIMITS = { fuel: 250_000_000 };

function hashWith(password: Buffer, salt: Buffer, iterations: number, keyLength: number): string {
  const key = pbkdf2Sync(password, salt, iterations, keyLength, "sha256");
  return `pbkdf2-sha256$${iterations}$${salt.toString("base64")}$${key.toString("base64")}`;
}

describe("auth: Wasm and native twin agree", () => {
  // Users whose hashes exercise the corners: empty and long salts, keys of
  // 16, 33 (a second PBKDF2 block) and 64 bytes, passwords longer than the
  // HMAC block (hashed first), unicode, and base64 without padding.
  const rng = new Rng(0xa17);
  const users = [
    { username: "alice", password: "secret", salt: Buffer.from("NaCl"), iterations: 7, keyLength: 32 },
    { username: "bob", password: "", salt: Buffer.alloc(0), iterations: 1, keyLength: 16 },
    { username: "carol", password: "x".repeat(65), salt: rng.bytes(40), iterations: 3, keyLength: 33 },
    { username: "dave/+#", password: "pässwörd 😀", salt: rng.bytes(17), iterations: 20, keyLength: 64 },
    { username: "ü-ser", password: "p".repeat(200), salt: rng.bytes(256), iterations: 2, keyLength: 31 },
    { username: "%u", password: "percent", salt: rng.bytes(5), iterations: 4, keyLength: 20 },
  ];
  const configUsers = users.map((u) => {
    let hash = hashWith(Buffer.from(u.password, "utf8"), u.salt, u.iterations, u.keyLength);
    if (u.username === "carol") hash = hash.replace(/=+$/, ""); // padding is optional
    return { username: u.username, hash };
  });
  const names = users.map((u) => u.username);

  function messages(seed: number, count: number): HarnessMessage[] {
    const r = new Rng(seed);
    const out: HarnessMessage[] = [];
    for (let i = 0; i < count; i++) {
      const user = r.pick(users);
      const username = r.chance(0.1) ? null : r.chance(0.8) ? user.username : randomIdentity(r, names);
      const password = r.chance(0.05)
        ? null
        : r.chance(0.6)
          ? user.password
          : r.pick([user.password + "x", user.password.slice(0, -1), user.password.toUpperCase(), "", "secret", "\u0000"]);
      const clientId = r.chance(0.5) ? `${username ?? ""}-${r.int(100)}` : randomIdentity(r, names);
      out.push({ hook: "connect", username, password, clientId });
    }
    return out;
  }

  test("clientIdPattern and no anonymous access: 500 generated CONNECTs", async () => {
    const results = await assertTwinsAgree("auth", { users: configUsers, clientIdPattern: "%u-*" }, messages(1, 500), LIMITS);
    const counts = verdictCounts(results);
    for (const outcome of ["continue", "deny:2", "deny:4", "deny:5"]) assert.ok((counts[outcome] ?? 0) > 10, `too few ${outcome}: ${JSON.stringify(counts)}`);
  });

  test("anonymous access allowed, exact client id pattern: 300 generated CONNECTs", async () => {
    const config = { users: configUsers, allowAnonymous: true, clientIdPattern: "dev-%u" };
    const msgs = messages(2, 300).map((m, i) => (i % 3 === 0 ? { ...m, clientId: `dev-${m.username ?? ""}` } : m));
    const results = await assertTwinsAgree("auth", config, msgs, LIMITS);
    const counts = verdictCounts(results);
    assert.equal(counts["deny:5"], undefined, "anonymous clients are let in");
    for (const outcome of ["continue", "deny:2", "deny:4"]) assert.ok((counts[outcome] ?? 0) > 5, `too few ${outcome}: ${JSON.stringify(counts)}`);
  });

  test("RFC 7914 §11 test vector (PBKDF2-HMAC-SHA256, 64-byte key) is accepted by the Wasm build", async () => {
    const key = Buffer.from("55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc49ca9cccf179b645991664b39d77ef317c71b845b1e30bd509112041d3a19783", "hex");
    const config = { users: [{ username: "rfc", hash: `pbkdf2-sha256$1$${Buffer.from("salt").toString("base64")}$${key.toString("base64")}` }] };
    const results = await assertTwinsAgree("auth", config, [
      { hook: "connect", username: "rfc", password: "passwd" },
      { hook: "connect", username: "rfc", password: "passwe" },
    ]);
    assert.deepEqual(results.map((r) => [r.verdict, r.returnCode]), [["continue", undefined], ["deny", 4]]);
  });

  test("hashPassword's output is accepted at 10 000 iterations with the default fuel budget", async () => {
    const config = { users: [{ username: "op", hash: hashPassword("correct horse", 10_000) }] };
    assert.match(config.users[0]!.hash, /^pbkdf2-sha256\$10000\$[A-Za-z0-9+/]{22}==\$[A-Za-z0-9+/]{43}=$/);
    const results = await runPlugin({ name: "auth", wasm: wasm("auth"), config }, [
      { hook: "connect", username: "op", password: "correct horse" },
      { hook: "connect", username: "op", password: "correct horse " },
      { hook: "connect", username: "nobody", password: "correct horse" },
    ]);
    assert.deepEqual(results.map((r) => [r.verdict, r.returnCode, r.trap]), [["continue", undefined, undefined], ["deny", 4, undefined], ["deny", 4, undefined]]);
  });

  test("config.example.json accepts the README's passwords", async () => {
    const example = JSON.parse(readFileSync(join(ROOT, "plugins-as/auth/config.example.json"), "utf8")) as Record<string, unknown>;
    const results = await assertTwinsAgree("auth", example, [
      { hook: "connect", username: "alice", password: "wonderland", clientId: "alice-laptop" },
      { hook: "connect", username: "sensor-001", password: "s3nsor-001!", clientId: "sensor-001-a" },
      { hook: "connect", username: "alice", password: "wonderland", clientId: "laptop" },
      { hook: "connect", username: "alice", password: "s3nsor-001!", clientId: "alice-laptop" },
    ], { fuel: 200_000_000 });
    assert.deepEqual(results.map((r) => r.returnCode ?? 0), [0, 0, 2, 4]);
  });

  test("bad configs are refused by both builds, naming the key", async () => {
    const good = configUsers[0]!.hash;
    await assertTwinsRefuse("auth", { users: { alice: { hash: good } } }, /config\.users must be an array/);
    await assertTwinsRefuse("auth", { users: [] }, /nobody could connect/);
    await assertTwinsRefuse("auth", { users: [{ hash: good }] }, /users\.0\.username must be a non-empty string/);
    await assertTwinsRefuse("auth", { users: [{ username: "a", hash: good }, { username: "a", hash: good }] }, /users\.1\.username: a is listed twice/);
    await assertTwinsRefuse("auth", { users: [{ username: "a", hash: good.replace("pbkdf2-sha256", "md5") }] }, /users\.0\.hash must look like pbkdf2-sha256\$/);
    await assertTwinsRefuse("auth", { users: [{ username: "a", hash: good.replace("$7$", "$0$") }] }, /users\.0\.hash: iterations must be/);
    await assertTwinsRefuse("auth", { users: [{ username: "a", hash: good.replace("$7$", "$07$") }] }, /users\.0\.hash: iterations must be/);
    await assertTwinsRefuse("auth", { users: [{ username: "a", hash: good.replace("$7$", "$7$!") }] }, /users\.0\.hash: the salt must be base64/);
    await assertTwinsRefuse("auth", { users: [{ username: "a", hash: good + "=" }] }, /users\.0\.hash: the key must be base64/);
    await assertTwinsRefuse("auth", { users: [{ username: "a", hash: "pbkdf2-sha256$5$AAAA$AAAA" }] }, /the key must be base64 of 16 to 64 bytes/);
    await assertTwinsRefuse("auth", { users: configUsers.slice(0, 1), clientIdPattern: "*-%u" }, /clientIdPattern may contain '\*' only at its end/);
    await assertTwinsRefuse("auth", { allowAnonymous: true, clientIdPattern: "" }, /clientIdPattern must be a non-empty string/);
  });
});

describe("auth: every check costs the same, whatever the user's iteration count", () => {
  // Fuel is deterministic (Wasm instructions plus 4,000 per SHA-256 block the host
  // hashes for the plugin), so equal fuel means equal PBKDF2 work, without timing anything.
  test("known users at 1,000 / 2,000 / 3,000 iterations, 64-byte keys, and unknown users use the same fuel", async () => {
    const users = [
      { username: "fast", hash: hashPassword("pw-fast", 1000) },
      { username: "slow", hash: hashPassword("pw-slow", 3000) },
      // 64-byte key: two PBKDF2 blocks per iteration, as costly as 3,000 iterations of a 32-byte key.
      { username: "wide", hash: hashWith(Buffer.from("pw-wide"), Buffer.from("0123456789abcdef"), 1500, 64) },
      { username: "mid", hash: hashPassword("pw-mid", 2000) },
      { username: "k".repeat(200), hash: hashPassword("pw-long", 1000) },
    ];
    const chain = await PluginChain.load([{ name: "auth", wasm: wasm("auth"), config: { users }, limits: LIMITS }], { kv: new MemoryKvStore(), publish: () => {} });
    try {
      const fuelOf = (username: string, password: string): { verdict: number; fuel: number } => {
        const msg = emptyMessage();
        msg.clientId = `${username}-1`;
        msg.username = username;
        msg.password = Buffer.from(password);
        const out = chain.run("connect", msg);
        return { verdict: out.verdict, fuel: chain.slot("auth")!.stats.fuelUsedLast };
      };
      const runs = {
        "fast, right password": fuelOf("fast", "pw-fast"),
        "fast, wrong password": fuelOf("fast", "nope"),
        "mid, right password": fuelOf("mid", "pw-mid"),
        "slow, right password": fuelOf("slow", "pw-slow"),
        "wide, right password": fuelOf("wide", "pw-wide"),
        "unknown user": fuelOf("nobody", "pw-fast"),
        "unknown user, long name": fuelOf("n".repeat(200), "pw-fast"),
        "known user, long name": fuelOf("k".repeat(200), "pw-long"),
      };
      assert.equal(runs["fast, right password"].verdict, Verdict.Continue);
      assert.equal(runs["wide, right password"].verdict, Verdict.Continue);
      assert.notEqual(runs["unknown user"].verdict, Verdict.Continue);
      const slowest = runs["slow, right password"].fuel;
      // 3,000 iterations × 2 blocks × 4,000 fuel: the PBKDF2 work every check must do.
      assert.ok(slowest >= 3000 * 2 * 4000, `fuel ${slowest}`);
      // What may differ is bookkeeping — the name lookup, the refusal's log line, the
      // top-up call's set-up — measured at most 0.33% between names of one length; before the
      // top-up, the 1,000-iteration user cost a third of the slowest one. A long name
      // costs more to look up and to log (host calls are charged per byte) whether or
      // not it is known: that is compared between long names.
      const close = (what: string, fuel: number, reference: number, of: string) =>
        assert.ok(Math.abs(fuel - reference) < slowest / 200, `${what}: fuel ${fuel} vs ${reference} for ${of}`);
      for (const [what, r] of Object.entries(runs)) if (!what.endsWith("long name")) close(what, r.fuel, slowest, "the slowest user");
      close("unknown user, long name", runs["unknown user, long name"].fuel, runs["known user, long name"].fuel, "a known user with a name as long");
      assert.equal(runs["known user, long name"].verdict, Verdict.Continue);
    } finally {
      chain.close();
    }
  });
});

describe("auth through the broker", () => {
  let broker: TestBroker;
  const port = () => String(new URL(broker.url).port);

  before(async () => {
    broker = await startTestBroker({
      persistence: "memory",
      plugins: [
        {
          name: "auth",
          wasm: wasm("auth"),
          config: {
            users: [
              { username: "alice", hash: hashPassword("wonderland", 1000) },
              { username: "sensor-7", hash: hashPassword("s3cret!", 1000) },
            ],
            clientIdPattern: "%u-*",
          },
          limits: LIMITS,
        },
      ],
    });
  });
  after(() => broker.stop());

  test("the right password connects; a wrong one or an unknown user gets CONNACK 4, no username 5", async () => {
    const ok = await connect(broker.url, { username: "alice", password: "wonderland", clientId: "alice-laptop" });
    assert.ok(ok.connected);
    await end(ok);
    assert.equal(await connectRefused(broker.url, { username: "alice", password: "Wonderland", clientId: "alice-laptop" }), 4);
    assert.equal(await connectRefused(broker.url, { username: "mallory", password: "wonderland", clientId: "mallory-1" }), 4);
    assert.equal(await connectRefused(broker.url, { username: "alice", clientId: "alice-2" }), 4);
    assert.equal(await connectRefused(broker.url, { clientId: "anonymous" }), 5);
  });

  test("a client id outside clientIdPattern gets CONNACK 2 even with the right password", async () => {
    assert.equal(await connectRefused(broker.url, { username: "sensor-7", password: "s3cret!", clientId: "alice-x" }), 2);
    const ok = await connect(broker.url, { username: "sensor-7", password: "s3cret!", clientId: "sensor-7-a" });
    assert.ok(ok.connected);
    await end(ok);
  });

  test("mosquitto_pub: accepted with the password, refused without it", async () => {
    const args = ["-h", "127.0.0.1", "-p", port(), "-i", "alice-cli", "-u", "alice", "-t", "t/x", "-m", "hi", "-q", "1"];
    await run("mosquitto_pub", [...args, "-P", "wonderland"]);
    const refused = await run("mosquitto_pub", [...args, "-P", "wrong"]).then(
      () => null,
      (err: Error & { stderr?: string }) => err,
    );
    assert.ok(refused, "mosquitto_pub must fail with a wrong password");
    assert.match(refused.stderr ?? "", /not authori[sz]ed|bad user name or password/i);
  });

  test("a bad config stops the broker from starting, naming the plugin", async () => {
    await assert.rejects(
      startTestBroker({ persistence: "memory", plugins: [{ name: "auth", wasm: wasm("auth"), config: { users: [{ username: "a", hash: "plain" }] } }] }),
      /plugin "auth": init refused its config/,
    );
  });
});

describe("auth: a fleet-sized user list", { timeout: 120_000 }, () => {
  test("2000 users load with the default limits, Wasm and native; the last one connects", async () => {
    // Distinct cheap hashes (the list's size is the point, not the KDF cost);
    // before the SDK indexed the config, init ran out of fuel at ~100 users.
    const users = Array.from({ length: 2000 }, (_, i) => ({ username: `sensor-${i}`, hash: hashPassword(`pw-${i}`, 1) }));
    for (const build of ["wasm", "native"] as const) {
      const plugin = build === "wasm" ? { wasm: wasm("auth") } : { native: native("auth") };
      const broker = await startTestBroker({ persistence: "memory", plugins: [{ name: "auth", ...plugin, config: { users } }] });
      try {
        const last = await connect(broker.url, { username: "sensor-1999", password: "pw-1999", clientId: `${build}-1` });
        assert.ok(last.connected, build);
        await end(last);
        assert.equal(await connectRefused(broker.url, { username: "sensor-1999", password: "pw-1998", clientId: `${build}-2` }), 4, build);
        assert.equal(await connectRefused(broker.url, { username: "sensor-2000", password: "pw-2000", clientId: `${build}-3` }), 4, build);
      } finally {
        await broker.stop();
      }
    }
  });
});
