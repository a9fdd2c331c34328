// transform, native twin of plugin.ts (with buffer.ts, format.ts and edit.ts
// in one module, in that order): same rules, same bytes out.
import { Config, Hook, JsonType, Message, Verdict, declareIdle, jsonNumber, jsonString, jsonType, jsonValid, log, validTopicFilter } from "../../host/native/index.js";

// ---------------------------------------------------------------------------
// buffer.ts: a growable byte buffer, reused from message to message; JSON string writers.

class ByteBuffer {
  bytes = new Uint8Array(0);
  len = 0;

  /** Make room for `extra` more bytes. May replace `bytes`. */
  reserve(extra: number): void {
    const need = this.len + extra;
    if (need <= this.bytes.length) return;
    let cap = Math.max(256, this.bytes.length * 2);
    while (cap < need) cap *= 2;
    const grown = new Uint8Array(cap);
    grown.set(this.bytes.subarray(0, this.len));
    this.bytes = grown;
  }

  clear(): void {
    this.len = 0;
  }

  byte(c: number): void {
    this.reserve(1);
    this.bytes[this.len++] = c;
  }

  /** Append bytes (which must not be a view of this buffer). */
  append(src: Uint8Array): void {
    this.reserve(src.length);
    this.bytes.set(src, this.len);
    this.len += src.length;
  }

  /** Append an ASCII string. */
  ascii(s: string): void {
    const n = s.length;
    this.reserve(n);
    for (let i = 0; i < n; i++) this.bytes[this.len + i] = s.charCodeAt(i);
    this.len += n;
  }

  /** Replace bytes [start, end) with `src` (not a view of this buffer). */
  replace(start: number, end: number, src: Uint8Array): void {
    const delta = src.length - (end - start);
    if (delta > 0) this.reserve(delta);
    this.bytes.copyWithin(start + src.length, end, this.len);
    this.bytes.set(src, start);
    this.len += delta;
  }

  /** Replace the content with `src` (not a view of this buffer). */
  assign(src: Uint8Array): void {
    this.len = 0;
    this.append(src);
  }

  view(start = 0, end = this.len): Uint8Array {
    return this.bytes.subarray(start, end);
  }
}

const HEX = "0123456789abcdef";

function escapeUnit(out: ByteBuffer, unit: number): void {
  out.ascii("\\u00");
  out.byte(HEX.charCodeAt((unit >> 4) & 15));
  out.byte(HEX.charCodeAt(unit & 15));
}

/**
 * Append `s` as a JSON string literal: '"' and '\' escaped, control characters
 * as \u00XX, everything else as UTF-8 except lone surrogates, which become
 * \uXXXX escapes (UTF-8 cannot carry them).
 */
function writeJsonString(out: ByteBuffer, s: string): void {
  out.byte(0x22);
  const n = s.length;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c == 0x22 || c == 0x5c) {
      out.byte(0x5c);
      out.byte(c);
    } else if (c < 0x20) {
      escapeUnit(out, c);
    } else if (c < 0x80) {
      out.byte(c);
    } else if (c < 0x800) {
      out.byte(0xc0 | (c >> 6));
      out.byte(0x80 | (c & 0x3f));
    } else if (c >= 0xd800 && c < 0xdc00 && i + 1 < n && s.charCodeAt(i + 1) >= 0xdc00 && s.charCodeAt(i + 1) < 0xe000) {
      const cp = 0x10000 + ((c - 0xd800) << 10) + (s.charCodeAt(i + 1) - 0xdc00);
      out.byte(0xf0 | (cp >> 18));
      out.byte(0x80 | ((cp >> 12) & 0x3f));
      out.byte(0x80 | ((cp >> 6) & 0x3f));
      out.byte(0x80 | (cp & 0x3f));
      i++;
    } else if (c >= 0xd800 && c < 0xe000) {
      out.ascii("\\u");
      out.byte(HEX.charCodeAt(c >> 12));
      out.byte(HEX.charCodeAt((c >> 8) & 15));
      out.byte(HEX.charCodeAt((c >> 4) & 15));
      out.byte(HEX.charCodeAt(c & 15));
    } else {
      out.byte(0xe0 | (c >> 12));
      out.byte(0x80 | ((c >> 6) & 0x3f));
      out.byte(0x80 | (c & 0x3f));
    }
  }
  out.byte(0x22);
}

