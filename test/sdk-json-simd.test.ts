// The SDK's JSON reader built with Wasm SIMD (how plugins ship: asconfig.json
// enables it) against the same source built without it (the byte loop alone),
// the native twin (host/native/json.ts) and JSON.parse, over documents made to
// break a 16-bytes-at-a-time string scanner: every special byte (quote,
// backslash escapes, \u escapes, control characters, DEL, multi-byte UTF-8,
// invalid UTF-8) at every offset around the 16-byte steps, strings that end
// exactly at a step or at the end of the document, nested structures, and a
// seeded random corpus of long strings. Also checks that fuel metering accepts
// the SIMD build and still stops a SIMD loop.
//
// WASMQ_TEST_SEED varies the random corpus (the seed is in every failure).

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { isUtf8 } from "node:buffer";
import binaryen from "binaryen";
import { instantiate } from "@assemblyscript/loader";
import * as J from "../host/native/json.js";
import { AsWorkspace } from "./as-build.js";
import { instrumentFuel, FUEL_BUDGET_GLOBAL, FUEL_GLOBAL, FUEL_IMPORT_MODULE, FUEL_IMPORT_NAME } from "../host/fuel.js";

const SEED = process.env.WASMQ_TEST_SEED ? Number(process.env.WASMQ_TEST_SEED) >>> 0 : 0x51d0_2026;

const ENTRY = `
import { jsonValid, jsonFind, jsonNumber, jsonString, jsonLength } from "./sdk/json";
export function alloc(n: i32): usize { return heap.alloc(<usize>(n > 0 ? n : 1)); }
export function free(p: usize): void { heap.free(p); }
export function t_valid(p: usize, n: i32): bool { return jsonValid(p, n); }
export function t_find(p: usize, n: i32, path: string): i64 { return jsonFind(p, n, path); }
export function t_number(p: usize, n: i32, path: string): f64 { return jsonNumber(p, n, path, -12345.5); }
export function t_string(p: usize, n: i32, path: string): string | null { return jsonString(p, n, path, null); }
export function t_length(p: usize, n: i32, path: string): i32 { return jsonLength(p, n, path); }
// Validates the same document forever: only fuel can stop it.
export function t_spin(p: usize, n: i32): i32 { let k = 0; while (true) { if (jsonValid(p, n)) k++; } return k; }
`;

interface Reader {
  memory: WebAssembly.Memory;
  __newString(s: string): number;
  __getString(p: number): string | null;
  __pin(p: number): number;
  __unpin(p: number): void;
  alloc(n: number): number;
  free(p: number): void;
  t_valid(p: number, n: number): number;
  t_find(p: number, n: number, path: number): bigint;
  t_number(p: number, n: number, path: number): number;
  t_string(p: number, n: number, path: number): number;
  t_length(p: number, n: number, path: number): number;
  t_spin(p: number, n: number): number;
}

interface Answers {
  valid: boolean;
  find: number;
  number: number;
  string: string | null;
  length: number;
}

let ws: AsWorkspace | undefined;
let simdWasm!: Uint8Array;
let scalarWasm!: Uint8Array;
let simd!: Reader;
let scalar!: Reader;

before(async () => {
  ws = AsWorkspace.create("wasmq-sdk-json-simd-");
  simdWasm = await ws.compile("simd", ENTRY, ["--runtime", "incremental", "--enable", "simd"]);
  scalarWasm = await ws.compile("scalar", ENTRY, ["--runtime", "incremental"]);
  simd = (await instantiate(simdWasm, {})).exports as unknown as Reader;
  scalar = (await instantiate(scalarWasm, {})).exports as unknown as Reader;
});

after(() => ws?.remove());

