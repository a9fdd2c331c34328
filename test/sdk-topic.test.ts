// The SDK's MQTT topic utilities, AssemblyScript (plugins-as/sdk/topic.ts,
// built with asc) vs their native twins (host/native/topic.ts) vs a plain
// split-based oracle: matching (MQTT 3.1.1 §4.7 examples and edge cases,
// random pairs), captures, levels, validity and length limits, %u/%c
// templates, and no allocation. WASMQ_TEST_SEED varies the random pairs.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import * as T from "../host/native/topic.js";
import { AsWorkspace, put, withString, type AsCore } from "./as-build.js";
import { Failures, Rng, SEED, utf8 } from "./sdk-support.js";

const RANDOM_TOPICS = 4000;

const ENTRY = `
import { topicMatches, topicMatchesTemplate, topicLevelCount, topicLevel, topicCapture, validTopicFilter, validTopicName } from "./sdk/topic";

export function alloc(n: i32): usize { return heap.alloc(<usize>(n > 0 ? n : 1)); }
export function free(p: usize): void { heap.free(p); }

export function t_topicMatches(f: string, p: usize, n: i32): bool { return topicMatches(f, p, n); }
export function t_topicMatchesTemplate(f: string, p: usize, n: i32, up: usize, un: i32, cp: usize, cn: i32): bool { return topicMatchesTemplate(f, p, n, up, un, cp, cn); }
export function t_topicLevelCount(p: usize, n: i32): i32 { return topicLevelCount(p, n); }
export function t_topicLevel(p: usize, n: i32, i: i32): string { return topicLevel(p, n, i); }
export function t_topicCapture(f: string, p: usize, n: i32, i: i32): string | null { return topicCapture(f, p, n, i); }
export function t_validTopicFilter(f: string): bool { return validTopicFilter(f); }
export function t_validTopicName(p: usize, n: i32): bool { return validTopicName(p, n); }
`;

// Built with the bump-allocating stub runtime: the distance between two
// heap.alloc calls around the code under test shows any allocation inside it.
const PROBE = `
import { topicMatches, topicLevelCount, validTopicFilter, validTopicName } from "./sdk/topic";

export function alloc(n: i32): usize { return heap.alloc(<usize>(n > 0 ? n : 1)); }
export function probeBase(): usize { let a = heap.alloc(16); let b = heap.alloc(16); return b - a; }
export function probeTopic(f: string, p: usize, n: i32): usize {
  let a = heap.alloc(16);
  topicMatches(f, p, n); topicLevelCount(p, n); validTopicFilter(f); validTopicName(p, n);
  let b = heap.alloc(16);
  return b - a;
}
`;

interface AsTopic extends AsCore {
  free(p: number): void;
  t_topicMatches(f: number, p: number, n: number): number;
  t_topicMatchesTemplate(f: number, p: number, n: number, up: number, un: number, cp: number, cn: number): number;
  t_topicLevelCount(p: number, n: number): number;
  t_topicLevel(p: number, n: number, i: number): number;
  t_topicCapture(f: number, p: number, n: number, i: number): number;
  t_validTopicFilter(f: number): number;
  t_validTopicName(p: number, n: number): number;
}
interface TopicProbe extends AsCore {
  probeBase(): number;
  probeTopic(f: number, p: number, n: number): number;
}

let ws: AsWorkspace | undefined;
let asm!: AsTopic;
/** The same entry built without SIMD (asc's default): the SDK must build and answer alike. */
let scalar!: AsTopic;
let probe!: TopicProbe;

before(async () => {
  ws = AsWorkspace.create("wasmq-sdk-topic-");
  asm = await ws.load<AsTopic>("entry", ENTRY, ["--runtime", "incremental", "--enable", "simd"]);
  scalar = await ws.load<AsTopic>("scalar", ENTRY, ["--runtime", "incremental"]);
  probe = await ws.load<TopicProbe>("probe", PROBE, ["--runtime", "stub", "--enable", "simd"]);
});

after(() => ws?.remove());

// ---------------------------------------------------------------------------
// Oracle (plain split-based, no regex)

function wellFormed(s: string): boolean {
  return Buffer.from(s, "utf8").toString("utf8") === s; // lone surrogates become U+FFFD
}