// Length of the well-formed UTF-8 sequence at i (lead byte >= 0x80), or 0.
function utf8SeqLen(b: Uint8Array, len: number, i: number): number {
  const c = b[i]!;
  if (c < 0xc2) return 0;
  if (c < 0xe0) {
    if (i + 1 >= len) return 0;
    return (b[i + 1]! & 0xc0) == 0x80 ? 2 : 0;
  }
  if (c < 0xf0) {
    if (i + 2 >= len) return 0;
    const b1 = b[i + 1]!;
    if (b1 < (c == 0xe0 ? 0xa0 : 0x80) || b1 > (c == 0xed ? 0x9f : 0xbf)) return 0;
    return (b[i + 2]! & 0xc0) == 0x80 ? 3 : 0;
  }
  if (c < 0xf5) {
    if (i + 3 >= len) return 0;
    const b1 = b[i + 1]!;
    if (b1 < (c == 0xf0 ? 0x90 : 0x80) || b1 > (c == 0xf4 ? 0x8f : 0xbf)) return 0;
    if ((b[i + 2]! & 0xc0) != 0x80) return 0;
    return (b[i + 3]! & 0xc0) == 0x80 ? 4 : 0;
  }
  return 0;
}

/** Append UTF-8 bytes as a JSON string literal; false (output unspecified) when they are not valid UTF-8. */
function writeJsonStringBytes(out: ByteBuffer, b: Uint8Array): boolean {
  out.byte(0x22);
  const len = b.length;
  let i = 0;
  while (i < len) {
    const c = b[i]!;
    if (c == 0x22 || c == 0x5c) {
      out.byte(0x5c);
      out.byte(c);
      i++;
    } else if (c < 0x20) {
      escapeUnit(out, c);
      i++;
    } else if (c < 0x80) {
      out.byte(c);
      i++;
    } else {
      const n = utf8SeqLen(b, len, i);
      if (n == 0) return false;
      out.append(b.subarray(i, i + n));
      i += n;
    }
  }
  out.byte(0x22);
  return true;
}

// ---------------------------------------------------------------------------
// format.ts: the one number formatter (see format.ts for the rules).

const MAX_DECIMALS = 15;
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
function writeNumber(out: ByteBuffer, x: number, decimals: number): void {
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

// ---------------------------------------------------------------------------
// edit.ts: locating and cutting values in a document already known to be valid JSON.

const encoder = new TextEncoder();

/** A field path ("a.b.0.c") split once at init. Keys compare as the SDK's do (after unescaping). */
class FieldPath {
  segments: string[] = [];
  utf8: Uint8Array[] = [];
  // Canonical array index of each segment ("0", "17"), or -1.
  index: number[] = [];

  constructor(public text: string) {
    const parts = text.split(".");
    for (let i = 0; i < parts.length; i++) {
      const s = parts[i]!;
      this.segments.push(s);
      this.utf8.push(encoder.encode(s));
      this.index.push(canonicalIndex(s));
    }
  }
}

function canonicalIndex(s: string): number {
  const n = s.length;
  if (n == 0 || n > 9 || (n > 1 && s.charCodeAt(0) == 0x30)) return -1;
  let v = 0;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return -1;
    v = v * 10 + (c - 0x30);
  }
  return v;
}

function isWs(c: number): boolean {
  return c == 0x20 || c == 0x0a || c == 0x0d || c == 0x09;
}

function skipWs(b: Uint8Array, len: number, p: number): number {
  while (p < len && isWs(b[p]!)) p++;
  return p;
}

function skipWsBack(b: Uint8Array, p: number): number {
  while (p >= 0 && isWs(b[p]!)) p--;
  return p;
}

/** p at an opening quote; the index after the closing quote. */
function stringEnd(b: Uint8Array, p: number): number {
  p++;
  for (;;) {
    const c = b[p]!;
    if (c == 0x22) return p + 1;
    p += c == 0x5c ? 2 : 1;
  }
}

