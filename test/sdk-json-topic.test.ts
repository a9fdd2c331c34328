// Differential test of the plugin SDK's JSON reader and MQTT topic utilities:
// the AssemblyScript versions (plugins-as/sdk/json.ts, topic.ts, compiled here
// with asc) against their native TypeScript twins (host/native/json.ts,
// topic.ts) against straightforward oracles (JSON.parse, split-based matching).
//
// Random inputs come from a seeded PRNG; set WASMQ_TEST_SEED to reproduce or
// vary a run (the seed is printed in every failure message).

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, copyFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { isUtf8 } from "node:buffer";
import asc from "assemblyscript/asc";
import { instantiate } from "@assemblyscript/loader";
import * as J from "../host/native/json.js";
import * as T from "../host/native/topic.js";

const SEED = process.env.WASMQ_TEST_SEED ? Number(process.env.WASMQ_TEST_SEED) >>> 0 : 0x5eed2024;
const RANDOM_DOCS = 4000;
const RANDOM_TOPICS = 4000;

// ---------------------------------------------------------------------------
// Build the AssemblyScript side

function projectRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, "plugins-as", "sdk", "json.ts"))) return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error("cannot find plugins-as/sdk/json.ts above " + import.meta.url);
    dir = up;
  }
}

const ENTRY = `
import { jsonValid, jsonFind, jsonType, jsonNumber, jsonString, jsonBool, jsonHas, jsonLength, JsonIndex } from "./sdk/json";
import { topicMatches, topicMatchesTemplate, topicLevelCount, topicLevel, topicCapture, validTopicFilter, validTopicName } from "./sdk/topic";

export function t_topicMatchesTemplate(f: string, p: usize, n: i32, up: usize, un: i32, cp: usize, cn: i32): bool { return topicMatchesTemplate(f, p, n, up, un, cp, cn); }

let ix: JsonIndex | null = null;
export function t_ixOpen(p: usize, n: i32): void { ix = new JsonIndex(p, n); }
export function t_ixClose(): void { ix = null; }
export function t_ixValid(): bool { return ix!.valid; }
export function t_ixFind(path: string): i64 { return ix!.find(path); }
export function t_ixType(path: string): i32 { return ix!.type(path); }
export function t_ixNumber(path: string, fb: f64): f64 { return ix!.number(path, fb); }
export function t_ixString(path: string, fb: string | null): string | null { return ix!.string(path, fb); }
export function t_ixBool(path: string, fb: bool): bool { return ix!.bool(path, fb); }
export function t_ixHas(path: string): bool { return ix!.has(path); }
export function t_ixLength(path: string): i32 { return ix!.length(path); }

export function alloc(n: i32): usize { return heap.alloc(<usize>(n > 0 ? n : 1)); }
export function free(p: usize): void { heap.free(p); }

export function t_jsonValid(p: usize, n: i32): bool { return jsonValid(p, n); }
export function t_jsonFind(p: usize, n: i32, path: string): i64 { return jsonFind(p, n, path); }
export function t_jsonType(p: usize, n: i32, path: string): i32 { return jsonType(p, n, path); }
export function t_jsonNumber(p: usize, n: i32, path: string, fb: f64): f64 { return jsonNumber(p, n, path, fb); }
export function t_jsonString(p: usize, n: i32, path: string, fb: string | null): string | null { return jsonString(p, n, path, fb); }
export function t_jsonBool(p: usize, n: i32, path: string, fb: bool): bool { return jsonBool(p, n, path, fb); }
export function t_jsonHas(p: usize, n: i32, path: string): bool { return jsonHas(p, n, path); }
export function t_jsonLength(p: usize, n: i32, path: string): i32 { return jsonLength(p, n, path); }

export function t_topicMatches(f: string, p: usize, n: i32): bool { return topicMatches(f, p, n); }
export function t_topicLevelCount(p: usize, n: i32): i32 { return topicLevelCount(p, n); }
export function t_topicLevel(p: usize, n: i32, i: i32): string { return topicLevel(p, n, i); }
export function t_topicCapture(f: string, p: usize, n: i32, i: i32): string | null { return topicCapture(f, p, n, i); }
export function t_validTopicFilter(f: string): bool { return validTopicFilter(f); }
export function t_validTopicName(p: usize, n: i32): bool { return validTopicName(p, n); }
`;

// Built with the bump-allocating stub runtime: the distance between two
// heap.alloc calls around the code under test shows any allocation inside it.
const ALLOC_PROBE = `
import { jsonValid, jsonFind, jsonType, jsonNumber, jsonString, jsonBool, jsonHas, jsonLength } from "./sdk/json";
import { topicMatches, topicLevelCount, validTopicFilter, validTopicName } from "./sdk/topic";

export function alloc(n: i32): usize { return heap.alloc(<usize>(n > 0 ? n : 1)); }
export function probeBase(): usize { let a = heap.alloc(16); let b = heap.alloc(16); return b - a; }
export function probeJson(p: usize, n: i32, path: string, fb: string): usize {
  let a = heap.alloc(16);
  jsonValid(p, n); jsonFind(p, n, path); jsonType(p, n, path); jsonNumber(p, n, path, 0);
  jsonBool(p, n, path, false); jsonHas(p, n, path); jsonLength(p, n, path);
  if (jsonType(p, n, path) != 4) jsonString(p, n, path, fb); // fallback path must not allocate
  let b = heap.alloc(16);
  return b - a;
}
export function probeTopic(f: string, p: usize, n: i32): usize {
  let a = heap.alloc(16);
  topicMatches(f, p, n); topicLevelCount(p, n); validTopicFilter(f); validTopicName(p, n);
  let b = heap.alloc(16);
  return b - a;
}
`;

