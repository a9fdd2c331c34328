// The value of a JSON number's text, correctly rounded to the nearest f64 (as
// JSON.parse gives it), without allocating: an exact fast path while the
// mantissa fits in 2^53 and the power of ten is exact, otherwise a big-integer
// comparison against the halfway point. json.ts validates the text first: this
// module assumes [s, e) is a valid JSON number.

const C_PLUS: i32 = 0x2b;
const C_MINUS: i32 = 0x2d;
const C_DOT: i32 = 0x2e;
const C_0: i32 = 0x30;

// The document the number lies in (set by jsonNumberValue for one call).
let gBase: usize = 0;

@inline function isDigit(c: i32): bool {
  return <u32>(c - C_0) < 10;
}

@inline function byteAt(i: i32): i32 {
  return <i32>load<u8>(gBase + <usize>i);
}

/** The value of the valid JSON number text [s, e) of the document at `base`. */
export function jsonNumberValue(base: usize, s: i32, e: i32): f64 {
  gBase = base;
  return numberValue(s, e);
}

const POW10 = memory.data<f64>([
  1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
  1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
]);

// @ts-ignore: decorator
@inline function pow10(k: i32): f64 {
  return load<f64>(POW10 + (<usize>k << 3));
}

// Slow path state: significant digits D (one byte per digit) and exponent q,
// value = D * 10^q. 800 digits + a sticky digit decide every f64 rounding
// (halfway points have at most 767 significant digits).
const MAX_DIGITS: i32 = 800;
const DIGITS = memory.data(MAX_DIGITS + 8);
let gNd: i32 = 0;
let gQ: i32 = 0;

// Big integers: little-endian u32 limbs in static scratch (max ~4800 bits used).
const BN_LIMBS: i32 = 320;
const BN_A = memory.data(BN_LIMBS << 2);
const BN_B = memory.data(BN_LIMBS << 2);

function bnMulSmall(a: usize, len: i32, m: u32): i32 {
  let carry: u64 = 0;
  for (let i = 0; i < len; i++) {
    let at = a + (<usize>i << 2);
    let t = <u64>load<u32>(at) * <u64>m + carry;
    store<u32>(at, <u32>t);
    carry = t >> 32;
  }
  if (carry != 0) {
    store<u32>(a + (<usize>len << 2), <u32>carry);
    len++;
  }
  return len;
}

function bnAddSmall(a: usize, len: i32, v: u32): i32 {
  let carry = <u64>v;
  for (let i = 0; i < len && carry != 0; i++) {
    let at = a + (<usize>i << 2);
    let t = <u64>load<u32>(at) + carry;
    store<u32>(at, <u32>t);
    carry = t >> 32;
  }
  if (carry != 0) {
    store<u32>(a + (<usize>len << 2), <u32>carry);
    len++;
  }
  return len;
}

function bnMulPow5(a: usize, len: i32, n: i32): i32 {
  while (n >= 13) {
    len = bnMulSmall(a, len, 1220703125); // 5^13
    n -= 13;
  }
  if (n > 0) {
    let m: u32 = 1;
    for (let i = 0; i < n; i++) m *= 5;
    len = bnMulSmall(a, len, m);
  }
  return len;
}

function bnShl(a: usize, len: i32, bits: i32): i32 {
  if (len == 0 || bits == 0) return len;
  let limbs = bits >>> 5;
  let sh = bits & 31;
  let newLen = len + limbs;
  if (sh == 0) {
    for (let i = len - 1; i >= 0; i--) {
      store<u32>(a + (<usize>(i + limbs) << 2), load<u32>(a + (<usize>i << 2)));
    }
  } else {
    let top = load<u32>(a + (<usize>(len - 1) << 2)) >>> (32 - sh);
    if (top != 0) {
      store<u32>(a + (<usize>newLen << 2), top);
      newLen++;
    }
    for (let i = len - 1; i > 0; i--) {
      let hi = load<u32>(a + (<usize>i << 2));
      let lo = load<u32>(a + (<usize>(i - 1) << 2));
      store<u32>(a + (<usize>(i + limbs) << 2), (hi << sh) | (lo >>> (32 - sh)));
    }
    store<u32>(a + (<usize>limbs << 2), load<u32>(a) << sh);
  }
  for (let i = 0; i < limbs; i++) store<u32>(a + (<usize>i << 2), 0);
  return newLen;
}

function bnCmp(a: usize, alen: i32, b: usize, blen: i32): i32 {
  if (alen != blen) return alen > blen ? 1 : -1;
  for (let i = alen - 1; i >= 0; i--) {
    let x = load<u32>(a + (<usize>i << 2));
    let y = load<u32>(b + (<usize>i << 2));
    if (x != y) return x > y ? 1 : -1;
  }
  return 0;
}

// Compares D * 10^q with m * 2^p (m > 0): -1, 0 or 1.
function compareHalfway(m: u64, p: i32): i32 {
  let alen = 0;
  let i = 0;
  while (i < gNd) {
    let chunk: u32 = 0;
    let mul: u32 = 1;
    for (let j = 0; j < 9 && i < gNd; j++) {
      chunk = chunk * 10 + <u32>load<u8>(DIGITS + <usize>i);
      mul *= 10;
      i++;
    }
    alen = bnMulSmall(BN_A, alen, mul);
    alen = bnAddSmall(BN_A, alen, chunk);
  }
  let blen = 1;
  store<u32>(BN_B, <u32>m);
  if ((m >> 32) != 0) {
    store<u32>(BN_B + 4, <u32>(m >> 32));
    blen = 2;
  }
  let q = gQ;
  if (q >= 0) alen = bnMulPow5(BN_A, alen, q);
  else blen = bnMulPow5(BN_B, blen, -q);
  let s = q - p;
  if (s > 0) alen = bnShl(BN_A, alen, s);
  else if (s < 0) blen = bnShl(BN_B, blen, -s);
  return bnCmp(BN_A, alen, BN_B, blen);
}