/** p at the first byte of a value; the index after its last byte. */
function valueEnd(b: Uint8Array, len: number, p: number): number {
  const c = b[p]!;
  if (c == 0x22) return stringEnd(b, p);
  if (c == 0x7b || c == 0x5b) {
    let depth = 0;
    for (;;) {
      const x = b[p]!;
      if (x == 0x22) {
        p = stringEnd(b, p);
        continue;
      }
      if (x == 0x7b || x == 0x5b) {
        depth++;
      } else if (x == 0x7d || x == 0x5d) {
        depth--;
        if (depth == 0) return p + 1;
      }
      p++;
    }
  }
  while (p < len) {
    const x = b[p]!;
    if (x == 0x2c || x == 0x7d || x == 0x5d || isWs(x)) break;
    p++;
  }
  return p;
}

function keyMatches(b: Uint8Array, start: number, end: number, path: FieldPath, level: number): boolean {
  // Raw bytes between the quotes, unless the key has escapes.
  let escaped = false;
  for (let i = start + 1; i < end - 1; i++) {
    if (b[i] == 0x5c) {
      escaped = true;
      break;
    }
  }
  if (escaped) {
    const key = jsonString(b.subarray(start, end), "", null);
    return key !== null && key == path.segments[level];
  }
  const want = path.utf8[level]!;
  const n = end - start - 2;
  return n == want.length && Buffer.compare(b.subarray(start + 1, end - 1), want) == 0;
}

function walk(b: Uint8Array, len: number, p: number, path: FieldPath, level: number, out: number[]): void {
  if (level == path.segments.length) {
    out.push(p);
    out.push(valueEnd(b, len, p));
    return;
  }
  const c = b[p];
  if (c == 0x7b) {
    p = skipWs(b, len, p + 1);
    if (b[p] == 0x7d) return;
    for (;;) {
      const keyEnd = stringEnd(b, p);
      const value = skipWs(b, len, skipWs(b, len, keyEnd) + 1);
      const end = valueEnd(b, len, value);
      if (keyMatches(b, p, keyEnd, path, level)) walk(b, len, value, path, level + 1, out);
      p = skipWs(b, len, end);
      if (b[p] != 0x2c) return;
      p = skipWs(b, len, p + 1);
    }
  } else if (c == 0x5b) {
    const want = path.index[level]!;
    if (want < 0) return;
    p = skipWs(b, len, p + 1);
    if (b[p] == 0x5d) return;
    for (let i = 0; ; i++) {
      if (i == want) {
        walk(b, len, p, path, level + 1, out);
        return;
      }
      p = skipWs(b, len, valueEnd(b, len, p));
      if (b[p] != 0x2c) return;
      p = skipWs(b, len, p + 1);
    }
  }
}

/**
 * Every value at `path` in the valid document, duplicates included, in
 * document order, as start/end pairs in `out` (cleared first).
 */
function findAll(b: Uint8Array, len: number, path: FieldPath, out: number[]): void {
  out.length = 0;
  walk(b, len, skipWs(b, len, 0), path, 0, out);
}

/**
 * The bytes to cut to remove the member (key and value) or array element whose
 * value spans [start, end), with one adjacent comma, as [from, to].
 */
function removalRange(b: Uint8Array, len: number, start: number, end: number): [number, number] {
  let member = start;
  const p = skipWsBack(b, start - 1);
  if (b[p] == 0x3a) {
    // An object member: back over the key to its opening quote (one not escaped).
    let q = skipWsBack(b, p - 1) - 1;
    for (;;) {
      if (b[q] == 0x22) {
        let slashes = 0;
        while (b[q - 1 - slashes] == 0x5c) slashes++;
        if ((slashes & 1) == 0) break;
      }
      q--;
    }
    member = q;
  }
  const before = skipWsBack(b, member - 1);
  if (b[before] == 0x2c) return [before, end];
  const after = skipWs(b, len, end);
  if (after < len && b[after] == 0x2c) return [member, skipWs(b, len, after + 1)];
  return [member, end];
}

// ---------------------------------------------------------------------------
// plugin.ts

// Binary field types: [name, size in bytes].
const TYPES = ["u8", "i8", "u16", "i16", "u32", "i32", "f32", "f64", "pad"];
const SIZES: number[] = [1, 1, 2, 2, 4, 4, 4, 8, 0];
const PAD = 8;

