// What the SDK differential suites (test/sdk-*.test.ts) share: the seed of
// their random inputs, a seeded PRNG, UTF-8 encoding and a collector of
// mismatches that reports the first few with the seed.
//
// Random inputs come from a seeded PRNG; set WASMQ_TEST_SEED to reproduce or
// vary a run (the seed is printed in every failure message).

import assert from "node:assert/strict";

export const SEED = process.env.WASMQ_TEST_SEED ? Number(process.env.WASMQ_TEST_SEED) >>> 0 : 0x5eed2024;

const enc = new TextEncoder();
export const utf8 = (s: string): Uint8Array => enc.encode(s);

/** mulberry32, seeded. */
export class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0;
  }
  next(): number {
    // mulberry32
    let t = (this.s = (this.s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  pick<X>(xs: readonly X[]): X {
    return xs[this.int(xs.length)]!;
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
}

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
