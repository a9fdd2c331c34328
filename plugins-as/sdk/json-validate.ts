// wasmq plugin SDK — JSON reader, validation (AssemblyScript).
//
// Checks a whole document against RFC 8259 (strict, well-formed UTF-8, depth
// <= 64) in one pass, and remembers what it learnt for the lookups in json.ts:
// which document it checked, whether it was valid, and where the members of
// its root object start (so a lookup of a top-level key needs no second
// scan). The semantics are described in json.ts. Twin: host/native/json-validate.ts.
import {
  C_BACKSLASH, C_COLON, C_COMMA, C_E, C_LBRACE, C_LBRACKET, C_MINUS, C_DOT, C_PLUS, C_QUOTE, C_RBRACE,
  C_RBRACKET, C_SLASH, C_SPACE, C_0, C_1, C_9, C_e, C_f, C_n, C_t, C_u,
  gBase, gLen, setDocument, byteAt, peek, isDigit, hexVal, skipWs,
} from "./json-doc";

const MAX_DEPTH: i32 = 64;

// What the last validate() learnt, so a lookup in the document it just checked
// needs no second pass: the document and its validity, and (while gRootN >= 0)
// the members of its root object — key content [start, end) and value start,
// three i32 per member, in document order. gRootN is -1 when the root is not an
// object or has more than ROOT_CAP members (lookups then scan, as before).
const ROOT_CAP: i32 = 32;
export const ROOT_TABLE = memory.data(ROOT_CAP * 12);
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

/**
 * How many root members ROOT_TABLE holds for the current document, or -1 when
 * it holds none for it (the current document is not the last one validated,
 * its root is not an object, or it has too many members).
 */
// @ts-ignore: decorator
@inline export function rootMembers(): i32 {
  return gRootN >= 0 && gBase == gDocBase && gLen == gDocLen ? gRootN : -1;
}