const UNITS = ["C", "F", "K"];
// y = x * scale + offset, to Celsius from each unit and from Celsius to each unit.
const TO_C_SCALE: number[] = [1, 5.0 / 9.0, 1];
const TO_C_OFFSET: number[] = [0, -32 * (5.0 / 9.0), -273.15];
const FROM_C_SCALE: number[] = [1, 9.0 / 5.0, 1];
const FROM_C_OFFSET: number[] = [0, 32, 273.15];

class BinaryField {
  constructor(
    public key: ByteBuffer, // "name": (JSON-escaped, with the colon)
    public type: number,
    public size: number,
    public scale: number,
    public offset: number,
  ) {}
}

class Conversion {
  constructor(
    public path: FieldPath,
    public scale: number,
    public offset: number,
  ) {}
}

class Rule {
  topic: string = "#";
  onDeliver: boolean = false;
  exceptUsers: string[] = [];
  decimals: number = 6;
  csvKeys: ByteBuffer[] | null = null;
  csvSeparator: number = 0x2c;
  binaryFields: BinaryField[] | null = null;
  binarySize: number = 0;
  bigEndian: boolean = false;
  conversions: Conversion[] = [];
  redact: FieldPath[] = [];
  removeRedacted: boolean = false;
  mask: ByteBuffer = new ByteBuffer();
}

let publishRules: Rule[] = [];
let deliverRules: Rule[] = [];
let dropInvalid = true;

// The document being transformed lives in `work`; decoders write to `spare` and swap.
let work = new ByteBuffer();
let spare = new ByteBuffer();
const formatted = new ByteBuffer();
const found: number[] = [];

function keyBytes(name: string): ByteBuffer {
  const key = new ByteBuffer();
  writeJsonString(key, name);
  key.byte(0x3a);
  return key;
}

function isString(config: Config, path: string): boolean {
  return config.string(path, "a") == config.string(path, "b");
}

// Every Config read rescans the whole config (and costs fuel in proportion),
// so init reads each key once where it can.

/** The number at path, the fallback when absent, NaN when present but not a number. */
function numberOr(config: Config, path: string, fallback: number): number {
  const value = config.number(path, NaN);
  return isNaN(value) && !config.has(path) ? fallback : value;
}

/** Logs and answers true when the key is present but not a boolean. */
function notBool(config: Config, path: string): boolean {
  if (!config.has(path) || config.bool(path, false) == config.bool(path, true)) return false;
  log.error(path + " must be true or false");
  return true;
}

function wholeNumberIn(x: number, lo: number, hi: number): boolean {
  return x >= lo && x <= hi && x == Math.floor(x);
}

function stringList(config: Config, path: string): string[] | null {
  const n = config.length(path);
  if (n < 0) {
    log.error(path + " must be an array of strings");
    return null;
  }
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const item = path + "." + i.toString();
    const value = config.string(item, "");
    if (value.length == 0) {
      log.error(item + " must be a non-empty string");
      return null;
    }
    out.push(value);
  }
  return out;
}

function parseCsv(config: Config, base: string, rule: Rule): boolean {
  const names = stringList(config, base + ".fields");
  if (names === null) return false;
  if (names.length == 0) {
    log.error(base + ".fields must name at least one field");
    return false;
  }
  const keys: ByteBuffer[] = [];
  for (let i = 0; i < names.length; i++) keys.push(keyBytes(names[i]!));
  rule.csvKeys = keys;
  const separator = config.string(base + ".separator", ",");
  const c = separator.length == 1 ? separator.charCodeAt(0) : -1;
  if (c < 0x21 || c > 0x7e || c == 0x22 || c == 0x5c) {
    log.error(base + ".separator must be one printable ASCII character other than '\"' and '\\'");
    return false;
  }
  rule.csvSeparator = c;
  return true;
}