interface AsCore {
  memory: WebAssembly.Memory;
  __newString(s: string): number;
  __getString(p: number): string;
  __pin(p: number): number;
  __unpin(p: number): void;
  alloc(n: number): number;
}
interface AsMain extends AsCore {
  free(p: number): void;
  t_jsonValid(p: number, n: number): number;
  t_jsonFind(p: number, n: number, path: number): bigint;
  t_jsonType(p: number, n: number, path: number): number;
  t_jsonNumber(p: number, n: number, path: number, fb: number): number;
  t_jsonString(p: number, n: number, path: number, fb: number): number;
  t_jsonBool(p: number, n: number, path: number, fb: number): number;
  t_jsonHas(p: number, n: number, path: number): number;
  t_jsonLength(p: number, n: number, path: number): number;
  t_ixOpen(p: number, n: number): void;
  t_ixClose(): void;
  t_ixValid(): number;
  t_ixFind(path: number): bigint;
  t_ixType(path: number): number;
  t_ixNumber(path: number, fb: number): number;
  t_ixString(path: number, fb: number): number;
  t_ixBool(path: number, fb: number): number;
  t_ixHas(path: number): number;
  t_ixLength(path: number): number;
  t_topicMatches(f: number, p: number, n: number): number;
  t_topicMatchesTemplate(f: number, p: number, n: number, up: number, un: number, cp: number, cn: number): number;
  t_topicLevelCount(p: number, n: number): number;
  t_topicLevel(p: number, n: number, i: number): number;
  t_topicCapture(f: number, p: number, n: number, i: number): number;
  t_validTopicFilter(f: number): number;
  t_validTopicName(p: number, n: number): number;
}
interface AsProbe extends AsCore {
  probeBase(): number;
  probeJson(p: number, n: number, path: number, fb: number): number;
  probeTopic(f: number, p: number, n: number): number;
}

let workDir = "";
let asm!: AsMain;
let probe!: AsProbe;

async function compile(entryName: string, source: string, runtime: string): Promise<Uint8Array> {
  writeFileSync(join(workDir, entryName + ".ts"), source);
  const out = entryName + ".wasm";
  const { error, stderr } = await asc.main(
    [entryName + ".ts", "--baseDir", workDir, "--outFile", out, "--runtime", runtime, "--exportRuntime", "-O3", "--enable", "simd"],
    {},
  );
  if (error) throw new Error(`asc failed for ${entryName}: ${error.message}\n${stderr.toString()}`);
  return readFileSync(join(workDir, out));
}

before(async () => {
  const root = projectRoot();
  workDir = mkdtempSync(join(tmpdir(), "wasmq-sdk-json-topic-"));
  mkdirSync(join(workDir, "sdk"));
  for (const f of ["json.ts", "json-number.ts", "topic.ts"]) {
    copyFileSync(join(root, "plugins-as", "sdk", f), join(workDir, "sdk", f));
  }
  const main = await compile("entry", ENTRY, "incremental");
  const prb = await compile("probe", ALLOC_PROBE, "stub");
  asm = (await instantiate(main, {})).exports as unknown as AsMain;
  probe = (await instantiate(prb, {})).exports as unknown as AsProbe;
});

after(() => {
  if (workDir) rmSync(workDir, { recursive: true, force: true });
});

// Copies bytes into AS memory; returns the pointer (caller frees in asm).
function put(ex: AsCore, bytes: Uint8Array): number {
  const p = ex.alloc(bytes.length);
  new Uint8Array(ex.memory.buffer).set(bytes, p); // view after alloc (memory may grow)
  return p;
}

function withString<R>(ex: AsCore, s: string | null, fn: (p: number) => R): R {
  if (s === null) return fn(0);
  const p = ex.__pin(ex.__newString(s));
  try {
    return fn(p);
  } finally {
    ex.__unpin(p);
  }
}

// ---------------------------------------------------------------------------
// Seeded PRNG

class Rng {
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

// ---------------------------------------------------------------------------
// JSON: oracle

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

const enc = new TextEncoder();
const utf8 = (s: string): Uint8Array => enc.encode(s);

// Nesting depth of the document TEXT (not of the parsed value: a later
// duplicate key can drop a deeper branch). Only called on syntactically valid
// JSON, so tracking strings and brackets is enough.
function textDepth(text: string): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === "\\") i++;
      else if (c === '"') inString = false;
    } else if (c === '"') {
      inString = true;
    } else if (c === "[" || c === "{") {
      max = Math.max(max, ++depth);
    } else if (c === "]" || c === "}") {
      depth--;
    }
  }
  return max;
}

function oracleParse(doc: Uint8Array): { ok: true; value: Json } | { ok: false } {
  if (!isUtf8(doc)) return { ok: false };
  const text = Buffer.from(doc).toString("utf8");
  let value: Json;
  try {
    value = JSON.parse(text) as Json;
  } catch {
    return { ok: false };
  }
  if (textDepth(text) > 64) return { ok: false };
  return { ok: true, value };
}

