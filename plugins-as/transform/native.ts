// transform, native twin of plugin.ts: same rules, same bytes out. Its modules
// mirror the AssemblyScript build's: native/buffer.ts, native/format.ts,
// native/edit.ts and native/rules.ts are the twins of buffer.ts, format.ts,
// edit.ts and rules.ts.
import { Config, Hook, JsonType, Message, Verdict, declareIdle, jsonNumber, jsonType, jsonValid, log } from "../../host/native/index.js";
import { ByteBuffer, writeJsonStringBytes } from "./native/buffer.js";
import { FieldPath, findAll, removalRange } from "./native/edit.js";
import { MAX_DECIMALS, writeNumber } from "./native/format.js";
import { BinaryField, Conversion, PAD, Rule, numberOr, parseRule, wholeNumberIn } from "./native/rules.js";

/** The formatter on its own, for tests and tools. */
export { formatNumber } from "./native/format.js";

let publishRules: Rule[] = [];
let deliverRules: Rule[] = [];
let dropInvalid = true;

// The document being transformed lives in `work`; decoders write to `spare` and swap.
let work = new ByteBuffer();
let spare = new ByteBuffer();
const formatted = new ByteBuffer();
const found: number[] = [];

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
