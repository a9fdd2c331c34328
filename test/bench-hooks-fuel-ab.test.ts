// `npm run bench:hooks`' fuel column: the A/B of short paired windows over several
// child processes (bench/hook-fuel-ab.ts). Runs it for real on a compiled plugin and
// checks what it reports; no speed is asserted.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { ROOT, runNode, tempDir } from "./helpers.js";
import { roundOrder, summarize } from "../bench/hook-fuel-ab.js";

const HOOKS = join(ROOT, "dist/bench/hooks.js");

test("bench:hooks prints the fuel column with its spread, from the requested processes, copies and rounds", { timeout: 180_000 }, async () => {
  const dir = tempDir("wasmq-hooks-fuel-ab-");
  try {
    const out = join(dir, "hooks.json");
    const { code, stdout, stderr } = await runNode([
      HOOKS, "--plugins", "filter", "--sizes", "64", "--calls", "0", "--rounds", "1", "--time", "5", "--iterations", "2",
      "--fuel-processes", "3", "--fuel-instances", "2", "--fuel-rounds", "7", "--fuel-window", "0.2", "--out", out,
    ]);
    assert.equal(code, 0, `bench:hooks exited ${code}\n${stdout}\n${stderr}`);
    assert.match(stdout, /3 process\(es\) × 7 rounds, each round one 0\.2 ms window of each of 2 metered and 2 unmetered copies/);
    // "12.3% (10.1–14.0) [9.0–15.2%]": median, interquartile range, range of the per-process medians.
    const row = stdout.split("\n").find((l) => /^filter\s+publish\s+64B/.test(l));
    assert.ok(row, `the filter publish row is printed:\n${stdout}`);
    assert.match(row, /-?\d+\.\d% \(-?\d+\.\d–-?\d+\.\d\) \[-?\d+\.\d–-?\d+\.\d%\]/, row);
    const json = JSON.parse(readFileSync(out, "utf8")) as {
      settings: { fuelAb: { processes: number; instances: number; rounds: number; windowMs: number } };
      results: { hook: string; fuelNs: number; fuel: { share: number; q1: number; q3: number; perProcess: number[]; rounds: number; meteredNs: number; unmeteredNs: number; layouts: number } }[];
    };
    assert.deepEqual(json.settings.fuelAb, { processes: 3, instances: 2, rounds: 7, windowMs: 0.2 });
    const r = json.results.find((x) => x.hook === "publish");
    assert.ok(r, "filter publish measured");
    assert.equal(r.fuel.perProcess.length, 3, "one median per child process");
    assert.equal(r.fuel.rounds, 21, "every round of every process pooled");
    // Each copy from bytes of its own (bench/layout-copies.ts): 3 processes × 2 pairs.
    assert.equal(r.fuel.layouts, 12, "every copy compiled apart");
    assert.ok(r.fuel.q1 <= r.fuel.share && r.fuel.share <= r.fuel.q3, JSON.stringify(r.fuel));
    assert.ok(r.fuel.meteredNs > 0 && r.fuel.unmeteredNs > 0, "both sides timed");
    assert.equal(r.fuelNs, (r.fuel as { ns?: number }).ns, "fuel ns is the A/B's");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("bench:hooks refuses a bad fuel A/B option, naming it", { timeout: 60_000 }, async () => {
  const a = await runNode([HOOKS, "--quick", "--plugins", "filter", "--fuel-rounds", "0"]);
  assert.notEqual(a.code, 0);
  assert.match(a.stderr, /--fuel-rounds must be a positive integer, got "0"/);
  const b = await runNode([HOOKS, "--quick", "--plugins", "filter", "--fuel-window", "soon"]);
  assert.notEqual(b.code, 0);
  assert.match(b.stderr, /--fuel-window must be a number of ms/);
});

test("the A/B's order: over 2n rounds every copy runs in every position, and both before and after its neighbours", () => {
  for (const n of [2, 4, 6]) {
    const positions = Array.from({ length: n }, () => new Set<number>());
    const before = new Set<string>();
    for (let r = 0; r < 2 * n; r++) {
      const order = roundOrder(n, r);
      assert.deepEqual([...order].sort((x, y) => x - y), Array.from({ length: n }, (_, i) => i), `round ${r} runs every copy once`);
      order.forEach((c, i) => {
        positions[c]!.add(i);
        if (i > 0) before.add(`${order[i - 1]}>${c}`);
      });
    }
    for (const p of positions) assert.equal(p.size, n, `n=${n}: every position`);
    for (let a = 0; a < n; a++) for (let b = 0; b < n; b++) if (a !== b && (n === 2 || Math.abs(a - b) === 1 || Math.abs(a - b) === n - 1)) assert.ok(before.has(`${a}>${b}`), `n=${n}: ${a} right before ${b} in some round`);
  }
});

test("the figure pools every process's rounds: median, quartiles, per-process medians", () => {
  const proc = (shares: number[]) => ({ shares, diffs: shares.map((s) => s * 100), metered: shares.map(() => 100), unmetered: shares.map((s) => 100 - s * 100), calls: 1, layouts: 2 });
  const r = summarize([proc([0.1, 0.2, 0.3]), proc([0.5, 0.6, 0.7])]);
  assert.equal(r.rounds, 6);
  assert.deepEqual(r.perProcess, [0.2, 0.6]);
  assert.equal(r.share, 0.3);
  assert.equal(r.q1, 0.2);
  assert.equal(r.q3, 0.6);
  assert.equal(r.ns, 30);
  assert.equal(r.layouts, 4);
});
