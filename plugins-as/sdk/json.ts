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
// Uint8Array; `test/sdk-json-topic.test.ts` checks both agree bit-for-bit with
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
// Number conversion lives in json-number.ts.
import { jsonNumberValue } from "./json-number";

export enum JsonType {
  Missing = 0,
  Null = 1,
  Bool = 2,
  Number = 3,
  String = 4,
  Array = 5,
  Object = 6,
}

const MAX_DEPTH: i32 = 64;

const C_TAB: i32 = 0x09;
const C_LF: i32 = 0x0a;
const C_CR: i32 = 0x0d;
const C_SPACE: i32 = 0x20;
const C_QUOTE: i32 = 0x22;
const C_PLUS: i32 = 0x2b;
const C_COMMA: i32 = 0x2c;
const C_MINUS: i32 = 0x2d;
const C_DOT: i32 = 0x2e;
const C_SLASH: i32 = 0x2f;
const C_0: i32 = 0x30;
const C_1: i32 = 0x31;
const C_9: i32 = 0x39;
const C_COLON: i32 = 0x3a;
const C_E: i32 = 0x45;
const C_LBRACKET: i32 = 0x5b;
const C_BACKSLASH: i32 = 0x5c;
const C_RBRACKET: i32 = 0x5d;
const C_e: i32 = 0x65;
const C_f: i32 = 0x66;
const C_n: i32 = 0x6e;
const C_t: i32 = 0x74;
const C_u: i32 = 0x75;
const C_LBRACE: i32 = 0x7b;
const C_RBRACE: i32 = 0x7d;

// Current document and a second return value for decodeAt.
let gBase: usize = 0;
let gLen: i32 = 0;
let gNext: i32 = 0;

// What the last validate() learnt, so a lookup in the document it just checked
// needs no second pass: the document and its validity, and (while gRootN >= 0)
// the members of its root object — key content [start, end) and value start,
// three i32 per member, in document order. gRootN is -1 when the root is not an
// object or has more than ROOT_CAP members (lookups then scan, as before).
const ROOT_CAP: i32 = 32;
const ROOT_TABLE = memory.data(ROOT_CAP * 12);
let gRootN: i32 = -1;
let gRecording = false;
let gDocBase: usize = 0;
let gDocLen: i32 = -1;
let gDocValid = false;
// Set by jsonTrustNext: the next lookup may reuse the last validation.
let gTrustNext = false;

function recordRootMember(ks: i32, ke: i32, v: i32): void {
  if (gRootN < 0) return;
  if (gRootN >= ROOT_CAP) {
    gRootN = -1;
    return;
  }
  let at = ROOT_TABLE + <usize>(gRootN * 12);
  store<i32>(at, ks);
  store<i32>(at, ke, 4);
  store<i32>(at, v, 8);
  gRootN++;
}

// @ts-ignore: decorator
@inline function byteAt(i: i32): i32 {
  return <i32>load<u8>(gBase + <usize>i);
}

// @ts-ignore: decorator
@inline function peek(i: i32): i32 {
  return i < gLen ? <i32>load<u8>(gBase + <usize>i) : -1;
}

// @ts-ignore: decorator
@inline function charAt(s: string, i: i32): i32 {
  return <i32>load<u16>(changetype<usize>(s) + (<usize>i << 1));
}

// @ts-ignore: decorator
@inline function isDigit(c: i32): bool {
  return <u32>(c - C_0) < 10;
}

function hexVal(c: i32): i32 {
  if (<u32>(c - C_0) < 10) return c - C_0;
  let l = c | 0x20;
  if (<u32>(l - 0x61) < 6) return l - 0x61 + 10;
  return -1;
}

function skipWs(p: i32): i32 {
  while (p < gLen) {
    let c = byteAt(p);
    if (c != C_SPACE && c != C_LF && c != C_CR && c != C_TAB) break;
    p++;
  }
  return p;
}

