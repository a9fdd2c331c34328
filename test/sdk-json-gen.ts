// Random JSON for the differential suites: documents with the paths that
// address their values (keys with escapes, surrogates, duplicates, deep
// nesting, numbers of every shape), paths to ask, and byte-level mutations
// that make most documents invalid in every way the validator must catch.

import type { Rng } from "./sdk-support.js";

const KEYS = [
  "a", "b", "c", "temp", "rules", "topic", "qos", "0", "1", "10", "", "é", "日本", "😀", "a.b", "__proto__",
  "constructor", "x y", '"q"', "back\\slash", "\n", "\u0001", "\ud800", "\udfff", "e\u0301", "\u2028",
];
const STRINGS = [
  "", "x", "hello world", "é", "日本語", "😀🎉", "a/b/+/#", "line\nbreak", "tab\t", "quote\"", "back\\", "nul\u0000",
  "\u001f", "\u007f", "\ud800", "x\udc00y", "\ud83d\ude00", "\u2028\u2029", "/", "\uffff", "\ufeff", "long-" + "z".repeat(300),
];
const WS = ["", "", "", " ", "\n", "\t", "\r\n  ", "  "];

function hex4(r: Rng, c: number): string {
  const h = c.toString(16).padStart(4, "0");
  return "\\u" + (r.chance(0.5) ? h : h.toUpperCase());
}

function jsonQuote(r: Rng, s: string): string {
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const isHigh = c >= 0xd800 && c < 0xdc00;
    const pairLow = isHigh && i + 1 < s.length ? s.charCodeAt(i + 1) : 0;
    if (isHigh && pairLow >= 0xdc00 && pairLow < 0xe000) {
      out += r.chance(0.3) ? hex4(r, c) + hex4(r, pairLow) : s.slice(i, i + 2);
      i++;
    } else if (c >= 0xd800 && c < 0xe000) {
      out += hex4(r, c); // lone surrogate: only representable escaped
    } else if (c === 0x22) {
      out += r.chance(0.8) ? '\\"' : hex4(r, c);
    } else if (c === 0x5c) {
      out += r.chance(0.8) ? "\\\\" : hex4(r, c);
    } else if (c < 0x20) {
      const short: Record<number, string> = { 8: "\\b", 9: "\\t", 10: "\\n", 12: "\\f", 13: "\\r" };
      out += short[c] !== undefined && r.chance(0.7) ? short[c] : hex4(r, c);
    } else if (c === 0x2f && r.chance(0.3)) {
      out += "\\/";
    } else {
      out += r.chance(0.08) ? hex4(r, c) : s[i];
    }
  }
  return out + '"';
}

export function genNumber(r: Rng): string {
  const sign = r.chance(0.3) ? "-" : "";
  const digits = (n: number): string => {
    let s = String(1 + r.int(9));
    for (let i = 1; i < n; i++) s += String(r.int(10));
    return s;
  };
  switch (r.int(12)) {
    case 0:
      return sign + String(r.int(1000));
    case 1:
      return sign + (r.chance(0.2) ? "0" : digits(1 + r.int(25)));
    case 2:
      return sign + String(r.int(100000)) + "." + String(r.int(100000)).padStart(r.int(8), "0");
    case 3: {
      const x = r.next() * 10 ** (r.int(40) - 20);
      return sign + x.toPrecision(1 + r.int(21));
    }
    case 4: {
      const x = r.next() * 10 ** (r.int(660) - 330);
      return sign + String(x);
    }
    case 5: {
      const x = r.next() * 10 ** (r.int(660) - 330);
      return sign + x.toPrecision(17 + r.int(5));
    }
    case 6:
      return sign + digits(1 + r.int(18)) + (r.chance(0.5) ? "." + digits(1 + r.int(18)) : "") +
        r.pick(["e", "E"]) + r.pick(["", "+", "-"]) + String(r.int(30)).padStart(1 + r.int(3), "0");
    case 7:
      return sign + digits(1 + r.int(3)) + "e" + r.pick(["", "-"]) + String(280 + r.int(60));
    case 8:
      return sign + "0." + "0".repeat(r.int(30)) + digits(1 + r.int(20));
    case 9:
      return sign + digits(20 + r.int(900)) + (r.chance(0.5) ? "e-" + String(r.int(1200)) : "");
    case 10:
      return sign + "0" + (r.chance(0.5) ? ".0" : "") + (r.chance(0.5) ? "e" + String(r.int(500)) : "");
    default:
      return sign + String(r.int(2 ** 31)) + "." + digits(1 + r.int(8));
  }
}

