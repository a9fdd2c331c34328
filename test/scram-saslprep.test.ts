// SCRAM credentials with SASLprep (RFC 5802 section 2.2, RFC 4013): deriveCredentials
// and `wasmq scram credential` prepare the password, so a standard client (which
// prepares it before deriving its proof) authenticates with a password holding a
// non-ASCII space, a soft hyphen or a compatibility character; a prohibited
// password or an unstable username is refused at derivation with the reason.
// Real brokers (Wasm and native scram), mqtt.js v5, the real CLI.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { after, before, describe, test } from "node:test";
import { CredentialError, deriveCredentials } from "../plugins-as/scram/native.js";
import { CLI, end, native, startTestBroker, wasm, type TestBroker } from "./helpers.js";
import { uid } from "./mqtt5-raw.js";
import { scramConnect } from "./scram-client.js";

/**
 * The client side of RFC 4013's mapping (section 2.1: RFC 3454 C.1.2 non-ASCII
 * spaces to U+0020, B.1 "commonly mapped to nothing" removed) and normalization
 * (section 2.2: NFKC), written here from the RFC's tables so that the test's
 * client does not share the broker's library.
 */
const NON_ASCII_SPACE = /[\u00A0\u1680\u2000-\u200B\u202F\u205F\u3000]/g;
const MAPPED_TO_NOTHING = /[\u00AD\u034F\u1806\u180B-\u180D\u200B-\u200D\u2060\uFE00-\uFE0F\uFEFF]/g;
const clientPrepare = (password: string) => password.replace(MAPPED_TO_NOTHING, "").replace(NON_ASCII_SPACE, " ").normalize("NFKC");

// a no-break space, a soft hyphen, the "ﬁ" ligature (U+FB01) and a full-width digit
const PASSWORD = "pa\u00A0ss\u00ADword \uFB01\uFF11";
const PREPARED = "pa ssword fi1";

describe("SCRAM credentials with SASLprep (RFC 4013)", { timeout: 120_000 }, () => {
  test("the client-side preparation of this test gives the RFC's result for the password (a check of the test itself)", () => {
    assert.equal(clientPrepare(PASSWORD), PREPARED);
  });

  test("deriveCredentials prepares the password: the unprepared and the prepared forms derive the same keys; the raw bytes would not", () => {
    const salt = Buffer.from("0123456789abcdef");
    const a = deriveCredentials("carol", PASSWORD, 4096, salt);
    const b = deriveCredentials("carol", PREPARED, 4096, salt);
    assert.deepEqual(a, b);
    assert.notDeepEqual(a, deriveCredentials("carol", "pa ssword fi1x", 4096, salt));
  });

  test("a password SASLprep prohibits is refused with the reason (control, private use, unassigned, mixed bidirectional); so are an empty prepared password and bad iterations", () => {
    const cases: [string, RegExp][] = [
      ["bell\u0007", /password is refused by SASLprep \(RFC 4013\): Prohibited character/],
      ["private\uE000", /password is refused by SASLprep \(RFC 4013\): Prohibited character/],
      ["unassigned\u0221", /password is refused by SASLprep \(RFC 4013\): Unassigned code point/],
      ["\u05D0abc", /password is refused by SASLprep \(RFC 4013\): .*RandALCat/],
      ["\u00AD", /password is empty after SASLprep/],
    ];
    for (const [password, why] of cases) {
      assert.throws(() => deriveCredentials("carol", password), (err: Error) => err instanceof CredentialError && why.test(err.message), JSON.stringify(password));
    }
    assert.throws(() => deriveCredentials("carol", "x", 100), /iterations must be an integer from 4096 to 10000000 \(got 100\)/);
  });

  test("a username SASLprep would change is refused naming its prepared form; ',' and '=' are fine (saslname escapes them)", () => {
    assert.throws(() => deriveCredentials("\uFB01lip", "x"), /username "ﬁlip" is not stable under SASLprep.*send "filip"/);
    assert.equal(deriveCredentials("a,b=c", "x").username, "a,b=c");
  });

  test("wasmq scram credential: the password from stdin, SASLprep'd; a prohibited one exits 2 naming the reason; the password never appears in argv", async () => {
    const run = (args: string[], stdin: string) =>
      new Promise<{ code: number | null; out: string; err: string }>((resolve, reject) => {
        const child = spawn(process.execPath, [CLI, "scram", ...args], { stdio: ["pipe", "pipe", "pipe"] });
        let out = "";
        let err = "";
        child.stdout.on("data", (d) => (out += d));
        child.stderr.on("data", (d) => (err += d));
        child.on("error", reject);
        child.on("close", (code) => resolve({ code, out, err }));
        child.stdin.end(stdin);
      });
    const ok = await run(["credential", "carol", "--iterations", "5000"], `${PASSWORD}\n`);
    assert.equal(ok.code, 0, ok.err);
    const entry = JSON.parse(ok.out) as ReturnType<typeof deriveCredentials>;
    assert.equal(entry.username, "carol");
    assert.equal(entry.iterations, 5000);
    assert.deepEqual(deriveCredentials("carol", PREPARED, 5000, Buffer.from(entry.salt, "base64")), entry, "the keys are the prepared password's");
    const bad = await run(["credential", "carol"], "bell\u0007\n");
    assert.equal(bad.code, 2);
    assert.match(bad.err, /wasmq scram: credential: the password is refused by SASLprep \(RFC 4013\): Prohibited character/);
    assert.equal(bad.out, "");
    const usage = await run(["credential", "carol", "--iterations", "12"], "x\n");
    assert.equal(usage.code, 2);
    assert.match(usage.err, /--iterations: expected an integer from 4096/);
  });
});

describe("a SASLprep'd credential authenticates standard clients (Wasm and native scram)", { timeout: 120_000 }, () => {
  const brokers: Record<"wasm" | "native", TestBroker | undefined> = { wasm: undefined, native: undefined };
  const users = [deriveCredentials("carol", PASSWORD), deriveCredentials("d,=ve", "pw\u2003x")];
  before(async () => {
    brokers.wasm = await startTestBroker({ persistence: "memory", plugins: [{ name: "scram", wasm: wasm("scram"), config: { users } }] });
    brokers.native = await startTestBroker({ persistence: "memory", plugins: [{ name: "scram", native: native("scram"), config: { users } }] });
  });
  after(async () => {
    await brokers.wasm?.stop();
    await brokers.native?.stop();
  });

  for (const kind of ["wasm", "native"] as const) {
    test(`${kind}: a client that prepares the password (RFC 4013) authenticates and verifies the server; one that sends it unprepared gets 0x86`, async () => {
      const url = brokers[kind]!.url;
      const { client, connack, scram } = await scramConnect(url, "carol", clientPrepare(PASSWORD), { clientId: uid("carol") });
      assert.equal(connack.reasonCode, 0);
      assert.ok(scram.verifyServerFinal(connack.properties?.authenticationData as Buffer));
      await end(client);
      await assert.rejects(scramConnect(url, "carol", PASSWORD, { clientId: uid("carol") }), (err: Error & { code?: number }) => err.code === 0x86);
    });

    test(`${kind}: a user name with ',' and '=' and a password with an em space (U+2003) authenticates`, async () => {
      const { client, connack } = await scramConnect(brokers[kind]!.url, "d,=ve", clientPrepare("pw\u2003x"), { clientId: uid("dave") });
      assert.equal(connack.reasonCode, 0);
      await end(client);
    });
  }
});
