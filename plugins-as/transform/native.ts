// transform, native twin of plugin.ts: same rules, same bytes out. Its modules
// mirror the AssemblyScript build's: native/buffer.ts, native/format.ts and
// native/edit.ts are the twins of buffer.ts, format.ts and edit.ts.
import { Config, Hook, JsonType, Message, Verdict, declareIdle, jsonNumber, jsonType, jsonValid, log, validTopicFilter } from "../../host/native/index.js";
import { ByteBuffer, writeJsonString, writeJsonStringBytes } from "./native/buffer.js";
import { FieldPath, findAll, removalRange } from "./native/edit.js";
import { MAX_DECIMALS, writeNumber } from "./native/format.js";

/** The formatter on its own, for tests and tools. */
export { formatNumber } from "./native/format.js";

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
