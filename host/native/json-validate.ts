// wasmq native SDK — JSON reader, validation (TypeScript twin of
// plugins-as/sdk/json-validate.ts).
//
// Checks a whole document against RFC 8259 (strict, well-formed UTF-8, depth
// <= 64) in one pass, and remembers what it learnt for the lookups in json.ts:
// which document it checked, whether it was valid, and where the members of
// its root object start (so a lookup of a top-level key needs no second scan).
import {
  C_BACKSLASH, C_COLON, C_COMMA, C_E, C_LBRACE, C_LBRACKET, C_MINUS, C_DOT, C_PLUS, C_QUOTE, C_RBRACE,
  C_RBRACKET, C_SLASH, C_0, C_1, C_9, C_e, C_f, C_n, C_t, C_u,
  gDoc, gLen, setDocument, byteAt, peek, isDigit, hexVal, skipWs,
} from "./json-doc.js";

const MAX_DEPTH = 64;

// What the last validate() learnt (as in the AssemblyScript twin): the
// document and its validity, and while gRootN >= 0 the root object's members
// (key content start, end, value start; at most ROOT_CAP of them).
const ROOT_CAP = 32;
export const rootTable = new Int32Array(ROOT_CAP * 3);
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

/**
 * How many root members rootTable holds for the current document, or -1 when
 * it holds none for it (the current document is not the last one validated,
 * its root is not an object, or it has too many members).
 */
export function rootMembers(): number {
  return gRootN >= 0 && gDoc === gChecked ? gRootN : -1;
}

/** The number of root members in rootTable, once rootMembers() said the table is the current document's. */
export function rootMemberCount(): number {
  return gRootN;
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
export function scanString(p: number): number {
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
export function scanNumber(p: number): number {
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
export function parseValue(p: number, depth: number): number {
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

export function validate(doc: Uint8Array): boolean {
  setDocument(doc);
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
export function check(doc: Uint8Array): boolean {
  const trust = gTrustNext;
  gTrustNext = false;
  if (trust && doc === gChecked) {
    setDocument(doc);
    return gCheckedValid;
  }
  return validate(doc);
}

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

