// wasmq native SDK — zero-copy JSON field reader (TypeScript twin of
// plugins-as/sdk/json.ts).
//
// Same algorithm and same results as the AssemblyScript version, on a
// Uint8Array instead of linear memory: no JSON.parse, no up-front decoding;
// every call validates the whole document (strict RFC 8259, well-formed UTF-8,
// depth <= 64) and walks to the value at `path`. Strings are only built for the
// value jsonString returns. A document read many times (the plugin's config)
// goes through a JsonIndex instead (end of this file). See the AssemblyScript file for the full
// semantics; in short:
// - path "" = root; else '.'-separated keys; on arrays a canonical decimal
//   index ("0", "12"; "01" → missing); on objects digits are plain keys.
// - keys compare after unescaping, as UTF-16 code units; last duplicate wins;
//   jsonLength counts distinct keys of an object.
// - malformed document (incl. invalid UTF-8) → missing / fallback everywhere.
// - numbers correctly rounded (same fast path as AS; slow path `Number(text)`,
//   which is correctly rounded in V8 — the AS twin has its own exact slow path).
// - jsonFind → start * 2^32 + end (byte offsets, end exclusive) or -1.

export enum JsonType {
  Missing = 0,
  Null = 1,
  Bool = 2,
  Number = 3,
  String = 4,
  Array = 5,
  Object = 6,
}

const MAX_DEPTH = 64;

const C_TAB = 0x09;
const C_LF = 0x0a;
const C_CR = 0x0d;
const C_SPACE = 0x20;
const C_QUOTE = 0x22;
const C_PLUS = 0x2b;
const C_COMMA = 0x2c;
const C_MINUS = 0x2d;
const C_DOT = 0x2e;
const C_SLASH = 0x2f;
const C_0 = 0x30;
const C_1 = 0x31;
const C_9 = 0x39;
const C_COLON = 0x3a;
const C_E = 0x45;
const C_LBRACKET = 0x5b;
const C_BACKSLASH = 0x5c;
const C_RBRACKET = 0x5d;
const C_e = 0x65;
const C_f = 0x66;
const C_n = 0x6e;
const C_t = 0x74;
const C_u = 0x75;
const C_LBRACE = 0x7b;
const C_RBRACE = 0x7d;

const EMPTY = new Uint8Array(0);

// Current document and a second return value for decodeAt.
let gDoc: Uint8Array = EMPTY;
let gLen = 0;
let gNext = 0;

// What the last validate() learnt (as in the AssemblyScript twin): the
// document and its validity, and while gRootN >= 0 the root object's members
// (key content start, end, value start; at most ROOT_CAP of them).
const ROOT_CAP = 32;
const rootTable = new Int32Array(ROOT_CAP * 3);
let gRootN = -1;
let gRecording = false;
let gChecked: Uint8Array | null = null;
let gCheckedValid = false;
let gTrustNext = false;

function recordRootMember(ks: number, ke: number, v: number): void {
  if (gRootN < 0) return;
  if (gRootN >= ROOT_CAP) {
    gRootN = -1;
    return;
  }
  rootTable[gRootN * 3] = ks;
  rootTable[gRootN * 3 + 1] = ke;
  rootTable[gRootN * 3 + 2] = v;
  gRootN++;
}

function byteAt(i: number): number {
  return gDoc[i]!;
}

function peek(i: number): number {
  return i < gLen ? gDoc[i]! : -1;
}

function isDigit(c: number): boolean {
  return c >= C_0 && c <= C_9;
}

function hexVal(c: number): number {
  if (c >= C_0 && c <= C_9) return c - C_0;
  const l = c | 0x20;
  if (l >= 0x61 && l <= 0x66) return l - 0x61 + 10;
  return -1;
}

function skipWs(p: number): number {
  while (p < gLen) {
    const c = gDoc[p]!;
    if (c !== C_SPACE && c !== C_LF && c !== C_CR && c !== C_TAB) break;
    p++;
  }
  return p;
}

