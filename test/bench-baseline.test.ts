// `npm run bench -- --baseline DIR`: an older build's targets run from DIR's own
// target.js, interleaved with the current ones and paired in the ratio table.
// No speed is asserted.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { ROOT, runNode, tempDir } from "./helpers.js";

const RUN = join(ROOT, "dist/bench/run.js");

/** A built "older checkout" in dir/base whose target.js appends its pid to dir/started, then runs this build's target. */
function standInBaseline(dir: string): string {
  const base = join(dir, "base");
  mkdirSync(join(base, "dist", "bench"), { recursive: true });
  writeFileSync(
    join(base, "dist", "bench", "target.js"),
    `import { appendFileSync } from "node:fs";\n` +
      `appendFileSync(${JSON.stringify(join(dir, "started"))}, process.pid + "\\n");\n` +
      `await import(${JSON.stringify(pathToFileURL(join(ROOT, "dist", "bench", "target.js")).href)});\n`,
  );
  return base;
}

test("--baseline DIR runs wasm-base and native-base from DIR's target.js and reports wasm/wasm-base", { timeout: 240_000 }, async () => {
  const dir = tempDir("wasmq-bench-baseline-");
  try {
    // A stand-in "older checkout": its target.js leaves a mark per process, then runs this build's target.
    const base = standInBaseline(dir);
    const out = join(dir, "bench.json");
    const { code, stdout, stderr } = await runNode([
      RUN, "--quick", "--count", "200", "--warmup", "0.1", "--prime", "0", "--baseline", base,
      "--targets", "wasm,wasm-base,native,native-base", "--scenarios", "p2p-qos0-64B", "--out", out,
    ]);
    assert.equal(code, 0, `bench exited ${code}\n${stdout}\n${stderr}`);
    const marks = readFileSync(join(dir, "started"), "utf8").trim().split("\n");
    assert.equal(marks.length, 2, "one process per base target, started from the baseline's target.js");
    assert.match(stdout, new RegExp(`baseline \\(wasm-base, native-base\\): ${base.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}`));
    const json = JSON.parse(readFileSync(out, "utf8")) as {
      results: { scenario: string; target: string; deliveries: number }[];
      ratios: { throughput: { label: string; median: number }[] };
    };
    for (const target of ["wasm", "wasm-base", "native", "native-base"]) {
      const row = json.results.find((r) => r.scenario === "p2p-qos0-64B" && r.target === target);
      assert.ok(row && row.deliveries >= 200, `${target} delivered all 200 measured messages`);
    }
    for (const label of ["wasm/wasm-base", "native/native-base"]) {
      const ratio = json.ratios.throughput.find((r) => r.label === label);
      assert.ok(ratio && ratio.median > 0, `${label} is in the ratio table`);
      assert.ok(stdout.includes(label), `${label} is printed`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("--baseline refuses a directory without a built target.js, and base targets need --baseline", async () => {
  const missing = join(tempDir("wasmq-bench-nobase-"), "nothing-here");
  try {
    const r = await runNode([RUN, "--baseline", missing, "--scenarios", "p2p-qos0-64B"]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--baseline .*nothing-here: no such directory/);
    mkdirSync(missing);
    const unbuilt = await runNode([RUN, "--baseline", missing, "--scenarios", "p2p-qos0-64B"]);
    assert.equal(unbuilt.code, 2);
    assert.match(unbuilt.stderr, /dist\/bench\/target\.js not found; build that checkout first/);
    const noDir = await runNode([RUN, "--targets", "wasm,wasm-base", "--scenarios", "p2p-qos0-64B"]);
    assert.equal(noDir.code, 2);
    assert.match(noDir.stderr, /wasm-base needs --baseline DIR/);
    assert.ok(!existsSync(join(missing, "dist")), "nothing written into the baseline directory");
  } finally {
    rmSync(join(missing, ".."), { recursive: true, force: true });
  }
});

test("--baseline: an idle-connection scenario the baseline's bench does not list is reported as predating it, without starting its target", { timeout: 120_000 }, async () => {
  const dir = tempDir("wasmq-bench-baseline-idle-");
  try {
    // A stand-in older checkout whose bench knows one scenario (no idle ones) and whose target.js would leave a mark.
    const base = standInBaseline(dir);
    writeFileSync(join(base, "dist", "bench", "scenarios.js"), `export const SCENARIOS = [{ id: "p2p-qos0-64B" }];\n`);
    const out = join(dir, "bench.json");
    const { code, stdout, stderr } = await runNode([
      RUN, "--baseline", base, "--targets", "wasm-base", "--scenarios", "idle19k-conns-noauth", "--conns", "10", "--reps", "1", "--out", out,
    ]);
    assert.equal(code, 0, `bench exited ${code}\n${stdout}\n${stderr}`);
    assert.ok(!existsSync(join(dir, "started")), "the baseline's target was never started");
    assert.match(stdout, /idle19k-conns-noauth\s+wasm-base\s+n\/a \(baseline predates scenario\)/);
    assert.doesNotMatch(stdout, /FAILED/);
    const json = JSON.parse(readFileSync(out, "utf8")) as { idle: { scenario: string; target: string; notRun?: string }[] };
    assert.equal(json.idle.find((r) => r.target === "wasm-base")?.notRun, "n/a (baseline predates scenario)");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