function isIndex(seg: string): boolean {
  if (seg.length < 1 || seg.length > 9) return false;
  if (seg.length > 1 && seg[0] === "0") return false;
  for (const ch of seg) if (ch < "0" || ch > "9") return false;
  return true;
}

function oracleGet(root: Json, path: string): { found: boolean; value: Json } {
  if (path === "") return { found: true, value: root };
  let cur: Json = root;
  for (const seg of path.split(".")) {
    if (Array.isArray(cur)) {
      if (!isIndex(seg) || Number(seg) >= cur.length) return { found: false, value: null };
      cur = cur[Number(seg)]!;
    } else if (cur !== null && typeof cur === "object") {
      if (!Object.hasOwn(cur, seg)) return { found: false, value: null };
      cur = cur[seg]!;
    } else {
      return { found: false, value: null };
    }
  }
  return { found: true, value: cur };
}

function typeOf(v: Json): number {
  if (v === null) return J.JsonType.Null;
  if (typeof v === "boolean") return J.JsonType.Bool;
  if (typeof v === "number") return J.JsonType.Number;
  if (typeof v === "string") return J.JsonType.String;
  if (Array.isArray(v)) return J.JsonType.Array;
  return J.JsonType.Object;
}

// ---------------------------------------------------------------------------
// JSON: run all three implementations on one (doc, path)

interface JsonResults {
  valid: boolean;
  find: number;
  type: number;
  number: number;
  string: string | null;
  bool: boolean;
  has: boolean;
  length: number;
}

const NUM_FALLBACK = -7.25;

function runTs(doc: Uint8Array, path: string, strFb: string | null, boolFb: boolean): JsonResults {
  return {
    valid: J.jsonValid(doc),
    find: J.jsonFind(doc, path),
    type: J.jsonType(doc, path),
    number: J.jsonNumber(doc, path, NUM_FALLBACK),
    string: J.jsonString(doc, path, strFb),
    bool: J.jsonBool(doc, path, boolFb),
    has: J.jsonHas(doc, path),
    length: J.jsonLength(doc, path),
  };
}

function runAs(p: number, n: number, path: string, strFb: string | null, boolFb: boolean): JsonResults {
  return withString(asm, path, (sp) =>
    withString(asm, strFb, (fp) => ({
      valid: asm.t_jsonValid(p, n) !== 0,
      find: Number(asm.t_jsonFind(p, n, sp)),
      type: asm.t_jsonType(p, n, sp),
      number: asm.t_jsonNumber(p, n, sp, NUM_FALLBACK),
      string: asm.__getString(asm.t_jsonString(p, n, sp, fp)) ?? null,
      bool: asm.t_jsonBool(p, n, sp, boolFb ? 1 : 0) !== 0,
      has: asm.t_jsonHas(p, n, sp) !== 0,
      length: asm.t_jsonLength(p, n, sp),
    })),
  );
}

// The same questions through a JsonIndex (the config reader), asked of one index
// per document across all its paths, so answers come from its caches.
function runTsIndexed(index: J.JsonIndex, path: string, strFb: string | null, boolFb: boolean): JsonResults {
  return {
    valid: index.valid,
    find: index.find(path),
    type: index.type(path),
    number: index.number(path, NUM_FALLBACK),
    string: index.string(path, strFb),
    bool: index.bool(path, boolFb),
    has: index.has(path),
    length: index.length(path),
  };
}

function runAsIndexed(path: string, strFb: string | null, boolFb: boolean): JsonResults {
  return withString(asm, path, (sp) =>
    withString(asm, strFb, (fp) => ({
      valid: asm.t_ixValid() !== 0,
      find: Number(asm.t_ixFind(sp)),
      type: asm.t_ixType(sp),
      number: asm.t_ixNumber(sp, NUM_FALLBACK),
      string: asm.__getString(asm.t_ixString(sp, fp)) ?? null,
      bool: asm.t_ixBool(sp, boolFb ? 1 : 0) !== 0,
      has: asm.t_ixHas(sp) !== 0,
      length: asm.t_ixLength(sp),
    })),
  );
}

function runOracle(doc: Uint8Array, path: string, strFb: string | null, boolFb: boolean): Omit<JsonResults, "find"> {
  const parsed = oracleParse(doc);
  const got = parsed.ok ? oracleGet(parsed.value, path) : { found: false, value: null };
  const v = got.value;
  return {
    valid: parsed.ok,
    type: got.found ? typeOf(v) : J.JsonType.Missing,
    number: got.found && typeof v === "number" ? v : NUM_FALLBACK,
    string: got.found && typeof v === "string" ? v : strFb,
    bool: got.found && typeof v === "boolean" ? v : boolFb,
    has: got.found,
    length: !got.found ? -1 : Array.isArray(v) ? v.length : v !== null && typeof v === "object" ? Object.keys(v).length : -1,
  };
}

function show(doc: Uint8Array): string {
  const s = Buffer.from(doc).toString("utf8");
  const text = s.length > 300 ? s.slice(0, 300) + `…(${doc.length} bytes)` : s;
  return JSON.stringify(text) + (isUtf8(doc) ? "" : " [invalid UTF-8: " + Buffer.from(doc.subarray(0, 200)).toString("hex") + "]");
}