// Length of the well-formed UTF-8 sequence at p (lead byte >= 0x80), or 0.
function utf8SeqLen(p: number): number {
  const c = byteAt(p);
  if (c < 0xc2) return 0;
  if (c < 0xe0) {
    if (p + 1 >= gLen) return 0;
    return (byteAt(p + 1) & 0xc0) === 0x80 ? 2 : 0;
  }
  if (c < 0xf0) {
    if (p + 2 >= gLen) return 0;
    const b1 = byteAt(p + 1);
    const lo = c === 0xe0 ? 0xa0 : 0x80;
    const hi = c === 0xed ? 0x9f : 0xbf;
    if (b1 < lo || b1 > hi) return 0;
    return (byteAt(p + 2) & 0xc0) === 0x80 ? 3 : 0;
  }
  if (c < 0xf5) {
    if (p + 3 >= gLen) return 0;
    const b1 = byteAt(p + 1);
    const lo = c === 0xf0 ? 0x90 : 0x80;
    const hi = c === 0xf4 ? 0x8f : 0xbf;
    if (b1 < lo || b1 > hi) return 0;
    if ((byteAt(p + 2) & 0xc0) !== 0x80) return 0;
    return (byteAt(p + 3) & 0xc0) === 0x80 ? 4 : 0;
  }
  return 0;
}

// p at the opening quote; index after the closing quote, or -1.
function scanString(p: number): number {
  p++;
  for (;;) {
    if (p >= gLen) return -1;
    const c = gDoc[p]!;
    if (c === C_QUOTE) return p + 1;
    if (c === C_BACKSLASH) {
      p++;
      if (p >= gLen) return -1;
      const e = byteAt(p);
      if (e === C_u) {
        if (p + 4 >= gLen) return -1;
        if (hexVal(byteAt(p + 1)) < 0 || hexVal(byteAt(p + 2)) < 0 ||
            hexVal(byteAt(p + 3)) < 0 || hexVal(byteAt(p + 4)) < 0) return -1;
        p += 5;
      } else if (e === C_QUOTE || e === C_BACKSLASH || e === C_SLASH || e === 0x62 ||
                 e === C_f || e === C_n || e === 0x72 || e === C_t) {
        p++;
      } else {
        return -1;
      }
    } else if (c < 0x20) {
      return -1;
    } else if (c < 0x80) {
      p++;
    } else {
      const n = utf8SeqLen(p);
      if (n === 0) return -1;
      p += n;
    }
  }
}

// p at '-' or a digit; end of the number, or -1.
function scanNumber(p: number): number {
  if (byteAt(p) === C_MINUS) p++;
  let c = peek(p);
  if (c === C_0) {
    p++;
  } else if (c >= C_1 && c <= C_9) {
    p++;
    while (isDigit(peek(p))) p++;
  } else {
    return -1;
  }
  if (peek(p) === C_DOT) {
    p++;
    if (!isDigit(peek(p))) return -1;
    while (isDigit(peek(p))) p++;
  }
  c = peek(p);
  if (c === C_e || c === C_E) {
    p++;
    c = peek(p);
    if (c === C_PLUS || c === C_MINUS) p++;
    if (!isDigit(peek(p))) return -1;
    while (isDigit(peek(p))) p++;
  }
  return p;
}

function scanLiteral(p: number, a: number, b: number, c: number, d: number, n: number): number {
  if (p + n > gLen) return -1;
  if (byteAt(p + 1) !== a || byteAt(p + 2) !== b || byteAt(p + 3) !== c) return -1;
  if (n === 5 && byteAt(p + 4) !== d) return -1;
  return p + n;
}

