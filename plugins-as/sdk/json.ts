// wasmq plugin SDK — zero-allocation JSON field reader (AssemblyScript).
//
// Works directly on raw UTF-8 bytes in linear memory `(ptr, len)`, e.g. a
// message payload the host wrote into the input region. Nothing is decoded or
// copied up front: every call validates the whole document (RFC 8259, strict)
// and then walks to the value at `path`. Only `jsonString` allocates, and only
// to build the string it returns. A document read many times (the plugin's
// config) goes through a JsonIndex instead (end of this file).
//
// The native twin `host/native/json.ts` runs the same algorithm on a
// Uint8Array; `test/sdk-json-*.test.ts` check both agree bit-for-bit with
// each other and with `JSON.parse(buffer.toString())`.
//
// Semantics (identical in both twins):
// - Paths: "" is the root value; otherwise the path is split on '.', and each
//   segment (possibly empty) is an object key or, when the current value is an
//   array, a canonical array index ("0", "17"; "01", "-1", "x" → missing).
//   On objects an all-digit segment is a plain key ("a.0" finds {"a":{"0":1}}).
//   Keys containing '.' cannot be addressed.
// - Keys compare as UTF-16 code units after unescaping, so "te\u006dp" matches
//   "temp" and "\ud83d\ude00" matches "😀". Duplicate keys: the LAST one wins,
//   and jsonLength counts distinct keys (as Object.keys(JSON.parse(..))).
// - Any malformed document is treated as missing everywhere (jsonValid false):
//   trailing garbage, trailing commas, unterminated strings, bad escapes, raw
//   control characters (< 0x20) in strings, leading zeros, "+1", ".5", "1.",
//   "1e", NaN/Infinity, nesting deeper than 64 arrays/objects, empty input.
// - Invalid UTF-8 (overlong forms, encoded surrogates, > U+10FFFF, truncated
//   or stray continuation bytes) makes the document INVALID. RFC 8259 §8.1
//   requires UTF-8; JSON.parse(buf.toString()) would silently see U+FFFD
//   instead, which would make key matching and returned strings lie about the
//   bytes. Escaped lone surrogates ("\ud800") are valid JSON and are returned
//   as lone UTF-16 code units, exactly as JSON.parse does.
// - Numbers are correctly rounded (identical to JSON.parse): a zero-allocation
//   fast path (integer mantissa ≤ 2^53 and decimal exponent within ±22: one
//   exact IEEE multiply/divide) and a zero-allocation exact slow path (big
//   integer comparison against the halfway points of a close estimate).
//   Note: AssemblyScript's own parseFloat is NOT correctly rounded (it can be
//   off by many orders of magnitude for 17+ digit inputs), so it is not used.
//   Overflow gives ±Infinity, underflow ±0, "-0" gives -0 (as JSON.parse).
// - jsonFind returns (start * 2^32 + end) of the value's bytes, relative to
//   ptr (end exclusive; strings include their quotes), or -1.
// This module is the lookup (paths, the json* readers, JsonIndex); the rest of
// the reader lives beside it: json-doc.ts (the document and byte reads),
// json-validate.ts (validation, and what it records for lookups), json-text.ts
// (string content: key comparison, building strings), json-number.ts (number
// conversion).
import { C_COMMA, C_DOT, C_LBRACE, C_LBRACKET, C_MINUS, C_QUOTE, C_RBRACE, C_RBRACKET, C_0, C_f, C_n, C_t, gBase, setDocument, byteAt, charAt, isDigit, skipWs } from "./json-doc";
import { ROOT_TABLE, rootMemberCount, rootMembers, check, validate, parseValue, scanNumber, scanString } from "./json-validate";
import { buildString, keyEqualsKey, keyEqualsPath } from "./json-text";
import { jsonNumberValue } from "./json-number";

export { jsonValid, jsonStringEnd, jsonTrustNext } from "./json-validate";