function same(a: unknown, b: unknown): boolean {
  return Object.is(a, b);
}

const JSON_FIELDS = ["valid", "type", "number", "string", "bool", "has", "length"] as const;

class Failures {
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

// Checks AS == TS == oracle for one (doc, path); returns the TS results.
function checkJson(fail: Failures, doc: Uint8Array, paths: string[], label: string): void {
  const p = put(asm, doc);
  const tsIndex = new J.JsonIndex(doc);
  asm.t_ixOpen(p, doc.length);
  try {
    for (const [i, path] of paths.entries()) {
      const strFb = i % 2 === 0 ? null : "<fallback>";
      const boolFb = i % 3 === 0;
      const ts = runTs(doc, path, strFb, boolFb);
      const as = runAs(p, doc.length, path, strFb, boolFb);
      const or = runOracle(doc, path, strFb, boolFb);
      const indexed = { "TS index": runTsIndexed(tsIndex, path, strFb, boolFb), "AS index": runAsIndexed(path, strFb, boolFb) };
      const where = `${label} doc=${show(doc)} path=${JSON.stringify(path)}`;
      if (!same(ts.find, as.find)) fail.add(`${where}: jsonFind AS=${as.find} TS=${ts.find}`);
      for (const [name, r] of Object.entries(indexed)) {
        if (!same(ts.find, r.find)) fail.add(`${where}: jsonFind ${name}=${r.find} TS=${ts.find}`);
      }
      for (const f of JSON_FIELDS) {
        if (!same(ts[f], as[f])) fail.add(`${where}: ${f} AS=${String(as[f])} TS=${String(ts[f])}`);
        if (!same(ts[f], or[f])) fail.add(`${where}: ${f} TS=${String(ts[f])} oracle=${String(or[f])}`);
        for (const [name, r] of Object.entries(indexed)) {
          if (!same(ts[f], r[f])) fail.add(`${where}: ${f} ${name}=${String(r[f])} TS=${String(ts[f])}`);
        }
      }
      // jsonFind must delimit exactly the value the oracle sees.
      if (or.has !== ts.find >= 0) {
        fail.add(`${where}: jsonFind=${ts.find} but oracle has=${or.has}`);
      } else if (ts.find >= 0) {
        const start = Math.floor(ts.find / 4294967296);
        const end = ts.find % 4294967296;
        const slice = doc.subarray(start, end);
        const sliceText = Buffer.from(slice).toString("utf8");
        const parsed = oracleParse(doc);
        const want = parsed.ok ? oracleGet(parsed.value, path).value : undefined;
        let back: unknown;
        try {
          back = JSON.parse(sliceText);
        } catch {
          back = Symbol("unparseable");
        }
        const ws = (c: number | undefined): boolean => c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;
        try {
          assert.deepStrictEqual(back, want);
        } catch {
          fail.add(`${where}: jsonFind [${start},${end}) = ${JSON.stringify(sliceText)} does not parse to the value`);
        }
        if (end <= start || ws(slice[0]) || ws(slice[slice.length - 1])) {
          fail.add(`${where}: jsonFind [${start},${end}) is not a tight range`);
        }
      }
    }
  } finally {
    asm.t_ixClose();
    asm.free(p);
  }
}

// ---------------------------------------------------------------------------
// JSON: hand-written edge cases

const INVALID_DOCS: (string | number[])[] = [
  "", " ", "\n\t", "{} x", "{}{}", "[1,]", '{"a":1,}', "[,]", "{,}", "[1 2]", '{"a" 1}', '{"a":}', '{"a"}',
  '{"a":1}}', "[", "]", "{", "}", '"abc', '"a\\x"', '"\\u12"', '"\\u12G4"', '"\\', '"\\"', "\"a\u0001b\"",
  "\"tab\there\"", "\"nl\nhere\"", "01", "-01", "00", "+1", ".5", "1.", "1.e5", "1e", "1e+", "1e-", "-", "-.5", "--1",
  "- 1", "0x10", "1_000", "NaN", "Infinity", "-Infinity", "nan", "tru", "nul", "fals", "True", "NULL", "truex",
  "[true false]", "'a'", "{a:1}", "{'a':1}", "/* c */{}", "{} // c", "[-]", "\u00a0{}", "\ufeff{}", "{\"a\":1\u00a0}",
  [0x22, 0xed, 0xa0, 0x80, 0x22], // encoded surrogate
  [0x22, 0xc0, 0xaf, 0x22], // overlong '/'
  [0x22, 0xe0, 0x80, 0xaf, 0x22], // overlong
  [0x22, 0xf4, 0x90, 0x80, 0x80, 0x22], // > U+10FFFF
  [0x22, 0xf5, 0x80, 0x80, 0x80, 0x22],
  [0x22, 0xe2, 0x82, 0x22], // truncated sequence
  [0x22, 0x80, 0x22], // stray continuation
  [0x22, 0xff, 0x22],
  [0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xc3, 0x22, 0x7d], // truncated at end of string
  [0x5b, 0x31, 0x5d, 0x00], // trailing NUL
  "[".repeat(65) + "]".repeat(65),
  '{"a":'.repeat(65) + "1" + "}".repeat(65),
  "[".repeat(2000) + "]".repeat(2000),
  // a shadowed duplicate still counts for the depth limit: 65 deep in the text, 2 in JSON.parse's value
  '{"a":' + "[".repeat(64) + "]".repeat(64) + ',"a":[1]}',
];

const VALID_DOCS: [string, string[]][] = [
  ["0", [""]],
  ["-0", [""]],
  ["  \t\r\n 42 \n", ["", "a"]],
  ["true", [""]],
  ["false", [""]],
  ["null", ["", "x"]],
  ['"\\u00e9\\n\\t\\"\\\\\\/\\b\\f\\r"', [""]],
  ['"é日本😀"', [""]],
  ['"\\ud83d\\ude00 \\uD83D\\uDE00"', [""]],
  ['"\\ud800"', [""]], // escaped lone surrogate: valid JSON, returned as a lone code unit
  ['"\\udc00x\\ud800"', [""]],
  ['"\u2028\u2029"', [""]],
  ["[]", ["", "0"]],
  ["{}", ["", "a", ""]],
  ['{"":1}', ["", "a"]],
  ['{"a":{"":{"":2}}}', ["a.", "a..", "a"]],
  ['{"a":1,"a":2}', ["a", ""]],
  ['{"a":1,"b":{"c":1},"a":{"x":true},"b":3}', ["a", "a.x", "b", "b.c", ""]],
  ['{"te\\u006dp":21.5,"temp":22}', ["temp", ""]],
  ['{"te\\u006dp":21.5}', ["temp", "te\\u006dp"]],
  ['{"\\ud83d\\ude00":1,"😀":2}', ["😀", ""]],
  ['{"\\ud83d":1}', ["\ud83d", "😀"]],
  ['{"é":1,"e\\u0301":2}', ["é", "e\u0301", ""]],
  ['{"a.b":1,"a":{"b":2}}', ["a.b", "a"]],
  ['{"0":"zero","1":[10,11]}', ["0", "1", "1.1", "1.01", "1.2", "01"]],
  ['{"__proto__":{"x":1},"constructor":2,"toString":3}', ["__proto__", "__proto__.x", "constructor", "toString", "hasOwnProperty", ""]],
  ['{"rules":[{"topic":"a/+","qos":1},{"topic":"b/#","qos":2,"allow":false}],"n":null}',
    ["rules", "rules.0", "rules.1.topic", "rules.1.allow", "rules.01.topic", "rules.2", "rules.-1", "rules.x", "n", "n.x", "rules.0.qos"]],
  ['[[1,[2,[3,[4]]]],{"a":[{"b":[5]}]}]', ["0.1.1.1.0", "1.a.0.b.0", "1.a.0.b", "0.1.1.1.1", "00"]],
  [" [ 1 , 2 , 3 ] ", ["", "0", "2", "3", "4294967296", "999999999", "1000000000"]],
  ["[".repeat(64) + "]".repeat(64), ["", "0", "0.0"]],
  ['{"a":'.repeat(64) + "1" + "}".repeat(64), ["", "a.a.a", "a".repeat(1)]],
  ['{"a":"x"}', ["a", "a.0", "a.length"]],
  // numbers
  [
    "[0,-0,1,-1,0.5,-0.5,1e5,1E5,1e+5,1e-5,1E-05,10e007,123456789012345,1234567890123456,9007199254740992,9007199254740993," +
      "9007199254740991,18446744073709551616,0.1,0.2,0.30000000000000004,3.141592653589793,2.718281828459045," +
      "1e22,1e23,1e-22,1e-23,123.456e-300,1.7976931348623157e308,1.7976931348623158e308,1.7976931348623159e308," +
      "1e309,-1e309,1e400,4.9e-324,5e-324,2.4703282292062327e-324,2.4703282292062328e-324,2.2250738585072011e-308," +
      "2.2250738585072012e-308,1e-400,-1e-400,0e99999999999,0.000000000000000000000000001e27," +
      "1" + "0".repeat(400) + "e-400," + "0." + "0".repeat(500) + "1e500," + "9".repeat(900) + "e-900," +
      "1." + "0".repeat(850) + "1,7.7777777777777777777777777777777e-123]",
    Array.from({ length: 52 }, (_, i) => String(i)),
  ],
  ['{"big":' + "1".repeat(5000) + ',"neg":-' + "3".repeat(700) + "e-700}", ["big", "neg"]],
];

function bigDoc(): string {
  const parts: string[] = [];
  let i = 0;
  let size = 2;
  while (size < 62000) {
    const p = `{"id":${i},"name":"dev-${i}-\\u00e9","v":${(i * 1.1).toFixed(3)},"ok":${i % 2 === 0}}`;
    parts.push(p);
    size += p.length + 1;
    i++;
  }
  return "[" + parts.join(",") + "]";
}

describe("sdk json: AssemblyScript vs native TypeScript vs JSON.parse", () => {
  test("malformed documents are invalid everywhere", () => {
    const fail = new Failures();
    for (const d of INVALID_DOCS) {
      const doc = typeof d === "string" ? utf8(d) : Uint8Array.from(d);
      assert.equal(J.jsonValid(doc), false, `TS accepts ${show(doc)}`);
      checkJson(fail, doc, ["", "a", "0"], "invalid-table");
    }
    fail.assertNone("invalid-table");
  });

  test("hand-written valid documents", () => {
    const fail = new Failures();
    for (const [text, paths] of VALID_DOCS) {
      const doc = utf8(text);
      assert.equal(J.jsonValid(doc), true, `TS rejects ${show(doc)}`);
      checkJson(fail, doc, paths, "valid-table");
    }
    const big = utf8(bigDoc());
    assert.ok(big.length > 60000 && big.length <= 65536);
    checkJson(fail, big, ["", "0", "0.name", "1000.v", "1500.ok", "99999"], "big-doc");
    fail.assertNone("valid-table");
  });

  test("documented examples", () => {
    const doc = utf8('{"a": [1, "x"], "te\\u006dp": 21.5, "a": [true]}');
    assert.equal(J.jsonFind(doc, "a"), 40 * 4294967296 + 46);
    assert.equal(J.jsonFind(doc, "temp"), 29 * 4294967296 + 33);
    assert.equal(J.jsonNumber(doc, "temp", 0), 21.5);
    assert.equal(J.jsonBool(doc, "a.0", false), true);
    assert.equal(J.jsonLength(doc, ""), 2);
    assert.equal(J.jsonType(doc, "a"), J.JsonType.Array);
    assert.equal(J.jsonString(utf8('{"s":"\\ud83d\\ude00\\n"}'), "s", null), "😀\n");
    assert.equal(J.jsonNumber(utf8("[1,]"), "0", 9), 9);
    const p = put(asm, doc);
    try {
      withString(asm, "a", (sp) => assert.equal(asm.t_jsonFind(p, doc.length, sp), (40n << 32n) | 46n));
    } finally {
      asm.free(p);
    }
  });

  test("exact halfway and near-halfway decimal numbers round like JSON.parse", () => {
    const rng = new Rng(SEED ^ 0x4a1f);
    const fail = new Failures();
    const dv = new DataView(new ArrayBuffer(8));
    for (let i = 0; i < 600; i++) {
      dv.setUint32(0, rng.int(0x7ff00000) >>> 0);
      dv.setUint32(4, rng.int(2 ** 32) >>> 0);
      if (i % 5 === 0) dv.setUint32(0, rng.int(0x00200000)); // subnormal / tiny
      const bits = dv.getBigUint64(0);
      const be = Number(bits >> 52n);
      const fr = bits & ((1n << 52n) - 1n);
      const m = be === 0 ? fr : fr | (1n << 52n);
      const ex = be === 0 ? -1074 : be - 1075;
      const M = 2n * m + 1n; // halfway to the next double: M * 2^(ex-1)
      const p = ex - 1;
      let s: string;
      if (p >= 0) {
        s = (M << BigInt(p)).toString();
      } else {
        const digits = (M * 5n ** BigInt(-p)).toString();
        const k = -p;
        s = digits.length > k
          ? digits.slice(0, digits.length - k) + "." + digits.slice(digits.length - k)
          : "0." + "0".repeat(k - digits.length) + digits;
      }
      // exact halfway, just above (also beyond the 800 kept digits: sticky), just below
      const group = [s, s + "000000001", s + "0".repeat(rng.int(900)) + "1", s.slice(0, -1), "-" + s];
      checkJson(fail, utf8("[" + group.join(",") + "]"), ["0", "1", "2", "3", "4"], "halfway");
    }
    // mantissas around 2^53 (the fast-path bound) with every fast-path exponent
    const near: string[] = [];
    for (let m = 9007199254740980n; m <= 9007199254741010n; m++) {
      for (const e of [-22, -21, -17, -10, -5, -3, -1, 0, 1, 3, 7, 15, 22, 23]) {
        near.push(`${m}e${e}`);
        const digits = m.toString();
        if (e < 0 && -e < digits.length) near.push(digits.slice(0, digits.length + e) + "." + digits.slice(digits.length + e));
      }
    }
    for (let i = 0; i < near.length; i += 50) {
      const chunk = near.slice(i, i + 50);
      checkJson(fail, utf8("[" + chunk.join(",") + "]"), chunk.map((_, j) => String(j)), "near-2^53");
    }
    fail.assertNone("halfway");
  });

  test(`${RANDOM_DOCS} random documents (+ mutations), seed=${SEED}`, () => {
    const rng = new Rng(SEED);
    const fail = new Failures();
    let valid = 0;
    let mutated = 0;
    let mutatedValid = 0;
    for (let i = 0; i < RANDOM_DOCS; i++) {
      const g = genDoc(rng);
      const doc = utf8(g.text);
      const paths = pickPaths(rng, g.paths);
      checkJson(fail, doc, paths, `random#${i}`);
      if (oracleParse(doc).ok) valid++;
      if (rng.chance(0.6)) {
        const m = mutate(rng, doc);
        checkJson(fail, m, paths, `random#${i}-mutated`);
        mutated++;
        if (oracleParse(m).ok) mutatedValid++;
      }
    }
    fail.assertNone("random-json");
    // The generator must exercise both outcomes.
    assert.ok(valid > RANDOM_DOCS * 0.9, `only ${valid} generated docs were valid`);
    assert.ok(mutatedValid > 20 && mutatedValid < mutated * 0.8, `mutations: ${mutatedValid} of ${mutated} valid`);
  });

  test("no allocation outside jsonString results (AS, stub runtime probe)", () => {
    const base = probe.probeBase();
    const docs: [string, string][] = [
      ['{"a":{"b":[1,2.5,"x"]},"n":0.30000000000000004,"m":1e-310,"k":' + "7".repeat(900) + "}", "a.b.1"],
      ['{"a":{"b":[1,2.5,"x"]},"n":0.30000000000000004}', "n"],
      ['{"n":' + "7".repeat(900) + "e-1000}", "n"],
      ['{"n":2.4703282292062328e-324}', "n"],
      ['{"te\\u006dp":1,"temp":2,"😀":3,"\\ud83d\\ude00":4}', "temp"],
      ['{"te\\u006dp":1,"temp":2,"😀":3,"\\ud83d\\ude00":4}', ""],
      ['{"s":"\\u00e9"}', "s.x"],
      ["[1,]", "0"],
    ];
    for (const [text, path] of docs) {
      const bytes = utf8(text);
      const p = put(probe, bytes);
      const sp = probe.__newString(path);
      const fb = probe.__newString("fb");
      assert.equal(probe.probeJson(p, bytes.length, sp, fb), base, `allocation in json reader for ${text.slice(0, 60)} @ ${path}`);
    }
    for (const [f, t] of [["sport/+/é/#", "sport/x/é/😀/a"], ["+/+", "/finance"], ["#", "$SYS/x"], ["a/😀", "a/😀"]] as const) {
      const bytes = utf8(t);
      const p = put(probe, bytes);
      const fp = probe.__newString(f);
      assert.equal(probe.probeTopic(fp, p, bytes.length), base, `allocation in topic functions for ${f} ${t}`);
    }
  });
});

// ---------------------------------------------------------------------------
// JSON: random generator

const KEYS = [
  "a", "b", "c", "temp", "rules", "topic", "qos", "0", "1", "10", "", "é", "日本", "😀", "a.b", "__proto__",
  "constructor", "x y", '"q"', "back\\slash", "\n", "\u0001", "\ud800", "\udfff", "e\u0301", "\u2028",
];
const STRINGS = [
  "", "x", "hello world", "é", "日本語", "😀🎉", "a/b/+/#", "line\nbreak", "tab\t", "quote\"", "back\\", "nul\u0000",
  "\u001f", "\u007f", "\ud800", "x\udc00y", "\ud83d\ude00", "\u2028\u2029", "/", "\uffff", "\ufeff", "long-" + "z".repeat(300),
];
const WS = ["", "", "", " ", "\n", "\t", "\r\n  ", "  "];

function hex4(r: Rng, c: number): string {
  const h = c.toString(16).padStart(4, "0");
  return "\\u" + (r.chance(0.5) ? h : h.toUpperCase());
}

function jsonQuote(r: Rng, s: string): string {
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const isHigh = c >= 0xd800 && c < 0xdc00;
    const pairLow = isHigh && i + 1 < s.length ? s.charCodeAt(i + 1) : 0;
    if (isHigh && pairLow >= 0xdc00 && pairLow < 0xe000) {
      out += r.chance(0.3) ? hex4(r, c) + hex4(r, pairLow) : s.slice(i, i + 2);
      i++;
    } else if (c >= 0xd800 && c < 0xe000) {
      out += hex4(r, c); // lone surrogate: only representable escaped
    } else if (c === 0x22) {
      out += r.chance(0.8) ? '\\"' : hex4(r, c);
    } else if (c === 0x5c) {
      out += r.chance(0.8) ? "\\\\" : hex4(r, c);
    } else if (c < 0x20) {
      const short: Record<number, string> = { 8: "\\b", 9: "\\t", 10: "\\n", 12: "\\f", 13: "\\r" };
      out += short[c] !== undefined && r.chance(0.7) ? short[c] : hex4(r, c);
    } else if (c === 0x2f && r.chance(0.3)) {
      out += "\\/";
    } else {
      out += r.chance(0.08) ? hex4(r, c) : s[i];
    }
  }
  return out + '"';
}