// Parses (validates) the value at p; index after it, or -1.
function parseValue(p: number, depth: number): number {
  if (p >= gLen) return -1;
  let c = byteAt(p);
  if (c === C_LBRACE) {
    if (depth >= MAX_DEPTH) return -1;
    p = skipWs(p + 1);
    if (peek(p) === C_RBRACE) return p + 1;
    for (;;) {
      if (peek(p) !== C_QUOTE) return -1;
      const ks = p + 1;
      p = scanString(p);
      if (p < 0) return -1;
      const ke = p - 1;
      p = skipWs(p);
      if (peek(p) !== C_COLON) return -1;
      p = skipWs(p + 1);
      if (depth === 0 && gRecording) recordRootMember(ks, ke, p);
      p = parseValue(p, depth + 1);
      if (p < 0) return -1;
      p = skipWs(p);
      c = peek(p);
      if (c === C_COMMA) {
        p = skipWs(p + 1);
        continue;
      }
      return c === C_RBRACE ? p + 1 : -1;
    }
  }
  if (c === C_LBRACKET) {
    if (depth >= MAX_DEPTH) return -1;
    p = skipWs(p + 1);
    if (peek(p) === C_RBRACKET) return p + 1;
    for (;;) {
      p = parseValue(p, depth + 1);
      if (p < 0) return -1;
      p = skipWs(p);
      c = peek(p);
      if (c === C_COMMA) {
        p = skipWs(p + 1);
        continue;
      }
      return c === C_RBRACKET ? p + 1 : -1;
    }
  }
  if (c === C_QUOTE) return scanString(p);
  if (c === C_t) return scanLiteral(p, 0x72, 0x75, 0x65, 0, 4); // true
  if (c === C_f) return scanLiteral(p, 0x61, 0x6c, 0x73, 0x65, 5); // false
  if (c === C_n) return scanLiteral(p, 0x75, 0x6c, 0x6c, 0, 4); // null
  if (c === C_MINUS || isDigit(c)) return scanNumber(p);
  return -1;
}

function validate(doc: Uint8Array): boolean {
  gDoc = doc;
  gLen = doc.length;
  gChecked = doc;
  gRootN = 0;
  gRecording = true;
  const v = skipWs(0);
  const p = gLen > 0 ? parseValue(v, 0) : -1;
  gRecording = false;
  gCheckedValid = p >= 0 && skipWs(p) === gLen;
  if (!gCheckedValid || byteAt(v) !== C_LBRACE) gRootN = -1;
  return gCheckedValid;
}

/** Validates doc unless jsonTrustNext vouched that the last validation was of these same unchanged bytes. */
function check(doc: Uint8Array): boolean {
  const trust = gTrustNext;
  gTrustNext = false;
  if (trust && doc === gChecked) {
    gDoc = doc;
    gLen = doc.length;
    return gCheckedValid;
  }
  return validate(doc);
}

/** Start of the value of the last root member whose key equals path[s, e), or -1 (the current document is gChecked). */
function rootLookup(path: string, s: number, e: number): number {
  for (let i = gRootN - 1; i >= 0; i--) {
    if (keyEqualsPath(rootTable[i * 3]!, rootTable[i * 3 + 1]!, path, s, e)) return rootTable[i * 3 + 2]!;
  }
  return -1;
}

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