function ask(r: Reader, doc: Uint8Array, path: string): Answers {
  const p = r.alloc(doc.length);
  new Uint8Array(r.memory.buffer).set(doc, p);
  const sp = r.__pin(r.__newString(path));
  try {
    return {
      valid: r.t_valid(p, doc.length) !== 0,
      find: Number(r.t_find(p, doc.length, sp)),
      number: r.t_number(p, doc.length, sp),
      string: r.__getString(r.t_string(p, doc.length, sp)),
      length: r.t_length(p, doc.length, sp),
    };
  } finally {
    r.__unpin(sp);
    r.free(p);
  }
}

function native(doc: Uint8Array, path: string): Answers {
  return {
    valid: J.jsonValid(doc),
    find: J.jsonFind(doc, path),
    number: J.jsonNumber(doc, path, -12345.5),
    string: J.jsonString(doc, path, null),
    length: J.jsonLength(doc, path),
  };
}

/** JSON.parse on well-formed UTF-8 (the SDK rejects ill-formed UTF-8 that JSON.parse would see as U+FFFD). */
function oracleValid(doc: Uint8Array): boolean {
  if (!isUtf8(doc)) return false;
  try {
    JSON.parse(Buffer.from(doc).toString("utf8"));
    return true;
  } catch {
    return false;
  }
}

const show = (doc: Uint8Array): string => JSON.stringify(Buffer.from(doc).toString("latin1")).slice(0, 160);

/** Every reader agrees on every path; returns the number of disagreements (first few reported). */
function check(doc: Uint8Array, paths: string[], problems: string[]): void {
  const expectValid = oracleValid(doc);
  for (const path of paths) {
    const want = native(doc, path);
    const got = { simd: ask(simd, doc, path), scalar: ask(scalar, doc, path) };
    if (want.valid !== expectValid) problems.push(`native valid=${want.valid}, JSON.parse ${expectValid}: ${show(doc)}`);
    for (const [name, a] of Object.entries(got)) {
      for (const key of Object.keys(want) as (keyof Answers)[]) {
        if (!Object.is(a[key], want[key])) problems.push(`${name} ${key}(${JSON.stringify(path)})=${String(a[key])}, native ${String(want[key])}: ${show(doc)}`);
      }
    }
  }
}

function assertNone(problems: string[], what: string): void {
  if (problems.length) assert.fail(`${problems.length} disagreement(s) in ${what} (seed ${SEED}):\n${problems.slice(0, 12).join("\n")}`);
}

const bytes = (...parts: (string | number[])[]): Uint8Array =>
  Buffer.concat(parts.map((p) => (typeof p === "string" ? Buffer.from(p, "utf8") : Buffer.from(p))));

/** What can sit inside a string, as raw bytes: valid escapes and UTF-8, and each way to be invalid. */
const SPECIALS: [string, number[]][] = [
  ["escaped quote", [...Buffer.from('\\"')]],
  ["escaped backslash", [...Buffer.from("\\\\")]],
  ["\\n", [...Buffer.from("\\n")]],
  ["\\/", [...Buffer.from("\\/")]],
  ["\\u00e9", [...Buffer.from("\\u00e9")]],
  ["surrogate pair escape", [...Buffer.from("\\ud83d\\ude00")]],
  ["lone surrogate escape", [...Buffer.from("\\udc00")]],
  ["é", [...Buffer.from("é")]],
  ["€", [...Buffer.from("€")]],
  ["😀", [...Buffer.from("😀")]],
  ["DEL", [0x7f]],
  ["tilde", [0x7e]],
  ["raw quote (ends the string early)", [0x22]],
  ["raw control 0x01", [0x01]],
  ["raw control 0x1f", [0x1f]],
  ["raw tab", [0x09]],
  ["raw NUL", [0x00]],
  ["byte 0xff", [0xff]],
  ["overlong 0xc0 0x80", [0xc0, 0x80]],
  ["lone continuation", [0x80]],
  ["truncated 3-byte", [0xe2, 0x82]],
  ["encoded surrogate", [0xed, 0xa0, 0x80]],
  ["above U+10FFFF", [0xf4, 0x90, 0x80, 0x80]],
  ["bad escape \\x", [...Buffer.from("\\x")]],
  ["short \\u", [...Buffer.from("\\u12")]],
  ["backslash at the end", [0x5c]],
];