export enum JsonType {
  Missing = 0,
  Null = 1,
  Bool = 2,
  Number = 3,
  String = 4,
  Array = 5,
  Object = 6,
}

// Start of the value of the last root member whose key equals path[s, e), or
// -1, from the table validate() filled (only while rootMembers() >= 0).
function rootLookup(path: string, s: i32, e: i32): i32 {
  for (let i = rootMemberCount() - 1; i >= 0; i--) {
    let at = ROOT_TABLE + <usize>(i * 12);
    let ks = load<i32>(at);
    let ke = load<i32>(at, 4);
    // A key of fewer bytes than the path has units cannot equal it (keyEqualsPath, without the call).
    if (ke - ks >= e - s && keyEqualsPath(ks, ke, path, s, e)) return load<i32>(at, 8);
  }
  return -1;
}

// v at '{' of a validated object: start of the value of the LAST member whose
// key equals path[s, e), or -1.
function memberLookup(v: i32, path: string, s: i32, e: i32): i32 {
  let p = skipWs(v + 1);
  if (byteAt(p) == C_RBRACE) return -1;
  let found = -1;
  while (true) {
    let ks = p + 1;
    let ke = scanString(p) - 1;
    let hit = keyEqualsPath(ks, ke, path, s, e);
    p = skipWs(skipWs(ke + 1) + 1);
    if (hit) found = p;
    p = skipWs(parseValue(p, 0));
    if (byteAt(p) != C_COMMA) return found;
    p = skipWs(p + 1);
  }
}

// The canonical decimal index path[s, e) ("0", "17"; not "01", "-1", "x"), or -1.
function arrayIndex(path: string, s: i32, e: i32): i32 {
  let n = e - s;
  if (n < 1 || n > 9) return -1;
  if (n > 1 && charAt(path, s) == C_0) return -1;
  let idx = 0;
  for (let i = s; i < e; i++) {
    let c = charAt(path, i);
    if (!isDigit(c)) return -1;
    idx = idx * 10 + (c - C_0);
  }
  return idx;
}

// v at '[' of a validated array: start of element path[s, e), or -1.
function indexLookup(v: i32, path: string, s: i32, e: i32): i32 {
  let idx = arrayIndex(path, s, e);
  if (idx < 0) return -1;
  let p = skipWs(v + 1);
  if (byteAt(p) == C_RBRACKET) return -1;
  let i = 0;
  while (true) {
    if (i == idx) return p;
    p = skipWs(parseValue(p, 0));
    if (byteAt(p) != C_COMMA) return -1;
    p = skipWs(p + 1);
    i++;
  }
}

// Validates the document and returns the start of the value at path, or -1.
function locate(ptr: usize, len: i32, path: string): i32 {
  if (!check(ptr, len)) return -1;
  return walk(path, null);
}

// Start of the value at path in the current (validated) document, or -1:
// through the index's tables when there is one, else by scanning.
function walk(path: string, index: JsonIndex | null): i32 {
  let v = skipWs(0);
  let plen = path.length;
  if (plen == 0) return v;
  let s = 0;
  while (true) {
    let e = s;
    while (e < plen && charAt(path, e) != C_DOT) e++;
    let c = byteAt(v);
    if (c == C_LBRACE && index === null && s == 0 && rootMembers() >= 0) v = rootLookup(path, s, e);
    else if (c == C_LBRACE) v = index !== null ? index.member(v, path.substring(s, e)) : memberLookup(v, path, s, e);
    else if (c == C_LBRACKET) v = index !== null ? index.element(v, arrayIndex(path, s, e)) : indexLookup(v, path, s, e);
    else return -1;
    if (v < 0) return -1;
    if (e >= plen) return v;
    s = e + 1;
  }
  return -1; // not reached (keeps AS flow analysis happy)
}

// ---------------------------------------------------------------------------
// Public API