function keyEqualsPath(ks: number, ke: number, path: string, s: number, e: number): boolean {
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

function keyEqualsKey(sa: number, ea: number, sb: number, eb: number): boolean {
  let pa = sa;
  let pb = sb;
  let penda = -1;
  let pendb = -1;
  for (;;) {
    let ua = -1;
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
    let ub = -1;
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
    if (ua !== ub) return false;
    if (ua < 0) return true;
  }
}

function memberLookup(v: number, path: string, s: number, e: number): number {
  let p = skipWs(v + 1);
  if (byteAt(p) === C_RBRACE) return -1;
  let found = -1;
  for (;;) {
    const ks = p + 1;
    const ke = scanString(p) - 1;
    const hit = keyEqualsPath(ks, ke, path, s, e);
    p = skipWs(skipWs(ke + 1) + 1);
    if (hit) found = p;
    p = skipWs(parseValue(p, 0));
    if (byteAt(p) !== C_COMMA) return found;
    p = skipWs(p + 1);
  }
}

/** The canonical decimal index path[s, e) ("0", "17"; not "01", "-1", "x"), or -1. */
function arrayIndex(path: string, s: number, e: number): number {
  const n = e - s;
  if (n < 1 || n > 9) return -1;
  if (n > 1 && path.charCodeAt(s) === C_0) return -1;
  let idx = 0;
  for (let i = s; i < e; i++) {
    const c = path.charCodeAt(i);
    if (!isDigit(c)) return -1;
    idx = idx * 10 + (c - C_0);
  }
  return idx;
}

function indexLookup(v: number, path: string, s: number, e: number): number {
  const idx = arrayIndex(path, s, e);
  if (idx < 0) return -1;
  let p = skipWs(v + 1);
  if (byteAt(p) === C_RBRACKET) return -1;
  let i = 0;
  for (;;) {
    if (i === idx) return p;
    p = skipWs(parseValue(p, 0));
    if (byteAt(p) !== C_COMMA) return -1;
    p = skipWs(p + 1);
    i++;
  }
}

function locate(doc: Uint8Array, path: string): number {
  if (!check(doc)) return -1;
  return walk(path, null);
}

/** Start of the value at path in the current (validated) document, or -1: through the index's tables when there is one, else by scanning. */
function walk(path: string, index: JsonIndex | null): number {
  let v = skipWs(0);
  const plen = path.length;
  if (plen === 0) return v;
  let s = 0;
  for (;;) {
    let e = s;
    while (e < plen && path.charCodeAt(e) !== C_DOT) e++;
    const c = byteAt(v);
    if (c === C_LBRACE && !index && s === 0 && gRootN >= 0 && gDoc === gChecked) v = rootLookup(path, s, e);
    else if (c === C_LBRACE) v = index ? index.member(v, path.substring(s, e)) : memberLookup(v, path, s, e);
    else if (c === C_LBRACKET) v = index ? index.element(v, arrayIndex(path, s, e)) : indexLookup(v, path, s, e);
    else return -1;
    if (v < 0) return -1;
    if (e >= plen) return v;
    s = e + 1;
  }
}

// ---------------------------------------------------------------------------
// Numbers

const POW10 = [
  1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
  1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

function asciiText(s: number, e: number): string {
  let out = "";
  for (let i = s; i < e; i += 8192) {
    out += String.fromCharCode.apply(null, gDoc.subarray(i, Math.min(e, i + 8192)) as unknown as number[]);
  }
  return out;
}

// Value of the valid number text [s, e). Fast path identical to the AS twin.
function numberValue(s: number, e: number): number {
  let p = s;
  let neg = false;
  if (byteAt(p) === C_MINUS) {
    neg = true;
    p++;
  }
  let w = 0; // exact integer while <= 2^53
  let fast = true;
  let frac = 0;
  let inFrac = false;
  while (p < e) {
    const c = byteAt(p);
    if (c === C_DOT) {
      inFrac = true;
      p++;
      continue;
    }
    if (!isDigit(c)) break;
    p++;
    if (inFrac) frac++;
    if (fast) {
      const d = c - C_0;
      if (w > 900719925474099 || (w === 900719925474099 && d > 2)) fast = false;
      else w = w * 10 + d;
    }
  }
  let ex = 0;
  if (p < e) {
    p++; // e / E
    let eneg = false;
    const c = byteAt(p);
    if (c === C_MINUS) {
      eneg = true;
      p++;
    } else if (c === C_PLUS) {
      p++;
    }
    while (p < e) {
      if (ex < 100000000) ex = ex * 10 + (byteAt(p) - C_0);
      p++;
    }
    if (eneg) ex = -ex;
  }
  const e10 = ex - frac;
  let x: number;
  if (fast && w === 0) x = 0;
  else if (fast && e10 >= 0 && e10 <= 22) x = w * POW10[e10]!;
  else if (fast && e10 < 0 && e10 >= -22) x = w / POW10[-e10]!;
  else x = Math.abs(Number(asciiText(s, e)));
  return neg ? -x : x;
}

// ---------------------------------------------------------------------------
// Strings

const utf8 = new TextDecoder("utf-8", { ignoreBOM: true }); // keep a leading U+FEFF, as JSON.parse does

function buildString(s: number, e: number): string {
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

// ---------------------------------------------------------------------------
// Public API

/** The whole document is valid JSON (strict RFC 8259, UTF-8, depth <= 64). */
export function jsonValid(doc: Uint8Array): boolean {
  return check(doc);
}

/**
 * For the SDK's Message (as in the AssemblyScript twin): the next json* call on
 * the same document as the last validation may reuse it, because the caller
 * knows its bytes have not changed since (this hook call's payload).
 */
export function jsonTrustNext(): void {
  gTrustNext = true;
}

// What the value starting at v (in the current document; -1 = missing) is.
function findAt(v: number): number {
  if (v < 0) return -1;
  return v * 4294967296 + parseValue(v, 0);
}

function typeAt(v: number): number {
  if (v < 0) return JsonType.Missing;
  const c = byteAt(v);
  if (c === C_LBRACE) return JsonType.Object;
  if (c === C_LBRACKET) return JsonType.Array;
  if (c === C_QUOTE) return JsonType.String;
  if (c === C_t || c === C_f) return JsonType.Bool;
  if (c === C_n) return JsonType.Null;
  return JsonType.Number;
}

function numberAt(v: number, fallback: number): number {
  if (v < 0) return fallback;
  const c = byteAt(v);
  if (c !== C_MINUS && !isDigit(c)) return fallback;
  return numberValue(v, scanNumber(v));
}

function stringAt(v: number, fallback: string | null): string | null {
  if (v < 0 || byteAt(v) !== C_QUOTE) return fallback;
  return buildString(v + 1, scanString(v) - 1);
}

function boolAt(v: number, fallback: boolean): boolean {
  if (v < 0) return fallback;
  const c = byteAt(v);
  if (c === C_t) return true;
  if (c === C_f) return false;
  return fallback;
}

/** Byte range of the value at path as start * 2^32 + end, or -1. */
export function jsonFind(doc: Uint8Array, path: string): number {
  return findAt(locate(doc, path));
}

/** JsonType of the value at path (JsonType.Missing = 0 when absent/invalid). */
export function jsonType(doc: Uint8Array, path: string): number {
  return typeAt(locate(doc, path));
}

/** Number at path (correctly rounded), or fallback. */
export function jsonNumber(doc: Uint8Array, path: string, fallback: number): number {
  return numberAt(locate(doc, path), fallback);
}

/** Unescaped string at path, or fallback. */
export function jsonString(doc: Uint8Array, path: string, fallback: string | null): string | null {
  return stringAt(locate(doc, path), fallback);
}

/** Boolean at path, or fallback. */
export function jsonBool(doc: Uint8Array, path: string, fallback: boolean): boolean {
  return boolAt(locate(doc, path), fallback);
}

/** A value (including null) exists at path in a valid document. */
export function jsonHas(doc: Uint8Array, path: string): boolean {
  return locate(doc, path) >= 0;
}

/** Array length, or number of distinct keys of an object; -1 otherwise. */
export function jsonLength(doc: Uint8Array, path: string): number {
  const v = locate(doc, path);
  if (v < 0) return -1;
  const c = byteAt(v);
  if (c === C_LBRACKET) {
    let p = skipWs(v + 1);
    if (byteAt(p) === C_RBRACKET) return 0;
    let n = 1;
    for (;;) {
      p = skipWs(parseValue(p, 0));
      if (byteAt(p) !== C_COMMA) return n;
      p = skipWs(p + 1);
      n++;
    }
  }
  if (c !== C_LBRACE) return -1;
  let p = skipWs(v + 1);
  if (byteAt(p) === C_RBRACE) return 0;
  let n = 0;
  for (;;) {
    const ks = p + 1;
    const ke = scanString(p) - 1;
    p = skipWs(parseValue(skipWs(skipWs(ke + 1) + 1), 0));
    const more = byteAt(p) === C_COMMA;
    if (more) p = skipWs(p + 1);
    // counted only if no later member repeats the key (quadratic, rare)
    let dup = false;
    let r = p;
    while (more) {
      const rs = r + 1;
      const re = scanString(r) - 1;
      if (keyEqualsKey(ks, ke, rs, re)) {
        dup = true;
        break;
      }
      r = skipWs(parseValue(skipWs(skipWs(re + 1) + 1), 0));
      if (byteAt(r) !== C_COMMA) break;
      r = skipWs(r + 1);
    }
    if (!dup) n++;
    if (!more) return n;
  }
}

// ---------------------------------------------------------------------------
// Indexed documents

/**
 * A document read many times, such as the plugin's config during init: validated
 * once, with the start of each member or element recorded for every object and
 * array a lookup passes through, so each lookup costs its path, not the
 * document. Same answers as the functions above; the bytes must not change
 * while the index is in use. (Twin of JsonIndex in plugins-as/sdk/json.ts.)
 */
export class JsonIndex {
  readonly valid: boolean;
  private readonly objects = new Map<number, Map<string, number>>();
  private readonly arrays = new Map<number, number[]>();

  constructor(readonly doc: Uint8Array) {
    this.valid = validate(doc);
  }

  find(path: string): number {
    return findAt(this.at(path));
  }
  type(path: string): number {
    return typeAt(this.at(path));
  }
  number(path: string, fallback: number): number {
    return numberAt(this.at(path), fallback);
  }
  string(path: string, fallback: string | null): string | null {
    return stringAt(this.at(path), fallback);
  }
  bool(path: string, fallback: boolean): boolean {
    return boolAt(this.at(path), fallback);
  }
  has(path: string): boolean {
    return this.at(path) >= 0;
  }

  /** Array length, or number of distinct keys of an object; -1 otherwise. */
  length(path: string): number {
    const v = this.at(path);
    if (v < 0) return -1;
    const c = byteAt(v);
    if (c === C_LBRACKET) return this.elements(v).length;
    if (c === C_LBRACE) return this.members(v).size;
    return -1;
  }

  /** Start of the value at path, or -1; leaves this document current for the helpers. */
  private at(path: string): number {
    if (!this.valid) return -1;
    gDoc = this.doc;
    gLen = this.doc.length;
    return walk(path, this);
  }

  /** Start of the member `key` of the object at v, or -1 (for walk). */
  member(v: number, key: string): number {
    return this.members(v).get(key) ?? -1;
  }

  /** Start of element idx of the array at v, or -1 (for walk). */
  element(v: number, idx: number): number {
    const elements = this.elements(v);
    return idx >= 0 && idx < elements.length ? elements[idx]! : -1;
  }

  /** Unescaped key -> start of its value, for the object at v; a later duplicate wins. */
  private members(v: number): Map<string, number> {
    let members = this.objects.get(v);
    if (members) return members;
    members = new Map();
    let p = skipWs(v + 1);
    if (byteAt(p) !== C_RBRACE) {
      for (;;) {
        const ks = p + 1;
        const ke = scanString(p) - 1;
        p = skipWs(skipWs(ke + 1) + 1);
        members.set(buildString(ks, ke), p);
        p = skipWs(parseValue(p, 0));
        if (byteAt(p) !== C_COMMA) break;
        p = skipWs(p + 1);
      }
    }
    this.objects.set(v, members);
    return members;
  }

  /** Start of each element of the array at v. */
  private elements(v: number): number[] {
    let elements = this.arrays.get(v);
    if (elements) return elements;
    elements = [];
    let p = skipWs(v + 1);
    if (byteAt(p) !== C_RBRACKET) {
      for (;;) {
        elements.push(p);
        p = skipWs(parseValue(p, 0));
        if (byteAt(p) !== C_COMMA) break;
        p = skipWs(p + 1);
      }
    }
    this.arrays.set(v, elements);
    return elements;
  }
}