function oValidFilter(f: string): boolean {
  if (f.length === 0 || f.includes("\u0000") || !wellFormed(f) || Buffer.byteLength(f, "utf8") > 65535) return false;
  const levels = f.split("/");
  for (let i = 0; i < levels.length; i++) {
    const l = levels[i]!;
    if (l.includes("#") && (l !== "#" || i !== levels.length - 1)) return false;
    if (l.includes("+") && l !== "+") return false;
  }
  return true;
}

function oValidName(t: string): boolean {
  return t.length > 0 && !t.includes("\u0000") && !t.includes("+") && !t.includes("#") && wellFormed(t) &&
    Buffer.byteLength(t, "utf8") <= 65535;
}

// null = no match; otherwise the captures in order.
function oMatch(filter: string, topic: string): string[] | null {
  if (!oValidFilter(filter) || !oValidName(topic)) return null;
  const f = filter.split("/");
  const t = topic.split("/");
  if (topic.startsWith("$") && (f[0] === "+" || f[0] === "#")) return null;
  const caps: string[] = [];
  for (let i = 0; i < f.length; i++) {
    if (f[i] === "#") {
      caps.push(t.slice(i).join("/"));
      return caps;
    }
    if (i >= t.length) return null;
    if (f[i] === "+") caps.push(t[i]!);
    else if (f[i] !== t[i]) return null;
  }
  return f.length === t.length ? caps : null;
}

interface TopicResults {
  matches: boolean;
  captures: (string | null)[];
  levelCount: number;
  levels: string[];
  validFilter: boolean;
  validName: boolean;
}

const CAPTURE_INDEXES = [-1, 0, 1, 2, 3, 4];

function levelIndexes(t: string): number[] {
  const n = t.length === 0 ? 0 : t.split("/").length;
  return [-1, ...Array.from({ length: n + 1 }, (_, i) => i)];
}

function topicTs(f: string, t: string): TopicResults {
  return {
    matches: T.topicMatches(f, t),
    captures: CAPTURE_INDEXES.map((i) => T.topicCapture(f, t, i)),
    levelCount: T.topicLevelCount(t),
    levels: levelIndexes(t).map((i) => T.topicLevel(t, i)),
    validFilter: T.validTopicFilter(f),
    validName: T.validTopicName(t),
  };
}

function topicAsBytes(f: string, bytes: Uint8Array, levelIdx: number[]): TopicResults {
  const p = put(asm, bytes);
  try {
    return withString(asm, f, (fp) => ({
      matches: asm.t_topicMatches(fp, p, bytes.length) !== 0,
      captures: CAPTURE_INDEXES.map((i) => asm.__getString(asm.t_topicCapture(fp, p, bytes.length, i)) ?? null),
      levelCount: asm.t_topicLevelCount(p, bytes.length),
      levels: levelIdx.map((i) => asm.__getString(asm.t_topicLevel(p, bytes.length, i))),
      validFilter: asm.t_validTopicFilter(fp) !== 0,
      validName: asm.t_validTopicName(p, bytes.length) !== 0,
    }));
  } finally {
    asm.free(p);
  }
}

function topicOracle(f: string, t: string): TopicResults {
  const m = oMatch(f, t);
  const levels = t.length === 0 ? [] : t.split("/");
  return {
    matches: m !== null,
    captures: CAPTURE_INDEXES.map((i) => (m !== null && i >= 0 && i < m.length ? m[i]! : null)),
    levelCount: levels.length,
    levels: levelIndexes(t).map((i) => (i >= 0 && i < levels.length ? levels[i]! : "")),
    validFilter: oValidFilter(f),
    validName: oValidName(t),
  };
}

function checkTopic(fail: Failures, f: string, t: string, label: string): TopicResults {
  const ts = topicTs(f, t);
  const as = topicAsBytes(f, utf8(t), levelIndexes(t));
  const or = topicOracle(f, t);
  const where = `${label} filter=${JSON.stringify(f)} topic=${JSON.stringify(t)}`;
  for (const k of Object.keys(ts) as (keyof TopicResults)[]) {
    const a = JSON.stringify(as[k]);
    const b = JSON.stringify(ts[k]);
    const c = JSON.stringify(or[k]);
    if (a !== b) fail.add(`${where}: ${k} AS=${a} TS=${b}`);
    if (b !== c) fail.add(`${where}: ${k} TS=${b} oracle=${c}`);
  }
  return ts;
}