// What the value starting at v (in the current document; -1 = missing) is.
function findAt(v: i32): i64 {
  if (v < 0) return -1;
  let end = parseValue(v, 0);
  return (<i64>v << 32) | <i64>end;
}

function typeAt(v: i32): i32 {
  if (v < 0) return JsonType.Missing;
  let c = byteAt(v);
  if (c == C_LBRACE) return JsonType.Object;
  if (c == C_LBRACKET) return JsonType.Array;
  if (c == C_QUOTE) return JsonType.String;
  if (c == C_t || c == C_f) return JsonType.Bool;
  if (c == C_n) return JsonType.Null;
  return JsonType.Number;
}

function numberAt(v: i32, fallback: f64): f64 {
  if (v < 0) return fallback;
  let c = byteAt(v);
  if (c != C_MINUS && !isDigit(c)) return fallback;
  return jsonNumberValue(gBase, v, scanNumber(v));
}

function stringAt(v: i32, fallback: string | null): string | null {
  if (v < 0 || byteAt(v) != C_QUOTE) return fallback;
  return buildString(v + 1, scanString(v) - 1);
}

function boolAt(v: i32, fallback: bool): bool {
  if (v < 0) return fallback;
  let c = byteAt(v);
  if (c == C_t) return true;
  if (c == C_f) return false;
  return fallback;
}

/** Byte range of the value at path, packed as (start << 32) | end, or -1. */
export function jsonFind(ptr: usize, len: i32, path: string): i64 {
  return findAt(locate(ptr, len, path));
}

/** JsonType of the value at path (JsonType.Missing = 0 when absent/invalid). */
export function jsonType(ptr: usize, len: i32, path: string): i32 {
  return typeAt(locate(ptr, len, path));
}

/** Number at path (correctly rounded), or fallback. */
export function jsonNumber(ptr: usize, len: i32, path: string, fallback: f64): f64 {
  return numberAt(locate(ptr, len, path), fallback);
}

/** Unescaped string at path, or fallback. Allocates the result. */
export function jsonString(ptr: usize, len: i32, path: string, fallback: string | null): string | null {
  return stringAt(locate(ptr, len, path), fallback);
}

/** Boolean at path, or fallback. */
export function jsonBool(ptr: usize, len: i32, path: string, fallback: bool): bool {
  return boolAt(locate(ptr, len, path), fallback);
}

/** A value (including null) exists at path in a valid document. */
export function jsonHas(ptr: usize, len: i32, path: string): bool {
  return locate(ptr, len, path) >= 0;
}

/** Array length, or number of distinct keys of an object; -1 otherwise. */
export function jsonLength(ptr: usize, len: i32, path: string): i32 {
  let v = locate(ptr, len, path);
  if (v < 0) return -1;
  let c = byteAt(v);
  if (c == C_LBRACKET) {
    let p = skipWs(v + 1);
    if (byteAt(p) == C_RBRACKET) return 0;
    let n = 1;
    while (true) {
      p = skipWs(parseValue(p, 0));
      if (byteAt(p) != C_COMMA) return n;
      p = skipWs(p + 1);
      n++;
    }
  }
  if (c != C_LBRACE) return -1;
  let p = skipWs(v + 1);
  if (byteAt(p) == C_RBRACE) return 0;
  let n = 0;
  while (true) {
    // member at p: key [ks, ke)
    let ks = p + 1;
    let ke = scanString(p) - 1;
    p = skipWs(parseValue(skipWs(skipWs(ke + 1) + 1), 0));
    let more = byteAt(p) == C_COMMA;
    if (more) p = skipWs(p + 1);
    // counted only if no later member repeats the key (quadratic, rare)
    let dup = false;
    let r = p;
    while (more) {
      let rs = r + 1;
      let re = scanString(r) - 1;
      if (keyEqualsKey(ks, ke, rs, re)) {
        dup = true;
        break;
      }
      r = skipWs(parseValue(skipWs(skipWs(re + 1) + 1), 0));
      if (byteAt(r) != C_COMMA) break;
      r = skipWs(r + 1);
    }
    if (!dup) n++;
    if (!more) return n;
  }
  return n; // not reached (keeps AS flow analysis happy)
}

