// Standard base64 (RFC 4648 section 4), for credentials and protocol fields
// (SCRAM, stored keys). Strict decoding: padding optional, nothing but the
// alphabet, leftover bits zero, so every value has one spelling.
// Mirrors host/native/base64.ts.

const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

function value(c: i32): i32 {
  if (c >= 0x41 && c <= 0x5a) return c - 0x41;
  if (c >= 0x61 && c <= 0x7a) return c - 0x61 + 26;
  if (c >= 0x30 && c <= 0x39) return c - 0x30 + 52;
  if (c == 0x2b) return 62;
  if (c == 0x2f) return 63;
  return -1;
}

export namespace base64 {
  /** Encode with padding. */
  export function encode(bytes: Uint8Array): string {
    let out = "";
    const n = bytes.length;
    for (let i = 0; i < n; i += 3) {
      const b0 = <i32>bytes[i];
      const b1 = i + 1 < n ? <i32>bytes[i + 1] : 0;
      const b2 = i + 2 < n ? <i32>bytes[i + 2] : 0;
      out += ALPHABET.charAt(b0 >> 2);
      out += ALPHABET.charAt(((b0 & 3) << 4) | (b1 >> 4));
      out += i + 1 < n ? ALPHABET.charAt(((b1 & 15) << 2) | (b2 >> 6)) : "=";
      out += i + 2 < n ? ALPHABET.charAt(b2 & 63) : "=";
    }
    return out;
  }

  /** Decode strictly; null when `s` is not base64. */
  export function decode(s: string): Uint8Array | null {
    let n = s.length;
    while (n > 0 && s.charCodeAt(n - 1) == 0x3d) n--;
    if (s.length - n > 2 || n % 4 == 1 || (s.length % 4 != 0 && s.length != n)) return null;
    const out = new Uint8Array((n * 3) >> 2);
    let acc = 0;
    let bits = 0;
    let o = 0;
    for (let i = 0; i < n; i++) {
      const v = value(s.charCodeAt(i));
      if (v < 0) return null;
      acc = ((acc << 6) | v) & 0xffffff;
      bits += 6;
      if (bits >= 8) {
        bits -= 8;
        out[o++] = <u8>((acc >> bits) & 0xff);
      }
    }
    if ((acc & ((1 << bits) - 1)) != 0) return null;
    return out;
  }
}