function parseBinary(config: Config, base: string, rule: Rule): boolean {
  const n = config.length(base + ".fields");
  if (n < 1) {
    log.error(base + ".fields must be a non-empty array of { name, type, scale?, offset? }");
    return false;
  }
  const fields: BinaryField[] = [];
  let size = 0;
  for (let i = 0; i < n; i++) {
    const item = base + ".fields." + i.toString();
    const typeName = config.string(item + ".type", "");
    const type = TYPES.indexOf(typeName);
    if (type < 0) {
      log.error(item + ".type must be one of " + TYPES.join(", "));
      return false;
    }
    let fieldSize = SIZES[type]!;
    let key = new ByteBuffer();
    if (type == PAD) {
      const padSize = numberOr(config, item + ".size", 0);
      if (!wholeNumberIn(padSize, 1, 65535)) {
        log.error(item + ".size must be a whole number of bytes from 1 to 65535");
        return false;
      }
      fieldSize = padSize;
    } else {
      const name = config.string(item + ".name", "");
      if (name.length == 0) {
        log.error(item + ".name must be a non-empty string");
        return false;
      }
      key = keyBytes(name);
    }
    const scale = numberOr(config, item + ".scale", 1);
    const offset = numberOr(config, item + ".offset", 0);
    if (!isFinite(scale) || !isFinite(offset)) {
      log.error(item + ".scale and .offset must be finite numbers");
      return false;
    }
    fields.push(new BinaryField(key, type, fieldSize, scale, offset));
    size += fieldSize;
  }
  if (notBool(config, base + ".bigEndian")) return false;
  rule.binaryFields = fields;
  rule.binarySize = size;
  rule.bigEndian = config.bool(base + ".bigEndian", false);
  return true;
}

function parseConversion(config: Config, item: string): Conversion | null {
  const field = config.string(item + ".field", "");
  if (field.length == 0) {
    log.error(item + ".field must name a JSON field");
    return null;
  }
  const fromUnit = config.string(item + ".from", "");
  const toUnit = config.string(item + ".to", "");
  let scale = config.number(item + ".scale", NaN);
  let offset = config.number(item + ".offset", NaN);
  const byUnits = fromUnit.length > 0 || toUnit.length > 0;
  const byFactor = !isNaN(scale) || !isNaN(offset);
  if (byUnits == byFactor) {
    log.error(item + " needs either from and to (units C, F, K) or scale and/or offset (numbers)");
    return null;
  }
  if (byUnits) {
    const from = UNITS.indexOf(fromUnit);
    const to = UNITS.indexOf(toUnit);
    if (from < 0 || to < 0) {
      log.error(item + ".from and .to must each be C, F or K");
      return null;
    }
    // Compose to-Celsius and from-Celsius into one linear map.
    scale = TO_C_SCALE[from]! * FROM_C_SCALE[to]!;
    offset = TO_C_OFFSET[from]! * FROM_C_SCALE[to]! + FROM_C_OFFSET[to]!;
    return new Conversion(new FieldPath(field), scale, offset);
  }
  const badScale = isNaN(scale) && config.has(item + ".scale");
  const badOffset = isNaN(offset) && config.has(item + ".offset");
  if (isNaN(scale)) scale = 1;
  if (isNaN(offset)) offset = 0;
  if (badScale || badOffset || !isFinite(scale) || !isFinite(offset)) {
    log.error(item + ".scale and .offset must be finite numbers");
    return null;
  }
  return new Conversion(new FieldPath(field), scale, offset);
}