// Length of the well-formed UTF-8 sequence starting at p (lead byte >= 0x80),
// or 0 when it is ill-formed (Unicode Table 3-7).
function utf8SeqLen(p: i32): i32 {
  let c = byteAt(p);
  if (c < 0xc2) return 0;
  if (c < 0xe0) {
    if (p + 1 >= gLen) return 0;
    return (byteAt(p + 1) & 0xc0) == 0x80 ? 2 : 0;
  }
  if (c < 0xf0) {
    if (p + 2 >= gLen) return 0;
    let b1 = byteAt(p + 1);
    let lo = c == 0xe0 ? 0xa0 : 0x80;
    let hi = c == 0xed ? 0x9f : 0xbf;
    if (b1 < lo || b1 > hi) return 0;
    return (byteAt(p + 2) & 0xc0) == 0x80 ? 3 : 0;
  }
  if (c < 0xf5) {
    if (p + 3 >= gLen) return 0;
    let b1 = byteAt(p + 1);
    let lo = c == 0xf0 ? 0x90 : 0x80;
    let hi = c == 0xf4 ? 0x8f : 0xbf;
    if (b1 < lo || b1 > hi) return 0;
    if ((byteAt(p + 2) & 0xc0) != 0x80) return 0;
    return (byteAt(p + 3) & 0xc0) == 0x80 ? 4 : 0;
  }
  return 0;
}

// Position of the first byte at or after p that the string scanner must look
// at (a quote, a backslash, a control character or a non-ASCII byte), 16 bytes
// per step with Wasm SIMD; p itself when fewer than 16 bytes are left. Built
// without SIMD (asc without `--enable simd`) it is the identity and the byte
// loop below does all the work: the answers are the same either way.
// @ts-ignore: decorator
@inline function skipPlain(p: i32): i32 {
  if (ASC_FEATURE_SIMD) {
    const quote = i8x16.splat(<i8>C_QUOTE);
    const backslash = i8x16.splat(<i8>C_BACKSLASH);
    const space = i8x16.splat(<i8>C_SPACE);
    const printable = i8x16.splat(0x5f); // plain ASCII 0x20..0x7f: (b - 0x20) as u8 <= 0x5f
    // 64 bytes per iteration while they last (fewer loop-header fuel checks), then 16.
    let last64 = gLen - 64;
    while (p <= last64) {
      let at = gBase + <usize>p;
      let a = v128.load(at);
      let b = v128.load(at, 16);
      let c = v128.load(at, 32);
      let d = v128.load(at, 48);
      let sa = v128.or(v128.or(i8x16.eq(a, quote), i8x16.eq(a, backslash)), i8x16.gt_u(i8x16.sub(a, space), printable));
      let sb = v128.or(v128.or(i8x16.eq(b, quote), i8x16.eq(b, backslash)), i8x16.gt_u(i8x16.sub(b, space), printable));
      let sc = v128.or(v128.or(i8x16.eq(c, quote), i8x16.eq(c, backslash)), i8x16.gt_u(i8x16.sub(c, space), printable));
      let sd = v128.or(v128.or(i8x16.eq(d, quote), i8x16.eq(d, backslash)), i8x16.gt_u(i8x16.sub(d, space), printable));
      if (v128.any_true(v128.or(v128.or(sa, sb), v128.or(sc, sd)))) {
        let mask = <u64>i8x16.bitmask(sa) | (<u64>i8x16.bitmask(sb) << 16) |
                   (<u64>i8x16.bitmask(sc) << 32) | (<u64>i8x16.bitmask(sd) << 48);
        return p + <i32>ctz(mask);
      }
      p += 64;
    }
    let last = gLen - 16;
    while (p <= last) {
      let v = v128.load(gBase + <usize>p);
      let special = v128.or(
        v128.or(i8x16.eq(v, quote), i8x16.eq(v, backslash)),
        i8x16.gt_u(i8x16.sub(v, space), printable),
      );
      if (v128.any_true(special)) return p + ctz(i8x16.bitmask(special));
      p += 16;
    }
  }
  return p;
}

