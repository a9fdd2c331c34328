// The wasmq.manifest section: every example build carries one (name, version,
// description, ABI, hooks, config schema); the broker refuses a plugin config
// the schema rejects — at start, reload and upload — naming the key; the
// manifest is covered by the signature; a broken manifest.json fails the build.
import assert from "node:assert/strict";
import { copyFileSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { embedManifest, exportedHooks, MANIFEST_SECTION, readManifest } from "../host/manifest.js";
import { readSignature } from "../host/signing.js";
import { embedManifestFile } from "../host/tools/embed-manifest.js";
import { listPlugins } from "../host/tools/build-plugins.js";
import { listSections } from "../host/wasm-binary.js";
import { startTestBroker, tempDir, wasm, type TestBroker } from "./helpers.js";
import { signWith, writeKeys } from "./trust-support.js";

const TOKEN = "manifest-token-0123456789";

describe("plugin manifests", { timeout: 120_000 }, () => {
  const dir = tempDir();
  after(() => rmSync(dir, { recursive: true, force: true }));

  test("every example build embeds its manifest: name, version, description, ABI, hooks and a config schema", () => {
    const names = listPlugins();
    assert.ok(names.length >= 8);
    for (const name of names) {
      const bytes = readFileSync(wasm(name));
      const m = readManifest(bytes);
      assert.ok(m, `${name} has no manifest`);
      assert.equal(m.name, name);
      assert.match(m.version, /^\d+\.\d+\.\d+$/);
      assert.ok(m.description && m.description.length > 10, name);
      assert.equal(m.abi, 1);
      assert.deepEqual(m.hooks, exportedHooks(bytes), name);
      assert.equal((m.configSchema as { type: string }).type, "object", name);
    }
  });

  test("start-up refuses a config the schema rejects, naming the plugin and the key", async () => {
    const cases: [string, Record<string, unknown>, RegExp][] = [
      ["acl", { default: "maybe" }, /plugin "acl": refused: config key "default" must be equal to one of the allowed values \("allow", "deny"\)/],
      ["acl", { rules: [{ topic: "a/#", acess: "read" }] }, /plugin "acl": refused: config key "rules\.0\.acess" is not a known key/],
      ["filter", { rules: [{ topic: "a" }] }, /plugin "filter": refused: config key "rules\.0\.field" must have required property 'field'/],
      ["ratelimit", { messagesPerSecond: "ten" }, /plugin "ratelimit": refused: config key "messagesPerSecond" must be number/],
    ];
    for (const [name, config, reason] of cases) {
      await assert.rejects(startTestBroker({ persistence: "memory", plugins: [{ name, wasm: wasm(name), config }] }), reason);
    }
  });

  describe("reload and upload", () => {
    let broker: TestBroker;
    const live = join(dir, "acl.wasm");
    let strict: Buffer;
    before(async () => {
      copyFileSync(wasm("acl"), live);
      // The same code with a schema this config does not satisfy.
      const source = readManifest(readFileSync(wasm("acl")))!;
      const schema = { ...source.configSchema!, required: ["owner"], properties: { ...(source.configSchema!.properties as object), owner: { type: "string" } } };
      strict = Buffer.from(embedManifest(readFileSync(wasm("acl")), { name: "acl", version: "2.0.0", configSchema: schema }));
      broker = await startTestBroker({
        persistence: "memory",
        metrics: { port: 0, token: TOKEN },
        plugins: [{ name: "acl", wasm: live, watch: false, config: { default: "allow" } }],
      });
    });
    after(() => broker.stop());

    test("a reload whose schema rejects the running config is refused; the running build keeps serving", async () => {
      const before = broker.chain.slot("acl")!.sha256;
      writeFileSync(live, strict);
      const [result] = await broker.chain.reload("acl");
      assert.equal(result!.ok, false);
      assert.match(result!.error!, /refused: config key "owner" must have required property 'owner'/);
      assert.equal(broker.chain.slot("acl")!.sha256, before);
      assert.deepEqual(broker.chain.slot("acl")!.describe().manifest, { name: "acl", version: "1.0.0" });
    });

    test("an upload whose schema rejects the running config answers 422 naming the key", async () => {
      const res = await fetch(`${broker.admin!.url}/plugins/acl/upload`, {
        method: "POST",
        headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/wasm", "x-wasmq-request": "1" },
        body: strict as unknown as BodyInit,
      });
      assert.equal(res.status, 422);
      assert.match(((await res.json()) as { error: string }).error, /config key "owner" must have required property 'owner'/);
    });
  });

  test("the signature covers the manifest: editing it after signing invalidates the signature", () => {
    const signed = signWith(readFileSync(wasm("acl")), writeKeys(dir, "k"));
    const section = listSections(signed).find((s) => s.name === MANIFEST_SECTION)!;
    const edited = Buffer.from(signed);
    const at = edited.indexOf(Buffer.from('"1.0.0"'), section.contentStart);
    assert.ok(at > 0 && at < section.end);
    edited.write('"9.0.0"', at);
    assert.equal(readSignature(signed).state, "valid");
    assert.equal(readSignature(edited).state, "invalid");
  });

  test("a broken manifest.json fails the build naming the file, and leaves no output", () => {
    const out = join(dir, "out.wasm");
    const manifest = join(dir, "manifest.json");
    for (const [text, reason] of [
      ["{ not json", /manifest\.json is not valid JSON/],
      [JSON.stringify({ name: "x" }), /"version" must be a non-empty string/],
      [JSON.stringify({ name: "x", version: "1", configSchema: { type: "objekt" } }), /"configSchema" is not a valid JSON Schema/],
    ] as const) {
      copyFileSync(wasm("acl"), out);
      writeFileSync(manifest, text);
      assert.match(embedManifestFile(out, manifest) ?? "", reason);
      assert.throws(() => readFileSync(out), /ENOENT/);
    }
  });
});