function parseRule(config: Config, base: string, defaultDecimals: number): Rule | null {
  const rule = new Rule();
  rule.topic = config.string(base + ".topic", "");
  if (!validTopicFilter(rule.topic)) {
    log.error(base + ".topic must be an MQTT topic filter");
    return null;
  }
  const hook = config.string(base + ".hook", "publish");
  if (hook != "publish" && hook != "deliver") {
    log.error(base + ".hook must be publish or deliver");
    return null;
  }
  rule.onDeliver = hook == "deliver";
  if (config.has(base + ".exceptUsers")) {
    if (!rule.onDeliver) {
      log.error(base + ".exceptUsers needs \"hook\": \"deliver\"");
      return null;
    }
    const users = stringList(config, base + ".exceptUsers");
    if (users === null) return null;
    rule.exceptUsers = users;
  }
  const decimals = numberOr(config, base + ".decimals", defaultDecimals);
  if (!wholeNumberIn(decimals, 0, MAX_DECIMALS)) {
    log.error(base + ".decimals must be a whole number from 0 to " + MAX_DECIMALS.toString());
    return null;
  }
  rule.decimals = decimals;
  const csv = config.has(base + ".csvToJson");
  const binary = config.has(base + ".binaryToJson");
  if (csv && binary) {
    log.error(base + " can have csvToJson or binaryToJson, not both");
    return null;
  }
  if (csv && !parseCsv(config, base + ".csvToJson", rule)) return null;
  if (binary && !parseBinary(config, base + ".binaryToJson", rule)) return null;
  if (config.has(base + ".convert")) {
    const n = config.length(base + ".convert");
    if (n < 0) {
      log.error(base + ".convert must be an array of conversions");
      return null;
    }
    for (let i = 0; i < n; i++) {
      const conversion = parseConversion(config, base + ".convert." + i.toString());
      if (conversion === null) return null;
      rule.conversions.push(conversion);
    }
  }
  if (config.has(base + ".redact")) {
    const paths = stringList(config, base + ".redact");
    if (paths === null) return null;
    for (let i = 0; i < paths.length; i++) rule.redact.push(new FieldPath(paths[i]!));
  }
  const mode = config.string(base + ".redactMode", "mask");
  if (mode != "mask" && mode != "remove") {
    log.error(base + ".redactMode must be mask or remove");
    return null;
  }
  rule.removeRedacted = mode == "remove";
  if (config.has(base + ".mask") && !isString(config, base + ".mask")) {
    log.error(base + ".mask must be a string");
    return null;
  }
  writeJsonString(rule.mask, config.string(base + ".mask", "***"));
  if (!csv && !binary && rule.conversions.length == 0 && rule.redact.length == 0) {
    log.error(base + " does nothing: give csvToJson, binaryToJson, convert or redact");
    return null;
  }
  return rule;
}

export function init(config: Config): boolean {
  publishRules = [];
  deliverRules = [];
  const n = config.length("rules");
  if (n < 1) {
    log.error("config.rules must be a non-empty array");
    return false;
  }
  const decimals = numberOr(config, "decimals", 6);
  if (!wholeNumberIn(decimals, 0, MAX_DECIMALS)) {
    log.error("config.decimals must be a whole number from 0 to " + MAX_DECIMALS.toString());
    return false;
  }
  for (let i = 0; i < n; i++) {
    const rule = parseRule(config, "rules." + i.toString(), decimals);
    if (rule === null) return false;
    if (rule.onDeliver) deliverRules.push(rule);
    else publishRules.push(rule);
  }
  const invalid = config.string("onInvalid", "drop");
  if (invalid != "drop" && invalid != "pass") {
    log.error("config.onInvalid must be drop or pass");
    return false;
  }
  dropInvalid = invalid == "drop";
  // No rule with "hook": "deliver": onDeliver always answers Continue unchanged (ABI v2-r3).
  if (deliverRules.length == 0) declareIdle(Hook.deliver);
  return true;
}

function swap(): void {
  const t = work;
  work = spare;
  spare = t;
}

function decodeCsv(rule: Rule, keys: ByteBuffer[]): boolean {
  const src = work.bytes;
  let end = work.len;
  while (end > 0 && (src[end - 1] == 0x0a || src[end - 1] == 0x0d)) end--;
  const out = spare;
  out.clear();
  out.byte(0x7b);
  let p = 0;
  for (let f = 0, n = keys.length; f < n; f++) {
    let start = p;
    while (p < end && src[p] != rule.csvSeparator) p++;
    let stop = p;
    if (f < n - 1) {
      if (p >= end) return false; // too few cells
      p++;
    } else if (p < end) {
      return false; // too many cells
    }
    while (start < stop && src[start] == 0x20) start++;
    while (stop > start && src[stop - 1] == 0x20) stop--;
    if (f > 0) out.byte(0x2c);
    const key = keys[f]!;
    out.append(key.view());
    const cell = src.subarray(start, stop);
    if (cell.length == 0) {
      out.ascii("null");
    } else if (jsonType(cell, "") == JsonType.Number) {
      out.append(cell);
    } else if (!writeJsonStringBytes(out, cell)) {
      return false;
    }
  }
  out.byte(0x7d);
  swap();
  return true;
}

function readBinary(data: DataView, at: number, type: number, bigEndian: boolean): number {
  switch (type) {
    case 0: return data.getUint8(at);
    case 1: return data.getInt8(at);
    case 2: return data.getUint16(at, !bigEndian);
    case 3: return data.getInt16(at, !bigEndian);
    case 4: return data.getUint32(at, !bigEndian);
    case 5: return data.getInt32(at, !bigEndian);
    case 6: return data.getFloat32(at, !bigEndian);
    default: return data.getFloat64(at, !bigEndian);
  }
}

