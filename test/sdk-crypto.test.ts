// The SDK's crypto (sha256, hmacSha256, pbkdf2Sha256, timingSafeEqual): in a
// compiled AssemblyScript plugin the host computes them and charges fuel for the
// work; the native SDK's twin uses node:crypto. Published test vectors, the two
// twins against each other on generated inputs, and the fuel charge.
import assert from "node:assert/strict";
import { createHmac, pbkdf2Sync } from "node:crypto";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { createHarness, type Harness } from "../host/harness.js";
import { crypto } from "../host/native/index.js";
import { buildSource, tempDir } from "./fixtures.js";
import { Rng } from "./differential.js";

// Each topic asks for one function over the payload; the result becomes the payload.
const SOURCE = `
import { Config, Message, Verdict, crypto } from "SDK_PATH";
export * from "SDK_PATH/exports";

let key = new Uint8Array(0);
let salt = new Uint8Array(0);
let iterations: i32 = 1;

export function init(config: Config): bool {
  key = Uint8Array.wrap(String.UTF8.encode(config.string("key", "")));
  salt = Uint8Array.wrap(String.UTF8.encode(config.string("salt", "")));
  iterations = <i32>config.number("iterations", 1);
  return true;
}

export function onPublish(msg: Message): i32 {
  const data = msg.payload;
  if (msg.topicEquals("sha256")) msg.setPayload(crypto.sha256(data));
  else if (msg.topicEquals("hmac")) msg.setPayload(crypto.hmacSha256(key, data));
  else if (msg.topicEquals("hmac-key-is-payload")) msg.setPayload(crypto.hmacSha256(data, key));
  else if (msg.topicEquals("pbkdf2")) {
    const derived = crypto.pbkdf2Sha256(data, salt, iterations, 32);
    if (derived === null) return Verdict.Drop;
    msg.setPayload(derived);
  } else if (msg.topicEquals("pbkdf2-bad")) {
    if (crypto.pbkdf2Sha256(data, salt, 0, 32) !== null) return Verdict.Deny;
    if (crypto.pbkdf2Sha256(data, salt, 1, 0) !== null) return Verdict.Deny;
    if (crypto.pbkdf2Sha256(data, salt, 1, 1025) !== null) return Verdict.Deny;
    return Verdict.Drop;
  } else if (msg.topicEquals("equal")) {
    return crypto.timingSafeEqual(data, key) ? Verdict.Continue : Verdict.Drop;
  }
  return Verdict.Continue;
}
`;

const dir = tempDir("wasmq-sdk-crypto-");
let wasm = "";
before(async () => {
  wasm = await buildSource(SOURCE, join(dir, "crypto.wasm"));
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** The plugin's output payload for one message, as hex. */
function run(h: Harness, topic: string, payload: Buffer): string {
  const r = h.run({ topic, payload: { base64: payload.toString("base64") } });
  assert.equal(r.trap, undefined, `${topic}: ${r.trap}`);
  const out = r.changed?.payload ?? "";
  const bytes = out.startsWith("base64:") ? Buffer.from(out.slice(7), "base64") : Buffer.from(out, "utf8");
  return bytes.toString("hex");
}

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

describe("sdk crypto", { timeout: 60_000 }, () => {
  test("published test vectors, in the Wasm plugin and the native SDK", async () => {
    // RFC 4231 test case 2; FIPS 180-2 "abc"; RFC 7914 §11 (PBKDF2-HMAC-SHA256, c = 1).
    const h = await createHarness({ name: "crypto", wasm, config: { key: "Jefe", salt: "salt", iterations: 1 } });
    const abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    const jefe = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
    const rfc7914 = "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc"; // first 32 bytes
    assert.equal(run(h, "sha256", Buffer.from("abc")), abc);
    assert.equal(run(h, "hmac", Buffer.from("what do ya want for nothing?")), jefe);
    assert.equal(run(h, "pbkdf2", Buffer.from("passwd")), rfc7914);
    assert.equal(hex(crypto.sha256(Buffer.from("abc"))), abc);
    assert.equal(hex(crypto.hmacSha256(Buffer.from("Jefe"), Buffer.from("what do ya want for nothing?"))), jefe);
    assert.equal(hex(crypto.pbkdf2Sha256(Buffer.from("passwd"), Buffer.from("salt"), 1, 32)!), rfc7914);
    assert.equal(h.run({ topic: "pbkdf2-bad", payload: "x" }).verdict, "drop", "bad PBKDF2 arguments give null");
    assert.equal(crypto.pbkdf2Sha256(Buffer.from("x"), Buffer.from("s"), 0, 32), null);
    assert.equal(crypto.pbkdf2Sha256(Buffer.from("x"), Buffer.from("s"), 1, 1025), null);
    h.close();
  });

  test("Wasm and native agree on 300 generated inputs (empty, block-sized, keys over 64 bytes)", async () => {
    const rng = new Rng(0xc2);
    const sizes = [0, 1, 55, 56, 63, 64, 65, 119, 120, 128, 1000];
    const h = await createHarness({ name: "crypto", wasm, config: { key: "k".repeat(100), salt: "NaCl", iterations: 3 } });
    for (let i = 0; i < 300; i++) {
      const data = Buffer.from(rng.bytes(i < sizes.length ? sizes[i]! : rng.int(300)));
      const key = Buffer.from("k".repeat(100));
      assert.equal(run(h, "sha256", data), hex(crypto.sha256(data)), `sha256 of ${data.length} bytes`);
      assert.equal(run(h, "hmac", data), createHmac("sha256", key).update(data).digest("hex"), `hmac of ${data.length} bytes`);
      assert.equal(run(h, "hmac-key-is-payload", data), hex(crypto.hmacSha256(data, key)), `hmac under a ${data.length}-byte key`);
      if (i % 10 === 0) assert.equal(run(h, "pbkdf2", data), pbkdf2Sync(data, "NaCl", 3, 32, "sha256").toString("hex"));
    }
    assert.equal(h.run({ topic: "equal", payload: "k".repeat(100) }).verdict, "continue");
    assert.equal(h.run({ topic: "equal", payload: "k".repeat(99) + "j" }).verdict, "drop");
    assert.equal(h.run({ topic: "equal", payload: "k".repeat(99) }).verdict, "drop");
    assert.equal(crypto.timingSafeEqual(Buffer.from("ab"), Buffer.from("abc")), false);
    h.close();
  });

  test("the host charges fuel for the work, before doing it: 10,000 PBKDF2 iterations fit 100 M, not 50 M", async () => {
    const config = { salt: "NaCl", iterations: 10_000 };
    const fits = await createHarness({ name: "crypto", wasm, config, limits: { fuel: 100_000_000 } });
    assert.equal(run(fits, "pbkdf2", Buffer.from("pw")), pbkdf2Sync("pw", "NaCl", 10_000, 32, "sha256").toString("hex"));
    fits.close();
    const short = await createHarness({ name: "crypto", wasm, config, limits: { fuel: 50_000_000 }, onError: "fail-closed" });
    const r = short.run({ topic: "pbkdf2", payload: "pw" });
    assert.equal(r.trap, "fuel");
    assert.equal(r.verdict, "drop", "the failure policy answers");
    assert.equal(run(short, "sha256", Buffer.from("abc")), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", "a fresh instance serves the next message");
    short.close();
  });
});
