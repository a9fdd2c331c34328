// The SDK's JSON lookup, AssemblyScript (plugins-as/sdk/json.ts, built with
// asc) vs its native twin (host/native/json.ts) vs JSON.parse, each asked
// directly and through a JsonIndex: paths into hand-written documents (escaped
// and duplicate keys, surrogates, array indexes, depth 64, a 62 KB document),
// the documented examples, and no allocation outside jsonString's result.

import { before, describe, test } from "node:test";
import assert from "node:assert/strict";
import * as J from "../host/native/json.js";
import { put, withString, type AsCore } from "./as-build.js";
import { checkJson, checkValidDocs, jsonReader } from "./sdk-json-support.js";
import { Failures, utf8 } from "./sdk-support.js";

const reader = jsonReader("wasmq-sdk-json-lookup-");

// Built with the bump-allocating stub runtime: the distance between two
// heap.alloc calls around the code under test shows any allocation inside it.
const JSON_PROBE = `
import { jsonValid, jsonFind, jsonType, jsonNumber, jsonString, jsonBool, jsonHas, jsonLength } from "./sdk/json";

export function alloc(n: i32): usize { return heap.alloc(<usize>(n > 0 ? n : 1)); }
export function probeBase(): usize { let a = heap.alloc(16); let b = heap.alloc(16); return b - a; }
export function probeJson(p: usize, n: i32, path: string, fb: string): usize {
  let a = heap.alloc(16);
  jsonValid(p, n); jsonFind(p, n, path); jsonType(p, n, path); jsonNumber(p, n, path, 0);
  jsonBool(p, n, path, false); jsonHas(p, n, path); jsonLength(p, n, path);
  if (jsonType(p, n, path) != 4) jsonString(p, n, path, fb); // fallback path must not allocate
  let b = heap.alloc(16);
  return b - a;
}
`;

interface JsonProbe extends AsCore {
  probeBase(): number;
  probeJson(p: number, n: number, path: number, fb: number): number;
}

let probe!: JsonProbe;

before(async () => {
  probe = await reader.workspace.load<JsonProbe>("probe", JSON_PROBE, ["--runtime", "stub", "--enable", "simd"]);
});

const VALID_DOCS: [string, string[]][] = [
  ["0", [""]],
  ["-0", [""]],
  ["  \t\r\n 42 \n", ["", "a"]],
  ["true", [""]],
  ["false", [""]],
  ["null", ["", "x"]],
  ['"\\u00e9\\n\\t\\"\\\\\\/\\b\\f\\r"', [""]],
  ['"é日本😀"', [""]],
  ['"\\ud83d\\ude00 \\uD83D\\uDE00"', [""]],
  ['"\\ud800"', [""]], // escaped lone surrogate: valid JSON, returned as a lone code unit
  ['"\\udc00x\\ud800"', [""]],
  ['"\u2028\u2029"', [""]],
  ["[]", ["", "0"]],
  ["{}", ["", "a", ""]],
  ['{"":1}', ["", "a"]],
  ['{"a":{"":{"":2}}}', ["a.", "a..", "a"]],
  ['{"a":1,"a":2}', ["a", ""]],
  ['{"a":1,"b":{"c":1},"a":{"x":true},"b":3}', ["a", "a.x", "b", "b.c", ""]],
  ['{"te\\u006dp":21.5,"temp":22}', ["temp", ""]],
  ['{"te\\u006dp":21.5}', ["temp", "te\\u006dp"]],
  ['{"\\ud83d\\ude00":1,"😀":2}', ["😀", ""]],
  ['{"\\ud83d":1}', ["\ud83d", "😀"]],
  ['{"é":1,"e\\u0301":2}', ["é", "e\u0301", ""]],
  ['{"a.b":1,"a":{"b":2}}', ["a.b", "a"]],
  ['{"0":"zero","1":[10,11]}', ["0", "1", "1.1", "1.01", "1.2", "01"]],
  ['{"__proto__":{"x":1},"constructor":2,"toString":3}', ["__proto__", "__proto__.x", "constructor", "toString", "hasOwnProperty", ""]],
  ['{"rules":[{"topic":"a/+","qos":1},{"topic":"b/#","qos":2,"allow":false}],"n":null}',
    ["rules", "rules.0", "rules.1.topic", "rules.1.allow", "rules.01.topic", "rules.2", "rules.-1", "rules.x", "n", "n.x", "rules.0.qos"]],
  ['[[1,[2,[3,[4]]]],{"a":[{"b":[5]}]}]', ["0.1.1.1.0", "1.a.0.b.0", "1.a.0.b", "0.1.1.1.1", "00"]],
  [" [ 1 , 2 , 3 ] ", ["", "0", "2", "3", "4294967296", "999999999", "1000000000"]],
  ["[".repeat(64) + "]".repeat(64), ["", "0", "0.0"]],
  ['{"a":'.repeat(64) + "1" + "}".repeat(64), ["", "a.a.a", "a".repeat(1)]],
  ['{"a":"x"}', ["a", "a.0", "a.length"]],
];

