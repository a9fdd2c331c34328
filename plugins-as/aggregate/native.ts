// aggregate, native twin of plugin.ts: same windows, same summaries, same checkpoints.
import { Config, Message, Verdict, log, kv, publish, validTopicFilter } from "../../host/native/index.js";

const META_KEY = "w/meta";
const TOPIC_KEY_PREFIX = "w/";
/** Readings beyond this magnitude are ignored: no real sensor sends them, and they would not print exactly. */
const MAX_READING = 1e15;
/** 2^53: below it every integer is exact in an f64. */
const EXACT_INTEGERS = 9007199254740992;
/** Per topic record: count, min, max, sum, last (f64), then the topic's UTF-8 bytes. */
const STATS_BYTES = 40;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

class Stats {
  count = 0;
  min = 0;
  max = 0;
  sum = 0;
  last = 0;
  dirty = false;
  constructor(public topic: string) {}

  add(value: number): void {
    if (this.count == 0 || value < this.min) this.min = value;
    if (this.count == 0 || value > this.max) this.max = value;
    this.count += 1;
    this.sum += value;
    this.last = value;
    this.dirty = true;
  }
}

let filters: string[] = [];
let field = "value";
let intervalMs = 60000;
let output = "stats/{topic}";
let perTopic = true;
let maxTopics = 1000;
let scale = 1000;
let outputQos = 0;
let outputRetain = false;
let persist = true;

let tracked: Stats[] = [];
let index = new Map<string, number>();
let ignored = 0;
let windowOpen = false;
let windowStart = 0;
/** How many per-topic keys the kv store holds for the current window. */
let persisted = 0;
let metaDirty = false;

function wholeNumber(config: Config, path: string, fallback: number, min: number, max: number): number {
  if (!config.has(path)) return fallback;
  const value = config.number(path, NaN);
  if (!(value >= min && value <= max) || value != Math.floor(value)) {
    log.error("config." + path + " must be a whole number from " + min.toString() + " to " + max.toString());
    return -1;
  }
  return value;
}

/** Length of the array at key (0 when absent), -1 (logged) when it is something else. */
function arrayLength(config: Config, key: string): number {
  const n = config.arrayLength(key);
  if (n < 0) log.error("config." + key + " must be an array");
  return n;
}

export function init(config: Config): boolean {
  filters = [];
  tracked = [];
  index = new Map<string, number>();
  ignored = 0;
  windowOpen = false;
  persisted = 0;
  metaDirty = false;
  const n = arrayLength(config, "topics");
  if (n < 0) return false;
  if (n == 0) {
    log.error("config.topics must be a non-empty array of topic filters");
    return false;
  }
  for (let i = 0; i < n; i++) {
    const filter = config.string("topics." + i.toString(), "");
    if (!validTopicFilter(filter)) {
      log.error("config.topics." + i.toString() + " must be an MQTT topic filter");
      return false;
    }
    filters.push(filter);
  }
  field = config.string("field", "value");
  if (field.length == 0) {
    log.error("config.field must be a JSON path such as \"value\" or \"reading.temp\"");
    return false;
  }
  const interval = wholeNumber(config, "intervalSec", 60, 1, 31536000);
  const topics = wholeNumber(config, "maxTopics", 1000, 1, 100000);
  const decimals = wholeNumber(config, "decimals", 3, 0, 6);
  const qos = wholeNumber(config, "qos", 0, 0, 2);
  if (interval < 0 || topics < 0 || decimals < 0 || qos < 0) return false;
  intervalMs = interval * 1000;
  maxTopics = topics;
  scale = 1;
  for (let i = 0; i < decimals; i++) scale *= 10;
  outputQos = qos;
  output = config.string("output", "stats/{topic}");
  perTopic = output.includes("{topic}");
  if (output.length == 0 || output.includes("+") || output.includes("#")) {
    log.error("config.output must be a topic name (with {topic} for one summary per topic)");
    return false;
  }
  outputRetain = config.bool("retain", false);
  persist = config.bool("persist", true);
  if (persist) restoreWindow();
  return true;
}

// ---- JSON output

/** A number as JSON with at most log10(scale) decimals, identically in both twins. */
function formatNumber(x: number): string {
  if (!isFinite(x)) return "null";
  const negative = x < 0;
  const magnitude = Math.abs(x);
  let scaled = Math.floor(magnitude * scale + 0.5);
  let whole: number;
  let fraction = 0;
  if (scaled < EXACT_INTEGERS) {
    whole = Math.floor(scaled / scale);
    fraction = scaled - whole * scale;
  } else {
    whole = Math.floor(magnitude + 0.5);
  }
  let text = whole.toString();
  if (fraction > 0) {
    let digits = (fraction + scale).toString().substring(1); // keeps the leading zeros
    let end = digits.length;
    while (end > 0 && digits.charCodeAt(end - 1) == 0x30) end--;
    text += "." + digits.substring(0, end);
  }
  return negative && (whole > 0 || fraction > 0) ? "-" + text : text;
}

const HEX = "0123456789abcdef";

function jsonQuote(s: string): string {
  let plain = true;
  for (let i = 0, n = s.length; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c == 0x22 || c == 0x5c) {
      plain = false;
      break;
    }
  }
  if (plain) return "\"" + s + "\"";
  let out = "\"";
  for (let i = 0, n = s.length; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c == 0x22) out += "\\\"";
    else if (c == 0x5c) out += "\\\\";
    else if (c < 0x20) out += "\\u00" + HEX.charAt(c >> 4) + HEX.charAt(c & 15);
    else out += String.fromCharCode(c);
  }
  return out + "\"";
}

