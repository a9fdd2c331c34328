// `npm run bench:hooks -- --baseline DIR`: an older build's host and .wasm measured
// metered and unmetered in the same rounds as the current build. No speed is asserted.
import { test } from "node:test";
import assert from "node:assert/strict";
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { ROOT, runNode, tempDir } from "./helpers.js";

const HOOKS = join(ROOT, "dist/bench/hooks.js");

test("bench:hooks --baseline DIR measures DIR's host and .wasm next to the current build", { timeout: 180_000 }, async () => {
  const dir = tempDir("wasmq-hooks-baseline-");
  try {
    // A stand-in "older checkout": its host module leaves a mark when loaded, then is this build's host.
    const base = join(dir, "base");
    mkdirSync(join(base, "dist", "bench"), { recursive: true });
    mkdirSync(join(base, "dist", "host"), { recursive: true });
    mkdirSync(join(base, "dist", "plugins"), { recursive: true });
    writeFileSync(join(base, "dist", "bench", "target.js"), "// a built checkout has one\n");
    writeFileSync(
      join(base, "dist", "host", "index.js"),
      `import { appendFileSync } from "node:fs";\n` +
        `appendFileSync(${JSON.stringify(join(dir, "loaded"))}, "host\\n");\n` +
        `export * from ${JSON.stringify(pathToFileURL(join(ROOT, "dist", "host", "index.js")).href)};\n`,
    );
    copyFileSync(join(ROOT, "dist", "plugins", "acl.wasm"), join(base, "dist", "plugins", "acl.wasm"));
    const out = join(dir, "hooks.json");
    const { code, stdout, stderr } = await runNode([
      HOOKS, "--quick", "--plugins", "acl", "--sizes", "64", "--calls", "0", "--rounds", "1", "--time", "20", "--iterations", "4",
      "--baseline", base, "--out", out,
    ]);
    assert.equal(code, 0, `bench:hooks exited ${code}\n${stdout}\n${stderr}`);
    // Once by the bench, and once by each fuel A/B child process (--quick: one per case; acl has 2 cases here).
    assert.equal(readFileSync(join(dir, "loaded"), "utf8"), "host\n".repeat(1 + 2), "the baseline's host module was loaded once per process");
    assert.match(stdout, /base fuel %/);
    const json = JSON.parse(readFileSync(out, "utf8")) as {
      results: { hook: string; ns: Record<string, number>; fuelUsed: number; baseFuelUsed?: number; baseFuelNs?: number }[];
    };
    // acl declares deliver idle when no rule denies (its bench config): subscribe and publish are measured, deliver is not called.
    assert.deepEqual([...new Set(json.results.map((r) => r.hook))].sort(), ["publish", "subscribe"], "acl's subscribe and publish");
    assert.match(stderr, /acl: deliver idle for this config/);
    for (const r of json.results) {
      for (const v of ["wasm-base", "wasm-base-nofuel"]) assert.ok(r.ns[v]! > 0, `${r.hook}: ${v} measured`);
      assert.equal(typeof r.baseFuelNs, "number", `${r.hook}: the baseline's fuel ns`);
      // Same host code, same .wasm: the same fuel, call for call (metering is deterministic).
      assert.equal(r.baseFuelUsed, r.fuelUsed, `${r.hook}: baseline fuel used`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("bench:hooks --baseline refuses a missing or unbuilt directory, naming what is missing", { timeout: 60_000 }, async () => {
  const dir = tempDir("wasmq-hooks-baseline-bad-");
  try {
    const missing = join(dir, "nope");
    const a = await runNode([HOOKS, "--quick", "--plugins", "acl", "--baseline", missing]);
    assert.notEqual(a.code, 0);
    assert.match(a.stderr, new RegExp(`--baseline ${missing.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}: no such directory`));
    const unbuilt = join(dir, "unbuilt");
    mkdirSync(join(unbuilt, "dist", "bench"), { recursive: true });
    writeFileSync(join(unbuilt, "dist", "bench", "target.js"), "\n");
    const b = await runNode([HOOKS, "--quick", "--plugins", "acl", "--baseline", unbuilt]);
    assert.notEqual(b.code, 0);
    assert.match(b.stderr, /dist\/host\/index\.js not found; build that checkout first/);
    assert.ok(!existsSync(join(unbuilt, "dist", "host")), "nothing was created in it");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
