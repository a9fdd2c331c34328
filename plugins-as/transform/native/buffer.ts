// transform, native twin of buffer.ts: a growable byte buffer, reused from
// message to message; JSON string writers.

export class ByteBuffer {
  bytes = new Uint8Array(0);
  len = 0;

  /** Make room for `extra` more bytes. May replace `bytes`. */
  reserve(extra: number): void {
    const need = this.len + extra;
    if (need <= this.bytes.length) return;
    let cap = Math.max(256, this.bytes.length * 2);
    while (cap < need) cap *= 2;
    const grown = new Uint8Array(cap);
    grown.set(this.bytes.subarray(0, this.len));
    this.bytes = grown;
  }

  clear(): void {
    this.len = 0;
  }

  byte(c: number): void {
    this.reserve(1);
    this.bytes[this.len++] = c;
  }

  /** Append bytes (which must not be a view of this buffer). */
  append(src: Uint8Array): void {
    this.reserve(src.length);
    this.bytes.set(src, this.len);
    this.len += src.length;
  }

  /** Append an ASCII string. */
  ascii(s: string): void {
    const n = s.length;
    this.reserve(n);
    for (let i = 0; i < n; i++) this.bytes[this.len + i] = s.charCodeAt(i);
    this.len += n;
  }

  /** Replace bytes [start, end) with `src` (not a view of this buffer). */
  replace(start: number, end: number, src: Uint8Array): void {
    const delta = src.length - (end - start);
    if (delta > 0) this.reserve(delta);
    this.bytes.copyWithin(start + src.length, end, this.len);
    this.bytes.set(src, start);
    this.len += delta;
  }

  /** Replace the content with `src` (not a view of this buffer). */
  assign(src: Uint8Array): void {
    this.len = 0;
    this.append(src);
  }

  view(start = 0, end = this.len): Uint8Array {
    return this.bytes.subarray(start, end);
  }
}

const HEX = "0123456789abcdef";

function escapeUnit(out: ByteBuffer, unit: number): void {
  out.ascii("\\u00");
  out.byte(HEX.charCodeAt((unit >> 4) & 15));
  out.byte(HEX.charCodeAt(unit & 15));
}

/**
 * Append `s` as a JSON string literal: '"' and '\' escaped, control characters
 * as \u00XX, everything else as UTF-8 except lone surrogates, which become
 * \uXXXX escapes (UTF-8 cannot carry them).
 */
export function writeJsonString(out: ByteBuffer, s: string): void {
  out.byte(0x22);
  const n = s.length;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c == 0x22 || c == 0x5c) {
      out.byte(0x5c);
      out.byte(c);
    } else if (c < 0x20) {
      escapeUnit(out, c);
    } else if (c < 0x80) {
      out.byte(c);
    } else if (c < 0x800) {
      out.byte(0xc0 | (c >> 6));
      out.byte(0x80 | (c & 0x3f));
    } else if (c >= 0xd800 && c < 0xdc00 && i + 1 < n && s.charCodeAt(i + 1) >= 0xdc00 && s.charCodeAt(i + 1) < 0xe000) {
      const cp = 0x10000 + ((c - 0xd800) << 10) + (s.charCodeAt(i + 1) - 0xdc00);
      out.byte(0xf0 | (cp >> 18));
      out.byte(0x80 | ((cp >> 12) & 0x3f));
      out.byte(0x80 | ((cp >> 6) & 0x3f));
      out.byte(0x80 | (cp & 0x3f));
      i++;
    } else if (c >= 0xd800 && c < 0xe000) {
      out.ascii("\\u");
      out.byte(HEX.charCodeAt(c >> 12));
      out.byte(HEX.charCodeAt((c >> 8) & 15));
      out.byte(HEX.charCodeAt((c >> 4) & 15));
      out.byte(HEX.charCodeAt(c & 15));
    } else {
      out.byte(0xe0 | (c >> 12));
      out.byte(0x80 | ((c >> 6) & 0x3f));
      out.byte(0x80 | (c & 0x3f));
    }
  }
  out.byte(0x22);
}

// Length of the well-formed UTF-8 sequence at i (lead byte >= 0x80), or 0.
function utf8SeqLen(b: Uint8Array, len: number, i: number): number {
  const c = b[i]!;
  if (c < 0xc2) return 0;
  if (c < 0xe0) {
    if (i + 1 >= len) return 0;
    return (b[i + 1]! & 0xc0) == 0x80 ? 2 : 0;
  }
  if (c < 0xf0) {
    if (i + 2 >= len) return 0;
    const b1 = b[i + 1]!;
    if (b1 < (c == 0xe0 ? 0xa0 : 0x80) || b1 > (c == 0xed ? 0x9f : 0xbf)) return 0;
    return (b[i + 2]! & 0xc0) == 0x80 ? 3 : 0;
  }
  if (c < 0xf5) {
    if (i + 3 >= len) return 0;
    const b1 = b[i + 1]!;
    if (b1 < (c == 0xf0 ? 0x90 : 0x80) || b1 > (c == 0xf4 ? 0x8f : 0xbf)) return 0;
    if ((b[i + 2]! & 0xc0) != 0x80) return 0;
    return (b[i + 3]! & 0xc0) == 0x80 ? 4 : 0;
  }
  return 0;
}

/** Append UTF-8 bytes as a JSON string literal; false (output unspecified) when they are not valid UTF-8. */
export function writeJsonStringBytes(out: ByteBuffer, b: Uint8Array): boolean {
  out.byte(0x22);
  const len = b.length;
  let i = 0;
  while (i < len) {
    const c = b[i]!;
    if (c == 0x22 || c == 0x5c) {
      out.byte(0x5c);
      out.byte(c);
      i++;
    } else if (c < 0x20) {
      escapeUnit(out, c);
      i++;
    } else if (c < 0x80) {
      out.byte(c);
      i++;
    } else {
      const n = utf8SeqLen(b, len, i);
      if (n == 0) return false;
      out.append(b.subarray(i, i + n));
      i += n;
    }
  }
  out.byte(0x22);
  return true;
}
