// transform, native twin of format.ts: the one number formatter of the JSON
// output, written the same way in both builds so they print every double
// identically (see format.ts for the rules).
import { ByteBuffer } from "./buffer.js";

export const MAX_DECIMALS = 15;
const TWO_53 = 9007199254740992;
const LIMB = 10000000; // big-integer limbs hold 7 decimal digits

// Powers of ten by repeated multiplication: exact up to 10^22.
const POW10 = new Float64Array(MAX_DECIMALS + 1);
let p = 1;
for (let i = 0; i <= MAX_DECIMALS; i++) {
  POW10[i] = p;
  p *= 10;
}

const digits = new Int32Array(400); // scratch: one decimal digit each, least significant first
const limbs = new Float64Array(48); // scratch: 1e308 needs 44 limbs

/** Digits of the integer-valued double 0 <= r < 2^54 into `digits`, least significant first; returns the count. */
function integerDigits(r: number): number {
  let n = 0;
  do {
    const d = r % 10;
    digits[n++] = d;
    r = (r - d) / 10;
  } while (r > 0);
  return n;
}

/** Digits of the integer-valued double r >= 2^53, exactly. */
function bigIntegerDigits(r: number): number {
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
    limbs[count++] = rest;
    m = (m - rest) / LIMB;
  }
  for (let k = 0; k < e; k++) {
    let carry = 0;
    for (let i = 0; i < count; i++) {
      const v = limbs[i]! * 2 + carry;
      carry = v >= LIMB ? 1 : 0;
      limbs[i] = v - carry * LIMB;
    }
    if (carry > 0) limbs[count++] = carry;
  }
  let n = 0;
  for (let i = 0; i < count; i++) {
    let v = limbs[i]!;
    for (let j = 0; j < 7; j++) {
      const d = v % 10;
      digits[n++] = d;
      v = (v - d) / 10;
    }
  }
  while (n > 1 && digits[n - 1] == 0) n--;
  return n;
}

/** Append `x` formatted with at most `decimals` (0..MAX_DECIMALS) fractional digits. */
export function writeNumber(out: ByteBuffer, x: number, decimals: number): void {
  if (!isFinite(x)) {
    out.ascii("null");
    return;
  }
  const negative = x < 0;
  const a = negative ? -x : x;
  let d = decimals;
  while (d > 0 && a * POW10[d]! >= TWO_53) d--;
  let n: number;
  if (a >= TWO_53) {
    n = bigIntegerDigits(a);
  } else {
    const r = Math.floor(a * POW10[d]! + 0.5);
    if (r == 0) {
      out.byte(0x30);
      return;
    }
    n = integerDigits(r);
  }
  // Drop trailing zeros of the fraction.
  let low = 0;
  while (low < d && digits[low] == 0) low++;
  if (negative) out.byte(0x2d);
  if (n <= d) {
    out.byte(0x30);
  } else {
    for (let i = n - 1; i >= d; i--) out.byte(0x30 + digits[i]!);
  }
  if (low < d) {
    out.byte(0x2e);
    for (let i = d - 1; i >= low; i--) out.byte(i < n ? 0x30 + digits[i]! : 0x30);
  }
}

/** The formatter on its own, for tests and tools: `formatNumber(70 / 3, 2)` is "23.33". */
export function formatNumber(x: number, decimals = 6): string {
  const out = new ByteBuffer();
  writeNumber(out, x, decimals);
  return Buffer.from(out.view()).toString("latin1");
}
