// The JSON suites' differential machinery (test/sdk-json-*.test.ts): the SDK's
// JSON reader built with asc (plugins-as/sdk/json.ts) and its native twin
// (host/native/json.ts), each asked every question directly and through a
// JsonIndex, against an oracle: JSON.parse on well-formed UTF-8.

import assert from "node:assert/strict";
import { isUtf8 } from "node:buffer";
import { after, before } from "node:test";
import * as J from "../host/native/json.js";
import { AsWorkspace, put, withString, type AsCore } from "./as-build.js";
import { utf8, type Failures } from "./sdk-support.js";

/** The AS side of the JSON suites: the SDK's json functions and a JsonIndex, one export each. */
export const JSON_BUILD = ["--runtime", "incremental", "--enable", "simd"];
export const JSON_ENTRY = `
import { jsonValid, jsonFind, jsonType, jsonNumber, jsonString, jsonBool, jsonHas, jsonLength, JsonIndex } from "./sdk/json";

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
`;

export interface AsJson extends AsCore {
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
}

/**
 * Registers the calling suite's hooks: before its tests the AS JSON reader
 * (JSON_ENTRY) is built in a fresh workspace, after them the workspace is
 * removed. `asm` is that build and `workspace` can build more, once the
 * hook has run.
 */
export function jsonReader(prefix: string): { readonly asm: AsJson; readonly workspace: AsWorkspace } {
  let ws: AsWorkspace | undefined;
  let asm: AsJson | undefined;
  before(async () => {
    ws = AsWorkspace.create(prefix);
    asm = await ws.load<AsJson>("entry", JSON_ENTRY, JSON_BUILD);
  });
  after(() => ws?.remove());
  return {
    get asm() {
      return asm!;
    },
    get workspace() {
      return ws!;
    },
  };
}

// ---------------------------------------------------------------------------
// Oracle

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

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

export function oracleParse(doc: Uint8Array): { ok: true; value: Json } | { ok: false } {
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
// All readers on one (doc, path)

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

function runAs(asm: AsJson, p: number, n: number, path: string, strFb: string | null, boolFb: boolean): JsonResults {
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

function runAsIndexed(asm: AsJson, path: string, strFb: string | null, boolFb: boolean): JsonResults {
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

export function show(doc: Uint8Array): string {
  const s = Buffer.from(doc).toString("utf8");
  const text = s.length > 300 ? s.slice(0, 300) + `…(${doc.length} bytes)` : s;
  return JSON.stringify(text) + (isUtf8(doc) ? "" : " [invalid UTF-8: " + Buffer.from(doc.subarray(0, 200)).toString("hex") + "]");
}

function same(a: unknown, b: unknown): boolean {
  return Object.is(a, b);
}

const JSON_FIELDS = ["valid", "type", "number", "string", "bool", "has", "length"] as const;

/** Checks AS == TS == their JsonIndex readers == oracle for one document at each path. */
export function checkJson(asm: AsJson, fail: Failures, doc: Uint8Array, paths: string[], label: string): void {
  const p = put(asm, doc);
  const tsIndex = new J.JsonIndex(doc);
  asm.t_ixOpen(p, doc.length);
  try {
    for (const [i, path] of paths.entries()) {
      const strFb = i % 2 === 0 ? null : "<fallback>";
      const boolFb = i % 3 === 0;
      const ts = runTs(doc, path, strFb, boolFb);
      const as = runAs(asm, p, doc.length, path, strFb, boolFb);
      const or = runOracle(doc, path, strFb, boolFb);
      const indexed = { "TS index": runTsIndexed(tsIndex, path, strFb, boolFb), "AS index": runAsIndexed(asm, path, strFb, boolFb) };
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

/** Every document is valid JSON to the native reader, and all readers agree with the oracle at its paths. */
export function checkValidDocs(asm: AsJson, fail: Failures, docs: [string, string[]][], label: string): void {
  for (const [text, paths] of docs) {
    const doc = utf8(text);
    assert.equal(J.jsonValid(doc), true, `TS rejects ${show(doc)}`);
    checkJson(asm, fail, doc, paths, label);
  }
}
