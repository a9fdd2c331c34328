// wasmq plugin SDK — JSON reader, string content (AssemblyScript).
//
// Decodes the content of strings in a validated document (UTF-8 and escapes)
// as UTF-16 code units, the way JSON.parse sees them: to compare keys with a
// path or with each other, and to build the string jsonString returns.
// Twin: host/native/json-text.ts.
import { C_BACKSLASH, C_f, C_n, C_t, C_u, byteAt, charAt, hexVal } from "./json-doc";

// Second return values of decodeAt (the next position) and nextUnit (the
// low surrogate still to come, or -1).
let gNext: i32 = 0;
let gPend: i32 = -1;

// Decodes one unit of string content at p (inside a validated string):
// a code point from UTF-8, or one UTF-16 code unit from an escape.
// Sets gNext to the following position.
function decodeAt(p: i32): i32 {
  let c = byteAt(p);
  if (c == C_BACKSLASH) {
    let e = byteAt(p + 1);
    gNext = p + 2;
    if (e == C_u) {
      gNext = p + 6;
      return (hexVal(byteAt(p + 2)) << 12) | (hexVal(byteAt(p + 3)) << 8) |
             (hexVal(byteAt(p + 4)) << 4) | hexVal(byteAt(p + 5));
    }
    if (e == 0x62) return 0x08; // \b
    if (e == C_f) return 0x0c;
    if (e == C_n) return 0x0a;
    if (e == 0x72) return 0x0d; // \r
    if (e == C_t) return 0x09;
    return e; // \" \\ \/
  }
  if (c < 0x80) {
    gNext = p + 1;
    return c;
  }
  if (c < 0xe0) {
    gNext = p + 2;
    return ((c & 0x1f) << 6) | (byteAt(p + 1) & 0x3f);
  }
  if (c < 0xf0) {
    gNext = p + 3;
    return ((c & 0x0f) << 12) | ((byteAt(p + 1) & 0x3f) << 6) | (byteAt(p + 2) & 0x3f);
  }
  gNext = p + 4;
  return ((c & 0x07) << 18) | ((byteAt(p + 1) & 0x3f) << 12) |
         ((byteAt(p + 2) & 0x3f) << 6) | (byteAt(p + 3) & 0x3f);
}

// The next UTF-16 code unit of string content [p, end), where `pend` is the
// low surrogate still owed by the last code point (-1: none); -1 at the end.
// Sets gNext to the position after it and gPend to the surrogate now owed.
// @ts-ignore: decorator
@inline function nextUnit(p: i32, end: i32, pend: i32): i32 {
  gNext = p;
  gPend = -1;
  if (pend >= 0) return pend;
  if (p >= end) return -1;
  let cp = decodeAt(p);
  if (cp < 0x10000) return cp;
  cp -= 0x10000;
  gPend = 0xdc00 | (cp & 0x3ff);
  return 0xd800 | (cp >> 10);
}

// Key content [ks, ke) equals path characters [s, e)? Written out rather than
// through nextUnit: this is the per-message lookup, and nextUnit's second
// return values (globals) cost fuel on every key character.
export function keyEqualsPath(ks: i32, ke: i32, path: string, s: i32, e: i32): bool {
  // Every UTF-16 unit of a key takes at least one byte of its text.
  if (ke - ks < e - s) return false;
  let p = ks;
  let i = s;
  // Plain ASCII (no escape, no multi-byte sequence) is one unit per byte: compared
  // in place, without a decodeAt call per character. Most keys are all of that.
  while (p < ke) {
    let c = byteAt(p);
    if (c >= 0x80 || c == C_BACKSLASH) break;
    if (i >= e || charAt(path, i) != c) return false;
    p++;
    i++;
  }
  let pend = -1;
  while (true) {
    let u: i32;
    if (pend >= 0) {
      u = pend;
      pend = -1;
    } else if (p >= ke) {
      return i == e;
    } else {
      let cp = decodeAt(p);
      p = gNext;
      if (cp >= 0x10000) {
        cp -= 0x10000;
        u = 0xd800 | (cp >> 10);
        pend = 0xdc00 | (cp & 0x3ff);
      } else {
        u = cp;
      }
    }
    if (i >= e || charAt(path, i) != u) return false;
    i++;
  }
}

// Two keys' contents [sa, ea) and [sb, eb) are equal after unescaping?
export function keyEqualsKey(sa: i32, ea: i32, sb: i32, eb: i32): bool {
  let pa = sa;
  let pb = sb;
  let penda = -1;
  let pendb = -1;
  while (true) {
    let ua = nextUnit(pa, ea, penda);
    pa = gNext;
    penda = gPend;
    let ub = nextUnit(pb, eb, pendb);
    pb = gNext;
    pendb = gPend;
    if (ua != ub) return false;
    if (ua < 0) return true;
  }
  return false; // not reached (keeps AS flow analysis happy)
}

// The string with content [s, e), unescaped. Allocates it.
export function buildString(s: i32, e: i32): string {
  let n = 0;
  let p = s;
  while (p < e) {
    let cp = decodeAt(p);
    p = gNext;
    n += cp >= 0x10000 ? 2 : 1;
  }
  let out = changetype<string>(__new(<usize>n << 1, idof<string>()));
  let o = changetype<usize>(out);
  p = s;
  while (p < e) {
    let cp = decodeAt(p);
    p = gNext;
    if (cp >= 0x10000) {
      cp -= 0x10000;
      store<u16>(o, <u16>(0xd800 | (cp >> 10)));
      store<u16>(o, <u16>(0xdc00 | (cp & 0x3ff)), 2);
      o += 4;
    } else {
      store<u16>(o, <u16>cp);
      o += 2;
    }
  }
  return out;
}
