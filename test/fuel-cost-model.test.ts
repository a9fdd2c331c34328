/**
 * The fuel cost model (host/fuel.ts, host/fuel-plan.ts): an `if` is charged for the arm
 * taken, loop-free helpers are charged at their call sites, and none of that lets a
 * plugin run past its budget. Hand-written WebAssembly text, assembled with binaryen,
 * and the real filter plugin through the host.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { instrumentFuel, isFuelExhausted } from "../host/fuel.js";
import { assertTrapsOneUnitShort, BIG, instantiate, loadFilter, reading, wat } from "./fuel-support.js";

/** `count` copies of `(local.set $x (i32.add (local.get $x) (i32.const 1)))`: 4 instructions each. */
function adds(count: number): string {
  return Array.from({ length: count }, () => "(local.set $x (i32.add (local.get $x) (i32.const 1)))").join("\n");
}

/** A chain of `count` i32.adds on the parameter: 2 instructions per link. */
function chain(count: number): string {
  let e = "(local.get $v)";
  for (let i = 0; i < count; i++) e = `(i32.add ${e} (i32.const 1))`;
  return e;
}

const MODULE = `
(module
  (type $un (func (param i32) (result i32)))
  (table 1 funcref)
  (elem (i32.const 0) $in_table)
  ;; A loop whose body branches: 50 additions (200 instructions) on one arm, one on the other.
  (func (export "branchy") (param $n i32) (param $dear i32) (result i32) (local $i i32) (local $x i32)
    (loop $l
      (if (local.get $dear)
        (then ${adds(50)})
        (else (local.set $x (i32.add (local.get $x) (i32.const 2)))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (local.get $n))))
    (local.get $x))
  ;; No loop: the dear arm's charge is the last thing before the return.
  (func (export "tail") (param $dear i32) (result i32) (local $x i32)
    (if (local.get $dear) (then ${adds(50)}))
    (local.get $x))
  ;; An infinite loop whose back-edges sit in the arms of an if.
  (func (export "spin_in_arms") (param $p i32)
    (loop $l
      (if (local.get $p) (then (br $l)) (else (br $l)))))
  ;; A loop-free helper (80 instructions of work on one arm) called from a loop.
  (func $leaf (param $v i32) (result i32)
    (if (result i32) (i32.and (local.get $v) (i32.const 1))
      (then ${chain(40)})
      (else (local.get $v))))
  (func (export "calls_leaf") (param $n i32) (result i32) (local $i i32) (local $acc i32)
    (loop $l
      (local.set $acc (i32.add (local.get $acc) (call $leaf (local.get $i))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (local.get $n))))
    (local.get $acc))
  ;; Loop-free but with a longest path over MAX_STATIC_COST: keeps its own entry charge.
  (func $big (param $v i32) (result i32) ${chain(60)})
  (func (export "calls_big") (param $v i32) (result i32) (call $big (local.get $v)))
  ;; The same helper shape, but reachable through the table: it keeps its own entry charge.
  (func $in_table (param $v i32) (result i32) ${chain(40)})
  (func (export "calls_table") (param $n i32) (result i32) (local $i i32) (local $acc i32)
    (loop $l
      (local.set $acc (i32.add (local.get $acc) (call_indirect (type $un) (local.get $i) (i32.const 0))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (local.get $n))))
    (local.get $acc))
)`;


test("an if is charged for the arm taken, not for both arms (a loop's cheap path stays cheap)", async () => {
  const metered = await instantiate(instrumentFuel(wat(MODULE)).binary);
  assert.equal(metered.call("branchy", BIG, 1000, 0), 2000);
  const cheap = metered.used();
  assert.equal(metered.call("branchy", BIG, 1000, 1), 50_000);
  const dear = metered.used();
  // Until 2026-12 every iteration paid for both arms (> 200 per iteration either way).
  assert.ok(cheap < 30 * 1000, `the cheap path used ${cheap} fuel for 1000 iterations`);
  // Never under-charged: the dear arm alone executes 200 instructions per iteration.
  assert.ok(dear >= 200 * 1000, `the dear path used ${dear} fuel for 1000 iterations`);
  assert.ok(dear - cheap >= 190 * 1000, `dear ${dear} vs cheap ${cheap}`);
});

