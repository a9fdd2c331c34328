// transform: payload rewriting per topic filter — compact CSV or binary
// readings to JSON, unit conversion of numeric fields, redaction of fields.
// Every rule whose filter matches applies, in config order, each one as:
// decode (csvToJson | binaryToJson) → convert → redact. JSON edits splice the
// changed values into the original bytes, so every other byte stays as sent.
// Rules run on PUBLISH (once, for everyone) or, with "hook": "deliver", per
// subscriber, skipping subscribers listed in "exceptUsers".
import { Config, Hook, JsonType, Message, Verdict, declareIdle, jsonNumber, jsonType, jsonValid, log } from "../sdk";
// The raw host import: Message.setPayload wants a Uint8Array, which would be one
// more allocation per message for bytes that already sit in `work`.
import { set_payload } from "../sdk/imports";
import { ByteBuffer, writeJsonStringBytes } from "./buffer";
import { FieldPath, findAll, removalRange } from "./edit";
import { MAX_DECIMALS, writeNumber } from "./format";
import { BinaryField, Conversion, PAD, Rule, numberOr, parseRule, wholeNumberIn } from "./rules";
export * from "../sdk/exports";

let publishRules: Rule[] = [];
let deliverRules: Rule[] = [];
let dropInvalid = true;

// The document being transformed lives in `work`; decoders write to `spare` and swap.
let work = new ByteBuffer();
let spare = new ByteBuffer();
const formatted = new ByteBuffer();
const found: i32[] = [];

