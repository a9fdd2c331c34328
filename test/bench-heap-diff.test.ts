/**
 * bench/heap-diff.ts (bench/README.md "mem3"): from two heap snapshots of one
 * process, the objects made in between, per unit, by constructor and by
 * retainer chain.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import { writeHeapSnapshot } from "node:v8";
import { runNode, scratchDir } from "./helpers.js";

const HEAP_DIFF = new URL("../bench/heap-diff.js", import.meta.url).pathname;

class FootprintProbe {
  readonly a = 1;
  readonly b = 2;
  readonly c = 3;
}

test("heap-diff counts the objects made between the snapshots per unit and names their retainer", async () => {
  const dir = scratchDir("wasmq-heap-diff-");
  const before = writeHeapSnapshot(join(dir, "before.heapsnapshot"));
  const holder = { probes: Array.from({ length: 500 }, () => new FootprintProbe()) };
  const after = writeHeapSnapshot(join(dir, "after.heapsnapshot"));
  assert.equal(holder.probes.length, 500); // alive at the second snapshot

  const out = await runNode([HEAP_DIFF, before, after, "--per", "500", "--paths", "object:FootprintProbe", "--top", "400"]);
  assert.equal(out.code, 0, out.stderr);
  const row = out.stdout.split("\n").find((l) => / object:FootprintProbe$/.test(l));
  assert.ok(row, out.stdout);
  const [bytes, count] = row.trim().split(/\s+/).map(Number);
  assert.equal(count, 1, "one probe per unit");
  assert.ok(bytes! >= 24, `a probe's self size per unit: ${bytes}`);
  const retained = out.stdout.split("\n").find((l) => l.includes("object:FootprintProbe <-"));
  assert.ok(retained, out.stdout);
  assert.equal(Number(retained.trim().split(/\s+/)[1]), 1, "one chain for all of them");
  assert.match(retained, /object:FootprintProbe <-\[(element|internal)\]- .*object:Array <-probes- object:Object/, "retained through the holder's array");

  const usage = await runNode([HEAP_DIFF, before]);
  assert.equal(usage.code, 2);
  assert.match(usage.stderr, /usage: node dist\/bench\/heap-diff\.js/);
});
