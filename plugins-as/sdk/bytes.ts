// Byte helpers over linear memory; no allocation unless stated.

/** Copy `len` bytes at `ptr` into a new Uint8Array. Allocates. */
export function copyBytes(ptr: usize, len: i32): Uint8Array {
  const out = new Uint8Array(len);
  memory.copy(out.dataStart, ptr, <usize>len);
  return out;
}

/** UTF-8 bytes at (ptr, len) equal the string? ASCII strings compare without allocating. */
export function bytesEqualString(ptr: usize, len: i32, s: string): bool {
  const n = s.length;
  let ascii = true;
  for (let i = 0; i < n; i++) {
    if (<u32>s.charCodeAt(i) >= 0x80) {
      ascii = false;
      break;
    }
  }
  if (ascii) {
    if (n != len) return false;
    for (let i = 0; i < n; i++) {
      if (<i32>load<u8>(ptr + <usize>i) != s.charCodeAt(i)) return false;
    }
    return true;
  }
  const encoded = String.UTF8.encode(s);
  if (encoded.byteLength != len) return false;
  return memory.compare(changetype<usize>(encoded), ptr, <usize>len) == 0;
}

/** Decode UTF-8 bytes to a string. Allocates. */
export function decodeString(ptr: usize, len: i32): string {
  return String.UTF8.decodeUnsafe(ptr, <usize>len);
}
