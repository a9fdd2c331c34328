// The SDK's allocation-free filter-covers-filter checks (plugins-as/sdk/topic-cover.ts,
// what acl's SUBSCRIBE path runs) against the split-based filterCovers they
// replace and against the native twins (host/native/topic.ts filterCovers,
// host/native/topic-cover.ts filterCoversTemplate), on seeded random filters.
// Set WASMQ_TEST_SEED to vary a run (the seed is in every failure message).

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { filterCovers } from "../host/native/topic.js";
import { filterCoversTemplate } from "../host/native/topic-cover.js";
import { AsWorkspace } from "./as-build.js";

const SEED = process.env.WASMQ_TEST_SEED ? Number(process.env.WASMQ_TEST_SEED) >>> 0 : 0xc0fe2026;
const RANDOM = 6000;

const ENTRY = `
import { filterCovers } from "./sdk/topic";
import { filterCoversBytes, filterCoversTemplate, validTopicFilterBytes } from "./sdk/topic-cover";
export function alloc(n: i32): usize { return heap.alloc(<usize>(n > 0 ? n : 1)); }
export function free(p: usize): void { heap.free(p); }
export function t_split(f: string, s: string): bool { return filterCovers(f, s); }
export function t_bytes(f: string, p: usize, n: i32): bool { return filterCoversBytes(f, p, n); }
export function t_valid(p: usize, n: i32): bool { return validTopicFilterBytes(p, n); }
export function t_template(f: string, p: usize, n: i32, up: usize, un: i32, cp: usize, cn: i32): bool { return filterCoversTemplate(f, p, n, up, un, cp, cn); }
`;

interface Asm {
  memory: WebAssembly.Memory;
  __newString(s: string): number;
  __pin(p: number): number;
  __unpin(p: number): void;
  alloc(n: number): number;
  free(p: number): void;
  t_split(f: number, s: number): number;
  t_bytes(f: number, p: number, n: number): number;
  t_valid(p: number, n: number): number;
  t_template(f: number, p: number, n: number, up: number, un: number, cp: number, cn: number): number;
}

let workspace: AsWorkspace | null = null;
let asm!: Asm;

before(async () => {
  // The whole SDK is copied (topic-cover.ts imports topic.ts and topic-bytes.ts).
  workspace = AsWorkspace.create("wasmq-topic-cover-");
  asm = await workspace.load<Asm>("entry", ENTRY, ["--runtime", "incremental"]);
});

after(() => {
  workspace?.remove();
});

const enc = new TextEncoder();

function withBytes<R>(s: string, fn: (p: number, n: number) => R): R {
  const b = enc.encode(s);
  const p = asm.alloc(b.length);
  new Uint8Array(asm.memory.buffer).set(b, p);
  try {
    return fn(p, b.length);
  } finally {
    asm.free(p);
  }
}

function withString<R>(s: string, fn: (p: number) => R): R {
  const p = asm.__pin(asm.__newString(s));
  try {
    return fn(p);
  } finally {
    asm.__unpin(p);
  }
}

const asSplit = (f: string, s: string) => withString(f, (fp) => withString(s, (sp) => asm.t_split(fp, sp) !== 0));
const asBytes = (f: string, s: string) => withString(f, (fp) => withBytes(s, (p, n) => asm.t_bytes(fp, p, n) !== 0));
const asTemplate = (f: string, s: string, user: string | null, id: string) =>
  withString(f, (fp) =>
    withBytes(s, (p, n) =>
      withBytes(user ?? "", (up, un) => withBytes(id, (cp, cn) => asm.t_template(fp, p, n, up, user === null ? -1 : un, cp, cn) !== 0)),
    ),
  );

