// Trust policy: with "trust.require", a build that is unsigned, tampered with or
// signed by a key not in "trust.keys" is refused — at start-up, on hot reload
// (the running build keeps serving) and on admin upload — and so is a build
// whose sha256 differs from the plugin's pin. Without "require", a present
// signature is still verified and its status shown.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import type { RawConfig } from "../broker/config.js";
import { CLI, ROOT, startTestBroker, tempDir, type TestBroker } from "./helpers.js";
import { blockedIsDropped, signWith, tamper, trustBuilds, uploadBuild, type TrustBuilds } from "./trust-support.js";

const TOKEN = "trust-token-0123456789";
const digest = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

describe("plugin trust policy", { timeout: 120_000 }, () => {
  const dir = tempDir();
  let b: TrustBuilds;
  const file = (name: string, bytes: Uint8Array) => {
    const path = join(dir, name);
    writeFileSync(path, bytes);
    return path;
  };
  const required = (plugins: RawConfig["plugins"]): RawConfig => ({
    persistence: "memory",
    metrics: { port: 0, token: TOKEN },
    trust: { keys: [b.trusted.pub], require: true },
    plugins,
  });

  before(async () => {
    b = await trustBuilds(dir);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test("start-up: a build signed by a listed key starts; each bad build is refused naming the plugin and the reason", async () => {
    const ok = await startTestBroker(required([{ name: "gate", wasm: file("ok.wasm", b.signedV1) }]));
    try {
      const described = ok.chain.slot("gate")!.describe();
      assert.deepEqual(described.signature, { signature: "valid", keyId: (described.signature as { keyId: string }).keyId, trusted: true });
    } finally {
      await ok.stop();
    }
    for (const { what, bytes, reason } of b.bad) {
      await assert.rejects(startTestBroker(required([{ name: "gate", wasm: file("bad.wasm", bytes) }])), (err: Error) => {
        assert.match(err.message, /plugin "gate": refused: /, what);
        assert.match(err.message, reason, what);
        return true;
      });
    }
    await assert.rejects(
      startTestBroker(required([{ name: "gate", wasm: file("pinned.wasm", b.signedV1), sha256: digest(b.signedV2) }])),
      /plugin "gate": refused: its sha256 [0-9a-f]{64} does not match the pinned sha256/,
    );
  });

  describe("a running broker", () => {
    let broker: TestBroker;
    let live: string;
    let pinned: string;

    const upload = (name: string, bytes: Uint8Array) => uploadBuild(broker.admin!.url, TOKEN, name, bytes);
    /** Is `blocked/x` dropped? (v1 drops it, v2 does not): which build serves, seen by a client. */
    const drops = () => blockedIsDropped(broker.url);

    before(async () => {
      live = file("live.wasm", b.signedV1);
      // The pinned plugin runs v2 (passes everything), so what a client sees is the gate's doing.
      pinned = file("pinned-live.wasm", b.signedV2);
      broker = await startTestBroker(
        required([
          { name: "gate", wasm: live, watch: false },
          { name: "pinned", wasm: pinned, watch: false, sha256: digest(b.signedV2) },
        ]),
      );
    });
    after(() => broker.stop());

    test("hot reload: each bad build is refused with its reason and the running build keeps serving", async () => {
      for (const { what, bytes, reason } of b.bad) {
        writeFileSync(live, bytes);
        const [result] = await broker.chain.reload("gate");
        assert.equal(result!.ok, false, what);
        assert.match(result!.error!, reason, what);
        assert.equal(broker.chain.slot("gate")!.sha256, digest(b.signedV1), what);
      }
      assert.equal(await drops(), true, "v1 still serves");
      writeFileSync(pinned, b.signedV1);
      const [result] = await broker.chain.reload("pinned");
      assert.equal(result!.ok, false);
      assert.match(result!.error!, /does not match the pinned sha256/);
      assert.equal(broker.chain.slot("pinned")!.sha256, digest(b.signedV2));
      writeFileSync(live, b.signedV1);
      writeFileSync(pinned, b.signedV2);
    });

    test("admin upload: each bad build answers 422 with its reason; a trusted build is applied", async () => {
      for (const { what, bytes, reason } of b.bad) {
        const { status, body } = await upload("gate", bytes);
        assert.equal(status, 422, what);
        assert.match(String(body.error), reason, what);
      }
      const pinnedUpload = await upload("pinned", b.signedV1);
      assert.equal(pinnedUpload.status, 422);
      assert.match(String(pinnedUpload.body.error), /does not match the pinned sha256/);
      assert.equal(await drops(), true, "v1 still serves");

      const { status, body } = await upload("gate", b.signedV2);
      assert.equal(status, 200, JSON.stringify(body));
      assert.equal((body.signature as { trusted: boolean }).trusted, true);
      assert.equal(await drops(), false, "the trusted v2 now serves");
    });

    test("GET /plugins shows each plugin's signature status", async () => {
      const res = await fetch(`${broker.admin!.url}/plugins`, { headers: { authorization: `Bearer ${TOKEN}` } });
      const { plugins: list } = (await res.json()) as { plugins: { name: string; signature: { signature: string; trusted: boolean } }[] };
      const gate = list.find((p) => p.name === "gate")!;
      assert.equal(gate.signature.signature, "valid");
      assert.equal(gate.signature.trusted, true);
      // And `wasmq admin plugins` shows it in its table.
      // (asynchronously: the broker answering it runs in this process)
      const { stdout } = await promisify(execFile)(process.execPath, [CLI, "admin", "plugins", "--url", broker.admin!.url, "--token", TOKEN]);
      assert.match(stdout, /SIGNATURE/);
      assert.match(stdout, /gate .*trusted [0-9a-f]{16}/);
    });
  });

  test("without require: unsigned and stranger-signed builds load and show their status; a tampered one is still refused", async () => {
    const broker = await startTestBroker({
      persistence: "memory",
      trust: { keys: [b.trusted.pub] },
      plugins: [
        { name: "unsigned", wasm: file("u.wasm", b.v1) },
        { name: "stranger", wasm: file("s.wasm", signWith(b.v1, b.stranger)) },
      ],
    });
    try {
      assert.deepEqual(broker.chain.slot("unsigned")!.describe().signature, { signature: "unsigned", keyId: null, trusted: false });
      const stranger = broker.chain.slot("stranger")!.describe().signature as { signature: string; trusted: boolean };
      assert.equal(stranger.signature, "valid");
      assert.equal(stranger.trusted, false);
      writeFileSync(join(dir, "u.wasm"), tamper(signWith(b.v2, b.stranger)));
      const [result] = await broker.chain.reload("unsigned");
      assert.equal(result!.ok, false);
      assert.match(result!.error!, /invalid signature/);
    } finally {
      await broker.stop();
    }
  });

  test("a trust key file that is missing or not a public key, and a malformed or misplaced pin, are config errors naming the key", async () => {
    await assert.rejects(startTestBroker({ trust: { keys: [join(dir, "nope.pub")] } }), /key "trust\.keys\.0": cannot read .*nope\.pub/);
    await assert.rejects(startTestBroker({ trust: { keys: [b.trusted.key] } }), /key "trust\.keys\.0": .*release\.key is a private key/);
    await assert.rejects(startTestBroker({ trust: { require: true } }), /key "trust\.keys": "require" is on/);
    await assert.rejects(startTestBroker({ plugins: [{ name: "gate", wasm: file("p.wasm", b.v1), sha256: "abc" }] }), /key "plugins\.0\.sha256": 64 hex digits/);
    await assert.rejects(
      startTestBroker({ plugins: [{ name: "acl", native: join(ROOT, "dist/plugins-as/acl/native.js"), sha256: digest(b.v1) }] }),
      /key "plugins\.0\.sha256" \(acl\): a pin applies to "wasm" plugins only/,
    );
    await assert.rejects(
      startTestBroker({ trust: { keys: [b.trusted.pub], require: true }, plugins: [{ name: "acl", native: join(ROOT, "dist/plugins-as/acl/native.js") }] }),
      /key "plugins\.0\.native" \(acl\): native plugins cannot be signed, and trust\.require is on/,
    );
  });
});
