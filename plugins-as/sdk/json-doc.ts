// wasmq plugin SDK — JSON reader, the document under the cursor (AssemblyScript).
//
// The JSON reader (json.ts, json-validate.ts, json-text.ts) works on one
// document at a time, raw UTF-8 bytes at (gBase, gLen) in linear memory; this
// module holds that document and the byte-level reads every part shares.
// Twin: host/native/json-doc.ts.

export const C_TAB: i32 = 0x09;
export const C_LF: i32 = 0x0a;
export const C_CR: i32 = 0x0d;
export const C_SPACE: i32 = 0x20;
export const C_QUOTE: i32 = 0x22;
export const C_PLUS: i32 = 0x2b;
export const C_COMMA: i32 = 0x2c;
export const C_MINUS: i32 = 0x2d;
export const C_DOT: i32 = 0x2e;
export const C_SLASH: i32 = 0x2f;
export const C_0: i32 = 0x30;
export const C_1: i32 = 0x31;
export const C_9: i32 = 0x39;
export const C_COLON: i32 = 0x3a;
export const C_E: i32 = 0x45;
export const C_LBRACKET: i32 = 0x5b;
export const C_BACKSLASH: i32 = 0x5c;
export const C_RBRACKET: i32 = 0x5d;
export const C_e: i32 = 0x65;
export const C_f: i32 = 0x66;
export const C_n: i32 = 0x6e;
export const C_t: i32 = 0x74;
export const C_u: i32 = 0x75;
export const C_LBRACE: i32 = 0x7b;
export const C_RBRACE: i32 = 0x7d;

// The current document (read-only outside this module: set it with setDocument).
export let gBase: usize = 0;
export let gLen: i32 = 0;

// @ts-ignore: decorator
@inline export function setDocument(base: usize, len: i32): void {
  gBase = base;
  gLen = len;
}

// @ts-ignore: decorator
@inline export function byteAt(i: i32): i32 {
  return <i32>load<u8>(gBase + <usize>i);
}

// @ts-ignore: decorator
@inline export function peek(i: i32): i32 {
  return i < gLen ? <i32>load<u8>(gBase + <usize>i) : -1;
}

// @ts-ignore: decorator
@inline export function charAt(s: string, i: i32): i32 {
  return <i32>load<u16>(changetype<usize>(s) + (<usize>i << 1));
}

// @ts-ignore: decorator
@inline export function isDigit(c: i32): bool {
  return <u32>(c - C_0) < 10;
}

export function hexVal(c: i32): i32 {
  if (<u32>(c - C_0) < 10) return c - C_0;
  let l = c | 0x20;
  if (<u32>(l - 0x61) < 6) return l - 0x61 + 10;
  return -1;
}

export function skipWs(p: i32): i32 {
  while (p < gLen) {
    let c = byteAt(p);
    if (c != C_SPACE && c != C_LF && c != C_CR && c != C_TAB) break;
    p++;
  }
  return p;
}
