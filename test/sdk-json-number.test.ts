// The SDK's JSON number conversion, AssemblyScript (plugins-as/sdk/json-number.ts,
// built with asc: its own exact big-integer slow path) vs its native twin
// (host/native/json-number.ts) vs JSON.parse: every number must round to the
// same double — hand-written edge cases (2^53, subnormals, overflow, 900-digit
// mantissas) and exact halfway points between doubles. WASMQ_TEST_SEED varies
// the random halfway points.

import { describe, test } from "node:test";
import { checkJson, checkValidDocs, jsonReader } from "./sdk-json-support.js";
import { Failures, Rng, SEED, utf8 } from "./sdk-support.js";

const reader = jsonReader("wasmq-sdk-json-number-");

const NUMBER_DOCS: [string, string[]][] = [
  [
    "[0,-0,1,-1,0.5,-0.5,1e5,1E5,1e+5,1e-5,1E-05,10e007,123456789012345,1234567890123456,9007199254740992,9007199254740993," +
      "9007199254740991,18446744073709551616,0.1,0.2,0.30000000000000004,3.141592653589793,2.718281828459045," +
      "1e22,1e23,1e-22,1e-23,123.456e-300,1.7976931348623157e308,1.7976931348623158e308,1.7976931348623159e308," +
      "1e309,-1e309,1e400,4.9e-324,5e-324,2.4703282292062327e-324,2.4703282292062328e-324,2.2250738585072011e-308," +
      "2.2250738585072012e-308,1e-400,-1e-400,0e99999999999,0.000000000000000000000000001e27," +
      "1" + "0".repeat(400) + "e-400," + "0." + "0".repeat(500) + "1e500," + "9".repeat(900) + "e-900," +
      "1." + "0".repeat(850) + "1,7.7777777777777777777777777777777e-123]",
    Array.from({ length: 52 }, (_, i) => String(i)),
  ],
  ['{"big":' + "1".repeat(5000) + ',"neg":-' + "3".repeat(700) + "e-700}", ["big", "neg"]],
];

describe("sdk json numbers: AssemblyScript vs native TypeScript vs JSON.parse", () => {
  test("hand-written numbers", () => {
    const fail = new Failures();
    checkValidDocs(reader.asm, fail, NUMBER_DOCS, "number-table");
    fail.assertNone("number-table");
  });

  test("exact halfway and near-halfway decimal numbers round like JSON.parse", () => {
    const rng = new Rng(SEED ^ 0x4a1f);
    const fail = new Failures();
    const dv = new DataView(new ArrayBuffer(8));
    for (let i = 0; i < 600; i++) {
      dv.setUint32(0, rng.int(0x7ff00000) >>> 0);
      dv.setUint32(4, rng.int(2 ** 32) >>> 0);
      if (i % 5 === 0) dv.setUint32(0, rng.int(0x00200000)); // subnormal / tiny
      const bits = dv.getBigUint64(0);
      const be = Number(bits >> 52n);
      const fr = bits & ((1n << 52n) - 1n);
      const m = be === 0 ? fr : fr | (1n << 52n);
      const ex = be === 0 ? -1074 : be - 1075;
      const M = 2n * m + 1n; // halfway to the next double: M * 2^(ex-1)
      const p = ex - 1;
      let s: string;
      if (p >= 0) {
        s = (M << BigInt(p)).toString();
      } else {
        const digits = (M * 5n ** BigInt(-p)).toString();
        const k = -p;
        s = digits.length > k
          ? digits.slice(0, digits.length - k) + "." + digits.slice(digits.length - k)
          : "0." + "0".repeat(k - digits.length) + digits;
      }
      // exact halfway, just above (also beyond the 800 kept digits: sticky), just below
      const group = [s, s + "000000001", s + "0".repeat(rng.int(900)) + "1", s.slice(0, -1), "-" + s];
      checkJson(reader.asm, fail, utf8("[" + group.join(",") + "]"), ["0", "1", "2", "3", "4"], "halfway");
    }
    // mantissas around 2^53 (the fast-path bound) with every fast-path exponent
    const near: string[] = [];
    for (let m = 9007199254740980n; m <= 9007199254741010n; m++) {
      for (const e of [-22, -21, -17, -10, -5, -3, -1, 0, 1, 3, 7, 15, 22, 23]) {
        near.push(`${m}e${e}`);
        const digits = m.toString();
        if (e < 0 && -e < digits.length) near.push(digits.slice(0, digits.length + e) + "." + digits.slice(digits.length + e));
      }
    }
    for (let i = 0; i < near.length; i += 50) {
      const chunk = near.slice(i, i + 50);
      checkJson(reader.asm, fail, utf8("[" + chunk.join(",") + "]"), chunk.map((_, j) => String(j)), "near-2^53");
    }
    fail.assertNone("halfway");
  });
});