test("fuel is deterministic: same call, same fuel, across calls, instances and instrumentations", async () => {
  const binary = instrumentFuel(wat(MODULE)).binary;
  assert.deepEqual(Buffer.from(instrumentFuel(wat(MODULE)).binary), Buffer.from(binary), "instrumentation is deterministic");
  const a = await instantiate(binary);
  const b = await instantiate(binary);
  for (const [name, args] of [["branchy", [777, 0]], ["branchy", [777, 1]], ["tail", [1]], ["calls_leaf", [333]], ["calls_table", [333]]] as const) {
    a.call(name, BIG, ...args);
    const first = a.used();
    a.call(name, BIG, ...args);
    assert.equal(a.used(), first, `${name}(${args.join(", ")}) twice`);
    b.call(name, BIG, ...args);
    assert.equal(b.used(), first, `${name}(${args.join(", ")}) on another instance`);
  }
});

test("a budget of exactly the fuel a call uses suffices; one less traps as fuel, even when the last charge is an arm's", async () => {
  const metered = await instantiate(instrumentFuel(wat(MODULE)).binary);
  for (const [name, args, result] of [
    ["branchy", [100, 1], 5000],
    ["branchy", [100, 0], 200],
    ["tail", [1], 50],
    ["tail", [0], 0],
    ["calls_leaf", [100], (100 * 99) / 2 + 40 * 50],
  ] as const) {
    metered.call(name, BIG, ...args);
    const exact = metered.used();
    assert.equal(metered.call(name, exact, ...args), result, `${name}(${args.join(", ")}) with its exact budget ${exact}`);
    assert.equal(metered.fuel.value, 0);
    const fresh = await instantiate(instrumentFuel(wat(MODULE)).binary);
    assert.throws(() => fresh.call(name, exact - 1, ...args), isFuelExhausted, `${name}(${args.join(", ")}) with ${exact - 1}`);
    assert.equal(fresh.fuel.value, -1, "pinned to -1 on exhaustion");
  }
});

test("an infinite loop whose back-edges are in if arms still runs out of fuel", async () => {
  const metered = await instantiate(instrumentFuel(wat(MODULE)).binary);
  assert.throws(() => metered.call("spin_in_arms", 1_000_000, 1), isFuelExhausted);
  const again = await instantiate(instrumentFuel(wat(MODULE)).binary);
  assert.throws(() => again.call("spin_in_arms", 1_000_000, 0), isFuelExhausted);
});

test("a small loop-free helper is charged at its call site for its longest path; one reachable through a table, or too big, is charged at its entry", async () => {
  const result = instrumentFuel(wat(MODULE));
  assert.equal(result.functionsChargedAtCallSites, 1, "only $leaf: $in_table is in the table, $big's longest path is over MAX_STATIC_COST");
  const metered = await instantiate(result.binary);
  // $leaf's longest path is its dear arm: 80 instructions of additions, charged on every call.
  metered.call("calls_leaf", BIG, 1000);
  assert.ok(metered.used() >= 80 * 1000, `calls_leaf(1000) used ${metered.used()}`);
  metered.call("calls_table", BIG, 1000);
  assert.ok(metered.used() >= 80 * 1000, `calls_table(1000) used ${metered.used()}`);
  assert.equal(metered.call("calls_big", BIG, 1), 61);
  assert.ok(metered.used() >= 120, `calls_big used ${metered.used()}`);
});

test("the filter plugin through the host: same message, same fuel, and the budget still bounds it", async () => {
  const msg = reading({ value: 42, note: "x".repeat(2000), tags: ["a", "b", { deep: [1, 2, 3] }] });
  const used: number[] = [];
  for (let load = 0; load < 2; load++) {
    const chain = await loadFilter();
    try {
      for (let i = 0; i < 3; i++) {
        assert.equal(chain.run("publish", { ...msg }).verdict, 0, "the reading passes");
        used.push(chain.slots[0]!.stats.fuelUsedLast);
      }
    } finally {
      chain.close();
    }
  }
  assert.ok(used[0]! > 2000, `a 2 KB scan used ${used[0]} fuel`);
  assert.deepEqual(used, Array(used.length).fill(used[0]), "identical fuel across calls and loads");
  await assertTrapsOneUnitShort(used[0]!, msg);
});