export interface GenDoc {
  text: string;
  paths: string[];
}

function genValue(r: Rng, depth: number, maxDepth: number, prefix: string | null, paths: string[]): string {
  const ws = (): string => r.pick(WS);
  const k = r.int(10);
  if (depth < maxDepth && k < 3) {
    const n = r.int(6);
    const members: string[] = [];
    for (let i = 0; i < n; i++) {
      const key = r.pick(KEYS);
      // keys containing '.' (and "" at the root, which would be the root path) are not addressable
      const sub = key.includes(".") || prefix === null ? null
        : depth === 0 ? (key === "" ? null : key) : prefix + "." + key;
      if (sub !== null) paths.push(sub);
      members.push(ws() + jsonQuote(r, key) + ws() + ":" + ws() + genValue(r, depth + 1, maxDepth, sub, paths) + ws());
    }
    return "{" + (n === 0 ? ws() : members.join(",")) + "}";
  }
  if (depth < maxDepth && k < 5) {
    const n = r.int(6);
    const items: string[] = [];
    for (let i = 0; i < n; i++) {
      const sub = prefix === null ? null : depth === 0 ? String(i) : prefix + "." + String(i);
      if (sub !== null) paths.push(sub);
      items.push(ws() + genValue(r, depth + 1, maxDepth, sub, paths) + ws());
    }
    return "[" + (n === 0 ? ws() : items.join(",")) + "]";
  }
  switch (r.int(6)) {
    case 0:
      return "null";
    case 1:
      return r.chance(0.5) ? "true" : "false";
    case 2:
    case 3:
      return genNumber(r);
    default:
      return jsonQuote(r, r.chance(0.7) ? r.pick(STRINGS) : r.pick(KEYS) + r.pick(STRINGS));
  }
}

export function genDoc(r: Rng): GenDoc {
  const paths: string[] = [""];
  let text: string;
  if (r.chance(0.03)) {
    // deep nesting around the 64 limit
    const depth = 58 + r.int(10);
    let inner = genValue(r, 0, 2, null, []);
    for (let i = 0; i < depth; i++) inner = r.chance(0.5) ? "[" + inner + "]" : '{"a":' + inner + "}";
    text = inner;
    paths.push("0", "a", "a.a.0", "0.a.0.0");
  } else {
    text = r.pick(WS) + genValue(r, 0, 1 + r.int(5), "", paths) + r.pick(WS);
  }
  return { text, paths };
}

const RANDOM_PATHS = ["", "a", "b", "0", "1", "00", "01", "-1", "a.b", "a..b", "a.", ".a", ".", "temp", "rules.0.topic", "é", "😀", "\ud800", "a.0.b.1", "x y", "__proto__"];

export function pickPaths(r: Rng, known: string[]): string[] {
  const out: string[] = [];
  const n = 3 + r.int(5);
  for (let i = 0; i < n; i++) {
    const k = r.int(10);
    if (k < 6) out.push(r.pick(known));
    else if (k < 8) out.push(r.pick(known) + "." + r.pick(RANDOM_PATHS));
    else out.push(r.pick(RANDOM_PATHS));
  }
  return out;
}

const MUTATION_BYTES = [
  0x7b, 0x7d, 0x5b, 0x5d, 0x2c, 0x3a, 0x22, 0x5c, 0x30, 0x31, 0x39, 0x2d, 0x2b, 0x2e, 0x65, 0x45, 0x20, 0x0a, 0x09,
  0x00, 0x1f, 0x74, 0x6e, 0x66, 0x75, 0x61, 0x80, 0xbf, 0xc0, 0xc3, 0xe2, 0xed, 0xf0, 0xf4, 0xf8, 0xff,
];

export function mutate(r: Rng, doc: Uint8Array): Uint8Array {
  const bytes = Array.from(doc);
  const n = 1 + r.int(3);
  for (let i = 0; i < n; i++) {
    const pos = r.int(bytes.length + 1);
    const b = r.chance(0.8) ? r.pick(MUTATION_BYTES) : r.int(256);
    switch (r.int(3)) {
      case 0:
        if (bytes.length > 0) bytes.splice(Math.min(pos, bytes.length - 1), 1);
        break;
      case 1:
        bytes.splice(pos, 0, b);
        break;
      default:
        if (bytes.length > 0) bytes[Math.min(pos, bytes.length - 1)] = b;
    }
  }
  return Uint8Array.from(bytes);
}