class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0;
  }
  next(): number {
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

// Levels that exercise '$', empty levels, multi-byte UTF-8 (2, 3 and 4 bytes)
// and near-misses (prefixes), plus the wildcards.
const LEVELS = ["a", "ab", "b", "", "$SYS", "$x", "é", "€", "😀", "a😀", "sensors", "+", "#", "a+", "x#"];

function randomFilter(rng: Rng, n: number): string {
  return Array.from({ length: n }, () => rng.pick(LEVELS)).join("/");
}

describe("filterCoversBytes / filterCoversTemplate (allocation-free)", () => {
  test(`filterCoversBytes = split-based filterCovers (AS and native), ${RANDOM} random pairs, seed=${SEED}`, () => {
    const rng = new Rng(SEED);
    const bad: string[] = [];
    let covered = 0;
    for (let i = 0; i < RANDOM; i++) {
      const f = randomFilter(rng, 1 + rng.int(4));
      // Half the subscriptions derived from the rule (so coverage is common), half random.
      const s = rng.chance(0.5)
        ? f.split("/").map((l) => (l === "+" || l === "#" ? rng.pick(LEVELS) : rng.chance(0.85) ? l : rng.pick(LEVELS))).concat(rng.chance(0.2) ? [rng.pick(LEVELS)] : []).slice(0, rng.chance(0.2) ? 1 : 9).join("/")
        : randomFilter(rng, 1 + rng.int(4));
      const want = filterCovers(f, s);
      const split = asSplit(f, s);
      const bytes = asBytes(f, s);
      if (split !== want || bytes !== want) bad.push(`f=${JSON.stringify(f)} s=${JSON.stringify(s)}: native=${want} AS split=${split} AS bytes=${bytes}`);
      if (want) covered++;
    }
    assert.deepEqual(bad.slice(0, 10), [], `seed=${SEED}, ${bad.length} differ`);
    assert.ok(covered > RANDOM * 0.1 && covered < RANDOM * 0.9, `covered ${covered}`);
  });

  test("known cases: parent level, '$' topics, '#' and '+' subscriptions, validity", () => {
    const cases: [string, string, boolean][] = [
      ["sensors/#", "sensors/+/temp", true],
      ["sensors/+/temp", "sensors/#", false],
      ["a/#", "a", true],
      ["a/+", "a", false],
      ["a/b/#", "a", false],
      ["a/", "a", false],
      ["a", "a/", false],
      ["a/", "a/", true],
      ["#", "$SYS/x", false],
      ["+/x", "$SYS/x", false],
      ["$SYS/#", "$SYS/x", true],
      ["+", "+", true],
      ["+/+", "a/#", false],
      ["a/#", "#", false],
      ["é/€/😀", "é/€/😀", true],
      ["é/€/😀", "é/€/😁", false],
      ["a", "a/#/b", false], // invalid subscription
      ["a/b+", "a/b", false], // invalid rule
      ["a", "a\u0000", false],
    ];
    for (const [f, s, want] of cases) {
      assert.equal(asBytes(f, s), want, `AS ${f} covers ${s}`);
      assert.equal(filterCovers(f, s), want, `native ${f} covers ${s}`);
    }
    // Ill-formed UTF-8 is not a filter.
    for (const bytes of [[0x61, 0xff], [0xc3], [0xed, 0xa0, 0x80], [], [0x2f, 0x23, 0x61]]) {
      const p = asm.alloc(bytes.length);
      new Uint8Array(asm.memory.buffer).set(bytes, p);
      assert.equal(asm.t_valid(p, bytes.length), 0, `bytes ${bytes}`);
      asm.free(p);
    }
  });

  test(`filterCoversTemplate = expand then filterCovers (AS and native), ${RANDOM} random, seed=${SEED}`, () => {
    const usable = (s: string | null) => s !== null && s.length > 0 && !/[/+#\u0000]/.test(s);
    // Oracle: substitute both tokens in one pass, literally; unusable → covers nothing.
    const oracle = (f: string, s: string, user: string | null, id: string): boolean => {
      let ok = true;
      const expanded = f.replace(/%[uc]/g, (token) => {
        const sub = token === "%u" ? user : id;
        if (!usable(sub)) ok = false;
        return sub ?? "";
      });
      return ok && filterCovers(expanded, s);
    };
    const rng = new Rng(SEED ^ 0x5ab5c21b);
    const NAMES = ["alice", "dev-1", "é", "😀", "%u", "%c", "a%cb", "%", "", "a/b", "x+y", "#", "a\u0000b"];
    const TLEVELS = ["a", "", "$SYS", "é", "%", "%%", "u", "x%u", "%uy", "%c%u", "%u", "%c", "+", "#"];
    const bad: string[] = [];
    let covered = 0;
    for (let i = 0; i < RANDOM; i++) {
      const user = rng.chance(0.1) ? null : rng.pick(NAMES);
      const id = rng.pick(NAMES);
      const fl = Array.from({ length: 1 + rng.int(3) }, () => (rng.chance(0.4) ? rng.pick(["%u", "%c", "+", "x-%u", "%c-y"]) : rng.pick(TLEVELS.slice(0, 12))));
      if (rng.chance(0.3)) fl.push("#");
      const f = fl.join("/");
      const sl = fl.map((l) => (l === "#" ? rng.pick(["x", "#", "+"]) : l === "+" ? rng.pick(TLEVELS) : rng.chance(0.8) ? l.replace(/%[uc]/g, (t) => (t === "%u" ? (user ?? "") : id)) : rng.pick(TLEVELS)));
      const s = sl.join("/") || "t";
      const want = oracle(f, s, user, id);
      const native = filterCoversTemplate(f, s, user, id);
      const as = asTemplate(f, s, user, id);
      if (native !== want || as !== want) bad.push(`f=${JSON.stringify(f)} s=${JSON.stringify(s)} user=${JSON.stringify(user)} id=${JSON.stringify(id)}: oracle=${want} native=${native} AS=${as}`);
      if (want) covered++;
    }
    assert.deepEqual(bad.slice(0, 10), [], `seed=${SEED}, ${bad.length} differ`);
    assert.ok(covered > RANDOM * 0.05 && covered < RANDOM * 0.9, `covered ${covered}`);
    assert.equal(asTemplate("devices/%c/#", "devices/dev-1/+/up", "alice", "dev-1"), true);
    assert.equal(asTemplate("devices/%c/#", "devices/dev-2/#", "alice", "dev-1"), false);
    assert.equal(asTemplate("users/%u/#", "users/%c/x", "%c", "dev-1"), true, "a username is taken literally");
    assert.equal(asTemplate("users/%u/#", "users//x", "", "dev-1"), false, "an empty username covers nothing");
    assert.equal(asTemplate("users/%u/#", "users/x/#", null, "dev-1"), false, "no username covers nothing");
  });
});
