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
//
// This module is the lookup (paths, the json* readers, JsonIndex); the rest of
// the reader lives beside it, module for module as in the AssemblyScript SDK:
// json-doc.ts (the document and byte reads), json-validate.ts (validation, and
// what it records for lookups), json-text.ts (string content), json-number.ts
// (number conversion).
import { C_COMMA, C_DOT, C_LBRACE, C_LBRACKET, C_MINUS, C_QUOTE, C_RBRACE, C_RBRACKET, C_0, C_f, C_n, C_t, setDocument, byteAt, isDigit, skipWs } from "./json-doc.js";
import { rootTable, rootMemberCount, rootMembers, check, validate, parseValue, scanNumber, scanString } from "./json-validate.js";
import { buildString, keyEqualsKey, keyEqualsPath } from "./json-text.js";
import { numberValue } from "./json-number.js";

export { jsonValid, jsonTrustNext } from "./json-validate.js";

export enum JsonType {
  Missing = 0,
  Null = 1,
  Bool = 2,
  Number = 3,
  String = 4,
  Array = 5,
  Object = 6,
}

/** Start of the value of the last root member whose key equals path[s, e), or -1 (only while rootMembers() >= 0). */
function rootLookup(path: string, s: number, e: number): number {
  for (let i = rootMemberCount() - 1; i >= 0; i--) {
    if (keyEqualsPath(rootTable[i * 3]!, rootTable[i * 3 + 1]!, path, s, e)) return rootTable[i * 3 + 2]!;
  }
  return -1;
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
    if (c === C_LBRACE && !index && s === 0 && rootMembers() >= 0) v = rootLookup(path, s, e);
    else if (c === C_LBRACE) v = index ? index.member(v, path.substring(s, e)) : memberLookup(v, path, s, e);
    else if (c === C_LBRACKET) v = index ? index.element(v, arrayIndex(path, s, e)) : indexLookup(v, path, s, e);
    else return -1;
    if (v < 0) return -1;
    if (e >= plen) return v;
    s = e + 1;
  }
}

// ---------------------------------------------------------------------------
// Public API

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
    setDocument(this.doc);
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