// [filter, topic, expected match] — MQTT 3.1.1 §4.7 examples and more.
const TOPIC_TABLE: [string, string, boolean][] = [
  ["sport/tennis/player1/#", "sport/tennis/player1", true],
  ["sport/tennis/player1/#", "sport/tennis/player1/ranking", true],
  ["sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon", true],
  ["sport/tennis/player1/#", "sport/tennis/player2", false],
  ["sport/#", "sport", true],
  ["sport/#", "sports", false],
  ["sport/#", "sport/", true],
  ["#", "sport/tennis", true],
  ["#", "/", true],
  ["#", "a", true],
  ["sport/tennis/#", "sport/tennis", true],
  ["sport/tennis#", "sport/tennis", false],
  ["sport/tennis/#/ranking", "sport/tennis/x/ranking", false],
  ["sport/tennis/+", "sport/tennis/player1", true],
  ["sport/tennis/+", "sport/tennis/player2", true],
  ["sport/tennis/+", "sport/tennis/player1/ranking", false],
  ["sport/+", "sport", false],
  ["sport/+", "sport/", true],
  ["+", "sport", true],
  ["+", "/finance", false],
  ["+/+", "/finance", true],
  ["/+", "/finance", true],
  ["+/tennis/#", "sport/tennis/player1", true],
  ["sport+", "sport", false],
  ["sport/+/player1", "sport/tennis/player1", true],
  ["sport/+/player1", "sport/tennis/player2", false],
  ["/finance", "/finance", true],
  ["/finance", "finance", false],
  ["finance", "/finance", false],
  ["#", "$SYS/broker/clients", false],
  ["+/monitor/Clients", "$SYS/monitor/Clients", false],
  ["$SYS/#", "$SYS/monitor/Clients", true],
  ["$SYS/monitor/+", "$SYS/monitor/Clients", true],
  ["$SYS", "$SYS", true],
  ["+", "$SYS", false],
  ["a/$SYS/#", "a/$SYS/x", true],
  ["+/$x", "a/$x", true],
  ["ACCOUNTS", "Accounts", false],
  ["Accounts payable", "Accounts payable", true],
  ["a/b", "a/b/", false],
  ["a/b/", "a/b/", true],
  ["a//b", "a//b", true],
  ["a/+/b", "a//b", true],
  ["+/+/+", "//", true],
  ["//", "//", true],
  ["/#", "/", true],
  ["/#", "a", false],
  ["é/+", "é/😀", true],
  ["日本/😀/#", "日本/😀", true],
  ["😀", "😁", false],
  ["é", "e\u0301", false],
  ["a", "a\u0000", false],
  ["a\u0000", "a", false],
  ["", "a", false],
  ["a", "", false],
  ["a/#", "a/+", false],
  ["a/+", "a/#", false],
  ["+", "+", false],
  ["a/b#", "a/b#", false],
  ["\ud800", "x", false],
  ["x/\udc00", "x/y", false],
  ["#/", "a/", false],
  ["##", "a", false],
  ["++", "a", false],
  // Literal levels compared four characters at a time: a filter's U+0080..U+00FF
  // characters are not the topic's UTF-8 bytes of the same value ("Ã©" is not "é").
  ["Ã©ab", "éab", false],
  ["abcdÃ©fgh", "abcdéfgh", false],
  ["wxyz/Ã©ab/#", "wxyz/éab/c", false],
  ["é©ab", "é©ab", true],
  ["sensors/+/temperature", "sensors/x/temperature", true],
  ["abcd/efgh/ijkl", "abcd/efgh/ijkl", true],
  ["abcdefgh", "abcdefgi", false],
  ["abc/defg", "abcd/efg", false],
  ["abcdefgh/+", "abcdefg/h/x", false],
  ["ab%cdefg", "ab%cdefg", true],
  ["ab%udefg", "ab%udefg", true],
];

