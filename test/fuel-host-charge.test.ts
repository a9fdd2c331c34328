/**
 * How the host charges fuel for its own work on a plugin's behalf (host/fuel-tank.ts):
 * through the instrumenter's take export (`__wasmq_fuel_take`), with exactly the
 * arithmetic the JS-side global read and write had — and, for a module metered
 * without that export, through the global as before. Real instrumented modules,
 * the real filter plugin through the host with a deferred 16 KB payload.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { FUEL_GLOBAL, FUEL_TAKE_EXPORT, instrumentFuel } from "../host/fuel.js";
import { fuelTank } from "../host/fuel-tank.js";
import { assertTrapsOneUnitShort, loadFilter, reading, wat } from "./fuel-support.js";

const MODULE = `(module (func (export "x") (result i32) (i32.const 7)))`;

async function takeOf(): Promise<{ take: (amount: number) => number; fuel: WebAssembly.Global; exports: Record<string, unknown> }> {
  const binary = instrumentFuel(wat(MODULE)).binary;
  const imports = { wasmq: { fuel_exhausted: () => { throw new Error("not called"); } } };
  const { instance } = await WebAssembly.instantiate(binary as BufferSource, imports);
  const exports = instance.exports as Record<string, unknown>;
  return { take: exports[FUEL_TAKE_EXPORT] as (amount: number) => number, fuel: exports[FUEL_GLOBAL] as WebAssembly.Global, exports };
}

test("the take export subtracts, answers what is left, and pins the counter to -1 below zero", async () => {
  const { take, fuel } = await takeOf();
  fuel.value = 1000;
  assert.equal(take(1), 999);
  assert.equal(take(999), 0, "taking exactly what is left leaves 0, not an exhaustion");
  assert.equal(fuel.value, 0);
  assert.equal(take(1), -1);
  assert.equal(fuel.value, -1, "pinned to -1");
  // An amount no i32 holds, and a counter already below zero, never wrap around to a large budget.
  fuel.value = 0x7fffffff;
  assert.equal(take(2 ** 40), -1);
  fuel.value = -0x7fffffff;
  assert.equal(take(0x7fffffff), -1);
  assert.equal(fuel.value, -1);
  fuel.value = -5;
  assert.equal(take(0), -1, "a negative counter is out of fuel even for a free import");
});

test("the take export is not wrapped: it works on the counter as it is, without resetting the budget", async () => {
  const { take, fuel, exports } = await takeOf();
  fuel.value = 100;
  assert.equal(take(30), 70, "starts from the counter, not from a budget");
  assert.equal((exports.x as () => number)(), 7);
  assert.equal(take(0), 0x7fffffff - 1, "a wrapped export starts from the budget (2^31-1 until the host sets one); the take export does not");
});

test("a module exporting the take export's name is refused", () => {
  assert.throws(() => instrumentFuel(wat(`(module (func (export "${FUEL_TAKE_EXPORT}")))`)), /reserved for fuel metering/);
});

test("the export and the global fallback (a module metered without the export) charge the same", async () => {
  const viaExport = await takeOf();
  const viaGlobal = await takeOf();
  const exportTank = fuelTank(viaExport.exports, viaExport.fuel);
  const { [FUEL_TAKE_EXPORT]: _dropped, ...withoutTake } = viaGlobal.exports;
  const globalTank = fuelTank(withoutTake, viaGlobal.fuel);
  for (const [start, amount] of [[1000, 1], [1000, 1000], [1000, 1001], [0, 0], [-3, 0], [0x7fffffff, 2 ** 33], [5, 4.5 * 2]] as const) {
    viaExport.fuel.value = start;
    viaGlobal.fuel.value = start;
    const a = exportTank.take(amount);
    const b = globalTank.take(amount);
    assert.equal(a, b, `take(${amount}) from ${start}`);
    assert.equal(viaExport.fuel.value, viaGlobal.fuel.value, `counter after take(${amount}) from ${start}`);
  }
});

test("filter with a 16 KB deferred payload: the fetch is charged, a budget of exactly the call's fuel suffices, one less traps", async () => {
  const msg = reading({ value: 42, note: "x".repeat(16384) });
  const load = loadFilter;
  const chain = await load();
  let used: number;
  try {
    assert.equal(chain.run("publish", { ...msg }).verdict, 0);
    used = chain.slots[0]!.stats.fuelUsedLast;
    // The copy alone is 8 fuel per byte (plugins-as/README.md): the host's charge is in the call's fuel.
    assert.ok(used > msg.payload.length * 8, `a 16 KB fetch and scan used ${used} fuel`);
    assert.equal(chain.run("publish", { ...msg }).verdict, 0);
    assert.equal(chain.slots[0]!.stats.fuelUsedLast, used, "same message, same fuel");
  } finally {
    chain.close();
  }
  const exact = await load(used);
  try {
    assert.equal(exact.run("publish", { ...msg }).verdict, 0);
    assert.equal(exact.slots[0]!.stats.fuelUsedLast, used);
  } finally {
    exact.close();
  }
  await assertTrapsOneUnitShort(used, msg);
});