// p at the opening quote; returns the index after the closing quote, or -1.
function scanString(p: i32): i32 {
  p++;
  while (true) {
    p = skipPlain(p);
    if (p >= gLen) return -1;
    let c = byteAt(p);
    if (c == C_QUOTE) return p + 1;
    if (c == C_BACKSLASH) {
      p++;
      if (p >= gLen) return -1;
      let e = byteAt(p);
      if (e == C_u) {
        if (p + 4 >= gLen) return -1;
        if (hexVal(byteAt(p + 1)) < 0 || hexVal(byteAt(p + 2)) < 0 ||
            hexVal(byteAt(p + 3)) < 0 || hexVal(byteAt(p + 4)) < 0) return -1;
        p += 5;
      } else if (e == C_QUOTE || e == C_BACKSLASH || e == C_SLASH || e == 0x62 ||
                 e == C_f || e == C_n || e == 0x72 || e == C_t) {
        p++;
      } else {
        return -1;
      }
    } else if (c < 0x20) {
      return -1;
    } else if (c < 0x80) {
      p++;
    } else {
      let n = utf8SeqLen(p);
      if (n == 0) return -1;
      p += n;
    }
  }
}

// p at '-' or a digit; returns the end of the number, or -1.
function scanNumber(p: i32): i32 {
  if (byteAt(p) == C_MINUS) p++;
  let c = peek(p);
  if (c == C_0) {
    p++;
  } else if (c >= C_1 && c <= C_9) {
    p++;
    while (isDigit(peek(p))) p++;
  } else {
    return -1;
  }
  if (peek(p) == C_DOT) {
    p++;
    if (!isDigit(peek(p))) return -1;
    while (isDigit(peek(p))) p++;
  }
  c = peek(p);
  if (c == C_e || c == C_E) {
    p++;
    c = peek(p);
    if (c == C_PLUS || c == C_MINUS) p++;
    if (!isDigit(peek(p))) return -1;
    while (isDigit(peek(p))) p++;
  }
  return p;
}

function scanLiteral(p: i32, a: i32, b: i32, c: i32, d: i32, e: i32, n: i32): i32 {
  if (p + n > gLen) return -1;
  if (byteAt(p + 1) != a || byteAt(p + 2) != b || byteAt(p + 3) != c) return -1;
  if (n == 5 && byteAt(p + 4) != d) return -1;
  return p + n;
}

// Parses (and validates) the value starting at p (no leading whitespace).
// Returns the index just after it, or -1. `depth` = containers already open.
function parseValue(p: i32, depth: i32): i32 {
  if (p >= gLen) return -1;
  let c = byteAt(p);
  if (c == C_LBRACE) {
    if (depth >= MAX_DEPTH) return -1;
    p = skipWs(p + 1);
    if (peek(p) == C_RBRACE) return p + 1;
    while (true) {
      if (peek(p) != C_QUOTE) return -1;
      let ks = p + 1;
      p = scanString(p);
      if (p < 0) return -1;
      let ke = p - 1;
      p = skipWs(p);
      if (peek(p) != C_COLON) return -1;
      p = skipWs(p + 1);
      if (depth == 0 && gRecording) recordRootMember(ks, ke, p);
      p = parseValue(p, depth + 1);
      if (p < 0) return -1;
      p = skipWs(p);
      c = peek(p);
      if (c == C_COMMA) {
        p = skipWs(p + 1);
        continue;
      }
      return c == C_RBRACE ? p + 1 : -1;
    }
  }
  if (c == C_LBRACKET) {
    if (depth >= MAX_DEPTH) return -1;
    p = skipWs(p + 1);
    if (peek(p) == C_RBRACKET) return p + 1;
    while (true) {
      p = parseValue(p, depth + 1);
      if (p < 0) return -1;
      p = skipWs(p);
      c = peek(p);
      if (c == C_COMMA) {
        p = skipWs(p + 1);
        continue;
      }
      return c == C_RBRACKET ? p + 1 : -1;
    }
  }
  if (c == C_QUOTE) return scanString(p);
  if (c == C_t) return scanLiteral(p, 0x72, 0x75, 0x65, 0, 0, 4); // true
  if (c == C_f) return scanLiteral(p, 0x61, 0x6c, 0x73, 0x65, 0, 5); // false
  if (c == C_n) return scanLiteral(p, 0x75, 0x6c, 0x6c, 0, 0, 4); // null
  if (c == C_MINUS || isDigit(c)) return scanNumber(p);
  return -1;
}

