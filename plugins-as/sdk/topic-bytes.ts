// wasmq plugin SDK — the byte-level pieces the topic modules share (AssemblyScript):
// the characters MQTT topics give meaning to, reading a filter's UTF-16 units
// and a topic's UTF-8 bytes in place, and the length of a well-formed UTF-8
// sequence. topic.ts (matching) and topic-cover.ts (filter covers filter) use
// them; the native twin reads strings and Uint8Arrays directly.

export const C_NUL: i32 = 0x00;
export const C_HASH: i32 = 0x23;
export const C_DOLLAR: i32 = 0x24;
export const C_PERCENT: i32 = 0x25;
export const C_c: i32 = 0x63;
export const C_u: i32 = 0x75;
export const C_PLUS: i32 = 0x2b;
export const C_SLASH: i32 = 0x2f;
export const MAX_TOPIC_BYTES: i32 = 65535;

// @ts-ignore: decorator
@inline export function fch(f: string, i: i32): i32 {
  return <i32>load<u16>(changetype<usize>(f) + (<usize>i << 1));
}

// @ts-ignore: decorator
@inline export function tb(ptr: usize, i: i32): i32 {
  return <i32>load<u8>(ptr + <usize>i);
}

// Length of the well-formed UTF-8 sequence at i (lead byte >= 0x80), or 0.
export function utf8SeqLen(ptr: usize, len: i32, i: i32): i32 {
  let c = tb(ptr, i);
  if (c < 0xc2) return 0;
  if (c < 0xe0) {
    if (i + 1 >= len) return 0;
    return (tb(ptr, i + 1) & 0xc0) == 0x80 ? 2 : 0;
  }
  if (c < 0xf0) {
    if (i + 2 >= len) return 0;
    let b1 = tb(ptr, i + 1);
    let lo = c == 0xe0 ? 0xa0 : 0x80;
    let hi = c == 0xed ? 0x9f : 0xbf;
    if (b1 < lo || b1 > hi) return 0;
    return (tb(ptr, i + 2) & 0xc0) == 0x80 ? 3 : 0;
  }
  if (c < 0xf5) {
    if (i + 3 >= len) return 0;
    let b1 = tb(ptr, i + 1);
    let lo = c == 0xf0 ? 0x90 : 0x80;
    let hi = c == 0xf4 ? 0x8f : 0xbf;
    if (b1 < lo || b1 > hi) return 0;
    if ((tb(ptr, i + 2) & 0xc0) != 0x80) return 0;
    return (tb(ptr, i + 3) & 0xc0) == 0x80 ? 4 : 0;
  }
  return 0;
}

// Length of a "%u"/"%c" substitution (UTF-8 bytes at ptr) when it is usable:
// non-empty, and nothing that would widen the filter or make it invalid
// ('/', '+', '#', U+0000). -1 when not.
export function substitutionLength(ptr: usize, len: i32): i32 {
  if (len <= 0) return -1;
  for (let i = 0; i < len; i++) {
    let c = tb(ptr, i);
    if (c == C_SLASH || c == C_PLUS || c == C_HASH || c == C_NUL) return -1;
  }
  return len;
}
