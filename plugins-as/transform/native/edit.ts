// transform, native twin of edit.ts: locating and cutting values in a
// document already known to be valid JSON (see edit.ts for why every value at
// a path, not only the last of duplicate keys).
import { jsonString } from "../../../host/native/index.js";

const encoder = new TextEncoder();

/** A field path ("a.b.0.c") split once at init. Keys compare as the SDK's do (after unescaping). */
export class FieldPath {
  segments: string[] = [];
  utf8: Uint8Array[] = [];
  // Canonical array index of each segment ("0", "17"), or -1.
  index: number[] = [];

  constructor(public text: string) {
    const parts = text.split(".");
    for (let i = 0; i < parts.length; i++) {
      const s = parts[i]!;
      this.segments.push(s);
      this.utf8.push(encoder.encode(s));
      this.index.push(canonicalIndex(s));
    }
  }
}

function canonicalIndex(s: string): number {
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

function isWs(c: number): boolean {
  return c == 0x20 || c == 0x0a || c == 0x0d || c == 0x09;
}

function skipWs(b: Uint8Array, len: number, p: number): number {
  while (p < len && isWs(b[p]!)) p++;
  return p;
}

function skipWsBack(b: Uint8Array, p: number): number {
  while (p >= 0 && isWs(b[p]!)) p--;
  return p;
}

/** p at an opening quote; the index after the closing quote. */
function stringEnd(b: Uint8Array, p: number): number {
  p++;
  for (;;) {
    const c = b[p]!;
    if (c == 0x22) return p + 1;
    p += c == 0x5c ? 2 : 1;
  }
}

/** p at the first byte of a value; the index after its last byte. */
function valueEnd(b: Uint8Array, len: number, p: number): number {
  const c = b[p]!;
  if (c == 0x22) return stringEnd(b, p);
  if (c == 0x7b || c == 0x5b) {
    let depth = 0;
    for (;;) {
      const x = b[p]!;
      if (x == 0x22) {
        p = stringEnd(b, p);
        continue;
      }
      if (x == 0x7b || x == 0x5b) {
        depth++;
      } else if (x == 0x7d || x == 0x5d) {
        depth--;
        if (depth == 0) return p + 1;
      }
      p++;
    }
  }
  while (p < len) {
    const x = b[p]!;
    if (x == 0x2c || x == 0x7d || x == 0x5d || isWs(x)) break;
    p++;
  }
  return p;
}

function keyMatches(b: Uint8Array, start: number, end: number, path: FieldPath, level: number): boolean {
  // Raw bytes between the quotes, unless the key has escapes.
  let escaped = false;
  for (let i = start + 1; i < end - 1; i++) {
    if (b[i] == 0x5c) {
      escaped = true;
      break;
    }
  }
  if (escaped) {
    const key = jsonString(b.subarray(start, end), "", null);
    return key !== null && key == path.segments[level];
  }
  const want = path.utf8[level]!;
  const n = end - start - 2;
  return n == want.length && Buffer.compare(b.subarray(start + 1, end - 1), want) == 0;
}

function walk(b: Uint8Array, len: number, p: number, path: FieldPath, level: number, out: number[]): void {
  if (level == path.segments.length) {
    out.push(p);
    out.push(valueEnd(b, len, p));
    return;
  }
  const c = b[p];
  if (c == 0x7b) {
    p = skipWs(b, len, p + 1);
    if (b[p] == 0x7d) return;
    for (;;) {
      const keyEnd = stringEnd(b, p);
      const value = skipWs(b, len, skipWs(b, len, keyEnd) + 1);
      const end = valueEnd(b, len, value);
      if (keyMatches(b, p, keyEnd, path, level)) walk(b, len, value, path, level + 1, out);
      p = skipWs(b, len, end);
      if (b[p] != 0x2c) return;
      p = skipWs(b, len, p + 1);
    }
  } else if (c == 0x5b) {
    const want = path.index[level]!;
    if (want < 0) return;
    p = skipWs(b, len, p + 1);
    if (b[p] == 0x5d) return;
    for (let i = 0; ; i++) {
      if (i == want) {
        walk(b, len, p, path, level + 1, out);
        return;
      }
      p = skipWs(b, len, valueEnd(b, len, p));
      if (b[p] != 0x2c) return;
      p = skipWs(b, len, p + 1);
    }
  }
}

/**
 * Every value at `path` in the valid document, duplicates included, in
 * document order, as start/end pairs in `out` (cleared first).
 */
export function findAll(b: Uint8Array, len: number, path: FieldPath, out: number[]): void {
  out.length = 0;
  walk(b, len, skipWs(b, len, 0), path, 0, out);
}

/**
 * The bytes to cut to remove the member (key and value) or array element whose
 * value spans [start, end), with one adjacent comma, as [from, to].
 */
export function removalRange(b: Uint8Array, len: number, start: number, end: number): [number, number] {
  let member = start;
  const p = skipWsBack(b, start - 1);
  if (b[p] == 0x3a) {
    // An object member: back over the key to its opening quote (one not escaped).
    let q = skipWsBack(b, p - 1) - 1;
    for (;;) {
      if (b[q] == 0x22) {
        let slashes = 0;
        while (b[q - 1 - slashes] == 0x5c) slashes++;
        if ((slashes & 1) == 0) break;
      }
      q--;
    }
    member = q;
  }
  const before = skipWsBack(b, member - 1);
  if (b[before] == 0x2c) return [before, end];
  const after = skipWs(b, len, end);
  if (after < len && b[after] == 0x2c) return [member, skipWs(b, len, after + 1)];
  return [member, end];
}
