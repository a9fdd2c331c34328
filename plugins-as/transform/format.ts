// The one number formatter of transform's JSON output, written the same way in
// native.ts so both builds print every double identically (AssemblyScript's
// f64.toString() and JavaScript's Number#toString() differ in places).
//
// A number is rounded to at most `decimals` fractional digits (half away from
// zero, on the binary value scaled by 10^decimals), trailing zeros dropped:
// 21.5 → "21.5", 48 → "48", 70/3 → "23.333333" (decimals 6), -0.0001 → "0".
// Fewer decimals are used when the scaled value would pass 2^53 (beyond that
// a double has no exact fraction left to print). Integers from 2^53 up are
// printed exactly, digit for digit (1e300 has 301 digits). NaN and ±Infinity,
// which JSON cannot carry, become null. Only exact operations are used (IEEE
// multiply, add, floor, fmod of integers), so both builds agree bit for bit.
import { ByteBuffer } from "./buffer";

export const MAX_DECIMALS: i32 = 15;
const TWO_53: f64 = 9007199254740992;
const LIMB: f64 = 10000000; // big-integer limbs hold 7 decimal digits

// Powers of ten by repeated multiplication: exact up to 10^22.
const POW10 = new StaticArray<f64>(MAX_DECIMALS + 1);
let p: f64 = 1;
for (let i = 0; i <= MAX_DECIMALS; i++) {
  POW10[i] = p;
  p *= 10;
}

const digits = new StaticArray<i32>(400); // scratch: one decimal digit each, least significant first
const limbs = new StaticArray<f64>(48); // scratch: 1e308 needs 44 limbs

/** Digits of the integer-valued double 0 <= r < 2^54 into `digits`, least significant first; returns the count. */
function integerDigits(r: f64): i32 {
  let n = 0;
  do {
    const d = r % 10;
    unchecked((digits[n++] = <i32>d));
    r = (r - d) / 10;
  } while (r > 0);
  return n;
}

/** Digits of the integer-valued double r >= 2^53, exactly. */
function bigIntegerDigits(r: f64): i32 {
  // r = m * 2^e with m < 2^53: halving a double is exact.
  let m = r;
  let e = 0;
  while (m >= TWO_53) {
    m /= 2;
    e++;
  }
  let count = 0;
  while (m > 0) {
    const rest = m % LIMB;
    unchecked((limbs[count++] = rest));
    m = (m - rest) / LIMB;
  }
  for (let k = 0; k < e; k++) {
    let carry: f64 = 0;
    for (let i = 0; i < count; i++) {
      const v = unchecked(limbs[i]) * 2 + carry;
      carry = v >= LIMB ? 1 : 0;
      unchecked((limbs[i] = v - carry * LIMB));
    }
    if (carry > 0) unchecked((limbs[count++] = carry));
  }
  let n = 0;
  for (let i = 0; i < count; i++) {
    let v = unchecked(limbs[i]);
    for (let j = 0; j < 7; j++) {
      const d = v % 10;
      unchecked((digits[n++] = <i32>d));
      v = (v - d) / 10;
    }
  }
  while (n > 1 && unchecked(digits[n - 1]) == 0) n--;
  return n;
}

/** Append `x` formatted with at most `decimals` (0..MAX_DECIMALS) fractional digits. */
export function writeNumber(out: ByteBuffer, x: f64, decimals: i32): void {
  if (!isFinite(x)) {
    out.ascii("null");
    return;
  }
  const negative = x < 0;
  const a = negative ? -x : x;
  let d = decimals;
  while (d > 0 && a * unchecked(POW10[d]) >= TWO_53) d--;
  let n: i32;
  if (a >= TWO_53) {
    n = bigIntegerDigits(a);
  } else {
    const r = Math.floor(a * unchecked(POW10[d]) + 0.5);
    if (r == 0) {
      out.byte(0x30);
      return;
    }
    n = integerDigits(r);
  }
  // Drop trailing zeros of the fraction.
  let low = 0;
  while (low < d && unchecked(digits[low]) == 0) low++;
  if (negative) out.byte(0x2d);
  if (n <= d) {
    out.byte(0x30);
  } else {
    for (let i = n - 1; i >= d; i--) out.byte(0x30 + unchecked(digits[i]));
  }
  if (low < d) {
    out.byte(0x2e);
    for (let i = d - 1; i >= low; i--) out.byte(i < n ? 0x30 + unchecked(digits[i]) : 0x30);
  }
}
