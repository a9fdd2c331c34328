// What the SDK differential suites (test/sdk-*.test.ts) share: the seed of
// their random inputs, the seeded PRNG, UTF-8 encoding and a collector of
// mismatches that reports the first few with the seed.
//
// Random inputs come from a seeded PRNG; set WASMQ_TEST_SEED to reproduce or
// vary a run (the seed is printed in every failure message).

import assert from "node:assert/strict";

export const SEED = process.env.WASMQ_TEST_SEED ? Number(process.env.WASMQ_TEST_SEED) >>> 0 : 0x5eed2024;

const enc = new TextEncoder();
export const utf8 = (s: string): Uint8Array => enc.encode(s);

/** The seeded PRNG of the differential suites (mulberry32: the same sequence for the same seed). */
export { Rng } from "./differential.js";

/** Mismatches found by a differential check: counted, the first 25 kept for the message. */
export class Failures {
  readonly list: string[] = [];
  count = 0;
  add(msg: string): void {
    this.count++;
    if (this.list.length < 25) this.list.push(msg);
  }
  assertNone(what: string): void {
    assert.equal(this.count, 0, `${this.count} ${what} mismatch(es), seed=${SEED}:\n` + this.list.join("\n"));
  }
}
