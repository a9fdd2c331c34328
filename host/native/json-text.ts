// wasmq native SDK — JSON reader, string content (TypeScript twin of
// plugins-as/sdk/json-text.ts).
//
// Decodes the content of strings in a validated document (UTF-8 and escapes)
// as UTF-16 code units, the way JSON.parse sees them: to compare keys with a
// path or with each other, and to build the string jsonString returns.
import { C_BACKSLASH, C_f, C_n, C_t, C_u, gDoc, byteAt, hexVal } from "./json-doc.js";

// Second return values of decodeAt (the next position) and nextUnit (the
// low surrogate still to come, or -1).
let gNext = 0;
let gPend = -1;

// One unit of validated string content at p: a code point from UTF-8, or one
// UTF-16 code unit from an escape. Sets gNext.
function decodeAt(p: number): number {
  const c = byteAt(p);
  if (c === C_BACKSLASH) {
    const e = byteAt(p + 1);
    gNext = p + 2;
    if (e === C_u) {
      gNext = p + 6;
      return (hexVal(byteAt(p + 2)) << 12) | (hexVal(byteAt(p + 3)) << 8) |
             (hexVal(byteAt(p + 4)) << 4) | hexVal(byteAt(p + 5));
    }
    if (e === 0x62) return 0x08; // \b
    if (e === C_f) return 0x0c;
    if (e === C_n) return 0x0a;
    if (e === 0x72) return 0x0d; // \r
    if (e === C_t) return 0x09;
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
function nextUnit(p: number, end: number, pend: number): number {
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

/** Key content [ks, ke) equals path characters [s, e)? (Written out, not through nextUnit: as in the AS twin, where this is the per-message lookup.) */
export function keyEqualsPath(ks: number, ke: number, path: string, s: number, e: number): boolean {
  let p = ks;
  let i = s;
  let pend = -1;
  for (;;) {
    let u: number;
    if (pend >= 0) {
      u = pend;
      pend = -1;
    } else if (p >= ke) {
      return i === e;
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
    if (i >= e || path.charCodeAt(i) !== u) return false;
    i++;
  }
}

/** Two keys' contents [sa, ea) and [sb, eb) are equal after unescaping? */
export function keyEqualsKey(sa: number, ea: number, sb: number, eb: number): boolean {
  let pa = sa;
  let pb = sb;
  let penda = -1;
  let pendb = -1;
  for (;;) {
    const ua = nextUnit(pa, ea, penda);
    pa = gNext;
    penda = gPend;
    const ub = nextUnit(pb, eb, pendb);
    pb = gNext;
    pendb = gPend;
    if (ua !== ub) return false;
    if (ua < 0) return true;
  }
}

const utf8 = new TextDecoder("utf-8", { ignoreBOM: true }); // keep a leading U+FEFF, as JSON.parse does

/** The string with content [s, e), unescaped. */
export function buildString(s: number, e: number): string {
  let plain = true;
  for (let i = s; i < e; i++) {
    if (gDoc[i] === C_BACKSLASH) {
      plain = false;
      break;
    }
  }
  // No escapes: the bytes are well-formed UTF-8 (validated), decode directly.
  if (plain) return utf8.decode(gDoc.subarray(s, e));
  let n = 0;
  let p = s;
  while (p < e) {
    const cp = decodeAt(p);
    p = gNext;
    n += cp >= 0x10000 ? 2 : 1;
  }
  const units = new Uint16Array(n);
  let o = 0;
  p = s;
  while (p < e) {
    let cp = decodeAt(p);
    p = gNext;
    if (cp >= 0x10000) {
      cp -= 0x10000;
      units[o++] = 0xd800 | (cp >> 10);
      units[o++] = 0xdc00 | (cp & 0x3ff);
    } else {
      units[o++] = cp;
    }
  }
  let out = "";
  for (let i = 0; i < n; i += 8192) {
    out += String.fromCharCode.apply(null, units.subarray(i, Math.min(n, i + 8192)) as unknown as number[]);
  }
  return out;
}
