// wasmq native SDK — JSON reader, numbers (TypeScript twin of
// plugins-as/sdk/json-number.ts).
//
// The value of a valid JSON number's text, correctly rounded to the nearest
// double (as JSON.parse gives it): the same exact fast path as the
// AssemblyScript twin while the mantissa fits in 2^53 and the power of ten is
// exact, otherwise `Number(text)`, which V8 rounds correctly (the AS twin has
// its own exact slow path). json-validate.ts checks the text first.
import { C_DOT, C_MINUS, C_PLUS, C_0, gDoc, byteAt, isDigit } from "./json-doc.js";

const POW10 = [
  1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
  1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

function asciiText(s: number, e: number): string {
  let out = "";
  for (let i = s; i < e; i += 8192) {
    out += String.fromCharCode.apply(null, gDoc.subarray(i, Math.min(e, i + 8192)) as unknown as number[]);
  }
  return out;
}

// Value of the valid number text [s, e). Fast path identical to the AS twin.
export function numberValue(s: number, e: number): number {
  let p = s;
  let neg = false;
  if (byteAt(p) === C_MINUS) {
    neg = true;
    p++;
  }
  let w = 0; // exact integer while <= 2^53
  let fast = true;
  let frac = 0;
  let inFrac = false;
  while (p < e) {
    const c = byteAt(p);
    if (c === C_DOT) {
      inFrac = true;
      p++;
      continue;
    }
    if (!isDigit(c)) break;
    p++;
    if (inFrac) frac++;
    if (fast) {
      const d = c - C_0;
      if (w > 900719925474099 || (w === 900719925474099 && d > 2)) fast = false;
      else w = w * 10 + d;
    }
  }
  let ex = 0;
  if (p < e) {
    p++; // e / E
    let eneg = false;
    const c = byteAt(p);
    if (c === C_MINUS) {
      eneg = true;
      p++;
    } else if (c === C_PLUS) {
      p++;
    }
    while (p < e) {
      if (ex < 100000000) ex = ex * 10 + (byteAt(p) - C_0);
      p++;
    }
    if (eneg) ex = -ex;
  }
  const e10 = ex - frac;
  let x: number;
  if (fast && w === 0) x = 0;
  else if (fast && e10 >= 0 && e10 <= 22) x = w * POW10[e10]!;
  else if (fast && e10 < 0 && e10 >= -22) x = w / POW10[-e10]!;
  else x = Math.abs(Number(asciiText(s, e)));
  return neg ? -x : x;
}