// ---------------------------------------------------------------------------
// Indexed documents

/**
 * A document read many times, such as the plugin's config during init
 * ("rules.0.topic", "rules.1.topic", ...). The functions above validate the
 * whole document and walk it from the start on every call, right for a payload
 * read once or twice per message but quadratic for a config: auth ran out of
 * its init budget at about 100 users. A JsonIndex validates once and records,
 * for each object and array a lookup passes through, where its members or
 * elements start, so each later lookup costs its path, not the document.
 * Same answers as the functions above. The bytes must not change while the
 * index is in use; it allocates its maps in the plugin's heap.
 */
export class JsonIndex {
  readonly valid: bool;
  private objects: Map<i32, Map<string, i32>> = new Map();
  private arrays: Map<i32, i32[]> = new Map();

  constructor(readonly ptr: usize, readonly len: i32) {
    this.valid = validate(ptr, len);
  }

  find(path: string): i64 { return findAt(this.at(path)); }
  type(path: string): i32 { return typeAt(this.at(path)); }
  number(path: string, fallback: f64): f64 { return numberAt(this.at(path), fallback); }
  string(path: string, fallback: string | null): string | null { return stringAt(this.at(path), fallback); }
  bool(path: string, fallback: bool): bool { return boolAt(this.at(path), fallback); }
  has(path: string): bool { return this.at(path) >= 0; }

  /** Array length, or number of distinct keys of an object; -1 otherwise. */
  length(path: string): i32 {
    let v = this.at(path);
    if (v < 0) return -1;
    let c = byteAt(v);
    if (c == C_LBRACKET) return this.elements(v).length;
    if (c == C_LBRACE) return this.members(v).size;
    return -1;
  }

  // Start of the value at path, or -1; leaves this document current for the helpers.
  private at(path: string): i32 {
    if (!this.valid) return -1;
    setDocument(this.ptr, this.len);
    return walk(path, this);
  }

  // Start of the member `key` of the object at v, or -1 (for walk).
  member(v: i32, key: string): i32 {
    let members = this.members(v);
    return members.has(key) ? members.get(key) : -1;
  }

  // Start of element idx of the array at v, or -1 (for walk).
  element(v: i32, idx: i32): i32 {
    let elements = this.elements(v);
    return idx >= 0 && idx < elements.length ? unchecked(elements[idx]) : -1;
  }

  // Unescaped key -> start of its value, for the object at v; a later duplicate wins.
  private members(v: i32): Map<string, i32> {
    if (this.objects.has(v)) return this.objects.get(v);
    let members = new Map<string, i32>();
    let p = skipWs(v + 1);
    if (byteAt(p) != C_RBRACE) {
      while (true) {
        let ks = p + 1;
        let ke = scanString(p) - 1;
        p = skipWs(skipWs(ke + 1) + 1);
        members.set(buildString(ks, ke), p);
        p = skipWs(parseValue(p, 0));
        if (byteAt(p) != C_COMMA) break;
        p = skipWs(p + 1);
      }
    }
    this.objects.set(v, members);
    return members;
  }

  // Start of each element of the array at v.
  private elements(v: i32): i32[] {
    if (this.arrays.has(v)) return this.arrays.get(v);
    let elements = new Array<i32>();
    let p = skipWs(v + 1);
    if (byteAt(p) != C_RBRACKET) {
      while (true) {
        elements.push(p);
        p = skipWs(parseValue(p, 0));
        if (byteAt(p) != C_COMMA) break;
        p = skipWs(p + 1);
      }
    }
    this.arrays.set(v, elements);
    return elements;
  }
}
