// wasmq native SDK — JSON reader, the document under the cursor (TypeScript
// twin of plugins-as/sdk/json-doc.ts).
//
// The JSON reader (json.ts, json-validate.ts, json-text.ts, json-number.ts)
// works on one document at a time, a Uint8Array; this module holds that
// document and the byte-level reads every part shares.

export const C_TAB = 0x09;
export const C_LF = 0x0a;
export const C_CR = 0x0d;
export const C_SPACE = 0x20;
export const C_QUOTE = 0x22;
export const C_PLUS = 0x2b;
export const C_COMMA = 0x2c;
export const C_MINUS = 0x2d;
export const C_DOT = 0x2e;
export const C_SLASH = 0x2f;
export const C_0 = 0x30;
export const C_1 = 0x31;
export const C_9 = 0x39;
export const C_COLON = 0x3a;
export const C_E = 0x45;
export const C_LBRACKET = 0x5b;
export const C_BACKSLASH = 0x5c;
export const C_RBRACKET = 0x5d;
export const C_e = 0x65;
export const C_f = 0x66;
export const C_n = 0x6e;
export const C_t = 0x74;
export const C_u = 0x75;
export const C_LBRACE = 0x7b;
export const C_RBRACE = 0x7d;

const EMPTY = new Uint8Array(0);

// The current document (read-only outside this module: set it with setDocument).
export let gDoc: Uint8Array = EMPTY;
export let gLen = 0;

export function setDocument(doc: Uint8Array): void {
  gDoc = doc;
  gLen = doc.length;
}

export function byteAt(i: number): number {
  return gDoc[i]!;
}

export function peek(i: number): number {
  return i < gLen ? gDoc[i]! : -1;
}

export function isDigit(c: number): boolean {
  return c >= C_0 && c <= C_9;
}

export function hexVal(c: number): number {
  if (c >= C_0 && c <= C_9) return c - C_0;
  const l = c | 0x20;
  if (l >= 0x61 && l <= 0x66) return l - 0x61 + 10;
  return -1;
}

export function skipWs(p: number): number {
  while (p < gLen) {
    const c = gDoc[p]!;
    if (c !== C_SPACE && c !== C_LF && c !== C_CR && c !== C_TAB) break;
    p++;
  }
  return p;
}
