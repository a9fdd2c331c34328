// ratelimit, native twin of plugin.ts: same buckets, same checkpoints, same verdicts.
import { Config, Message, Verdict, log, kv, now, validTopicFilter } from "../../host/native/index.js";

const KEY_PREFIX = "c/";
/** Per limit in a checkpoint record: messages view, messages cap, bytes view, bytes cap. */
const FIELDS_PER_LIMIT = 4;

/** One pair of buckets (messages, bytes) and where it applies; "" = every topic. */
class Limit {
  constructor(
    public topic: string,
    public messagesPerSecond: number,
    public burstMessages: number,
    public bytesPerSecond: number,
    public burstBytes: number,
    public reserveMessages: number,
    public reserveBytes: number,
  ) {}
}

/** One client's tokens for one Limit, and what it spent since the last checkpoint. */
class Bucket {
  messages = 0;
  bytes = 0;
  spentMessages = 0;
  spentBytes = 0;
}

class ClientState {
  buckets: Bucket[] = [];
  last = 0;
  checkpointed = false;
}

let limits: Limit[] = [];
let applies: boolean[] = [];
let rejectVerdict: number = Verdict.Drop;
let checkpointFraction = 0.25;
let maxCachedClients = 10000;
let clients = new Map<string, ClientState>();
let warnedKv = false;

/** A number >= 0 at path, the fallback when absent, NaN (logged) when invalid. */
function nonNegative(config: Config, path: string, fallback: number): number {
  if (!config.has(path)) return fallback;
  const value = config.number(path, NaN);
  if (!(value >= 0) || !isFinite(value)) {
    log.error("config." + path + " must be a number >= 0");
    return NaN;
  }
  return value;
}

/** Length of the array at key (0 when absent), -1 (logged) when it is something else. */
function arrayLength(config: Config, key: string): number {
  const n = config.arrayLength(key);
  if (n < 0) log.error("config." + key + " must be an array");
  return n;
}

/** An omitted burst is twice the rate (at least 1), or 0 = unlimited when the rate is 0. */
function defaultBurst(rate: number): number {
  return rate > 0 ? Math.max(1, Math.ceil(rate * 2)) : 0;
}

function readLimit(config: Config, prefix: string, topic: string, messagesPerSecond: number, bytesPerSecond: number): Limit | null {
  const messageRate = nonNegative(config, prefix + "messagesPerSecond", messagesPerSecond);
  const byteRate = nonNegative(config, prefix + "bytesPerSecond", bytesPerSecond);
  if (isNaN(messageRate) || isNaN(byteRate)) return null;
  const messageBurst = nonNegative(config, prefix + "burstMessages", defaultBurst(messageRate));
  const byteBurst = nonNegative(config, prefix + "burstBytes", defaultBurst(byteRate));
  if (isNaN(messageBurst) || isNaN(byteBurst)) return null;
  return new Limit(
    topic,
    messageRate,
    messageBurst,
    byteRate,
    byteBurst,
    Math.floor(messageBurst * checkpointFraction),
    Math.floor(byteBurst * checkpointFraction),
  );
}

export function init(config: Config): boolean {
  limits = [];
  clients = new Map<string, ClientState>();
  const action = config.string("action", "drop");
  if (action != "drop" && action != "deny") {
    log.error("config.action must be drop or deny");
    return false;
  }
  rejectVerdict = action == "deny" ? Verdict.Deny : Verdict.Drop;
  checkpointFraction = nonNegative(config, "checkpointFraction", 0.25);
  if (!(checkpointFraction < 1)) {
    log.error("config.checkpointFraction must be a number in [0, 1)");
    return false;
  }
  const cached = nonNegative(config, "maxCachedClients", 10000);
  if (!(cached >= 1) || cached != Math.floor(cached) || cached > 1e9) {
    log.error("config.maxCachedClients must be a whole number >= 1");
    return false;
  }
  maxCachedClients = cached;
  const global = readLimit(config, "", "", 10, 10000);
  if (global === null) return false;
  limits.push(global);
  const n = arrayLength(config, "perTopic");
  if (n < 0) return false;
  for (let i = 0; i < n; i++) {
    const base = "perTopic." + i.toString();
    const topic = config.string(base + ".topic", "");
    if (!validTopicFilter(topic)) {
      log.error(base + ".topic must be an MQTT topic filter");
      return false;
    }
    const limit = readLimit(config, base + ".", topic, 0, 0);
    if (limit === null) return false;
    if (limit.burstMessages == 0 && limit.burstBytes == 0) {
      log.error(base + " limits nothing: give messagesPerSecond/burstMessages or bytesPerSecond/burstBytes");
      return false;
    }
    limits.push(limit);
  }
  applies = new Array<boolean>(limits.length).fill(false);
  return true;
}

// ---- checkpoint records: f64 little-endian, [time, then FIELDS_PER_LIMIT per limit]

