// wasmq plugin keygen / sign / verify / inspect, through the real CLI: round
// trips, and each way a signature check must fail (tampered byte, wrong key,
// stripped signature).
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { signedDigest, SIGNATURE_SECTION } from "../host/signing.js";
import { listSections, withoutCustomSections } from "../host/wasm-binary.js";
import { CLI, tempDir } from "./helpers.js";
import { strip, tamper, trustBuilds, type TrustBuilds } from "./trust-support.js";

function wasmq(args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, "plugin", ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    child.once("exit", (code) => resolve({ code, out, err }));
  });
}

describe("wasmq plugin keygen/sign/verify/inspect", { timeout: 120_000 }, () => {
  const dir = tempDir();
  let b: TrustBuilds;
  let keyId = "";
  const keys = join(dir, "keys");
  const priv = join(keys, "release.key");
  const pub = join(keys, "release.pub");
  const plugin = join(dir, "gate.wasm");

  before(async () => {
    b = await trustBuilds(dir);
    writeFileSync(plugin, b.v1);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test("keygen writes a private key (mode 600) and a .pub, and never overwrites them", async () => {
    const r = await wasmq(["keygen", "--out", keys, "--name", "release"]);
    assert.equal(r.code, 0, r.err);
    keyId = /key id ([0-9a-f]{16})/.exec(r.out)![1]!;
    assert.equal(statSync(priv).mode & 0o777, 0o600);
    assert.match(readFileSync(pub, "utf8"), /BEGIN PUBLIC KEY/);
    const again = await wasmq(["keygen", "--out", keys, "--name", "release"]);
    assert.equal(again.code, 2);
    assert.match(again.err, /already exists/);
  });

  test("inspect reports an unsigned build", async () => {
    const r = await wasmq(["inspect", plugin, "--json"]);
    assert.equal(r.code, 0, r.err);
    const report = JSON.parse(r.out);
    assert.equal(report.signature.state, "unsigned");
    assert.equal(report.abiVersion, 1);
    assert.deepEqual(report.hooks, ["publish"]);
    assert.equal(report.size, b.v1.length);
    assert.equal(report.sha256, createHash("sha256").update(b.v1).digest("hex"));
    assert.ok(report.imports.includes("env.memory (memory 1..∞ pages)"), report.imports.join());
  });

  test("sign then verify and inspect: valid, by the key keygen printed; the signature section is last and covers the rest", async () => {
    const s = await wasmq(["sign", plugin, "--key", priv]);
    assert.equal(s.code, 0, s.err);
    const signed = readFileSync(plugin);
    const sections = listSections(signed);
    assert.equal(sections.at(-1)!.name, SIGNATURE_SECTION);
    assert.deepEqual(signedDigest(signed), createHash("sha256").update(b.v1).digest(), "the digest is of the module minus the signature section");
    assert.deepEqual(Buffer.from(withoutCustomSections(signed, SIGNATURE_SECTION)), b.v1);
    const v = await wasmq(["verify", plugin, "--pub", pub]);
    assert.equal(v.code, 0, v.err);
    assert.match(v.out, new RegExp(`signature OK, key ${keyId}`));
    const i = await wasmq(["inspect", plugin, "--pub", pub]);
    assert.match(i.out, new RegExp(`signature: valid, key ${keyId} \\(trusted: `));
    // Re-signing replaces the signature instead of stacking a second one.
    const again = await wasmq(["sign", plugin, "--key", priv]);
    assert.equal(again.code, 0, again.err);
    assert.equal(listSections(readFileSync(plugin)).filter((x) => x.name === SIGNATURE_SECTION).length, 1);
  });

  test("verify fails (exit 1) with the reason: tampered byte, wrong key, stripped signature", async () => {
    const signed = readFileSync(plugin);
    const cases: [string, Buffer, string[], RegExp][] = [
      ["tampered", tamper(signed), ["--pub", pub], /invalid signature: the signature by key [0-9a-f]{16} does not match the module's content/],
      ["wrong key", signed, ["--pub", b.stranger.pub], new RegExp(`signed by key ${keyId}, which is not [0-9a-f]{16}`)],
      ["stripped", strip(signed), ["--pub", pub], /not signed/],
    ];
    for (const [what, bytes, args, reason] of cases) {
      const file = join(dir, `${what.replace(" ", "-")}.wasm`);
      writeFileSync(file, bytes);
      const r = await wasmq(["verify", file, ...args]);
      assert.equal(r.code, 1, `${what}: ${r.out}${r.err}`);
      assert.match(r.err, reason, what);
    }
    const inspected = JSON.parse((await wasmq(["inspect", join(dir, "tampered.wasm"), "--json"])).out);
    assert.equal(inspected.signature.state, "invalid");
  });

  test("bad usage and unreadable input exit 2 with a message", async () => {
    const missing = await wasmq(["verify", join(dir, "nope.wasm"), "--pub", pub]);
    assert.equal(missing.code, 2);
    assert.match(missing.err, /cannot read/);
    const noKey = await wasmq(["sign", plugin]);
    assert.equal(noKey.code, 2);
    assert.match(noKey.err, /--key/);
    const notAKey = await wasmq(["sign", plugin, "--key", pub]);
    assert.equal(notAKey.code, 2);
    assert.match(notAKey.err, /not a private key/);
    const help = await wasmq(["--help"]);
    assert.equal(help.code, 0);
    assert.match(help.out, /keygen --out DIR/);
  });
});