/** The number of root members in ROOT_TABLE, once rootMembers() said the table is the current document's. */
// @ts-ignore: decorator
@inline export function rootMemberCount(): i32 {
  return gRootN;
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

// The lanes of v that the string scanner must look at (quote, backslash, control
// character or non-ASCII byte: see skipPlain), all ones where so.
// @ts-ignore: decorator
@inline function special16(v: v128, quote: v128, backslash: v128, space: v128): v128 {
  return v128.or(v128.or(i8x16.eq(v, quote), i8x16.eq(v, backslash)), i8x16.lt_s(v, space));
}

// The offset (0..63) of the first special byte of the 64 at `at`, or 64 when none is.
// @ts-ignore: decorator
@inline function first64(at: usize, quote: v128, backslash: v128, space: v128): i32 {
  let sa = special16(v128.load(at), quote, backslash, space);
  let sb = special16(v128.load(at, 16), quote, backslash, space);
  let sc = special16(v128.load(at, 32), quote, backslash, space);
  let sd = special16(v128.load(at, 48), quote, backslash, space);
  if (!v128.any_true(v128.or(v128.or(sa, sb), v128.or(sc, sd)))) return 64;
  let mask = <u64>i8x16.bitmask(sa) | (<u64>i8x16.bitmask(sb) << 16) |
             (<u64>i8x16.bitmask(sc) << 32) | (<u64>i8x16.bitmask(sd) << 48);
  return <i32>ctz(mask);
}

// Whether any of the 256 bytes at `at` is special (which one: first64 tells).
// @ts-ignore: decorator
@inline function any256(at: usize, quote: v128, backslash: v128, space: v128): bool {
  let acc = special16(v128.load(at), quote, backslash, space);
  acc = v128.or(acc, special16(v128.load(at, 16), quote, backslash, space));
  acc = v128.or(acc, special16(v128.load(at, 32), quote, backslash, space));
  acc = v128.or(acc, special16(v128.load(at, 48), quote, backslash, space));
  acc = v128.or(acc, special16(v128.load(at, 64), quote, backslash, space));
  acc = v128.or(acc, special16(v128.load(at, 80), quote, backslash, space));
  acc = v128.or(acc, special16(v128.load(at, 96), quote, backslash, space));
  acc = v128.or(acc, special16(v128.load(at, 112), quote, backslash, space));
  acc = v128.or(acc, special16(v128.load(at, 128), quote, backslash, space));
  acc = v128.or(acc, special16(v128.load(at, 144), quote, backslash, space));
  acc = v128.or(acc, special16(v128.load(at, 160), quote, backslash, space));
  acc = v128.or(acc, special16(v128.load(at, 176), quote, backslash, space));
  acc = v128.or(acc, special16(v128.load(at, 192), quote, backslash, space));
  acc = v128.or(acc, special16(v128.load(at, 208), quote, backslash, space));
  acc = v128.or(acc, special16(v128.load(at, 224), quote, backslash, space));
  acc = v128.or(acc, special16(v128.load(at, 240), quote, backslash, space));
  return v128.any_true(acc);
}

// Position of the first byte at or after p that the string scanner must look
// at (a quote, a backslash, a control character or a non-ASCII byte), 16 bytes
// per step or more with Wasm SIMD, or gLen when there is none; p itself in a
// document of fewer than 16 bytes. Built
// without SIMD (asc without `--enable simd`) it is the identity and the byte
// loop below does all the work: the answers are the same either way.
// @ts-ignore: decorator
@inline function skipPlain(p: i32): i32 {
  if (ASC_FEATURE_SIMD) {
    const quote = i8x16.splat(<i8>C_QUOTE);
    const backslash = i8x16.splat(<i8>C_BACKSLASH);
    // Control characters (< 0x20) and non-ASCII bytes (>= 0x80, negative as i8) in one
    // signed compare: plain ASCII is 0x20..0x7f, i.e. b as i8 >= 0x20.
    const space = i8x16.splat(<i8>C_SPACE);
    let last64 = gLen - 64;
    // Most strings are short: the first 64 bytes first. A string that goes on past them
    // is long: 256 bytes per loop iteration then, one fuel check per 256 bytes instead
    // of four (each iteration is charged its whole body, so the fuel still covers every
    // instruction). Those only ask whether any byte of the 256 is special; on a hit the
    // 64- and 16-byte steps below find the first one (at most 4 + 3 more iterations).
    if (p <= last64) {
      let k = first64(gBase + <usize>p, quote, backslash, space);
      if (k < 64) return p + k;
      p += 64;
      let last256 = gLen - 256;
      while (p <= last256) {
        if (any256(gBase + <usize>p, quote, backslash, space)) break;
        p += 256;
      }
    }
    while (p <= last64) {
      let k = first64(gBase + <usize>p, quote, backslash, space);
      if (k < 64) return p + k;
      p += 64;
    }
    let last = gLen - 16;
    while (p <= last) {
      let special = special16(v128.load(gBase + <usize>p), quote, backslash, space);
      if (v128.any_true(special)) return p + ctz(i8x16.bitmask(special));
      p += 16;
    }
    // Fewer than 16 bytes left: one step (a short document's tail, the keys and values
    // near its end, would otherwise take a byte loop iteration each). gLen when none is special.
    if (p < gLen && last >= 0) {
      let mask = specialsFrom(p);
      return mask != 0 ? p + ctz(mask) : gLen;
    }
  }
  return p;
}

// The lanes special16 marks among the 16 bytes from p, as a bit mask (bit 0: p), read
// in one SIMD step from a window that stops at the document's end: from p when 16
// bytes are left, else the document's last 16 bytes without the lanes before p.
// Needs a document of at least 16 bytes and p <= gLen.
// @ts-ignore: decorator
@inline function specialsFrom(p: i32): i32 {
  let at = min(p, gLen - 16);
  let v = v128.load(gBase + <usize>at);
  return i8x16.bitmask(special16(v, i8x16.splat(<i8>C_QUOTE), i8x16.splat(<i8>C_BACKSLASH), i8x16.splat(<i8>C_SPACE))) >>> (p - at);
}

// p at the opening quote; returns the index after the closing quote, or -1.
export function scanString(p: i32): i32 {
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

// scanString for the strings parseValue meets: one that ends within the next 16
// bytes with nothing to look at before its closing quote (most keys and short
// values) is answered here, in one SIMD step (specialsFrom) and without a call; any
// other goes to scanString.
// @ts-ignore: decorator
@inline function scanShortString(p: i32): i32 {
  if (ASC_FEATURE_SIMD) {
    if (gLen >= 16) {
      let mask = specialsFrom(p + 1);
      if (mask != 0) {
        let q = p + 1 + ctz(mask);
        if (byteAt(q) == C_QUOTE) return q + 1;
      }
    }
  }
  return scanString(p);
}

// p at '-' or a digit; returns the end of the number, or -1.
export function scanNumber(p: i32): i32 {
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

// parseValue for a member of an object or an array: strings and numbers, most of
// what a document holds, go straight to their scanner rather than through another
// parseValue call (the same answers; a call fewer per value).
// @ts-ignore: decorator
@inline function parseMember(p: i32, depth: i32): i32 {
  let c = peek(p);
  if (c == C_QUOTE) return scanShortString(p);
  if (c == C_MINUS || isDigit(c)) return scanNumber(p);
  return parseValue(p, depth);
}

// Parses (and validates) the value starting at p (no leading whitespace).
// Returns the index just after it, or -1. `depth` = containers already open.
export function parseValue(p: i32, depth: i32): i32 {
  if (p >= gLen) return -1;
  let c = byteAt(p);
  if (c == C_LBRACE) {
    if (depth >= MAX_DEPTH) return -1;
    p = skipWs(p + 1);
    if (peek(p) == C_RBRACE) return p + 1;
    while (true) {
      if (peek(p) != C_QUOTE) return -1;
      let ks = p + 1;
      p = scanShortString(p);
      if (p < 0) return -1;
      let ke = p - 1;
      p = skipWs(p);
      if (peek(p) != C_COLON) return -1;
      p = skipWs(p + 1);
      if (depth == 0 && gRecording) recordRootMember(ks, ke, p);
      p = parseMember(p, depth + 1);
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
      p = parseMember(p, depth + 1);
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

export function validate(ptr: usize, len: i32): bool {
  setDocument(ptr, len);
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
// Inline: every lookup starts here, and the trusted answer needs no call.
// @ts-ignore: decorator
@inline export function check(ptr: usize, len: i32): bool {
  let trust = gTrustNext;
  gTrustNext = false;
  if (trust && ptr == gDocBase && len == gDocLen) {
    setDocument(ptr, len);
    return gDocValid;
  }
  return validate(ptr, len);
}

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
  setDocument(ptr, len);
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