function bigDoc(): string {
  const parts: string[] = [];
  let i = 0;
  let size = 2;
  while (size < 62000) {
    const p = `{"id":${i},"name":"dev-${i}-\\u00e9","v":${(i * 1.1).toFixed(3)},"ok":${i % 2 === 0}}`;
    parts.push(p);
    size += p.length + 1;
    i++;
  }
  return "[" + parts.join(",") + "]";
}

describe("sdk json lookup: AssemblyScript vs native TypeScript vs JSON.parse", () => {
  test("hand-written valid documents", () => {
    const fail = new Failures();
    checkValidDocs(reader.asm, fail, VALID_DOCS, "valid-table");
    const big = utf8(bigDoc());
    assert.ok(big.length > 60000 && big.length <= 65536);
    checkJson(reader.asm, fail, big, ["", "0", "0.name", "1000.v", "1500.ok", "99999"], "big-doc");
    fail.assertNone("valid-table");
  });

  test("documented examples", () => {
    const doc = utf8('{"a": [1, "x"], "te\\u006dp": 21.5, "a": [true]}');
    assert.equal(J.jsonFind(doc, "a"), 40 * 4294967296 + 46);
    assert.equal(J.jsonFind(doc, "temp"), 29 * 4294967296 + 33);
    assert.equal(J.jsonNumber(doc, "temp", 0), 21.5);
    assert.equal(J.jsonBool(doc, "a.0", false), true);
    assert.equal(J.jsonLength(doc, ""), 2);
    assert.equal(J.jsonType(doc, "a"), J.JsonType.Array);
    assert.equal(J.jsonString(utf8('{"s":"\\ud83d\\ude00\\n"}'), "s", null), "😀\n");
    assert.equal(J.jsonNumber(utf8("[1,]"), "0", 9), 9);
    const p = put(reader.asm, doc);
    try {
      withString(reader.asm, "a", (sp) => assert.equal(reader.asm.t_jsonFind(p, doc.length, sp), (40n << 32n) | 46n));
    } finally {
      reader.asm.free(p);
    }
  });

  test("no allocation outside jsonString results (AS, stub runtime probe)", () => {
    const base = probe.probeBase();
    const docs: [string, string][] = [
      ['{"a":{"b":[1,2.5,"x"]},"n":0.30000000000000004,"m":1e-310,"k":' + "7".repeat(900) + "}", "a.b.1"],
      ['{"a":{"b":[1,2.5,"x"]},"n":0.30000000000000004}', "n"],
      ['{"n":' + "7".repeat(900) + "e-1000}", "n"],
      ['{"n":2.4703282292062328e-324}', "n"],
      ['{"te\\u006dp":1,"temp":2,"😀":3,"\\ud83d\\ude00":4}', "temp"],
      ['{"te\\u006dp":1,"temp":2,"😀":3,"\\ud83d\\ude00":4}', ""],
      ['{"s":"\\u00e9"}', "s.x"],
      ["[1,]", "0"],
    ];
    for (const [text, path] of docs) {
      const bytes = utf8(text);
      const p = put(probe, bytes);
      const sp = probe.__newString(path);
      const fb = probe.__newString("fb");
      assert.equal(probe.probeJson(p, bytes.length, sp, fb), base, `allocation in json reader for ${text.slice(0, 60)} @ ${path}`);
    }
  });
});