function genNumber(r: Rng): string {
  const sign = r.chance(0.3) ? "-" : "";
  const digits = (n: number): string => {
    let s = String(1 + r.int(9));
    for (let i = 1; i < n; i++) s += String(r.int(10));
    return s;
  };
  switch (r.int(12)) {
    case 0:
      return sign + String(r.int(1000));
    case 1:
      return sign + (r.chance(0.2) ? "0" : digits(1 + r.int(25)));
    case 2:
      return sign + String(r.int(100000)) + "." + String(r.int(100000)).padStart(r.int(8), "0");
    case 3: {
      const x = r.next() * 10 ** (r.int(40) - 20);
      return sign + x.toPrecision(1 + r.int(21));
    }
    case 4: {
      const x = r.next() * 10 ** (r.int(660) - 330);
      return sign + String(x);
    }
    case 5: {
      const x = r.next() * 10 ** (r.int(660) - 330);
      return sign + x.toPrecision(17 + r.int(5));
    }
    case 6:
      return sign + digits(1 + r.int(18)) + (r.chance(0.5) ? "." + digits(1 + r.int(18)) : "") +
        r.pick(["e", "E"]) + r.pick(["", "+", "-"]) + String(r.int(30)).padStart(1 + r.int(3), "0");
    case 7:
      return sign + digits(1 + r.int(3)) + "e" + r.pick(["", "-"]) + String(280 + r.int(60));
    case 8:
      return sign + "0." + "0".repeat(r.int(30)) + digits(1 + r.int(20));
    case 9:
      return sign + digits(20 + r.int(900)) + (r.chance(0.5) ? "e-" + String(r.int(1200)) : "");
    case 10:
      return sign + "0" + (r.chance(0.5) ? ".0" : "") + (r.chance(0.5) ? "e" + String(r.int(500)) : "");
    default:
      return sign + String(r.int(2 ** 31)) + "." + digits(1 + r.int(8));
  }
}