// Magnitude of the valid number text [s, e), correctly rounded, no allocation.
function slowNumber(s: i32, e: i32): f64 {
  let p = s;
  if (byteAt(p) == C_MINUS) p++;
  let nd = 0;
  let frac = 0;
  let dropped = 0;
  let sticky = false;
  let inFrac = false;
  while (p < e) {
    let c = byteAt(p);
    if (c == C_DOT) {
      inFrac = true;
      p++;
      continue;
    }
    if (!isDigit(c)) break;
    p++;
    if (inFrac) frac++;
    if (nd == 0 && c == C_0) continue;
    if (nd < MAX_DIGITS) {
      store<u8>(DIGITS + <usize>nd, <u8>(c - C_0));
      nd++;
    } else {
      dropped++;
      if (c != C_0) sticky = true;
    }
  }
  let ex = 0;
  if (p < e) {
    p++; // e / E
    let neg = false;
    let c = byteAt(p);
    if (c == C_MINUS) {
      neg = true;
      p++;
    } else if (c == C_PLUS) {
      p++;
    }
    while (p < e) {
      if (ex < 100000000) ex = ex * 10 + (byteAt(p) - C_0);
      p++;
    }
    if (neg) ex = -ex;
  }
  let q = ex - frac + dropped;
  if (sticky) {
    store<u8>(DIGITS + <usize>nd, 1);
    nd++;
    q--;
  }
  while (nd > 0 && load<u8>(DIGITS + <usize>(nd - 1)) == 0) {
    nd--;
    q++;
  }
  if (nd == 0) return 0;
  if (nd + q - 1 > 308) return Infinity;
  if (nd + q < -324) return 0;
  gNd = nd;
  gQ = q;

  // Estimate from the first 19 digits (within a few ulps).
  let k = nd < 19 ? nd : 19;
  let w: u64 = 0;
  for (let i = 0; i < k; i++) w = w * 10 + <u64>load<u8>(DIGITS + <usize>i);
  let q2 = q + (nd - k);
  let x = <f64>w;
  if (q2 > 0) {
    while (q2 > 22) {
      x *= 1e22;
      q2 -= 22;
    }
    x *= pow10(q2);
  } else if (q2 < 0) {
    while (q2 < -22) {
      x /= 1e22;
      q2 += 22;
    }
    x /= pow10(-q2);
  }
  if (x > f64.MAX_VALUE) x = f64.MAX_VALUE;

  // Walk to the correctly rounded neighbour (round half to even).
  while (true) {
    let bits = reinterpret<u64>(x);
    let be = <i32>(bits >> 52);
    let fr = bits & 0xfffffffffffff;
    let m: u64;
    let ex2: i32;
    if (be == 0) {
      m = fr;
      ex2 = -1074;
    } else {
      m = fr | 0x10000000000000;
      ex2 = be - 1075;
    }
    let odd = (m & 1) != 0;
    let up = compareHalfway(2 * m + 1, ex2 - 1);
    if (up > 0 || (up == 0 && odd)) {
      x = reinterpret<f64>(bits + 1);
      if (x == Infinity) return x;
      continue;
    }
    if (m == 0) return x;
    let down = fr == 0 && be > 1
      ? compareHalfway(4 * m - 1, ex2 - 2)
      : compareHalfway(2 * m - 1, ex2 - 1);
    if (down < 0 || (down == 0 && odd)) {
      x = reinterpret<f64>(bits - 1);
      continue;
    }
    return x;
  }
}

// Value of the valid number text [s, e).
function numberValue(s: i32, e: i32): f64 {
  let p = s;
  let neg = false;
  if (byteAt(p) == C_MINUS) {
    neg = true;
    p++;
  }
  // Mantissa as an exact integer while it stays <= 2^53.
  let w: u64 = 0;
  let fast = true;
  let frac = 0;
  let inFrac = false;
  while (p < e) {
    let c = byteAt(p);
    if (c == C_DOT) {
      inFrac = true;
      p++;
      continue;
    }
    if (!isDigit(c)) break;
    p++;
    if (inFrac) frac++;
    if (fast) {
      let d = <u64>(c - C_0);
      if (w > 900719925474099 || (w == 900719925474099 && d > 2)) fast = false;
      else w = w * 10 + d;
    }
  }
  let ex = 0;
  if (p < e) {
    p++; // e / E
    let eneg = false;
    let c = byteAt(p);
    if (c == C_MINUS) {
      eneg = true;
      p++;
    } else if (c == C_PLUS) {
      p++;
    }
    while (p < e) {
      if (ex < 100000000) ex = ex * 10 + (byteAt(p) - C_0);
      p++;
    }
    if (eneg) ex = -ex;
  }
  let e10 = ex - frac;
  let x: f64;
  if (fast && w == 0) x = 0;
  else if (fast && e10 >= 0 && e10 <= 22) x = <f64>w * pow10(e10);
  else if (fast && e10 < 0 && e10 >= -22) x = <f64>w / pow10(-e10);
  else x = slowNumber(s, e);
  return neg ? -x : x;
}
