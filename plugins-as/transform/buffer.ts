// A growable byte buffer outside the garbage collector (heap.alloc), reused
// from message to message so the per-message path allocates nothing once the
// buffers have grown to the largest payload seen; plus JSON string writers.

export class ByteBuffer {
  ptr: usize = 0;
  cap: i32 = 0;
  len: i32 = 0;

  /** Make room for `extra` more bytes. May move `ptr`. */
  reserve(extra: i32): void {
    const need = this.len + extra;
    if (need <= this.cap) return;
    let cap = max(256, this.cap * 2);
    while (cap < need) cap *= 2;
    this.ptr = this.ptr == 0 ? heap.alloc(<usize>cap) : heap.realloc(this.ptr, <usize>cap);
    this.cap = cap;
  }

  clear(): void {
    this.len = 0;
  }

  byte(c: i32): void {
    this.reserve(1);
    store<u8>(this.ptr + <usize>this.len, <u8>c);
    this.len++;
  }

  /** Append `n` bytes from `src` (which must not point into this buffer). */
  bytes(src: usize, n: i32): void {
    this.reserve(n);
    memory.copy(this.ptr + <usize>this.len, src, <usize>n);
    this.len += n;
  }

  /** Append an ASCII string. */
  ascii(s: string): void {
    const n = s.length;
    this.reserve(n);
    for (let i = 0; i < n; i++) store<u8>(this.ptr + <usize>(this.len + i), <u8>s.charCodeAt(i));
    this.len += n;
  }

  /** Replace bytes [start, end) with `n` bytes from `src` (not inside this buffer). */
  replace(start: i32, end: i32, src: usize, n: i32): void {
    const delta = n - (end - start);
    if (delta > 0) this.reserve(delta);
    memory.copy(this.ptr + <usize>(start + n), this.ptr + <usize>end, <usize>(this.len - end));
    memory.copy(this.ptr + <usize>start, src, <usize>n);
    this.len += delta;
  }

  /** Replace the content with `n` bytes from `src` (not inside this buffer). */
  assign(src: usize, n: i32): void {
    this.len = 0;
    this.bytes(src, n);
  }
}

const HEX = "0123456789abcdef";

function escapeUnit(out: ByteBuffer, unit: i32): void {
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

// Length of the well-formed UTF-8 sequence at ptr + i (lead byte >= 0x80), or 0.
function utf8SeqLen(ptr: usize, len: i32, i: i32): i32 {
  const c = <i32>load<u8>(ptr + <usize>i);
  if (c < 0xc2) return 0;
  if (c < 0xe0) {
    if (i + 1 >= len) return 0;
    return (<i32>load<u8>(ptr + <usize>(i + 1)) & 0xc0) == 0x80 ? 2 : 0;
  }
  if (c < 0xf0) {
    if (i + 2 >= len) return 0;
    const b1 = <i32>load<u8>(ptr + <usize>(i + 1));
    if (b1 < (c == 0xe0 ? 0xa0 : 0x80) || b1 > (c == 0xed ? 0x9f : 0xbf)) return 0;
    return (<i32>load<u8>(ptr + <usize>(i + 2)) & 0xc0) == 0x80 ? 3 : 0;
  }
  if (c < 0xf5) {
    if (i + 3 >= len) return 0;
    const b1 = <i32>load<u8>(ptr + <usize>(i + 1));
    if (b1 < (c == 0xf0 ? 0x90 : 0x80) || b1 > (c == 0xf4 ? 0x8f : 0xbf)) return 0;
    if ((<i32>load<u8>(ptr + <usize>(i + 2)) & 0xc0) != 0x80) return 0;
    return (<i32>load<u8>(ptr + <usize>(i + 3)) & 0xc0) == 0x80 ? 4 : 0;
  }
  return 0;
}

/** Append UTF-8 bytes as a JSON string literal; false (output unspecified) when they are not valid UTF-8. */
export function writeJsonStringBytes(out: ByteBuffer, ptr: usize, len: i32): bool {
  out.byte(0x22);
  let i = 0;
  while (i < len) {
    const c = <i32>load<u8>(ptr + <usize>i);
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
      const n = utf8SeqLen(ptr, len, i);
      if (n == 0) return false;
      out.bytes(ptr + <usize>i, n);
      i += n;
    }
  }
  out.byte(0x22);
  return true;
}