interface GenDoc {
  text: string;
  paths: string[];
}

function genValue(r: Rng, depth: number, maxDepth: number, prefix: string | null, paths: string[]): string {
  const ws = (): string => r.pick(WS);
  const k = r.int(10);
  if (depth < maxDepth && k < 3) {
    const n = r.int(6);
    const members: string[] = [];
    for (let i = 0; i < n; i++) {
      const key = r.pick(KEYS);
      // keys containing '.' (and "" at the root, which would be the root path) are not addressable
      const sub = key.includes(".") || prefix === null ? null
        : depth === 0 ? (key === "" ? null : key) : prefix + "." + key;
      if (sub !== null) paths.push(sub);
      members.push(ws() + jsonQuote(r, key) + ws() + ":" + ws() + genValue(r, depth + 1, maxDepth, sub, paths) + ws());
    }
    return "{" + (n === 0 ? ws() : members.join(",")) + "}";
  }
  if (depth < maxDepth && k < 5) {
    const n = r.int(6);
    const items: string[] = [];
    for (let i = 0; i < n; i++) {
      const sub = prefix === null ? null : depth === 0 ? String(i) : prefix + "." + String(i);
      if (sub !== null) paths.push(sub);
      items.push(ws() + genValue(r, depth + 1, maxDepth, sub, paths) + ws());
    }
    return "[" + (n === 0 ? ws() : items.join(",")) + "]";
  }
  switch (r.int(6)) {
    case 0:
      return "null";
    case 1:
      return r.chance(0.5) ? "true" : "false";
    case 2:
    case 3:
      return genNumber(r);
    default:
      return jsonQuote(r, r.chance(0.7) ? r.pick(STRINGS) : r.pick(KEYS) + r.pick(STRINGS));
  }
}