function validate(ptr: usize, len: i32): bool {
  gBase = ptr;
  gLen = len;
  gDocBase = ptr;
  gDocLen = len;
  gRootN = 0;
  gRecording = true;
  let v = skipWs(0);
  let p = len > 0 ? parseValue(v, 0) : -1;
  gRecording = false;
  gDocValid = p >= 0 && skipWs(p) == len;
  if (!gDocValid || byteAt(v) != C_LBRACE) gRootN = -1;
  return gDocValid;
}

// Validates (ptr, len) unless jsonTrustNext vouched that the last validation
// was of these same unchanged bytes; leaves the document current either way.
function check(ptr: usize, len: i32): bool {
  let trust = gTrustNext;
  gTrustNext = false;
  if (trust && ptr == gDocBase && len == gDocLen) {
    gBase = ptr;
    gLen = len;
    return gDocValid;
  }
  return validate(ptr, len);
}

// Start of the value of the last root member whose key equals path[s, e), or
// -1, from the table validate() filled (the current document must be gDoc).
function rootLookup(path: string, s: i32, e: i32): i32 {
  for (let i = gRootN - 1; i >= 0; i--) {
    let at = ROOT_TABLE + <usize>(i * 12);
    if (keyEqualsPath(load<i32>(at), load<i32>(at, 4), path, s, e)) return load<i32>(at, 8);
  }
  return -1;
}

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

// Key content [ks, ke) equals path characters [s, e)?
function keyEqualsPath(ks: i32, ke: i32, path: string, s: i32, e: i32): bool {
  let p = ks;
  let i = s;
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

// Two keys' contents [as, ae) and [bs, be) are equal after unescaping?
function keyEqualsKey(sa: i32, ea: i32, sb: i32, eb: i32): bool {
  let pa = sa;
  let pb = sb;
  let penda = -1;
  let pendb = -1;
  while (true) {
    let ua: i32 = -1;
    if (penda >= 0) {
      ua = penda;
      penda = -1;
    } else if (pa < ea) {
      let cp = decodeAt(pa);
      pa = gNext;
      if (cp >= 0x10000) {
        cp -= 0x10000;
        ua = 0xd800 | (cp >> 10);
        penda = 0xdc00 | (cp & 0x3ff);
      } else {
        ua = cp;
      }
    }
    let ub: i32 = -1;
    if (pendb >= 0) {
      ub = pendb;
      pendb = -1;
    } else if (pb < eb) {
      let cp = decodeAt(pb);
      pb = gNext;
      if (cp >= 0x10000) {
        cp -= 0x10000;
        ub = 0xd800 | (cp >> 10);
        pendb = 0xdc00 | (cp & 0x3ff);
      } else {
        ub = cp;
      }
    }
    if (ua != ub) return false;
    if (ua < 0) return true;
  }
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
    if (c == C_LBRACE && index === null && s == 0 && gRootN >= 0 && gBase == gDocBase && gLen == gDocLen) v = rootLookup(path, s, e);
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
// Strings

function buildString(s: i32, e: i32): string {
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

// ---------------------------------------------------------------------------
// Public API

/** The whole document is valid JSON (strict RFC 8259, UTF-8, depth <= 64). */
export function jsonValid(ptr: usize, len: i32): bool {
  return check(ptr, len);
}

/**
 * In a document already known to be valid (jsonValid): p at the opening quote
 * of a string, the index just after its closing quote. Skips the content 16 to
 * 64 bytes at a time (Wasm SIMD), for plugins that walk a validated document
 * themselves. Checks nothing: on an invalid document the answer is
 * meaningless (at most len).
 */
export function jsonStringEnd(ptr: usize, len: i32, p: i32): i32 {
  gBase = ptr;
  gLen = len;
  p++;
  while (true) {
    p = skipPlain(p);
    if (p >= len) return len;
    let c = byteAt(p);
    if (c == C_QUOTE) return p + 1;
    p += c == C_BACKSLASH ? 2 : 1;
  }
  return len; // not reached (keeps AS flow analysis happy)
}

/**
 * For the SDK's Message: the next json* call on the same (ptr, len) as the
 * last validation may reuse that validation (and the root member table it
 * recorded), because the caller knows those bytes have not changed since —
 * they are this hook call's payload. Affects one call; any other document
 * validates as usual.
 */
export function jsonTrustNext(): void {
  gTrustNext = true;
}

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
    gBase = this.ptr;
    gLen = this.len;
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
