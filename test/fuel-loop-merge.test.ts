/**
 * Back-edge charging (host/fuel-loop-merge.ts): a `while`-shaped loop pays its header
 * with the arm that goes round, one checked charge per iteration, and that changes
 * neither what a loop that runs to its end is charged nor the budget's bound.
 * Hand-written WebAssembly text, assembled with binaryen, run through the instrumenter.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import binaryen from "binaryen";
import { instrumentFuel, isFuelExhausted } from "../host/fuel.js";
import { assertExactBudget, BIG, instantiate, wat } from "./fuel-support.js";

const MODULE = `
(module
  (memory 1)
  ;; while (i < n) { x += mem[i]; i += 4 }: header 4 (if, lt_u, 2 gets), arm 10.
  (func $count (export "count") (param $n i32) (result i32) (local $i i32) (local $x i32)
    (loop $l
      (if (i32.lt_u (local.get $i) (local.get $n))
        (then
          (local.set $x (i32.add (local.get $x) (i32.load (local.get $i))))
          (local.set $i (i32.add (local.get $i) (i32.const 4)))
          (br $l))))
    (local.get $x))
  ;; The same loop, left early through a br out of the arm once i reaches $stop.
  (func (export "find") (param $n i32) (param $stop i32) (result i32) (local $i i32)
    (block $found
      (loop $l
        (if (i32.lt_u (local.get $i) (local.get $n))
          (then
            (br_if $found (i32.ge_u (local.get $i) (local.get $stop)))
            (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (br $l)))))
    (local.get $i))
  ;; A second way round (br_if $l in the header): not merged, charged per site as before.
  ;; The arm does 20 units of work, more than MAX_FOLDED_ARM: it keeps a charge of its own.
  (func (export "two_ways") (param $n i32) (result i32) (local $i i32) (local $x i32)
    (loop $l
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.eq (local.get $i) (i32.const 3)))
      (if (i32.lt_u (local.get $i) (local.get $n))
        (then
          ${"(local.set $x (i32.add (local.get $x) (i32.const 1)))\n".repeat(5)}
          (br $l))))
    (local.get $i))
  ;; Nested while loops: n × m inner iterations.
  (func (export "nested") (param $n i32) (param $m i32) (result i32) (local $i i32) (local $j i32) (local $x i32)
    (loop $outer
      (if (i32.lt_u (local.get $i) (local.get $n))
        (then
          (local.set $j (i32.const 0))
          (loop $inner
            (if (i32.lt_u (local.get $j) (local.get $m))
              (then
                (local.set $x (i32.add (local.get $x) (i32.const 1)))
                (local.set $j (i32.add (local.get $j) (i32.const 1)))
                (br $inner))))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br $outer))))
    (local.get $x))
  ;; The arm that goes round sits in a bigger arm (fuel-loop-merge.ts, "arms on the way
  ;; round"): while (i < n) { 20 units of work; if (i != stop) { i++; continue } else break }.
  ;; Header 4; the outer arm 24 (five 4-unit lines, the inner if, ne, two gets) plus the
  ;; inner arm's 5 (set, add, get, const, br), folded into it (at most MAX_FOLDED_ARM).
  (func (export "deep") (param $n i32) (param $stop i32) (result i32) (local $i i32) (local $x i32)
    (loop $l
      (if (i32.lt_u (local.get $i) (local.get $n))
        (then
          ${"(local.set $x (i32.add (local.get $x) (i32.const 1)))\n".repeat(5)}
          (if (i32.ne (local.get $i) (local.get $stop))
            (then
              (local.set $i (i32.add (local.get $i) (i32.const 1)))
              (br $l))))))
    (local.get $i))
  ;; Infinite while loops.
  (func (export "spin") (loop $l (if (i32.const 1) (then (br $l)))))
  (func (export "spin_deep") (param $p i32) (local $x i32)
    (loop $l
      (if (local.get $p)
        (then
          ${"(local.set $x (i32.add (local.get $x) (i32.const 1)))\n".repeat(5)}
          (if (local.get $p) (then (br $l)))))))
  (func (export "spin_nested") (param $p i32)
    (loop $l (if (local.get $p) (then (if (local.get $p) (then (nop) (br $l)))))))
)`;


/** The text of one function of the instrumented module, from its header to the next function. */
function functionText(binary: Uint8Array, exportName: string): string {
  const mod = binaryen.readBinary(binary);
  try {
    const internal = binaryen.getExportInfo(mod.getExport(exportName)).value;
    // The export is the fuel wrapper; the function it calls is the instrumented body.
    const wrapper = binaryen.emitText(binaryen.getFunctionInfo(mod.getFunction(internal)).body);
    const callee = /\(call \$(\S+)/.exec(wrapper)![1]!;
    return binaryen.emitText(binaryen.getFunctionInfo(mod.getFunction(callee)).body);
  } finally {
    mod.dispose();
  }
}

/** The text of the `nth` loop (0: the first, in text order) of a function's text (a binary keeps no label names). */
function loopText(fnText: string, nth = 0): string {
  let start = -1;
  for (let k = 0; k <= nth; k++) start = fnText.indexOf("(loop", start + 1);
  assert.ok(start >= 0, `loop ${nth} not found`);
  let depth = 0;
  for (let i = start; i < fnText.length; i++) {
    if (fnText[i] === "(") depth++;
    else if (fnText[i] === ")" && --depth === 0) return fnText.slice(start, i + 1);
  }
  throw new Error("unbalanced text");
}

const subtracts = (text: string) => (text.match(/\(i32\.sub/g) ?? []).length;

test("a while loop runs one fuel charge per iteration (was a checked header charge plus the arm's)", () => {
  const binary = instrumentFuel(wat(MODULE)).binary;
  // The test functions' own code has no i32.sub: each one in the loop is a fuel charge.
  assert.equal(subtracts(loopText(functionText(binary, "count"))), 1, "count: one charge in the loop");
  const nested = functionText(binary, "nested");
  assert.equal(subtracts(loopText(nested, 1)), 1, "nested: one charge in the inner loop");
  // The outer loop holds the inner one: its own arm's charge plus the inner loop's.
  assert.equal(subtracts(loopText(nested, 0)), 2, "nested: the outer loop's arm and the inner loop's");
  // A loop with a second way round keeps the header's own check.
  assert.equal(subtracts(loopText(functionText(binary, "two_ways"))), 2, "two_ways: header and arm");
});

test("a loop that runs to its end is charged exactly (n + 1) × header + n × body, as per site", async () => {
  const metered = await instantiate(instrumentFuel(wat(MODULE)).binary);
  const used = (n: number) => {
    metered.call("count", BIG, n * 4);
    return metered.used();
  };
  const zero = used(0);
  // Header 4 (if, lt_u, two local.get), arm 10 (two sets, two adds, a load, three gets, a const, br).
  for (const n of [1, 2, 100, 1000]) assert.equal(used(n) - zero, 14 * n, `${n} iterations`);
  // Nested: per outer iteration its header and arm, the inner loop's first header, and m inner iterations.
  metered.call("nested", BIG, 0, 0);
  const nestedZero = metered.used();
  assert.equal(metered.call("nested", BIG, 7, 5), 35);
  const perOuter = (metered.used() - nestedZero - 7 * 5 * 13) / 7;
  for (const [n, m] of [[1, 0], [3, 9], [20, 20]] as const) {
    assert.equal(metered.call("nested", BIG, n, m), n * m);
    assert.equal(metered.used() - nestedZero, n * perOuter + n * m * 13, `nested(${n}, ${m})`);
  }
});

test("leaving a while loop early is never under-charged: at most one header more than per site", async () => {
  const metered = await instantiate(instrumentFuel(wat(MODULE)).binary);
  metered.call("find", BIG, 1000, 1000);
  const full = metered.used(); // runs to the end: 1000 iterations, then the header that fails
  for (const stop of [0, 1, 10, 999]) {
    assert.equal(metered.call("find", BIG, 1000, stop), stop);
    const used = metered.used();
    // Per site (an arm is charged in full on entry): stop + 1 headers of 4 and as many arms of 9, the last one left by its br_if.
    const perSite = full - (1000 * 13 + 4) + (stop + 1) * 13;
    assert.ok(used >= perSite, `find stop ${stop}: ${used} < ${perSite}`);
    assert.ok(used <= perSite + 4, `find stop ${stop}: ${used} over-charges by more than one header`);
  }
});

test("the arms a loop's back-edge arm sits in are paid with it: one charge per iteration, exact when the body is left, at most header + arms more when the header fails", async () => {
  const binary = instrumentFuel(wat(MODULE)).binary;
  // Before: the header merged into the inner arm, and the outer arm's own bare subtract.
  assert.equal(subtracts(loopText(functionText(binary, "deep"))), 1, "deep: one charge in the loop");
  const metered = await instantiate(binary);
  // Per site, an iteration is header 4 + outer arm 29 = 33; the function body besides the loop is 1 (the final get).
  for (const n of [0, 1, 2, 100, 1000]) {
    // Left by the header (i reaches n): the last iteration's outer arm was paid at the
    // back-edge (or before the loop) and never ran: 29 more than per site (1 + 4 + 33 n).
    assert.equal(metered.call("deep", BIG, n, -1), n);
    assert.equal(metered.used(), 1 + 4 + 33 * n + 29, `deep(${n}) left by the header`);
  }
  for (const stop of [0, 1, 10, 999]) {
    // Left from the outer arm (i reaches stop): exactly per site, 1 + 33 (stop + 1).
    assert.equal(metered.call("deep", BIG, 1000, stop), stop);
    assert.equal(metered.used(), 1 + 33 * (stop + 1), `deep stop ${stop}`);
  }
  const spin = await instantiate(binary);
  assert.throws(() => spin.call("spin_deep", 1_000_000, 1), isFuelExhausted);
});

test("a budget of exactly what a while loop uses suffices; one less traps as fuel", async () => {
  const binary = instrumentFuel(wat(MODULE)).binary;
  for (const [name, args, result] of [
    ["count", [400], 0],
    ["find", [1000, 37], 37],
    ["nested", [6, 6], 36],
    ["two_ways", [10], 10],
    ["deep", [50, -1], 50],
    ["deep", [50, 7], 7],
  ] as const) {
    await assertExactBudget(binary, name, args, result);
  }
});

test("an infinite while loop still runs out of fuel", async () => {
  const binary = instrumentFuel(wat(MODULE)).binary;
  const a = await instantiate(binary);
  assert.throws(() => a.call("spin", 1_000_000), isFuelExhausted);
  const b = await instantiate(binary);
  assert.throws(() => b.call("spin_nested", 1_000_000, 1), isFuelExhausted);
});

test("instrumentation stays deterministic", () => {
  assert.deepEqual(Buffer.from(instrumentFuel(wat(MODULE)).binary), Buffer.from(instrumentFuel(wat(MODULE)).binary));
});