function genDoc(r: Rng): GenDoc {
  const paths: string[] = [""];
  let text: string;
  if (r.chance(0.03)) {
    // deep nesting around the 64 limit
    const depth = 58 + r.int(10);
    let inner = genValue(r, 0, 2, null, []);
    for (let i = 0; i < depth; i++) inner = r.chance(0.5) ? "[" + inner + "]" : '{"a":' + inner + "}";
    text = inner;
    paths.push("0", "a", "a.a.0", "0.a.0.0");
  } else {
    text = r.pick(WS) + genValue(r, 0, 1 + r.int(5), "", paths) + r.pick(WS);
  }
  return { text, paths };
}

const RANDOM_PATHS = ["", "a", "b", "0", "1", "00", "01", "-1", "a.b", "a..b", "a.", ".a", ".", "temp", "rules.0.topic", "é", "😀", "\ud800", "a.0.b.1", "x y", "__proto__"];

function pickPaths(r: Rng, known: string[]): string[] {
  const out: string[] = [];
  const n = 3 + r.int(5);
  for (let i = 0; i < n; i++) {
    const k = r.int(10);
    if (k < 6) out.push(r.pick(known));
    else if (k < 8) out.push(r.pick(known) + "." + r.pick(RANDOM_PATHS));
    else out.push(r.pick(RANDOM_PATHS));
  }
  return out;
}