function statsJson(stats: Stats): string {
  return (
    "\"count\":" + formatNumber(stats.count) +
    ",\"min\":" + formatNumber(stats.min) +
    ",\"max\":" + formatNumber(stats.max) +
    ",\"mean\":" + formatNumber(stats.sum / stats.count) +
    ",\"last\":" + formatNumber(stats.last)
  );
}

function windowJson(end: number): string {
  return "\"from\":" + formatNumber(windowStart) + ",\"to\":" + formatNumber(end);
}

function publishWindow(end: number): void {
  if (tracked.length == 0) return;
  if (perTopic) {
    for (let i = 0, n = tracked.length; i < n; i++) {
      const stats = tracked[i]!;
      const body = "{\"topic\":" + jsonQuote(stats.topic) + "," + statsJson(stats) + "," + windowJson(end) + "}";
      // split/join, not replaceAll: a "$&" in a topic must stay literal, as in AssemblyScript.
      if (!publish(output.split("{topic}").join(stats.topic), body, outputQos, outputRetain)) {
        log.warn("could not publish the summary of " + stats.topic);
      }
    }
  } else {
    let body = "{" + windowJson(end) + ",\"ignored\":" + formatNumber(ignored) + ",\"topics\":{";
    for (let i = 0, n = tracked.length; i < n; i++) {
      const stats = tracked[i]!;
      if (i > 0) body += ",";
      body += jsonQuote(stats.topic) + ":{" + statsJson(stats) + "}";
    }
    if (!publish(output, body + "}}", outputQos, outputRetain)) log.warn("could not publish the summary to " + output);
  }
  if (ignored > 0) {
    log.warn("maxTopics (" + maxTopics.toString() + ") reached: " + formatNumber(ignored) + " samples on further topics were ignored in this window");
  }
}

// ---- window checkpoints in kv: META_KEY = [windowStart, topics, ignored], "w/<i>" = one topic

function recordValue(record: Uint8Array, index: number): number {
  return new DataView(record.buffer, record.byteOffset, record.byteLength).getFloat64(index * 8, true);
}

function restoreWindow(): void {
  const meta = kv.get(META_KEY);
  if (meta === null || meta.length != 24) return;
  windowOpen = true;
  windowStart = recordValue(meta, 0);
  const count = recordValue(meta, 1);
  ignored = recordValue(meta, 2);
  persisted = count;
  for (let i = 0; i < count && tracked.length < maxTopics; i++) {
    const record = kv.get(TOPIC_KEY_PREFIX + i.toString());
    if (record === null || record.length < STATS_BYTES) continue;
    const topic = decoder.decode(record.subarray(STATS_BYTES));
    if (index.has(topic)) continue;
    const stats = new Stats(topic);
    stats.count = recordValue(record, 0);
    stats.min = recordValue(record, 1);
    stats.max = recordValue(record, 2);
    stats.sum = recordValue(record, 3);
    stats.last = recordValue(record, 4);
    // A topic that moved up (an unreadable record before it) is rewritten at its new position.
    stats.dirty = tracked.length != i;
    index.set(topic, tracked.length);
    tracked.push(stats);
  }
}

function checkpointWindow(): void {
  for (let i = 0, n = tracked.length; i < n; i++) {
    const stats = tracked[i]!;
    if (!stats.dirty) continue;
    const topic = encoder.encode(stats.topic);
    const record = new Uint8Array(STATS_BYTES + topic.byteLength);
    const view = new DataView(record.buffer);
    view.setFloat64(0, stats.count, true);
    view.setFloat64(8, stats.min, true);
    view.setFloat64(16, stats.max, true);
    view.setFloat64(24, stats.sum, true);
    view.setFloat64(32, stats.last, true);
    record.set(topic, STATS_BYTES);
    if (kv.put(TOPIC_KEY_PREFIX + i.toString(), record)) stats.dirty = false;
    metaDirty = true;
  }
  for (let i = tracked.length; i < persisted; i++) kv.remove(TOPIC_KEY_PREFIX + i.toString());
  if (!metaDirty && persisted == tracked.length) return;
  persisted = tracked.length;
  const meta = new Float64Array(3);
  meta[0] = windowStart;
  meta[1] = tracked.length;
  meta[2] = ignored;
  if (kv.put(META_KEY, new Uint8Array(meta.buffer))) metaDirty = false;
}

// ---- hooks

export function onPublish(msg: Message): number {
  let wanted = false;
  for (let i = 0, n = filters.length; i < n; i++) {
    if (msg.topicMatches(filters[i]!)) {
      wanted = true;
      break;
    }
  }
  if (!wanted) return Verdict.Continue;
  const value = msg.jsonNumber(field, NaN);
  if (!isFinite(value) || Math.abs(value) > MAX_READING) return Verdict.Continue;
  const topic = msg.topic;
  const known = index.get(topic);
  if (known !== undefined) {
    tracked[known]!.add(value);
  } else if (tracked.length < maxTopics) {
    const stats = new Stats(topic);
    stats.add(value);
    index.set(topic, tracked.length);
    tracked.push(stats);
  } else {
    ignored += 1;
    metaDirty = true;
  }
  return Verdict.Continue;
}

export function onTick(nowMs: number): void {
  if (!windowOpen) {
    windowOpen = true;
    windowStart = nowMs;
    metaDirty = true;
  } else if (nowMs - windowStart >= intervalMs) {
    publishWindow(nowMs);
    tracked = [];
    index = new Map<string, number>();
    ignored = 0;
    windowStart = nowMs;
    metaDirty = true;
  }
  if (persist) checkpointWindow();
}
