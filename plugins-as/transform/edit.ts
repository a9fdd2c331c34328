// Locating and cutting values in a JSON document that is already known to be
// valid (checked once with the SDK's jsonValid), so the scans here can be
// simple. Unlike the SDK's jsonFind, which gives the LAST of duplicate keys,
// findAll returns EVERY value at a path: a redaction must not leave the first
// "password" of {"password":"s3cret","password":"x"} behind.
import { jsonString, jsonStringEnd } from "../sdk";

/** A field path ("a.b.0.c") split once at init. Keys compare as the SDK's do (after unescaping). */
export class FieldPath {
  segments: string[] = [];
  utf8: Uint8Array[] = [];
  // Canonical array index of each segment ("0", "17"), or -1.
  index: i32[] = [];

  constructor(public text: string) {
    const parts = text.split(".");
    for (let i = 0; i < parts.length; i++) {
      const s = unchecked(parts[i]);
      this.segments.push(s);
      this.utf8.push(Uint8Array.wrap(String.UTF8.encode(s)));
      this.index.push(canonicalIndex(s));
    }
  }
}

function canonicalIndex(s: string): i32 {
  const n = s.length;
  if (n == 0 || n > 9 || (n > 1 && s.charCodeAt(0) == 0x30)) return -1;
  let v = 0;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return -1;
    v = v * 10 + (c - 0x30);
  }
  return v;
}

// @ts-ignore: decorator
@inline function at(ptr: usize, i: i32): i32 {
  return <i32>load<u8>(ptr + <usize>i);
}

function isWs(c: i32): bool {
  return c == 0x20 || c == 0x0a || c == 0x0d || c == 0x09;
}

export function skipWs(ptr: usize, len: i32, p: i32): i32 {
  while (p < len && isWs(at(ptr, p))) p++;
  return p;
}

function skipWsBack(ptr: usize, p: i32): i32 {
  while (p >= 0 && isWs(at(ptr, p))) p--;
  return p;
}

/** p at an opening quote; the index after the closing quote (the SDK's SIMD skip: long strings are most of a reading). */
// @ts-ignore: decorator
@inline function stringEnd(ptr: usize, len: i32, p: i32): i32 {
  return jsonStringEnd(ptr, len, p);
}

/** p at the first byte of a value; the index after its last byte. */
function valueEnd(ptr: usize, len: i32, p: i32): i32 {
  const c = at(ptr, p);
  if (c == 0x22) return stringEnd(ptr, len, p);
  if (c == 0x7b || c == 0x5b) {
    let depth = 0;
    while (true) {
      const b = at(ptr, p);
      if (b == 0x22) {
        p = stringEnd(ptr, len, p);
        continue;
      }
      if (b == 0x7b || b == 0x5b) {
        depth++;
      } else if (b == 0x7d || b == 0x5d) {
        depth--;
        if (depth == 0) return p + 1;
      }
      p++;
    }
  }
  while (p < len) {
    const b = at(ptr, p);
    if (b == 0x2c || b == 0x7d || b == 0x5d || isWs(b)) break;
    p++;
  }
  return p;
}

function keyMatches(ptr: usize, start: i32, end: i32, path: FieldPath, level: i32): bool {
  // Raw bytes between the quotes, unless the key has escapes.
  let escaped = false;
  for (let i = start + 1; i < end - 1; i++) {
    if (at(ptr, i) == 0x5c) {
      escaped = true;
      break;
    }
  }
  if (escaped) {
    const key = jsonString(ptr + <usize>start, end - start, "", null);
    return key !== null && key == unchecked(path.segments[level]);
  }
  const want = unchecked(path.utf8[level]);
  const n = end - start - 2;
  return n == want.length && memory.compare(ptr + <usize>(start + 1), want.dataStart, <usize>n) == 0;
}

function walk(ptr: usize, len: i32, p: i32, path: FieldPath, level: i32, out: i32[]): void {
  if (level == path.segments.length) {
    out.push(p);
    out.push(valueEnd(ptr, len, p));
    return;
  }
  const c = at(ptr, p);
  if (c == 0x7b) {
    p = skipWs(ptr, len, p + 1);
    if (at(ptr, p) == 0x7d) return;
    while (true) {
      const keyEnd = stringEnd(ptr, len, p);
      const value = skipWs(ptr, len, skipWs(ptr, len, keyEnd) + 1);
      const end = valueEnd(ptr, len, value);
      if (keyMatches(ptr, p, keyEnd, path, level)) walk(ptr, len, value, path, level + 1, out);
      p = skipWs(ptr, len, end);
      if (at(ptr, p) != 0x2c) return;
      p = skipWs(ptr, len, p + 1);
    }
  } else if (c == 0x5b) {
    const want = unchecked(path.index[level]);
    if (want < 0) return;
    p = skipWs(ptr, len, p + 1);
    if (at(ptr, p) == 0x5d) return;
    for (let i = 0; ; i++) {
      if (i == want) {
        walk(ptr, len, p, path, level + 1, out);
        return;
      }
      p = skipWs(ptr, len, valueEnd(ptr, len, p));
      if (at(ptr, p) != 0x2c) return;
      p = skipWs(ptr, len, p + 1);
    }
  }
}

/**
 * Every value at `path` in the valid document (ptr, len), duplicates included,
 * in document order, as start/end pairs in `out` (cleared first).
 */
export function findAll(ptr: usize, len: i32, path: FieldPath, out: i32[]): void {
  out.length = 0;
  walk(ptr, len, skipWs(ptr, len, 0), path, 0, out);
}

/**
 * The bytes to cut to remove the member (key and value) or array element whose
 * value spans [start, end), with one adjacent comma, packed as (from << 32) | to.
 */
export function removalRange(ptr: usize, len: i32, start: i32, end: i32): i64 {
  let member = start;
  let p = skipWsBack(ptr, start - 1);
  if (at(ptr, p) == 0x3a) {
    // An object member: back over the key to its opening quote (one not escaped).
    let q = skipWsBack(ptr, p - 1) - 1;
    while (true) {
      if (at(ptr, q) == 0x22) {
        let slashes = 0;
        while (at(ptr, q - 1 - slashes) == 0x5c) slashes++;
        if ((slashes & 1) == 0) break;
      }
      q--;
    }
    member = q;
  }
  const before = skipWsBack(ptr, member - 1);
  if (at(ptr, before) == 0x2c) return (<i64>before << 32) | <i64>end;
  const after = skipWs(ptr, len, end);
  if (after < len && at(ptr, after) == 0x2c) return (<i64>member << 32) | <i64>skipWs(ptr, len, after + 1);
  return (<i64>member << 32) | <i64>end;
}