describe("sdk json: SIMD build vs byte-loop build vs native twin vs JSON.parse", () => {
  test("the SIMD build uses SIMD and the byte-loop build does not", () => {
    const text = (wasm: Uint8Array): string => {
      const mod = binaryen.readBinary(wasm);
      mod.setFeatures(binaryen.Features.All);
      try {
        return mod.emitText();
      } finally {
        mod.dispose();
      }
    };
    assert.match(text(simdWasm), /i8x16\.bitmask/);
    assert.doesNotMatch(text(scalarWasm), /v128/);
  });

  test("every special byte at every offset around the 16-byte steps", () => {
    const problems: string[] = [];
    for (const [, special] of SPECIALS) {
      for (let lead = 0; lead < 4; lead++) {
        for (let before = 0; before <= 80; before++) {
          for (const after of [0, 1, 15, 16, 17]) {
            // The string value starts at a different alignment for each `lead`.
            const doc = bytes(" ".repeat(lead), '{"k":"', "a".repeat(before), special, "b".repeat(after), '","v":-1.5e3}');
            check(doc, ["v", "k"], problems);
          }
        }
      }
    }
    assertNone(problems, "special bytes");
  });

  test("every byte value 0x00-0xff at every lane of the 64-byte and 16-byte steps", () => {
    // The SIMD classifier (quote, backslash, or a signed compare below 0x20 for control
    // and non-ASCII bytes) must agree with the byte loop on all 256 values, at each lane.
    const problems: string[] = [];
    for (let b = 0; b < 256; b++) {
      for (let before = 0; before < 80; before++) {
        const doc = bytes('{"k":"', "a".repeat(before), [b], "b".repeat(20), '","v":-1.5e3}');
        check(doc, ["v"], problems);
      }
    }
    assertNone(problems, "byte values");
  });

  test("every special byte at every offset of the 256-byte step and the steps after it", () => {
    // The 256-byte step only says whether its block holds a special byte; the 64- and
    // 16-byte steps then find the first one. A special byte anywhere in the first or
    // second block, or in the tail the 256-byte step leaves, must be found.
    const problems: string[] = [];
    for (const [, special] of SPECIALS) {
      for (let lead = 0; lead < 2; lead++) {
        for (let before = 0; before <= 530; before++) {
          for (const after of [0, 17, 300]) {
            const doc = bytes(" ".repeat(lead), '{"k":"', "a".repeat(before), special, "b".repeat(after), '","v":-1.5e3}');
            check(doc, ["v", "k"], problems);
          }
        }
      }
    }
    for (let b = 0; b < 256; b += 5) {
      for (const before of [0, 63, 64, 127, 200, 255, 256, 257, 300, 511, 512]) {
        check(bytes('{"k":"', "a".repeat(before), [b], "b".repeat(260), '","v":-1.5e3}'), ["v"], problems);
      }
    }
    for (let n = 240; n <= 600; n++) check(bytes(`["${"x".repeat(n)}",1]`), ["0", "1"], problems);
    assertNone(problems, "256-byte step");
  });

  test("strings that end at a step, at the end of the document, or never", () => {
    const problems: string[] = [];
    for (let n = 0; n <= 48; n++) {
      const s = "x".repeat(n);
      check(bytes(`"${s}"`), [""], problems); // a bare string: the closing quote is the last byte
      check(bytes(`"${s}`), [""], problems); // unterminated
      check(bytes(`"${s}\\`), [""], problems); // ends in a backslash
      check(bytes(`["${s}","${s}"]`), ["0", "1"], problems);
      check(bytes(`{"${s}":1,"${s}y":[2]}`), [s, `${s}y`, `${s}y.0`], problems); // long keys
    }
    assertNone(problems, "string ends");
  });

  test("nested structures with long strings, duplicate keys and escaped keys", () => {
    const problems: string[] = [];
    const pad = "p".repeat(37);
    const docs = [
      `{"a":{"b":[{"c":"${pad}\\"${pad}","d":2}],"e":"${pad}"},"f":3}`,
      `{"a":"${pad}","a":{"x":"${pad}\\\\"},"te\\u006dp":21.5,"t":"${pad}\\u00e9${pad}"}`,
      `[[[[["${pad}"]]]],{"${pad}":{"${pad}":"${pad}"}}]`,
      `{"x":"${"q".repeat(16300)}","value":21.5}`,
      `{"x":"${"q".repeat(16300)}\\n","value":21.5,"x":"${"é".repeat(999)}"}`,
    ];
    for (const d of docs) check(bytes(d), ["a.b.0.c", "a.e", "a.x", "f", "temp", "t", "value", "x", "0.0.0.0.0", `1.${pad}.${pad}`], problems);
    assertNone(problems, "nested");
  });

  test(`random long-string documents, seed=${SEED}`, () => {
    let s = SEED;
    const rnd = (n: number): number => {
      s = (Math.imul(s ^ (s >>> 15), 0x2c1b3c6d) + 0x9e3779b9) >>> 0;
      return s % n;
    };
    const problems: string[] = [];
    let valid = 0;
    const docs = 1500;
    for (let i = 0; i < docs; i++) {
      const parts: (string | number[])[] = ['{"n":7,"s":"'];
      const pieces = 1 + rnd(6);
      for (let k = 0; k < pieces; k++) {
        parts.push("z".repeat(rnd(40)));
        // mostly valid content, sometimes an invalid byte
        const special = rnd(10) < 8 ? SPECIALS[rnd(11)]![1] : SPECIALS[rnd(SPECIALS.length)]![1];
        parts.push(special);
      }
      parts.push('","m":[1,"', "y".repeat(rnd(33)), '"]}');
      const doc = bytes(...parts);
      if (oracleValid(doc)) valid++;
      check(doc, ["n", "s", "m.1"], problems);
    }
    assertNone(problems, "random corpus");
    // The corpus must exercise both outcomes.
    assert.ok(valid > docs * 0.3 && valid < docs * 0.95, `${valid} of ${docs} random documents valid`);
  });

  test("fuel metering accepts the SIMD build and stops a SIMD scan that never ends", async () => {
    const metered = instrumentFuel(simdWasm);
    assert.ok(metered.loopsInstrumented > 0);
    let exhausted = 0;
    const module = await WebAssembly.compile(metered.binary as BufferSource);
    const imports = {
      env: { abort: () => { throw new Error("abort"); } },
      [FUEL_IMPORT_MODULE]: { [FUEL_IMPORT_NAME]: () => { exhausted++; throw new Error("out of fuel"); } },
    } as WebAssembly.Imports;
    const r = (await instantiate(module, imports)).exports as unknown as Reader & Record<string, WebAssembly.Global>;
    const doc = bytes(`{"x":"${"q".repeat(16300)}","value":21.5}`);
    const p = r.alloc(doc.length);
    new Uint8Array(r.memory.buffer).set(doc, p);
    // Every exported call starts with the budget. One validation of 16 KB costs
    // fuel in proportion to the 16-byte steps it takes.
    r[FUEL_BUDGET_GLOBAL]!.value = 100_000_000;
    assert.equal(r.t_valid(p, doc.length), 1);
    const used = 100_000_000 - (r[FUEL_GLOBAL]!.value as number);
    assert.ok(used >= Math.floor(16300 / 16) * 5, `validating 16 KB used only ${used} fuel`);
    r[FUEL_BUDGET_GLOBAL]!.value = 5_000_000;
    assert.throws(() => r.t_spin(p, doc.length), /out of fuel/);
    assert.equal(exhausted, 1);
  });
});
