// POST /plugins/:name/upload and `wasmq admin upload`: a build sent over the
// admin API takes the hot-reload path (compile, meter, init, swap), is saved
// over the plugin's file, and a refused build leaves the running one serving.
import assert from "node:assert/strict";

import { createHash } from "node:crypto";
import { copyFileSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { buildSource } from "./fixtures.js";
import { adminCli, startTestBroker, tempDir, type TestBroker } from "./helpers.js";
import { blockedIsDropped, gate, uploadBuild } from "./trust-support.js";

const TOKEN = "upload-token-0123456789";

const digest = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

describe("plugin upload over the admin API", { timeout: 90_000 }, () => {
  const dir = tempDir();
  const live = join(dir, "gate.wasm");
  let v1: Buffer;
  let v2: Buffer;
  let initRefuses: Buffer;
  let broker: TestBroker;

  const upload = (bytes: Uint8Array, query = "", type = "application/wasm") => uploadBuild(broker.admin!.url, TOKEN, "gate", bytes, query, type);
  async function running(): Promise<Record<string, unknown>> {
    const res = await fetch(`${broker.admin!.url}/plugins/gate`, { headers: { authorization: `Bearer ${TOKEN}` } });
    return (await res.json()) as Record<string, unknown>;
  }
  /** Which build runs, seen by a client: is `blocked/x` dropped? */
  const drops = () => blockedIsDropped(broker.url);

  before(async () => {
    v1 = readFileSync(await buildSource(gate(true), join(dir, "v1.wasm")));
    v2 = readFileSync(await buildSource(gate(false), join(dir, "v2.wasm")));
    initRefuses = readFileSync(await buildSource(gate(false, false), join(dir, "v3.wasm")));
    copyFileSync(join(dir, "v1.wasm"), live);
    broker = await startTestBroker({
      persistence: "memory",
      metrics: { port: 0, token: TOKEN },
      plugins: [{ name: "gate", wasm: live }],
    });
  });
  after(() => broker.stop());

  test("the running build's sha256 is shown", async () => {
    assert.equal((await running()).sha256, digest(v1));
    assert.equal(await drops(), true);
  });

  test("a dry run checks the build and reports its digest and hooks without applying it", async () => {
    const { status, body } = await upload(v2, "?dryRun=true");
    assert.equal(status, 200);
    assert.equal(body.sha256, digest(v2));
    assert.equal(body.size, v2.length);
    assert.deepEqual(body.hooks, ["publish"]);
    assert.equal(body.applied, false);
    assert.equal((await running()).sha256, digest(v1));
    assert.equal(await drops(), true);
  });

  test("a refused build answers 422 with the reason; the running build keeps serving", async () => {
    for (const [bad, reason] of [
      [Buffer.from("not WebAssembly at all"), /refused/],
      [initRefuses, /init/i],
    ] as const) {
      const { status, body } = await upload(bad);
      assert.equal(status, 422, JSON.stringify(body));
      assert.match(String(body.error), reason);
      assert.equal(body.sha256, digest(bad));
    }
    assert.equal((await running()).sha256, digest(v1));
    assert.deepEqual(readFileSync(live), v1, "the plugin's file is untouched");
    assert.equal(await drops(), true);
  });

  test("the build must come as application/wasm", async () => {
    const { status, body } = await upload(v2, "", "text/plain");
    assert.equal(status, 415);
    assert.match(String(body.error), /application\/wasm/);
  });

  test("an accepted build is swapped in, saved over the plugin's file, and changes what the broker does", async () => {
    const { status, body } = await upload(v2);
    assert.equal(status, 200, JSON.stringify(body));
    assert.equal(body.applied, true);
    assert.equal(body.saved, true);
    assert.equal((await running()).sha256, digest(v2));
    assert.deepEqual(readFileSync(live), v2);
    assert.equal(await drops(), false);
  });

  test("wasmq admin upload: --dry-run, then applied; errors exit non-zero with the reason", async () => {
    const url = ["--url", broker.admin!.url, "--token", TOKEN];
    const dry = await adminCli(["upload", "gate", join(dir, "v1.wasm"), "--dry-run", ...url]);
    assert.equal(dry.code, 0, dry.err);
    assert.match(dry.out, new RegExp(`sha256 ${digest(v1)}`));
    assert.match(dry.out, /not applied/);
    assert.equal((await running()).sha256, digest(v2));

    const applied = await adminCli(["upload", "gate", join(dir, "v1.wasm"), ...url]);
    assert.equal(applied.code, 0, applied.err);
    assert.match(applied.out, /now runs the uploaded build/);
    assert.equal((await running()).sha256, digest(v1));
    assert.equal(await drops(), true);

    const refused = await adminCli(["upload", "gate", join(dir, "v3.wasm"), ...url]);
    assert.equal(refused.code, 1);
    assert.match(refused.err, /HTTP 422/);
    const missing = await adminCli(["upload", "gate", join(dir, "missing.wasm"), ...url]);
    assert.equal(missing.code, 2);
    assert.match(missing.err, /cannot read/);
  });
});