function recordSize(): number {
  return (1 + FIELDS_PER_LIMIT * limits.length) * 8;
}

function recordValue(record: Uint8Array, index: number): number {
  return new DataView(record.buffer, record.byteOffset, record.byteLength).getFloat64(index * 8, true);
}

/** A client's buckets from its checkpoint, refilled to `t`; full buckets when there is none. */
function restore(id: string, t: number): ClientState {
  const client = new ClientState();
  client.last = t;
  const record = kv.get(KEY_PREFIX + id);
  // A record written under another perTopic list cannot be matched up: start afresh.
  const usable = record !== null && record.length == recordSize();
  const since = usable ? Math.max(0, (t - recordValue(record!, 0)) / 1000) : 0;
  for (let j = 0, n = limits.length; j < n; j++) {
    const limit = limits[j]!;
    const bucket = new Bucket();
    if (usable) {
      const base = 1 + j * FIELDS_PER_LIMIT;
      bucket.messages = Math.min(limit.burstMessages, Math.min(recordValue(record!, base + 1), recordValue(record!, base) + since * limit.messagesPerSecond));
      bucket.bytes = Math.min(limit.burstBytes, Math.min(recordValue(record!, base + 3), recordValue(record!, base + 2) + since * limit.bytesPerSecond));
    } else {
      bucket.messages = limit.burstMessages;
      bucket.bytes = limit.burstBytes;
    }
    client.buckets.push(bucket);
  }
  client.checkpointed = usable;
  return client;
}

function checkpoint(id: string, client: ClientState, t: number): void {
  const n = limits.length;
  const record = new Float64Array(1 + FIELDS_PER_LIMIT * n);
  record[0] = t;
  for (let j = 0; j < n; j++) {
    const limit = limits[j]!;
    const bucket = client.buckets[j]!;
    const base = 1 + j * FIELDS_PER_LIMIT;
    record[base] = bucket.messages - limit.reserveMessages;
    record[base + 1] = limit.burstMessages - limit.reserveMessages;
    record[base + 2] = bucket.bytes - limit.reserveBytes;
    record[base + 3] = limit.burstBytes - limit.reserveBytes;
    bucket.spentMessages = 0;
    bucket.spentBytes = 0;
  }
  client.checkpointed = kv.put(KEY_PREFIX + id, new Uint8Array(record.buffer));
  if (!client.checkpointed && !warnedKv) {
    warnedKv = true;
    log.warn("kv refused a checkpoint (client " + id + "); limits are kept in memory only until a write succeeds");
  }
}

function clientState(id: string, t: number): ClientState {
  const known = clients.get(id);
  if (known) return known;
  // Forgetting cached clients is safe: their checkpoints are never looser than the truth.
  if (clients.size >= maxCachedClients) clients.clear();
  const client = restore(id, t);
  clients.set(id, client);
  return client;
}

function refill(client: ClientState, t: number): void {
  if (!(t > client.last)) return; // a clock stepping back refills nothing
  const elapsed = (t - client.last) / 1000;
  client.last = t;
  for (let j = 0, n = limits.length; j < n; j++) {
    const limit = limits[j]!;
    const bucket = client.buckets[j]!;
    bucket.messages = Math.min(limit.burstMessages, bucket.messages + elapsed * limit.messagesPerSecond);
    bucket.bytes = Math.min(limit.burstBytes, bucket.bytes + elapsed * limit.bytesPerSecond);
  }
}

export function onPublish(msg: Message): number {
  const t = now();
  const id = msg.clientId;
  const client = clientState(id, t);
  refill(client, t);
  const size = msg.payloadLength;
  const n = limits.length;
  for (let j = 0; j < n; j++) {
    const limit = limits[j]!;
    const matched = j == 0 || msg.topicMatches(limit.topic);
    applies[j] = matched;
    if (!matched) continue;
    const bucket = client.buckets[j]!;
    if (limit.burstMessages > 0 && bucket.messages < 1) return rejectVerdict;
    if (limit.burstBytes > 0 && bucket.bytes < size) return rejectVerdict;
  }
  let consumed = false;
  let reserveUsed = false;
  for (let j = 0; j < n; j++) {
    if (!applies[j]) continue;
    const limit = limits[j]!;
    const bucket = client.buckets[j]!;
    if (limit.burstMessages > 0) {
      bucket.messages -= 1;
      bucket.spentMessages += 1;
      consumed = true;
      if (bucket.spentMessages > limit.reserveMessages) reserveUsed = true;
    }
    if (limit.burstBytes > 0 && size > 0) {
      bucket.bytes -= size;
      bucket.spentBytes += size;
      consumed = true;
      if (bucket.spentBytes > limit.reserveBytes) reserveUsed = true;
    }
  }
  if (consumed && (reserveUsed || !client.checkpointed)) checkpoint(id, client, t);
  return Verdict.Continue;
}
