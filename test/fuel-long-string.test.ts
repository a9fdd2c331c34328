/**
 * Fuel on the SDK's long-string scan (256 bytes per loop iteration after a string's
 * first 64, plugins-as/sdk/json-validate.ts), through the real filter plugin and the
 * host: the same call uses the same fuel across calls and loads; 256 more bytes of
 * string never cost less; and a budget short of what the call needs, by one unit or by half,
 * stops it as "fuel" while exactly what it needs suffices.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { loadFilter, reading } from "./fuel-support.js";

// Around the 64-byte prefix, the 256-byte steps and their tails, up to a 16 KB payload.
const LENGTHS = [0, 15, 16, 63, 64, 65, 127, 128, 319, 320, 321, 575, 576, 577, 1000, 4096, 16000];

async function fuelOf(n: number): Promise<number[]> {
  const used: number[] = [];
  for (let load = 0; load < 2; load++) {
    const chain = await loadFilter();
    try {
      for (let i = 0; i < 2; i++) {
        assert.equal(chain.run("publish", { ...reading({ note: "x".repeat(n), value: 42 }) }).verdict, 0, `note of ${n} bytes passes`);
        used.push(chain.slots[0]!.stats.fuelUsedLast);
      }
    } finally {
      chain.close();
    }
  }
  return used;
}

test("the long-string scan: same fuel across calls and loads, and 256 more bytes never cost less", { timeout: 120_000 }, async () => {
  const fuel = new Map<number, number>();
  for (const n of LENGTHS) {
    const used = await fuelOf(n);
    assert.deepEqual(used, Array(used.length).fill(used[0]), `note of ${n} bytes: identical fuel across calls and loads`);
    fuel.set(n, used[0]!);
  }
  // 256 more bytes of string is one more 256-byte step at least, charged: never less fuel.
  // (Neighbouring lengths may differ either way: 63 and 64 bytes end in different steps.)
  for (const n of [64, 320, 1000, 4096]) {
    const [more] = await fuelOf(n + 256);
    assert.ok(more! > fuel.get(n)!, `${n + 256} bytes use ${more} fuel, ${n} bytes ${fuel.get(n)}`);
  }
});

test("a budget short of a 16 KB scan's fuel, by one unit, by 300 or by half, traps as fuel; exactly its fuel suffices", { timeout: 120_000 }, async () => {
  const msg = reading({ note: "x".repeat(16000), value: 42 });
  const [used] = await fuelOf(16000);
  for (const budget of [used!, used! - 1, used! - 300, Math.floor(used! / 2)]) {
    const chain = await loadFilter(budget);
    try {
      const traps: string[] = [];
      chain.on("trap", (_name, _hook, kind) => traps.push(kind));
      const verdict = chain.run("publish", { ...msg }).verdict;
      if (budget === used) {
        assert.deepEqual(traps, [], "exactly the call's fuel suffices");
        assert.equal(verdict, 0);
        assert.equal(chain.slots[0]!.stats.fuelUsedLast, used);
      } else {
        assert.deepEqual(traps, ["fuel"], `a budget of ${budget} (the call needs ${used}) traps as fuel`);
      }
    } finally {
      chain.close();
    }
  }
});
