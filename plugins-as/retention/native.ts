// retention, native twin of plugin.ts: same rules, same counts, same verdicts.
import { Config, Message, PersistKind, Verdict, log, kv, validTopicFilter } from "../../host/native/index.js";

const KEY_PREFIX = "q/";
/** Longest TTL accepted: ten years, well inside the ABI's i32 seconds. */
const MAX_TTL_SEC = 315360000;

class Rule {
  constructor(
    public topic: string,
    public allow: boolean,
    public ttlSec: number,
  ) {}
}

let retainRules: Rule[] = [];
let queueRules: Rule[] = [];
let retainOthers = false;
let maxQueuedPerClient = 0;
let maxCachedClients = 10000;
let queued = new Map<string, number>();

/** A whole number in [min, max] at path, the fallback when absent, -1 (logged) when invalid. */
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

function readRules(config: Config, key: string, into: Rule[]): boolean {
  const n = arrayLength(config, key);
  if (n < 0) return false;
  for (let i = 0; i < n; i++) {
    const base = key + "." + i.toString();
    const topic = config.string(base + ".topic", "");
    if (!validTopicFilter(topic)) {
      log.error(base + ".topic must be an MQTT topic filter");
      return false;
    }
    const ttl = wholeNumber(config, base + ".ttlSec", 0, 0, MAX_TTL_SEC);
    if (ttl < 0) return false;
    into.push(new Rule(topic, config.bool(base + ".allow", true), ttl));
  }
  return true;
}

export function init(config: Config): boolean {
  retainRules = [];
  queueRules = [];
  queued = new Map<string, number>();
  if (!readRules(config, "retain", retainRules) || !readRules(config, "queue", queueRules)) return false;
  retainOthers = config.bool("retainOthers", false);
  const cap = wholeNumber(config, "maxQueuedPerClient", 0, 0, 1e9);
  const cached = wholeNumber(config, "maxCachedClients", 10000, 1, 1e9);
  if (cap < 0 || cached < 0) return false;
  maxQueuedPerClient = cap;
  maxCachedClients = cached;
  return true;
}

function firstMatch(rules: Rule[], msg: Message): Rule | null {
  for (let i = 0, n = rules.length; i < n; i++) {
    const rule = rules[i]!;
    if (msg.topicMatches(rule.topic)) return rule;
  }
  return null;
}

function queuedCount(id: string): number {
  const known = queued.get(id);
  if (known !== undefined) return known;
  const count = kv.getNumber(KEY_PREFIX + id, 0);
  remember(id, count);
  return count;
}

function remember(id: string, count: number): void {
  // Counts are written through to kv, so forgetting the cache loses nothing.
  if (!queued.has(id) && queued.size >= maxCachedClients) queued.clear();
  queued.set(id, count);
}

function onRetained(msg: Message): number {
  const rule = firstMatch(retainRules, msg);
  if (rule === null) return retainOthers ? Verdict.Continue : Verdict.Drop;
  if (!rule.allow) return Verdict.Drop;
  if (rule.ttlSec > 0) msg.setTtl(rule.ttlSec);
  return Verdict.Continue;
}

function onQueued(msg: Message): number {
  const rule = firstMatch(queueRules, msg);
  if (rule !== null && !rule.allow) return Verdict.Drop;
  if (maxQueuedPerClient > 0) {
    const id = msg.clientId;
    const count = queuedCount(id);
    if (count >= maxQueuedPerClient) return Verdict.Drop;
    remember(id, count + 1);
    kv.putNumber(KEY_PREFIX + id, count + 1);
    if (count + 1 == maxQueuedPerClient) {
      log.info("offline queue of " + id + " reached maxQueuedPerClient (" + maxQueuedPerClient.toString() + "): further messages are not queued until it reconnects");
    }
  }
  if (rule !== null && rule.ttlSec > 0) msg.setTtl(rule.ttlSec);
  return Verdict.Continue;
}

export function onPersist(msg: Message): number {
  if (msg.flags == PersistKind.retained) return onRetained(msg);
  if (msg.flags == PersistKind.offlineQueue) return onQueued(msg);
  return Verdict.Continue;
}

// The client is about to be handed its queue (or, with a clean session, to lose it).
export function onConnect(msg: Message): number {
  if (maxQueuedPerClient > 0) {
    const id = msg.clientId;
    queued.delete(id);
    kv.remove(KEY_PREFIX + id);
  }
  return Verdict.Continue;
}
