// The SDK's JSON validation, AssemblyScript (plugins-as/sdk/json-validate.ts,
// built with asc) vs its native twin (host/native/json-validate.ts) vs
// JSON.parse: malformed documents of every kind, and random documents with
// byte-level mutations, must get the same verdict and the same (missing)
// answers from every reader. WASMQ_TEST_SEED varies the random corpus.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import * as J from "../host/native/json.js";
import { checkJson, jsonReader, show, oracleParse } from "./sdk-json-support.js";
import { Failures, Rng, SEED, utf8 } from "./sdk-support.js";
import { genDoc, mutate, pickPaths } from "./sdk-json-gen.js";

const RANDOM_DOCS = 4000;

const reader = jsonReader("wasmq-sdk-json-validate-");

const INVALID_DOCS: (string | number[])[] = [
  "", " ", "\n\t", "{} x", "{}{}", "[1,]", '{"a":1,}', "[,]", "{,}", "[1 2]", '{"a" 1}', '{"a":}', '{"a"}',
  '{"a":1}}', "[", "]", "{", "}", '"abc', '"a\\x"', '"\\u12"', '"\\u12G4"', '"\\', '"\\"', "\"a\u0001b\"",
  "\"tab\there\"", "\"nl\nhere\"", "01", "-01", "00", "+1", ".5", "1.", "1.e5", "1e", "1e+", "1e-", "-", "-.5", "--1",
  "- 1", "0x10", "1_000", "NaN", "Infinity", "-Infinity", "nan", "tru", "nul", "fals", "True", "NULL", "truex",
  "[true false]", "'a'", "{a:1}", "{'a':1}", "/* c */{}", "{} // c", "[-]", "\u00a0{}", "\ufeff{}", "{\"a\":1\u00a0}",
  [0x22, 0xed, 0xa0, 0x80, 0x22], // encoded surrogate
  [0x22, 0xc0, 0xaf, 0x22], // overlong '/'
  [0x22, 0xe0, 0x80, 0xaf, 0x22], // overlong
  [0x22, 0xf4, 0x90, 0x80, 0x80, 0x22], // > U+10FFFF
  [0x22, 0xf5, 0x80, 0x80, 0x80, 0x22],
  [0x22, 0xe2, 0x82, 0x22], // truncated sequence
  [0x22, 0x80, 0x22], // stray continuation
  [0x22, 0xff, 0x22],
  [0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xc3, 0x22, 0x7d], // truncated at end of string
  [0x5b, 0x31, 0x5d, 0x00], // trailing NUL
  "[".repeat(65) + "]".repeat(65),
  '{"a":'.repeat(65) + "1" + "}".repeat(65),
  "[".repeat(2000) + "]".repeat(2000),
  // a shadowed duplicate still counts for the depth limit: 65 deep in the text, 2 in JSON.parse's value
  '{"a":' + "[".repeat(64) + "]".repeat(64) + ',"a":[1]}',
];

describe("sdk json validation: AssemblyScript vs native TypeScript vs JSON.parse", () => {
  test("malformed documents are invalid everywhere", () => {
    const fail = new Failures();
    for (const d of INVALID_DOCS) {
      const doc = typeof d === "string" ? utf8(d) : Uint8Array.from(d);
      assert.equal(J.jsonValid(doc), false, `TS accepts ${show(doc)}`);
      checkJson(reader.asm, fail, doc, ["", "a", "0"], "invalid-table");
    }
    fail.assertNone("invalid-table");
  });

  test(`${RANDOM_DOCS} random documents (+ mutations), seed=${SEED}`, () => {
    const rng = new Rng(SEED);
    const fail = new Failures();
    let valid = 0;
    let mutated = 0;
    let mutatedValid = 0;
    for (let i = 0; i < RANDOM_DOCS; i++) {
      const g = genDoc(rng);
      const doc = utf8(g.text);
      const paths = pickPaths(rng, g.paths);
      checkJson(reader.asm, fail, doc, paths, `random#${i}`);
      if (oracleParse(doc).ok) valid++;
      if (rng.chance(0.6)) {
        const m = mutate(rng, doc);
        checkJson(reader.asm, fail, m, paths, `random#${i}-mutated`);
        mutated++;
        if (oracleParse(m).ok) mutatedValid++;
      }
    }
    fail.assertNone("random-json");
    // The generator must exercise both outcomes.
    assert.ok(valid > RANDOM_DOCS * 0.9, `only ${valid} generated docs were valid`);
    assert.ok(mutatedValid > 20 && mutatedValid < mutated * 0.8, `mutations: ${mutatedValid} of ${mutated} valid`);
  });
});
