// SHA-256 (FIPS 180-4), HMAC-SHA256 (RFC 2104) and PBKDF2-HMAC-SHA256
// (RFC 8018) over raw linear memory, allocation-free: every buffer is static.
//
// PBKDF2 is where a CONNECT spends its fuel, so the HMAC keys are absorbed
// once per password (the inner and outer pad states), after which every
// iteration is exactly two compressions of one pre-padded block.

const K = memory.data<u32>([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);

const IV = memory.data<u32>([
  0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
]);

/** Longest salt PBKDF2 accepts (bytes); the first-block message is salt || INT(i). */
export const MAX_SALT: i32 = 256;
/** Longest derived key (bytes). */
export const MAX_KEY: i32 = 64;

const W = memory.data(256, 16); // message schedule, 64 words
const STATE = memory.data(32, 16); // chaining state, 8 words (native order)
const BLOCK = memory.data(64, 16); // padding block
const KEY_BLOCK = memory.data(64, 16); // HMAC key xor pad
const ISTATE = memory.data(32, 16); // state after absorbing key ^ ipad
const OSTATE = memory.data(32, 16); // state after absorbing key ^ opad
const SALT_MSG = memory.data(MAX_SALT + 4, 16); // salt || INT(block index)
const U = memory.data(32, 16); // U_j, the current HMAC output
const T = memory.data(32, 16); // T_i, xor of all U_j
const PAD32 = memory.data(64, 16); // one 32-byte message in a padded block (HMAC with a 64-byte prefix)

// One round with the working variables named by role; the caller rotates the
// roles instead of shuffling eight values every round (fuel is charged per
// instruction, and the shuffle would be a fifth of it).
// @ts-ignore: decorator
@inline function sigma1(e: u32): u32 {
  return rotr<u32>(e, 6) ^ rotr<u32>(e, 11) ^ rotr<u32>(e, 25);
}
// @ts-ignore: decorator
@inline function sigma0(a: u32): u32 {
  return rotr<u32>(a, 2) ^ rotr<u32>(a, 13) ^ rotr<u32>(a, 22);
}
// @ts-ignore: decorator
@inline function choose(e: u32, f: u32, g: u32): u32 {
  return g ^ (e & (f ^ g));
}
// @ts-ignore: decorator
@inline function majority(a: u32, b: u32, c: u32): u32 {
  return (a & b) | (c & (a | b));
}
// @ts-ignore: decorator
@inline function kw(i: usize): u32 {
  return load<u32>(K + (i << 2)) + load<u32>(W + (i << 2));
}

/** One SHA-256 compression of the 64-byte big-endian block at `block` into `state`. */
function compress(state: usize, block: usize): void {
  for (let i: usize = 0; i < 64; i += 4) {
    store<u32>(W + i, bswap<u32>(load<u32>(block + i)));
  }
  for (let i: usize = 64; i < 256; i += 4) {
    const w15 = load<u32>(W + i - 60);
    const w2 = load<u32>(W + i - 8);
    const s0 = rotr<u32>(w15, 7) ^ rotr<u32>(w15, 18) ^ (w15 >>> 3);
    const s1 = rotr<u32>(w2, 17) ^ rotr<u32>(w2, 19) ^ (w2 >>> 10);
    store<u32>(W + i, load<u32>(W + i - 64) + s0 + load<u32>(W + i - 28) + s1);
  }
  let a = load<u32>(state, 0);
  let b = load<u32>(state, 4);
  let c = load<u32>(state, 8);
  let d = load<u32>(state, 12);
  let e = load<u32>(state, 16);
  let f = load<u32>(state, 20);
  let g = load<u32>(state, 24);
  let h = load<u32>(state, 28);
  let t: u32 = 0;
  for (let i: usize = 0; i < 64; i += 8) {
    t = h + sigma1(e) + choose(e, f, g) + kw(i);
    d += t;
    h = t + sigma0(a) + majority(a, b, c);
    t = g + sigma1(d) + choose(d, e, f) + kw(i + 1);
    c += t;
    g = t + sigma0(h) + majority(h, a, b);
    t = f + sigma1(c) + choose(c, d, e) + kw(i + 2);
    b += t;
    f = t + sigma0(g) + majority(g, h, a);
    t = e + sigma1(b) + choose(b, c, d) + kw(i + 3);
    a += t;
    e = t + sigma0(f) + majority(f, g, h);
    t = d + sigma1(a) + choose(a, b, c) + kw(i + 4);
    h += t;
    d = t + sigma0(e) + majority(e, f, g);
    t = c + sigma1(h) + choose(h, a, b) + kw(i + 5);
    g += t;
    c = t + sigma0(d) + majority(d, e, f);
    t = b + sigma1(g) + choose(g, h, a) + kw(i + 6);
    f += t;
    b = t + sigma0(c) + majority(c, d, e);
    t = a + sigma1(f) + choose(f, g, h) + kw(i + 7);
    e += t;
    a = t + sigma0(b) + majority(b, c, d);
  }
  store<u32>(state, load<u32>(state, 0) + a, 0);
  store<u32>(state, load<u32>(state, 4) + b, 4);
  store<u32>(state, load<u32>(state, 8) + c, 8);
  store<u32>(state, load<u32>(state, 12) + d, 12);
  store<u32>(state, load<u32>(state, 16) + e, 16);
  store<u32>(state, load<u32>(state, 20) + f, 20);
  store<u32>(state, load<u32>(state, 24) + g, 24);
  store<u32>(state, load<u32>(state, 28) + h, 28);
}

function writeDigest(out: usize): void {
  for (let i: usize = 0; i < 32; i += 4) store<u32>(out + i, bswap<u32>(load<u32>(STATE + i)));
}

/**
 * Finish a hash: continue from `init` (a state that has absorbed `absorbed`
 * bytes, a multiple of 64) over `len` bytes at `ptr`, write the digest to `out`.
 */
function finish(init: usize, absorbed: i32, ptr: usize, len: i32, out: usize): void {
  memory.copy(STATE, init, 32);
  let p = 0;
  while (len - p >= 64) {
    compress(STATE, ptr + <usize>p);
    p += 64;
  }
  const rest = len - p;
  memory.fill(BLOCK, 0, 64);
  memory.copy(BLOCK, ptr + <usize>p, <usize>rest);
  store<u8>(BLOCK + <usize>rest, 0x80);
  if (rest >= 56) {
    compress(STATE, BLOCK);
    memory.fill(BLOCK, 0, 64);
  }
  store<u64>(BLOCK + 56, bswap<u64>(<u64>(absorbed + len) << 3));
  compress(STATE, BLOCK);
  writeDigest(out);
}

/** SHA-256 of `len` bytes at `ptr` into the 32 bytes at `out`. */
export function sha256(ptr: usize, len: i32, out: usize): void {
  finish(IV, 0, ptr, len, out);
}

/** Absorb an HMAC key: ISTATE/OSTATE become the states after key ^ ipad / key ^ opad. */
function hmacKey(key: usize, keyLen: i32): void {
  memory.fill(KEY_BLOCK, 0, 64);
  if (keyLen > 64) {
    sha256(key, keyLen, KEY_BLOCK);
  } else {
    memory.copy(KEY_BLOCK, key, <usize>keyLen);
  }
  for (let i: usize = 0; i < 64; i++) store<u8>(BLOCK + i, load<u8>(KEY_BLOCK + i) ^ 0x36);
  memory.copy(ISTATE, IV, 32);
  compress(ISTATE, BLOCK);
  for (let i: usize = 0; i < 64; i++) store<u8>(BLOCK + i, load<u8>(KEY_BLOCK + i) ^ 0x5c);
  memory.copy(OSTATE, IV, 32);
  compress(OSTATE, BLOCK);
}

/** Hash the 32 bytes at `io` from `init` (64 bytes absorbed) and write the digest back to `io`. */
function hash32After64(init: usize, io: usize): void {
  memory.copy(PAD32, io, 32);
  memory.copy(STATE, init, 32);
  compress(STATE, PAD32);
  writeDigest(io);
}

/**
 * PBKDF2-HMAC-SHA256: derive `outLen` bytes (1..MAX_KEY) into `out` from the
 * password and salt (0..MAX_SALT bytes) with `iterations` (>= 1) rounds.
 */
export function pbkdf2(password: usize, passwordLen: i32, salt: usize, saltLen: i32, iterations: i32, out: usize, outLen: i32): void {
  hmacKey(password, passwordLen);
  // The constant tail of every one-block HMAC message of 32 bytes: 0x80, zeros, bit length 64 + 32 bytes.
  memory.fill(PAD32 + 32, 0, 32);
  store<u8>(PAD32 + 32, 0x80);
  store<u64>(PAD32 + 56, bswap<u64>(<u64>(64 + 32) << 3));
  memory.copy(SALT_MSG, salt, <usize>saltLen);
  let done = 0;
  for (let block: u32 = 1; done < outLen; block++) {
    store<u32>(SALT_MSG + <usize>saltLen, bswap<u32>(block));
    finish(ISTATE, 64, SALT_MSG, saltLen + 4, U);
    hash32After64(OSTATE, U);
    memory.copy(T, U, 32);
    for (let j = 1; j < iterations; j++) {
      hash32After64(ISTATE, U);
      hash32After64(OSTATE, U);
      for (let k: usize = 0; k < 32; k += 8) store<u64>(T + k, load<u64>(T + k) ^ load<u64>(U + k));
    }
    const n = min(32, outLen - done);
    memory.copy(out + <usize>done, T, <usize>n);
    done += n;
  }
}

/** Compare `len` bytes without an early exit, so the time taken reveals nothing about where they differ. */
export function constantTimeEqual(a: usize, b: usize, len: i32): bool {
  let diff: u32 = 0;
  for (let i: usize = 0; i < <usize>len; i++) diff |= <u32>(load<u8>(a + i) ^ load<u8>(b + i));
  return diff == 0;
}