const MUTATION_BYTES = [
  0x7b, 0x7d, 0x5b, 0x5d, 0x2c, 0x3a, 0x22, 0x5c, 0x30, 0x31, 0x39, 0x2d, 0x2b, 0x2e, 0x65, 0x45, 0x20, 0x0a, 0x09,
  0x00, 0x1f, 0x74, 0x6e, 0x66, 0x75, 0x61, 0x80, 0xbf, 0xc0, 0xc3, 0xe2, 0xed, 0xf0, 0xf4, 0xf8, 0xff,
];

function mutate(r: Rng, doc: Uint8Array): Uint8Array {
  const bytes = Array.from(doc);
  const n = 1 + r.int(3);
  for (let i = 0; i < n; i++) {
    const pos = r.int(bytes.length + 1);
    const b = r.chance(0.8) ? r.pick(MUTATION_BYTES) : r.int(256);
    switch (r.int(3)) {
      case 0:
        if (bytes.length > 0) bytes.splice(Math.min(pos, bytes.length - 1), 1);
        break;
      case 1:
        bytes.splice(pos, 0, b);
        break;
      default:
        if (bytes.length > 0) bytes[Math.min(pos, bytes.length - 1)] = b;
    }
  }
  return Uint8Array.from(bytes);
}

// ---------------------------------------------------------------------------
// Topics: oracle (plain split-based, no regex)

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
});