function decodeBinary(rule: Rule, fields: BinaryField[]): boolean {
  if (work.len != rule.binarySize) return false;
  const src = new DataView(work.bytes.buffer, work.bytes.byteOffset, work.len);
  const out = spare;
  out.clear();
  out.byte(0x7b);
  let p = 0;
  let first = true;
  for (let i = 0, n = fields.length; i < n; i++) {
    const field = fields[i]!;
    if (field.type != PAD) {
      if (!first) out.byte(0x2c);
      first = false;
      out.append(field.key.view());
      writeNumber(out, readBinary(src, p, field.type, rule.bigEndian) * field.scale + field.offset, rule.decimals);
    }
    p += field.size;
  }
  out.byte(0x7d);
  swap();
  return true;
}

/** Convert every number at the conversion's path; true when one was replaced. */
function convert(rule: Rule, conversion: Conversion): boolean {
  findAll(work.bytes, work.len, conversion.path, found);
  let changed = false;
  for (let i = found.length - 2; i >= 0; i -= 2) {
    const start = found[i]!;
    const end = found[i + 1]!;
    const c = work.bytes[start]!;
    if (c != 0x2d && (c < 0x30 || c > 0x39)) continue;
    const x = jsonNumber(work.view(start, end), "", NaN);
    formatted.clear();
    writeNumber(formatted, x * conversion.scale + conversion.offset, rule.decimals);
    work.replace(start, end, formatted.view());
    changed = true;
  }
  return changed;
}

/** Mask or remove every value at the path; true when one was. */
function redact(rule: Rule, path: FieldPath): boolean {
  findAll(work.bytes, work.len, path, found);
  // Last to first: an edit never moves the values before it.
  for (let i = found.length - 2; i >= 0; i -= 2) {
    const start = found[i]!;
    const end = found[i + 1]!;
    if (rule.removeRedacted) {
      const [from, to] = removalRange(work.bytes, work.len, start, end);
      work.replace(from, to, new Uint8Array(0));
    } else {
      work.replace(start, end, rule.mask.view());
    }
  }
  return found.length > 0;
}

const OK = 0;
const CHANGED = 1;
const INVALID = 2;

/** Apply one rule to the document in `work` (`json`: already known to be valid JSON). */
function apply(rule: Rule, json: boolean): number {
  let changed = false;
  const csv = rule.csvKeys;
  const binary = rule.binaryFields;
  if (csv !== null) {
    if (!decodeCsv(rule, csv)) return INVALID;
    changed = true;
  } else if (binary !== null) {
    if (!decodeBinary(rule, binary)) return INVALID;
    changed = true;
  } else if (!json && !jsonValid(work.view())) {
    return INVALID;
  }
  for (let i = 0, n = rule.conversions.length; i < n; i++) {
    if (convert(rule, rule.conversions[i]!)) changed = true;
  }
  for (let i = 0, n = rule.redact.length; i < n; i++) {
    if (redact(rule, rule.redact[i]!)) changed = true;
  }
  return changed ? CHANGED : OK;
}

function run(msg: Message, rules: Rule[], subscriber: boolean): number {
  let loaded = false;
  let changed = false;
  let json = false;
  for (let i = 0, n = rules.length; i < n; i++) {
    const rule = rules[i]!;
    if (!msg.topicMatches(rule.topic)) continue;
    if (subscriber && rule.exceptUsers.length > 0 && msg.hasUsername && rule.exceptUsers.includes(msg.username)) continue;
    if (!loaded) {
      work.assign(msg.payload);
      loaded = true;
    }
    const result = apply(rule, json);
    if (result == INVALID) {
      if (dropInvalid) return Verdict.Drop;
      continue;
    }
    // Every rule leaves valid JSON behind (decoders and edits write only valid JSON).
    json = true;
    if (result == CHANGED) changed = true;
  }
  if (changed) msg.setPayload(work.view());
  return Verdict.Continue;
}

export function onPublish(msg: Message): number {
  return run(msg, publishRules, false);
}

export function onDeliver(msg: Message): number {
  if (deliverRules.length == 0) return Verdict.Continue;
  return run(msg, deliverRules, true);
}