export function init(config: Config): bool {
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
    const rule = parseRule(config, "rules." + i.toString(), <i32>decimals);
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

function decodeCsv(rule: Rule, keys: ByteBuffer[]): bool {
  const src = work.ptr;
  let end = work.len;
  while (end > 0 && (load<u8>(src + <usize>(end - 1)) == 0x0a || load<u8>(src + <usize>(end - 1)) == 0x0d)) end--;
  const out = spare;
  out.clear();
  out.byte(0x7b);
  let p = 0;
  for (let f = 0, n = keys.length; f < n; f++) {
    let start = p;
    while (p < end && <i32>load<u8>(src + <usize>p) != rule.csvSeparator) p++;
    let stop = p;
    if (f < n - 1) {
      if (p >= end) return false; // too few cells
      p++;
    } else if (p < end) {
      return false; // too many cells
    }
    while (start < stop && load<u8>(src + <usize>start) == 0x20) start++;
    while (stop > start && load<u8>(src + <usize>(stop - 1)) == 0x20) stop--;
    if (f > 0) out.byte(0x2c);
    const key = unchecked(keys[f]);
    out.bytes(key.ptr, key.len);
    const cell = src + <usize>start;
    const cellLen = stop - start;
    if (cellLen == 0) {
      out.ascii("null");
    } else if (jsonType(cell, cellLen, "") == JsonType.Number) {
      out.bytes(cell, cellLen);
    } else if (!writeJsonStringBytes(out, cell, cellLen)) {
      return false;
    }
  }
  out.byte(0x7d);
  swap();
  return true;
}

function readBinary(ptr: usize, type: i32, bigEndian: bool): f64 {
  switch (type) {
    case 0: return <f64>load<u8>(ptr);
    case 1: return <f64>load<i8>(ptr);
    case 2: return <f64>(bigEndian ? bswap<u16>(load<u16>(ptr)) : load<u16>(ptr));
    case 3: return <f64>(bigEndian ? <i16>bswap<u16>(load<u16>(ptr)) : load<i16>(ptr));
    case 4: return <f64>(bigEndian ? bswap<u32>(load<u32>(ptr)) : load<u32>(ptr));
    case 5: return <f64>(bigEndian ? <i32>bswap<u32>(load<u32>(ptr)) : load<i32>(ptr));
    case 6: return <f64>(bigEndian ? reinterpret<f32>(bswap<u32>(load<u32>(ptr))) : load<f32>(ptr));
    default: return bigEndian ? reinterpret<f64>(bswap<u64>(load<u64>(ptr))) : load<f64>(ptr);
  }
}

function decodeBinary(rule: Rule, fields: BinaryField[]): bool {
  if (work.len != rule.binarySize) return false;
  const src = work.ptr;
  const out = spare;
  out.clear();
  out.byte(0x7b);
  let p = 0;
  let first = true;
  for (let i = 0, n = fields.length; i < n; i++) {
    const field = unchecked(fields[i]);
    if (field.type != PAD) {
      if (!first) out.byte(0x2c);
      first = false;
      out.bytes(field.key.ptr, field.key.len);
      writeNumber(out, readBinary(src + <usize>p, field.type, rule.bigEndian) * field.scale + field.offset, rule.decimals);
    }
    p += field.size;
  }
  out.byte(0x7d);
  swap();
  return true;
}

/** Convert every number at the conversion's path; true when one was replaced. */
function convert(rule: Rule, conversion: Conversion): bool {
  findAll(work.ptr, work.len, conversion.path, found);
  let changed = false;
  for (let i = found.length - 2; i >= 0; i -= 2) {
    const start = unchecked(found[i]);
    const end = unchecked(found[i + 1]);
    const c = <i32>load<u8>(work.ptr + <usize>start);
    if (c != 0x2d && (c < 0x30 || c > 0x39)) continue;
    const x = jsonNumber(work.ptr + <usize>start, end - start, "", NaN);
    formatted.clear();
    writeNumber(formatted, x * conversion.scale + conversion.offset, rule.decimals);
    work.replace(start, end, formatted.ptr, formatted.len);
    changed = true;
  }
  return changed;
}

/** Mask or remove every value at the path; true when one was. */
function redact(rule: Rule, path: FieldPath): bool {
  findAll(work.ptr, work.len, path, found);
  // Last to first: an edit never moves the values before it.
  for (let i = found.length - 2; i >= 0; i -= 2) {
    const start = unchecked(found[i]);
    const end = unchecked(found[i + 1]);
    if (rule.removeRedacted) {
      const cut = removalRange(work.ptr, work.len, start, end);
      work.replace(<i32>(cut >> 32), <i32>(cut & 0xffffffff), 0, 0);
    } else {
      work.replace(start, end, rule.mask.ptr, rule.mask.len);
    }
  }
  return found.length > 0;
}

const OK: i32 = 0;
const CHANGED: i32 = 1;
const INVALID: i32 = 2;

/** Apply one rule to the document in `work` (`json`: already known to be valid JSON). */
function apply(rule: Rule, json: bool): i32 {
  let changed = false;
  const csv = rule.csvKeys;
  const binary = rule.binaryFields;
  if (csv !== null) {
    if (!decodeCsv(rule, csv)) return INVALID;
    changed = true;
  } else if (binary !== null) {
    if (!decodeBinary(rule, binary)) return INVALID;
    changed = true;
  } else if (!json && !jsonValid(work.ptr, work.len)) {
    return INVALID;
  }
  for (let i = 0, n = rule.conversions.length; i < n; i++) {
    if (convert(rule, unchecked(rule.conversions[i]))) changed = true;
  }
  for (let i = 0, n = rule.redact.length; i < n; i++) {
    if (redact(rule, unchecked(rule.redact[i]))) changed = true;
  }
  return changed ? CHANGED : OK;
}

function run(msg: Message, rules: Rule[], subscriber: bool): i32 {
  let loaded = false;
  let changed = false;
  let json = false;
  for (let i = 0, n = rules.length; i < n; i++) {
    const rule = unchecked(rules[i]);
    if (!msg.topicMatches(rule.topic)) continue;
    if (subscriber && rule.exceptUsers.length > 0 && msg.hasUsername && rule.exceptUsers.includes(msg.username)) continue;
    if (!loaded) {
      work.assign(msg.payloadPtr, msg.payloadLength);
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
  if (changed) set_payload(work.ptr, work.len);
  return Verdict.Continue;
}

export function onPublish(msg: Message): i32 {
  return run(msg, publishRules, false);
}

export function onDeliver(msg: Message): i32 {
  if (deliverRules.length == 0) return Verdict.Continue;
  return run(msg, deliverRules, true);
}
