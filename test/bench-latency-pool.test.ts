// The latency scenarios' pooled figures and their floor: the histogram a run
// sends back pools several windows into the percentile of all their
// latencies (within its 1% buckets), and the echo target — a trivial relay —
// runs the latency scenarios end to end, its windows pooled in the report.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { histogramOf, pooledPercentile } from "../bench/latency-histogram.js";
import { percentile } from "../bench/stats.js";
import { ROOT, runNode, tempDir } from "./helpers.js";

const RUN = join(ROOT, "dist/bench/run.js");
const MOSQUITTO = process.env.MOSQUITTO_BIN ?? "/usr/sbin/mosquitto";

/** A deterministic pseudo-random sequence (the test must not depend on luck). */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
}

test("pooled percentiles of several windows' histograms are the percentiles of all their latencies, within 1%", () => {
  const rnd = lcg(17);
  const windows: Float64Array[] = [];
  for (let w = 0; w < 5; w++) {
    // 0.05–0.5 ms, and in the third window a stall: 3% of its messages at 5–9 ms
    const v = Float64Array.from({ length: 10_000 }, () => (w === 2 && rnd() < 0.03 ? 5 + 4 * rnd() : 0.05 + 0.45 * rnd() ** 3));
    windows.push(v.slice().sort());
  }
  const all = Float64Array.from(windows.flatMap((w) => [...w])).sort();
  const hs = windows.map((w) => histogramOf(w));
  for (const p of [0.5, 0.99, 0.999]) {
    const exact = percentile(all, p);
    const pooled = pooledPercentile(hs, p);
    assert.ok(pooled >= exact && pooled <= exact * 1.0101, `p${p * 100}: pooled ${pooled} against exact ${exact}`);
  }
  // one window's stall sets that window's p99 but not the pooled one (0.6% of all messages)
  assert.ok(percentile(windows[2]!, 0.99) > 5, "the stalled window's own p99 is the stall");
  assert.ok(pooledPercentile(hs, 0.99) < 1, `the pooled p99 is not (${pooledPercentile(hs, 0.99)})`);
  assert.ok(Number.isNaN(pooledPercentile([[], []], 0.99)), "no latencies, no percentile");
  const max = all[all.length - 1]!;
  assert.equal(pooledPercentile(hs, 1, max), max, "the top bucket's edge is capped by the largest latency");
  assert.equal(histogramOf(Float64Array.of(0.0001, 0.001, 0.001))[0]![1], 3, "sub-microsecond latencies share the first bucket");
});

test("npm run bench: the echo target runs the latency scenarios, and every target's windows are pooled", { timeout: 180_000 }, async () => {
  const dir = tempDir("wasmq-bench-pool-");
  try {
    const out = join(dir, "bench.json");
    const targets = ["echo", "wasm", ...(existsSync(MOSQUITTO) ? ["mosquitto"] : [])];
    const scenarios = ["latency10k-qos0-64B", "latency10k-qos1-64B"];
    const { code, stdout, stderr } = await runNode([RUN, "--reps", "2", "--duration", "0.3", "--warmup", "0.1", "--prime", "0", "--targets", targets.join(","), "--scenarios", scenarios.join(","), "--out", out]);
    assert.equal(code, 0, `bench exited ${code}\n${stdout}\n${stderr}`);
    assert.match(stdout, /GCs \(scav\.\/full\)\s+GC max\s+gen loop p99\/max\s+gen GCs \(scav\.\/full\)\s+gen GC max/, "the tail table lists the broker's and the generator's collections");
    const json = JSON.parse(readFileSync(out, "utf8")) as { results: Record<string, unknown>[] };
    for (const scenario of scenarios) {
      const row = json.results.find((r) => r.scenario === scenario && r.target === "echo");
      assert.ok(row, `a result for ${scenario} echo`);
      assert.ok((row.deliveries as number) > 0, `${scenario} echo delivered`);
      assert.equal(row.lostQos1, 0, `${scenario} echo: no acknowledged QoS 1 message lost`);
      assert.equal(row.errors, undefined, `${scenario} echo: no failed repetition`);
      for (const target of targets) {
        assert.match(stdout, new RegExp(`${scenario}\\s+${target}\\s+all\\s+\\d`), `${scenario} ${target}: a pooled row in the tail table`);
      }
      // each window's row ends: broker loop, broker GCs "all (scavenges/full)", GC max, generator loop, generator GCs, GC max;
      // Mosquitto has no broker figures, the generator's always
      const gcs = String.raw`\d+ \(\d+/\d+\)`;
      const ms = String.raw`[\d.]+`;
      for (const target of targets) {
        const broker = target === "mosquitto" ? String.raw`-\s+-\s+-` : String.raw`${ms} / ${ms}\s+${gcs}\s+${ms}`;
        const row = new RegExp(String.raw`^${scenario}\s+${target}\s+1\s.*\s${broker}\s+${ms} / ${ms}\s+${gcs}\s+${ms}\s*$`, "m");
        assert.match(stdout, row, `${scenario} ${target}: the broker's and the generator's collections in the tail table`);
      }
    }
    if (targets.includes("mosquitto")) {
      for (const scenario of scenarios) {
        const line = stdout.split("\n").find((l) => l.includes(`p99 of all windows pooled ≤ 1.5× Mosquitto's (${scenario})`));
        assert.ok(line, `the pooled wasm/Mosquitto p99 is reported for ${scenario}`);
        assert.match(line, /\d\.\d\d×: wasm p99 [\d.]+ ms, p99\.9 [\d.]+ ms; mosquitto p99 [\d.]+ ms/);
        assert.match(line, /the floor \(echo relay\) p99 [\d.]+ ms/);
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
