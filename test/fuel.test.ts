/**
 * Fuel metering (host/fuel.ts) on real modules: AssemblyScript programs compiled here
 * with asc (stub and incremental runtimes, own and imported memory) and hand-written
 * WebAssembly text assembled with binaryen, no AssemblyScript involved.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import asc from "assemblyscript/asc";
import binaryen from "binaryen";
import {
  FUEL_BUDGET_GLOBAL,
  FUEL_GLOBAL,
  FUEL_IMPORT_MODULE,
  FUEL_IMPORT_NAME,
  FuelExhaustedError,
  instrumentFuel,
  isFuelExhausted,
} from "../host/fuel.js";

const AS_SOURCE = `
export function spin(): void { while (true) {} }

export function sum(n: i32): i32 {
  let s = 0;
  for (let i = 1; i <= n; i++) s += i;
  return s;
}

export function fib(n: i32): i32 { return n < 2 ? n : fib(n - 1) + fib(n - 2); }

export function grid(n: i32): i32 {
  let c = 0;
  for (let i = 0; i < n; i++) {
    let j = 0;
    do { c += (i ^ j) & 7; j++; } while (j < n);
  }
  return c;
}

// Exercises the runtime: allocation, strings, arrays, maps; calls inside loops.
export function words(n: i32): i32 {
  let s = "";
  const parts = new Array<string>();
  for (let i = 0; i < n; i++) {
    s += i.toString();
    parts.push(s.substring(0, i % 5));
  }
  const seen = new Map<string, i32>();
  for (let i = 0; i < parts.length; i++) seen.set(parts[i], i);
  return s.length * 1000 + seen.size;
}
`;

type AscOptions = NonNullable<Parameters<typeof asc.compileString>[1]>;

async function compileAs(source: string, options: Record<string, unknown>): Promise<Uint8Array> {
  const result = await asc.compileString(source, options as AscOptions);
  if (result.error || !result.binary) {
    throw new Error(`asc failed: ${result.error?.message ?? "no binary"}\n${result.stderr.toString()}`);
  }
  return result.binary;
}

function wat(text: string): Uint8Array {
  const mod = binaryen.parseText(text);
  try {
    const F = binaryen.Features;
    mod.setFeatures(F.MutableGlobals | F.SignExt | F.BulkMemory | F.ReferenceTypes | F.ExceptionHandling);
    assert.ok(mod.validate(), "test module must validate");
    return mod.emitBinary();
  } finally {
    mod.dispose();
  }
}

interface Loaded {
  exports: Record<string, unknown>;
  fuel: WebAssembly.Global;
  call<T = number>(name: string, budget: number, ...args: number[]): T;
  used(): number;
}

const exhaustImport = {
  [FUEL_IMPORT_NAME]() {
    throw new FuelExhaustedError();
  },
};

async function load(binary: Uint8Array, extraEnv: Record<string, WebAssembly.ImportValue> = {}): Promise<Loaded> {
  const module = await WebAssembly.compile(binary as BufferSource);
  const env: Record<string, WebAssembly.ImportValue> = {
    abort: () => {
      throw new Error("abort");
    },
    ...extraEnv,
  };
  if (WebAssembly.Module.imports(module).some((i) => i.module === "env" && i.name === "memory")) {
    env.memory ??= new WebAssembly.Memory({ initial: 1, maximum: 256 });
  }
  const instance = await WebAssembly.instantiate(module, { env, [FUEL_IMPORT_MODULE]: exhaustImport });
  const exports = instance.exports as Record<string, unknown>;
  const fuel = exports[FUEL_GLOBAL] as WebAssembly.Global;
  const budgetGlobal = exports[FUEL_BUDGET_GLOBAL] as WebAssembly.Global;
  let budget = 0;
  return {
    exports,
    fuel,
    call<T>(name: string, b: number, ...args: number[]): T {
      budget = b;
      budgetGlobal.value = b; // entering an export resets the fuel to the budget
      return (exports[name] as (...a: number[]) => T)(...args);
    },
    used: () => budget - (fuel.value as number),
  };
}

async function loadPlain(binary: Uint8Array): Promise<Record<string, (...a: number[]) => number>> {
  const module = await WebAssembly.compile(binary as BufferSource);
  const env: Record<string, WebAssembly.ImportValue> = {
    abort: () => {
      throw new Error("abort");
    },
  };
  if (WebAssembly.Module.imports(module).some((i) => i.module === "env" && i.name === "memory")) {
    env.memory = new WebAssembly.Memory({ initial: 1, maximum: 256 });
  }
  const instance = await WebAssembly.instantiate(module, { env });
  return instance.exports as Record<string, (...a: number[]) => number>;
}

const BIG = 1_000_000_000;

const AS_VARIANTS: [string, Record<string, unknown>][] = [
  ["stub runtime, -O3", { runtime: "stub", optimizeLevel: 3 }],
  ["default runtime, unoptimised", {}],
  ["incremental runtime, imported memory, exported runtime, -O2", { runtime: "incremental", importMemory: true, exportRuntime: true, optimizeLevel: 2 }],
];

for (const [label, options] of AS_VARIANTS) {
  test(`AssemblyScript (${label}): same results, metered, infinite loop stopped`, async () => {
    const original = await compileAs(AS_SOURCE, options);
    const result = instrumentFuel(original);
    assert.ok(result.functionsInstrumented >= 5, `functions instrumented: ${result.functionsInstrumented}`);
    assert.ok(result.loopsInstrumented >= 5, `loops instrumented: ${result.loopsInstrumented}`);
    assert.ok(WebAssembly.validate(result.binary as BufferSource));

    const plain = await loadPlain(original);
    const metered = await load(result.binary);

    // Bounded computations: same results as uninstrumented.
    for (const n of [0, 1, 10, 1000, 100_000]) assert.equal(metered.call("sum", BIG, n), plain.sum!(n), `sum(${n})`);
    for (const n of [0, 1, 2, 10, 20]) assert.equal(metered.call("fib", BIG, n), plain.fib!(n), `fib(${n})`);
    for (const n of [0, 1, 7, 50]) assert.equal(metered.call("grid", BIG, n), plain.grid!(n), `grid(${n})`);
    for (const n of [0, 3, 40]) assert.equal(metered.call("words", BIG, n), plain.words!(n), `words(${n})`);
    if (options.exportRuntime) {
      metered.call("__collect", BIG);
      assert.equal(metered.call("words", BIG, 40), plain.words!(40));
    }

    // More work, more fuel; identical calls, identical fuel.
    metered.call("sum", BIG, 10);
    const sum10 = metered.used();
    metered.call("sum", BIG, 1000);
    const sum1000 = metered.used();
    assert.ok(sum10 >= 1, `sum(10) used ${sum10}`);
    assert.ok(sum1000 > sum10 * 50, `sum(1000) used ${sum1000}, sum(10) used ${sum10}`);
    metered.call("sum", BIG, 1000);
    assert.equal(metered.used(), sum1000, "deterministic");
    metered.call("fib", BIG, 15);
    const fib15 = metered.used();
    metered.call("fib", BIG, 20);
    assert.ok(metered.used() > fib15 * 10, "recursion is charged per call");
    metered.call("grid", BIG, 20);
    const grid20 = metered.used();
    metered.call("grid", BIG, 40);
    assert.ok(metered.used() > grid20 * 3, "nested loops are charged per inner iteration");

    // The infinite loop is stopped within its budget, by the host's error.
    assert.throws(() => metered.call("spin", 1_000_000), (err: unknown) => isFuelExhausted(err) && err instanceof FuelExhaustedError);
    assert.equal(metered.fuel.value, -1, "the global is pinned to -1 on exhaustion");

    // The process keeps going: a new instance of the same binary works.
    const fresh = await load(result.binary);
    assert.equal(fresh.call("sum", BIG, 100), 5050);
    metered.call("sum", BIG, 1000);
    assert.equal(fresh.call("sum", BIG, 1000), plain.sum!(1000));
    assert.equal(fresh.used(), sum1000, "deterministic across instances");

    // A budget too small for the work is exhausted, not exceeded.
    assert.throws(() => fresh.call("sum", sum1000 - 1, 1000), isFuelExhausted);
    assert.equal(fresh.call("sum", sum1000, 1000), plain.sum!(1000), "the exact budget is enough");
  });
}

const WAT_MODULE = `
(module
  (import "env" "memory" (memory 1))
  (import "env" "charge" (func $charge (param i32) (result i32)))
  (type $binop (func (param i32 i32) (result i32)))
  (table 2 funcref)
  (elem (i32.const 0) $add $xor)
  (global $started (mut i32) (i32.const 0))
  (start $init)
  (func $init (global.set $started (i32.const 42)))
  (func $add (param i32 i32) (result i32) (i32.add (local.get 0) (local.get 1)))
  (func $xor (param i32 i32) (result i32) (i32.xor (local.get 0) (local.get 1)))
  (func (export "started") (result i32) (global.get $started))
  ;; do-while with br_if
  (func (export "count") (param $n i32) (result i32) (local $i i32)
    (loop $l
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (local.get $n))))
    (local.get $i))
  (func (export "forever") (loop $l (br_if $l (i32.const 1))))
  (func $recurse (export "recurse") (call $recurse))
  ;; calls in a loop: indirect, nested in operands, early return of a call's value
  (func (export "mix") (param $n i32) (result i32) (local $i i32) (local $acc i32)
    (block $done
      (loop $l
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $acc
          (call_indirect (type $binop)
            (local.get $acc)
            (call $add (local.get $i) (call $xor (local.get $i) (i32.const 3)))
            (i32.and (local.get $i) (i32.const 1))))
        (if (i32.eq (local.get $i) (i32.const 1000))
          (then (return (call $add (local.get $acc) (i32.const 7)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $l)))
    (local.get $acc))
  ;; a host import that charges fuel itself, called in a loop
  (func (export "charged") (param $n i32) (result i32) (local $i i32) (local $acc i32)
    (loop $l
      (local.set $acc (i32.add (local.get $acc) (call $charge (local.get $i))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (local.get $n))))
    (local.get $acc))
  (func (export "scan") (param $p i32) (param $n i32) (result i32) (local $c i32)
    (block $out
      (loop $l
        (br_if $out (i32.eqz (local.get $n)))
        (local.set $c (i32.add (local.get $c) (i32.load8_u (local.get $p))))
        (local.set $p (i32.add (local.get $p) (i32.const 1)))
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br $l)))
    (local.get $c))
)`;

test("hand-written module (no AssemblyScript): start function, br_if loops, recursion, indirect calls", async () => {
  const original = wat(WAT_MODULE);
  const result = instrumentFuel(original);
  assert.equal(result.functionsInstrumented, 10);
  assert.equal(result.loopsInstrumented, 5);

  const memory = new WebAssembly.Memory({ initial: 1 });
  new Uint8Array(memory.buffer).fill(3, 0, 1000);
  let fuel: WebAssembly.Global | null = null;
  const seen: number[] = [];
  const charge = (i: number) => {
    seen.push(fuel!.value as number);
    fuel!.value = (fuel!.value as number) - 1000;
    return i * 2;
  };
  const metered = await load(result.binary, { memory, charge });
  fuel = metered.fuel;
  const plainInstance = await WebAssembly.instantiate(await WebAssembly.compile(original as BufferSource), {
    env: { memory, charge: (i: number) => i * 2 },
  });
  const plain = plainInstance.exports as Record<string, (...a: number[]) => number>;

  assert.equal(metered.call("started", BIG), 42, "the start function ran at instantiation");
  for (const n of [0, 1, 5, 10_000]) assert.equal(metered.call("count", BIG, n), plain.count!(n));
  for (const n of [0, 1, 2, 500, 1000, 5000]) assert.equal(metered.call("mix", BIG, n), plain.mix!(n), `mix(${n})`);
  assert.equal(metered.call("scan", BIG, 0, 1000), 3000);

  // Cost model: one unit per instruction, charged per function entry and per iteration.
  // count: entry = 1 (the final local.get); loop body = 8 per iteration (local.set,
  // i32.add, local.get, i32.const, br_if, i32.lt_u, local.get, local.get).
  metered.call("count", BIG, 10);
  assert.equal(metered.used(), 1 + 8 * 10);
  metered.call("count", BIG, 1000);
  assert.equal(metered.used(), 1 + 8 * 1000);

  assert.throws(() => metered.call("forever", 1_000_000), isFuelExhausted);
  assert.throws(() => metered.call("recurse", 1000), isFuelExhausted, "recursion is charged before the stack overflows");
  // Reverse: with a big budget, recursion ends in a stack overflow, which is not a fuel error.
  assert.throws(() => metered.call("recurse", BIG), (err: unknown) => !isFuelExhausted(err));

  // The host's own charges (inside an import) are seen by the caller's loop.
  assert.equal(metered.call("charged", BIG, 10), 90);
  assert.equal(metered.used() >= 10 * 1000, true);
  // Between two host calls the loop itself charged something on top of the host's 1000.
  assert.equal(seen.length, 10);
  for (let k = 1; k < seen.length; k++) assert.ok(seen[k]! < seen[k - 1]! - 1000, "the import sees an up-to-date counter");
  assert.throws(() => metered.call("charged", 50_000, 1000), isFuelExhausted);

  // A new instance is unaffected by the exhausted ones.
  const fresh = await load(result.binary, { memory, charge: (i: number) => i });
  assert.equal(fresh.call("count", BIG, 10), 10);
});

test("a catch_all cannot swallow the exhaustion (legacy exception handling)", async () => {
  const binary = wat(`
    (module
      (func $burn (loop $l (br $l)))
      (func (export "swallow") (result i32)
        (try (do (call $burn)) (catch_all))
        (i32.const 7))
      (func (export "ok") (result i32)
        (try (result i32) (do (i32.const 1)) (catch_all (i32.const 2)))))`);
  const result = instrumentFuel(binary);
  const metered = await load(result.binary);
  assert.equal(metered.call("ok", BIG), 1);
  assert.throws(() => metered.call("swallow", 10_000), isFuelExhausted);
});

test("modules using the reserved names are refused", () => {
  const exportsGlobal = wat(`(module (global $g (mut i32) (i32.const 0)) (export "${FUEL_GLOBAL}" (global $g)))`);
  assert.throws(() => instrumentFuel(exportsGlobal), /reserved for fuel metering/);
  const importsFn = wat(`(module (import "${FUEL_IMPORT_MODULE}" "${FUEL_IMPORT_NAME}" (func $f)) (func (export "x") (call $f)))`);
  assert.throws(() => instrumentFuel(importsFn), /reserved for fuel metering/);
  const importsGlobal = wat(`(module (import "env" "${FUEL_GLOBAL}" (global $g i32)))`);
  assert.throws(() => instrumentFuel(importsGlobal), /reserved for fuel metering/);
  // Instrumenting twice is refused for the same reason.
  const once = instrumentFuel(wat(`(module (func (export "x") (loop $l (br_if $l (i32.const 0)))))`));
  assert.throws(() => instrumentFuel(once.binary), /reserved for fuel metering/);
});

test("invalid input is an Error and leaves binaryen usable", async () => {
  assert.throws(() => instrumentFuel(new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 2, 3])), /cannot read module/);
  assert.throws(() => instrumentFuel(new Uint8Array([1, 2, 3])), /cannot read module/);
  const result = instrumentFuel(wat(`(module (func (export "one") (result i32) (i32.const 1)))`));
  const loaded = await load(result.binary);
  assert.equal(loaded.call("one", 10), 1);
  assert.equal(loaded.used(), 1);
});

test("instructions binaryen.js cannot take apart: metered as a whole, refused if they hide a loop", async () => {
  const plain = wat(`
    (module
      (table 2 funcref)
      (elem (i32.const 0) $one)
      (func $one (result i32) (i32.const 1))
      (func (export "copy") (param $n i32) (result i32) (local $i i32)
        (loop $l
          (table.copy (i32.const 1) (i32.const 0) (i32.const 1))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br_if $l (i32.lt_u (local.get $i) (local.get $n))))
        (i32.add (local.get $i) (call_indirect (result i32) (i32.const 1)))))`);
  const result = instrumentFuel(plain);
  assert.equal(result.loopsInstrumented, 1);
  const loaded = await load(result.binary);
  assert.equal(loaded.call("copy", BIG, 5), 6);
  assert.throws(() => loaded.call("copy", 100, 1_000_000), isFuelExhausted);

  const hidden = wat(`
    (module
      (table 2 funcref)
      (func (export "sneaky") (local $i i32)
        (table.copy (i32.const 1) (i32.const 0)
          (loop $l (result i32) (br_if $l (i32.const 1)) (i32.const 0)))))`);
  assert.throws(() => instrumentFuel(hidden), /loop is nested inside "table.copy"/);
});

test("the broker's instrumentation runs in a child process: same bytes, same refusals, and the child ends with its channel", async () => {
  const { instrumentFuelInChild, shutDownFuelChild } = await import("../host/fuel-offload.js");
  const binary = wat(`(module (func (export "x") (result i32) (local $i i32) (loop $l (local.set $i (i32.add (local.get $i) (i32.const 1))) (br_if $l (i32.lt_u (local.get $i) (i32.const 9)))) (local.get $i)))`);
  const here = instrumentFuel(binary);
  try {
    const there = await instrumentFuelInChild(binary);
    assert.deepEqual(Buffer.from(there.binary), Buffer.from(here.binary));
    assert.equal(there.loopsInstrumented, here.loopsInstrumented);
    await assert.rejects(instrumentFuelInChild(here.binary), /reserved for fuel metering/);
    const [a, b] = await Promise.all([instrumentFuelInChild(binary), instrumentFuelInChild(binary)]);
    assert.deepEqual(Buffer.from(a.binary), Buffer.from(b.binary), "concurrent requests are answered each with its own result");
    const pid = await shutDownFuelChild();
    assert.ok(pid !== null, "a child was running");
    assert.throws(() => process.kill(pid, 0), /ESRCH/, "the child has exited");
    // A new request starts a new child, also while the previous one is still exiting:
    // the old child's exit must not fail the new child's requests.
    assert.deepEqual(Buffer.from((await instrumentFuelInChild(binary)).binary), Buffer.from(here.binary));
    const retiring = shutDownFuelChild();
    const next = instrumentFuelInChild(binary);
    assert.ok((await retiring) !== null);
    assert.deepEqual(Buffer.from((await next).binary), Buffer.from(here.binary));
  } finally {
    await shutDownFuelChild(); // a failed assertion must not leave a child holding the test process open
  }
});
