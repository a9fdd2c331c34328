/**
 * Small arms (host/fuel-plan.ts, MAX_FOLDED_ARM): an `if` whose arms differ by at most
 * MAX_FOLDED_ARM is charged its dearer arm with the `if`, and neither arm carries a
 * charge — never less than executed, at most MAX_FOLDED_ARM more per `if` passed, still
 * deterministic, and the budget still bounds every loop. Hand-written WebAssembly text,
 * assembled with binaryen, run through the instrumenter.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import binaryen from "binaryen";
import { instrumentFuel, isFuelExhausted } from "../host/fuel.js";
import { MAX_FOLDED_ARM } from "../host/fuel-plan.js";
import { assertExactBudget, BIG, instantiate, wat } from "./fuel-support.js";

/** `count` copies of `(local.set $x (i32.add (local.get $x) (i32.const 1)))`: 4 units each. */
const adds = (count: number) => "(local.set $x (i32.add (local.get $x) (i32.const 1)))\n".repeat(count);

/** A counted loop with `if ($p) { arm }` in its body; header 10 units (if, get, the 4 of i += 1, br_if, lt_u, 2 gets). */
const loopWithArm = (name: string, arm: string) => `
  (func (export "${name}") (param $n i32) (param $p i32) (result i32) (local $i i32) (local $x i32)
    (loop $l
      (if (local.get $p) (then ${arm}))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (local.get $n))))
    (local.get $x))`;

const MODULE = `
(module
  ${loopWithArm("small", adds(1))}
  ${loopWithArm("edge", adds(4))}
  ${loopWithArm("big", adds(5))}
  ;; No loop: a small arm as the last thing the function does.
  (func (export "tail") (param $p i32) (result i32) (local $x i32)
    (if (local.get $p) (then ${adds(2)}))
    (local.get $x))
  ;; Small arms on both sides of every way round an infinite loop.
  (func (export "spin") (param $p i32) (local $x i32)
    (loop $l
      (if (local.get $p) (then ${adds(1)}) (else ${adds(2)}))
      (br $l)))
)`;

/** The text of the function behind export `name` (the export itself is the fuel wrapper). */
function functionText(binary: Uint8Array, name: string): string {
  const mod = binaryen.readBinary(binary);
  try {
    const wrapper = binaryen.emitText(binaryen.getFunctionInfo(mod.getFunction(binaryen.getExportInfo(mod.getExport(name)).value)).body);
    const callee = /\(call \$(\S+)/.exec(wrapper)![1]!;
    return binaryen.emitText(binaryen.getFunctionInfo(mod.getFunction(callee)).body);
  } finally {
    mod.dispose();
  }
}
const subtracts = (text: string) => (text.match(/\(i32\.sub/g) ?? []).length;

test("MAX_FOLDED_ARM is what the module below is built around", () => {
  // adds(4) = 16 units: folded; adds(5) = 20: charged on its own.
  assert.equal(MAX_FOLDED_ARM, 16);
});

test("a loop whose if has a small arm runs one charge per iteration; a larger arm keeps its own", () => {
  const binary = instrumentFuel(wat(MODULE)).binary;
  // The test functions' own code has no i32.sub: each one is a fuel charge (entry + loop header [+ arm]).
  assert.equal(subtracts(functionText(binary, "small")), 2, "small: entry and loop header only");
  assert.equal(subtracts(functionText(binary, "edge")), 2, "edge (an arm of exactly MAX_FOLDED_ARM): entry and loop header only");
  assert.equal(subtracts(functionText(binary, "big")), 3, "big: entry, loop header and the arm");
});

test("a folded if costs its dearer arm on either path: at most MAX_FOLDED_ARM more than executed, never less", async () => {
  const metered = await instantiate(instrumentFuel(wat(MODULE)).binary);
  const perIteration = (name: string, p: number) => {
    metered.call(name, BIG, 1, p);
    const one = metered.used();
    metered.call(name, BIG, 101, p);
    return (metered.used() - one) / 100;
  };
  // Header 10 units; the arm 4 (small), 16 (edge), 20 (big).
  assert.equal(perIteration("small", 1), 14, "small, arm taken: exactly what runs");
  assert.equal(perIteration("small", 0), 14, "small, arm not taken: charged the arm too (over by 4)");
  assert.equal(perIteration("edge", 1), 26);
  assert.equal(perIteration("edge", 0), 26, "edge: over by exactly MAX_FOLDED_ARM");
  assert.equal(perIteration("big", 1), 30, "big, arm taken: exact");
  assert.equal(perIteration("big", 0), 10, "big, arm not taken: exact (the arm is charged only when entered)");
  // Per call, a folded if adds at most MAX_FOLDED_ARM: tail's 8-unit arm.
  metered.call("tail", BIG, 1);
  const taken = metered.used();
  metered.call("tail", BIG, 0);
  assert.equal(metered.used(), taken, "tail: same fuel either way");
});

test("a budget of exactly what a call uses suffices; one less traps as fuel", async () => {
  const binary = instrumentFuel(wat(MODULE)).binary;
  for (const [name, args, result] of [
    ["small", [50, 1], 50],
    ["small", [50, 0], 0],
    ["big", [50, 1], 250],
    ["tail", [1], 2],
    ["tail", [0], 0],
  ] as const) {
    await assertExactBudget(binary, name, args, result);
  }
});

test("a budget that runs out mid-loop traps in that loop, on either path of a folded if", async () => {
  const binary = instrumentFuel(wat(MODULE)).binary;
  for (const p of [0, 1]) {
    const probe = await instantiate(binary);
    probe.call("small", BIG, 25, p);
    const quarter = probe.used();
    // Enough for 25 of the 100 iterations: the 26th iteration's checked charge goes below zero.
    const metered = await instantiate(binary);
    assert.throws(() => metered.call("small", quarter, 100, p), isFuelExhausted, `small(100, ${p}) with ${quarter}`);
    assert.equal(metered.fuel.value, -1, "pinned to -1 on exhaustion");
  }
});

test("an infinite loop made of small arms still runs out of fuel, and fuel stays deterministic", async () => {
  const binary = instrumentFuel(wat(MODULE)).binary;
  assert.deepEqual(Buffer.from(instrumentFuel(wat(MODULE)).binary), Buffer.from(binary));
  for (const p of [0, 1]) {
    const metered = await instantiate(binary);
    assert.throws(() => metered.call("spin", 1_000_000, p), isFuelExhausted);
  }
  const a = await instantiate(binary);
  const b = await instantiate(binary);
  a.call("small", BIG, 333, 1);
  b.call("small", BIG, 333, 1);
  assert.equal(a.used(), b.used());
});
