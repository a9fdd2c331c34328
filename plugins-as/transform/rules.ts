// transform: the rules and how they are read from the config (checked once, at
// init, each error logged naming its key). plugin.ts applies them.
import { Config, log, validTopicFilter } from "../sdk";
import { ByteBuffer, writeJsonString } from "./buffer";
import { FieldPath } from "./edit";
import { MAX_DECIMALS } from "./format";

// Binary field types: [name, size in bytes].
const TYPES = ["u8", "i8", "u16", "i16", "u32", "i32", "f32", "f64", "pad"];
const SIZES: i32[] = [1, 1, 2, 2, 4, 4, 4, 8, 0];
export const PAD: i32 = 8;

const UNITS = ["C", "F", "K"];
// y = x * scale + offset, to Celsius from each unit and from Celsius to each unit.
const TO_C_SCALE: f64[] = [1, 5.0 / 9.0, 1];
const TO_C_OFFSET: f64[] = [0, -32 * (5.0 / 9.0), -273.15];
const FROM_C_SCALE: f64[] = [1, 9.0 / 5.0, 1];
const FROM_C_OFFSET: f64[] = [0, 32, 273.15];

export class BinaryField {
  constructor(
    public key: ByteBuffer, // "name": (JSON-escaped, with the colon)
    public type: i32,
    public size: i32,
    public scale: f64,
    public offset: f64,
  ) {}
}

export class Conversion {
  constructor(
    public path: FieldPath,
    public scale: f64,
    public offset: f64,
  ) {}
}

export class Rule {
  topic: string = "#";
  onDeliver: bool = false;
  exceptUsers: string[] = [];
  decimals: i32 = 6;
  csvKeys: ByteBuffer[] | null = null;
  csvSeparator: i32 = 0x2c;
  binaryFields: BinaryField[] | null = null;
  binarySize: i32 = 0;
  bigEndian: bool = false;
  conversions: Conversion[] = [];
  redact: FieldPath[] = [];
  removeRedacted: bool = false;
  mask: ByteBuffer = new ByteBuffer();
}

function keyBytes(name: string): ByteBuffer {
  const key = new ByteBuffer();
  writeJsonString(key, name);
  key.byte(0x3a);
  return key;
}

function isString(config: Config, path: string): bool {
  return config.string(path, "a") == config.string(path, "b");
}

// Every Config read rescans the whole config (and costs fuel in proportion),
// so init reads each key once where it can.

/** The number at path, the fallback when absent, NaN when present but not a number. */
export function numberOr(config: Config, path: string, fallback: f64): f64 {
  const value = config.number(path, NaN);
  return isNaN(value) && !config.has(path) ? fallback : value;
}

/** Logs and answers true when the key is present but not a boolean. */
function notBool(config: Config, path: string): bool {
  if (!config.has(path) || config.bool(path, false) == config.bool(path, true)) return false;
  log.error(path + " must be true or false");
  return true;
}

export function wholeNumberIn(x: f64, lo: f64, hi: f64): bool {
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

function parseCsv(config: Config, base: string, rule: Rule): bool {
  const names = stringList(config, base + ".fields");
  if (names === null) return false;
  if (names.length == 0) {
    log.error(base + ".fields must name at least one field");
    return false;
  }
  const keys: ByteBuffer[] = [];
  for (let i = 0; i < names.length; i++) keys.push(keyBytes(unchecked(names[i])));
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

function parseBinary(config: Config, base: string, rule: Rule): bool {
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
    let fieldSize = unchecked(SIZES[type]);
    let key = new ByteBuffer();
    if (type == PAD) {
      const padSize = numberOr(config, item + ".size", 0);
      if (!wholeNumberIn(padSize, 1, 65535)) {
        log.error(item + ".size must be a whole number of bytes from 1 to 65535");
        return false;
      }
      fieldSize = <i32>padSize;
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
    scale = unchecked(TO_C_SCALE[from]) * unchecked(FROM_C_SCALE[to]);
    offset = unchecked(TO_C_OFFSET[from]) * unchecked(FROM_C_SCALE[to]) + unchecked(FROM_C_OFFSET[to]);
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

export function parseRule(config: Config, base: string, defaultDecimals: i32): Rule | null {
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
  rule.decimals = <i32>decimals;
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
    for (let i = 0; i < paths.length; i++) rule.redact.push(new FieldPath(unchecked(paths[i])));
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