describe("sdk topic: AssemblyScript vs native TypeScript vs split oracle", () => {
  test("MQTT spec examples and edge cases", () => {
    const fail = new Failures();
    for (const [f, t, want] of TOPIC_TABLE) {
      const r = checkTopic(fail, f, t, "table");
      if (r.matches !== want) fail.add(`table filter=${JSON.stringify(f)} topic=${JSON.stringify(t)}: expected ${want}`);
    }
    fail.assertNone("topic-table");
  });

  test("captures, levels, validity, limits", () => {
    assert.equal(T.topicCapture("sport/+/player/#", "sport/tennis/player/a/b", 0), "tennis");
    assert.equal(T.topicCapture("sport/+/player/#", "sport/tennis/player/a/b", 1), "a/b");
    assert.equal(T.topicCapture("sport/+/player/#", "sport/tennis/player/a/b", 2), null);
    assert.equal(T.topicCapture("a/#", "a", 0), "");
    assert.equal(T.topicCapture("a/+", "b/x", 0), null);
    assert.equal(T.topicLevelCount("a/b/c"), 3);
    assert.equal(T.topicLevelCount("/"), 2);
    assert.equal(T.topicLevelCount(""), 0);
    assert.equal(T.topicLevel("a/b/c", 1), "b");
    assert.equal(T.topicLevel("a/b/c", 3), "");
    assert.equal(T.validTopicFilter("a/+/#"), true);
    assert.equal(T.validTopicFilter("a/#/b"), false);
    assert.equal(T.validTopicName("a/+"), false);

    const fail = new Failures();
    const limitCases: [string, string][] = [
      ["#", "x".repeat(65535)],
      ["#", "x".repeat(65536)],
      ["#", "é".repeat(32767) + "x"], // 65535 bytes
      ["#", "é".repeat(32768)], // 65536 bytes, 32768 chars
      ["+/" + "é".repeat(32766), "a/" + "é".repeat(32766)], // filter 65534 bytes
      ["+/" + "😀".repeat(16384), "a/b"], // filter 65538 bytes
    ];
    for (const [f, t] of limitCases) checkTopic(fail, f, t, "limits");
    fail.assertNone("topic-limits");
    assert.equal(T.validTopicName("é".repeat(32768)), false);
    assert.equal(T.validTopicName("é".repeat(32767) + "x"), true);

    // AS reads raw bytes: ill-formed UTF-8 is not a valid topic name.
    for (const bad of [[0x61, 0xff], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xe2, 0x82], [0x80], [0xf4, 0x90, 0x80, 0x80]]) {
      const r = topicAsBytes("#", Uint8Array.from(bad), [0]);
      assert.equal(r.validName, false, `AS accepts bytes ${bad}`);
      assert.equal(r.matches, false);
    }
  });

  test("validTopicName at every length from 1 to 48, each kind of byte at every position (byte loop, 8-byte words, 16-byte SIMD blocks; built with and without SIMD)", () => {
    const fail = new Failures();
    const strict = new TextDecoder("utf-8", { fatal: true });
    const oracle = (bytes: Uint8Array): boolean => {
      if (bytes.length === 0 || bytes.length > 65535 || bytes.some((b) => b === 0 || b === 0x2b || b === 0x23)) return false;
      try {
        strict.decode(bytes);
        return true;
      } catch {
        return false;
      }
    };
    const kinds: [string, number[]][] = [
      ["plain", [0x61]], ["slash", [0x2f]], ["DEL", [0x7f]], ["space", [0x20]], ["NUL", [0]], ["+", [0x2b]], ["#", [0x23]],
      ["é", [0xc3, 0xa9]], ["€", [0xe2, 0x82, 0xac]], ["😀", [0xf0, 0x9f, 0x98, 0x80]],
      ["0xff", [0xff]], ["lone continuation", [0x80]], ["truncated é", [0xc3]], ["overlong /", [0xc0, 0xaf]], ["surrogate", [0xed, 0xa0, 0x80]],
    ];
    let checked = 0;
    for (let len = 1; len <= 48; len++) {
      for (const [name, kind] of kinds) {
        for (let at = 0; at < len; at++) {
          const bytes = Uint8Array.from([...Array(at).fill(0x61), ...kind, ...Array(len - at - 1).fill(0x62)]);
          const want = oracle(bytes);
          for (const [build, ex] of [["SIMD", asm], ["scalar", scalar]] as const) {
            const p = put(ex, bytes);
            const got = ex.t_validTopicName(p, bytes.length) !== 0;
            ex.free(p);
            if (got !== want) fail.add(`${name} at ${at} of ${len}: AS (${build}) says ${got}, expected ${want}`);
          }
          if (want && T.validTopicName(new TextDecoder().decode(bytes)) !== true) fail.add(`${name} at ${at} of ${len}: native twin refuses`);
          checked++;
        }
      }
    }
    fail.assertNone("validTopicName-steps");
    assert.ok(checked > 15_000, `${checked} topics`);
  });

  test("validTopicFilter remembers valid filters by identity only: repeated, more than it keeps, invalid, collected strings", () => {
    const collect = (asm as unknown as { __collect(): void }).__collect;
    const valid = ["a/+/b", "x/#", "+", "sport/tennis/+", "#", "é/😀/+", "a/b/c"];
    const invalid = ["a/#/b", "a+", "x\u0000", "\ud800", "#/"];
    // Pinned across calls: each string keeps its address (and identity) for the whole test.
    const pinned = [...valid, ...invalid].map((s) => ({ s, p: asm.__pin(asm.__newString(s)), want: T.validTopicFilter(s) }));
    assert.deepEqual(pinned.map((x) => x.want), [...valid.map(() => true), ...invalid.map(() => false)]);
    // In turn, more filters than are remembered (4), each asked twice, for several rounds.
    for (let round = 0; round < 5; round++) {
      for (const { s, p, want } of round % 2 ? [...pinned].reverse() : pinned) {
        for (let k = 0; k < 2; k++) assert.equal(asm.t_validTopicFilter(p) !== 0, want, `round ${round}: ${JSON.stringify(s)}`);
      }
    }
    for (const { p } of pinned) asm.__unpin(p);
    // A remembered string stays alive (so its address is never another string's): an
    // invalid filter made after a valid one was remembered and the GC has run is refused.
    for (let i = 0; i < 40; i++) {
      assert.equal(withString(asm, `ok/${i}/+`, (p) => asm.t_validTopicFilter(p) !== 0), true);
      collect();
      assert.equal(withString(asm, `ok/${i}/#/x`, (p) => asm.t_validTopicFilter(p) !== 0), false, `invalid filter ${i} after a collection`);
    }
  });

  test(`${RANDOM_TOPICS} random filter/topic pairs, seed=${SEED}`, () => {
    const rng = new Rng(SEED ^ 0x70b1c);
    const fail = new Failures();
    const LEVELS = ["a", "b", "c", "", "sport", "tennis", "$SYS", "$x", "é", "😀", "日本", "a b", "x$", "A"];
    const BAD = ["+", "#", "a+b", "x#", "\u0000", "++", "#+"];
    let matched = 0;
    for (let i = 0; i < RANDOM_TOPICS; i++) {
      const n = 1 + rng.int(5);
      const levels = Array.from({ length: n }, () => rng.pick(LEVELS));
      if (rng.chance(0.05)) levels[rng.int(n)] = rng.pick(BAD);
      const topic = levels.join("/");
      let filter: string;
      if (rng.chance(0.7)) {
        // derive from the topic: wildcards, truncation, small perturbations
        const fl = levels.map((l) => (rng.chance(0.3) ? "+" : rng.chance(0.1) ? rng.pick(LEVELS) : l));
        if (rng.chance(0.3)) fl.splice(rng.int(fl.length + 1), fl.length, "#");
        if (rng.chance(0.05)) fl.push(rng.pick(LEVELS));
        if (rng.chance(0.05)) fl[rng.int(fl.length)] = rng.pick([...BAD, "\ud800", "a\udc00"]);
        filter = fl.join("/");
      } else {
        filter = Array.from({ length: 1 + rng.int(5) }, () => rng.pick([...LEVELS, "+", "+", "#"])).join("/");
      }
      if (checkTopic(fail, filter, topic, `random#${i}`).matches) matched++;
    }
    fail.assertNone("random-topic");
    assert.ok(matched > RANDOM_TOPICS * 0.2 && matched < RANDOM_TOPICS * 0.9, `matched ${matched}`);
  });

  test(`topicMatchesTemplate: ${RANDOM_TOPICS} random %u/%c filters, seed=${SEED}`, () => {
    // Oracle: substitute both tokens in one pass (taken literally), refusing
    // unusable substitutions, then plain matching.
    const usable = (s: string | null) => s !== null && s.length > 0 && !/[/+#\u0000]/.test(s);
    const oracle = (f: string, t: string, user: string | null, id: string): boolean => {
      let ok = true;
      const expanded = f.replace(/%[uc]/g, (token) => {
        const sub = token === "%u" ? user : id;
        if (!usable(sub)) ok = false;
        return sub ?? "";
      });
      return ok && oMatch(expanded, t) !== null;
    };
    const asTemplate = (f: string, t: string, user: string | null, id: string): boolean => {
      const tb = utf8(t);
      const ub = utf8(user ?? "");
      const cb = utf8(id);
      const [p, up, cp] = [put(asm, tb), put(asm, ub), put(asm, cb)];
      try {
        return withString(asm, f, (fp) => asm.t_topicMatchesTemplate(fp, p, tb.length, up, user === null ? -1 : ub.length, cp, cb.length) !== 0);
      } finally {
        asm.free(p);
        asm.free(up);
        asm.free(cp);
      }
    };
    const rng = new Rng(SEED ^ 0x7e3b1a7e);
    const fail = new Failures();
    const NAMES = ["alice", "dev-1", "é", "😀", "%u", "%c", "a%cb", "%", "u", "", "a/b", "x+y", "#", "a\u0000b"];
    const LEVELS = ["a", "b", "", "sensors", "$SYS", "é", "%", "%%", "u", "c", "x%u", "%uy", "%c%u", "%u%c"];
    let matched = 0;
    for (let i = 0; i < RANDOM_TOPICS; i++) {
      const user = rng.chance(0.1) ? null : rng.pick(NAMES);
      const id = rng.pick(NAMES);
      const n = 1 + rng.int(4);
      const fl = Array.from({ length: n }, () => (rng.chance(0.4) ? rng.pick(["%u", "%c", "+", "x-%u", "%c-y"]) : rng.pick(LEVELS)));
      if (rng.chance(0.2)) fl.push("#");
      const filter = fl.join("/");
      // Topics made from the filter with the real substitutions, or perturbed.
      const tl = fl.filter((l) => l !== "#").map((l) =>
        l === "+" ? rng.pick(LEVELS) : rng.chance(0.8) ? l.replace(/%[uc]/g, (tk) => (tk === "%u" ? (user ?? "") : id)) : rng.pick(LEVELS),
      );
      if (rng.chance(0.2)) tl.push(rng.pick(LEVELS));
      const topic = tl.join("/") || "t";
      const want = oracle(filter, topic, user, id);
      const ts = T.topicMatchesTemplate(filter, topic, user, id);
      const as = asTemplate(filter, topic, user, id);
      const where = `filter=${JSON.stringify(filter)} topic=${JSON.stringify(topic)} user=${JSON.stringify(user)} id=${JSON.stringify(id)}`;
      if (ts !== want) fail.add(`${where}: TS=${ts} oracle=${want}`);
      if (as !== want) fail.add(`${where}: AS=${as} oracle=${want}`);
      if (want) matched++;
    }
    fail.assertNone("topic-template");
    assert.ok(matched > RANDOM_TOPICS * 0.1 && matched < RANDOM_TOPICS * 0.9, `matched ${matched}`);
    // Without tokens it is topicMatches.
    assert.equal(T.topicMatchesTemplate("a/+/c", "a/b/c", null, ""), true);
    assert.equal(asTemplate("devices/%c/#", "devices/dev-1/up", "alice", "dev-1"), true);
    assert.equal(asTemplate("devices/%c/#", "devices/dev-2/up", "alice", "dev-1"), false);
    assert.equal(asTemplate("users/%u/in", "users/%c/in", "%c", "dev-1"), true, "a username is taken literally");
    assert.equal(asTemplate("users/%u/in", "users//in", "", "dev-1"), false, "an empty username matches nothing");
  });

  test("no allocation in the topic functions (AS, stub runtime probe)", () => {
    const base = probe.probeBase();
    for (const [f, t] of [["sport/+/é/#", "sport/x/é/😀/a"], ["+/+", "/finance"], ["#", "$SYS/x"], ["a/😀", "a/😀"]] as const) {
      const bytes = utf8(t);
      const p = put(probe, bytes);
      const fp = probe.__newString(f);
      assert.equal(probe.probeTopic(fp, p, bytes.length), base, `allocation in topic functions for ${f} ${t}`);
    }
  });
});
