// wasmq native SDK — MQTT topic utilities (TypeScript twin of
// plugins-as/sdk/topic.ts). Topics and filters are JS strings here; the AS
// version reads the topic as UTF-8 bytes. Same semantics (MQTT 3.1.1 §4.7):
// - '+' one level, '#' the rest including none ("a/#" matches "a"), a filter
//   starting with a wildcard never matches a topic starting with '$'.
// - topicMatches / topicCapture: false / null unless the filter is a valid
//   filter and the topic a valid topic name.
// - validTopicFilter: non-empty, <= 65535 UTF-8 bytes, no U+0000, no lone
//   surrogates, '#' only as the whole last level, '+' only as a whole level.
// - validTopicName: non-empty, <= 65535 UTF-8 bytes, no U+0000, no '+'/'#',
//   no lone surrogates.
// - topicLevelCount: '/' count + 1, 0 for ""; topicLevel: "" when out of
//   range; topicCapture: index-th capture in filter order ('+' → its level,
//   '#' → rest joined with '/', "" for the parent match), null if none.

const C_NUL = 0x00;
const C_HASH = 0x23;
const C_DOLLAR = 0x24;
const C_PERCENT = 0x25;
const C_c = 0x63;
const C_u = 0x75;
const C_PLUS = 0x2b;
const C_SLASH = 0x2f;
const MAX_TOPIC_BYTES = 65535;

const NO_MATCH = -2;
const NO_CAPTURE = -1;

// Checks a string for MQTT validity; `wild` allows wildcards (filters).
function validTopic(s: string, wild: boolean): boolean {
  const n = s.length;
  if (n === 0) return false;
  let bytes = 0;
  let levelStart = 0;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c === C_NUL) return false;
    if (c < 0x80) {
      bytes += 1;
      if (c === C_SLASH) {
        levelStart = i + 1;
      } else if (c === C_PLUS) {
        if (!wild) return false;
        if (i !== levelStart || (i + 1 < n && s.charCodeAt(i + 1) !== C_SLASH)) return false;
      } else if (c === C_HASH) {
        if (!wild) return false;
        if (i !== levelStart || i + 1 !== n) return false;
      }
    } else if (c < 0x800) {
      bytes += 2;
    } else if (c >= 0xd800 && c < 0xdc00) {
      if (i + 1 >= n) return false;
      const d = s.charCodeAt(i + 1);
      if (d < 0xdc00 || d > 0xdfff) return false;
      bytes += 4;
      i++;
    } else if (c >= 0xdc00 && c < 0xe000) {
      return false;
    } else {
      bytes += 3;
    }
  }
  return bytes <= MAX_TOPIC_BYTES;
}

/** A valid MQTT topic filter. */
export function validTopicFilter(filter: string): boolean {
  return validTopic(filter, true);
}

/** A valid MQTT topic name (no wildcards). */
export function validTopicName(topic: string): boolean {
  return validTopic(topic, false);
}

// Capture range of the last successful matchTopic call.
let capStart = 0;
let capEnd = 0;

// Core matcher (both validated). NO_MATCH, NO_CAPTURE, or 0 with capture
// `want` in capStart/capEnd.
// Substitutions for "%u" and "%c" while topicMatchesTemplate runs (null: none usable).
let templating = false;
let substUser: string | null = null;
let substId: string | null = null;

function matchTopic(filter: string, topic: string, want: number): number {
  const fn = filter.length;
  const len = topic.length;
  const first = filter.charCodeAt(0);
  if (topic.charCodeAt(0) === C_DOLLAR && (first === C_PLUS || first === C_HASH)) return NO_MATCH;
  let fi = 0;
  let ti = 0;
  let cap = 0;
  let result = NO_CAPTURE;
  for (;;) {
    const c = fi < fn ? filter.charCodeAt(fi) : -1;
    if (c === C_HASH) {
      if (cap === want) {
        capStart = ti;
        capEnd = len;
        return 0;
      }
      return result;
    }
    if (c === C_PLUS) {
      const s = ti;
      while (ti < len && topic.charCodeAt(ti) !== C_SLASH) ti++;
      if (cap === want) {
        capStart = s;
        capEnd = ti;
        result = 0;
      }
      cap++;
      fi++;
    } else {
      while (fi < fn) {
        const ch = filter.charCodeAt(fi);
        if (ch === C_SLASH) break;
        if (ch === C_PERCENT && templating && fi + 1 < fn) {
          const token = filter.charCodeAt(fi + 1);
          if (token === C_u || token === C_c) {
            const sub = token === C_u ? substUser : substId;
            if (sub === null || !topic.startsWith(sub, ti)) return NO_MATCH;
            ti += sub.length;
            fi += 2;
            continue;
          }
        }
        if (ti >= len || topic.charCodeAt(ti) !== ch) return NO_MATCH;
        ti++;
        fi++;
      }
      if (ti < len && topic.charCodeAt(ti) !== C_SLASH) return NO_MATCH;
    }
    const fEnd = fi >= fn;
    const tEnd = ti >= len;
    if (fEnd) return tEnd ? result : NO_MATCH;
    if (tEnd) {
      if (fi + 2 === fn && filter.charCodeAt(fi + 1) === C_HASH) {
        if (cap === want) {
          capStart = len;
          capEnd = len;
          return 0;
        }
        return result;
      }
      return NO_MATCH;
    }
    fi++;
    ti++;
  }
}

/** Usable as a "%u"/"%c" substitution: non-empty, and no '/', '+', '#' or U+0000 (the string, else null). */
export function substitution(s: string | null): string | null {
  if (s === null || s.length === 0) return null;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === C_SLASH || c === C_PLUS || c === C_HASH || c === C_NUL) return null;
  }
  return s;
}

/**
 * topicMatches for a filter in which "%u" stands for the client's username
 * (null: the client sent none) and "%c" for its client id, as in Mosquitto's
 * ACL patterns. A filter that needs a substitution that is absent, empty, or
 * contains '/', '+', '#' or U+0000 matches nothing; substitutions are taken
 * literally. (Twin of topicMatchesTemplate in plugins-as/sdk/topic.ts.)
 */
export function topicMatchesTemplate(filter: string, topic: string, username: string | null, clientId: string): boolean {
  if (!validTopic(filter, true) || !validTopic(topic, false)) return false;
  substUser = substitution(username);
  substId = substitution(clientId);
  templating = true;
  try {
    return matchTopic(filter, topic, -1) !== NO_MATCH;
  } finally {
    templating = false;
  }
}

/** MQTT 3.1.1 §4.7 match of a topic name against a filter. */
export function topicMatches(filter: string, topic: string): boolean {
  if (!validTopic(filter, true) || !validTopic(topic, false)) return false;
  return matchTopic(filter, topic, -1) !== NO_MATCH;
}

/** Number of levels ('/' count + 1); 0 for the empty topic. */
export function topicLevelCount(topic: string): number {
  const len = topic.length;
  if (len === 0) return 0;
  let n = 1;
  for (let i = 0; i < len; i++) {
    if (topic.charCodeAt(i) === C_SLASH) n++;
  }
  return n;
}

/** The index-th level, or "" when out of range. */
export function topicLevel(topic: string, index: number): string {
  const len = topic.length;
  if (len === 0 || index < 0) return "";
  let level = 0;
  let s = 0;
  for (let i = 0; i <= len; i++) {
    if (i === len || topic.charCodeAt(i) === C_SLASH) {
      if (level === index) return topic.slice(s, i);
      level++;
      s = i + 1;
    }
  }
  return "";
}

/** The index-th wildcard capture of filter on topic, or null. */
export function topicCapture(filter: string, topic: string, index: number): string | null {
  if (index < 0) return null;
  if (!validTopic(filter, true) || !validTopic(topic, false)) return null;
  if (matchTopic(filter, topic, index) !== 0) return null;
  return topic.slice(capStart, capEnd);
}

/**
 * Is every topic that `sub` (a subscription filter) can match also matched by
 * `filter`? What an ACL asks of a SUBSCRIBE: "sensors/#" covers "sensors/+/temp",
 * "sensors/+/temp" does not cover "sensors/#".
 */
export function filterCovers(filter: string, sub: string): boolean {
  if (!validTopicFilter(filter) || !validTopicFilter(sub)) return false;
  const f = filter.split("/");
  const s = sub.split("/");
  for (let i = 0; i < f.length; i++) {
    const fl = f[i]!;
    if (fl == "#") return !(i == 0 && s[0]!.startsWith("$"));
    if (i >= s.length) return false;
    const sl = s[i]!;
    if (sl == "#") return false;
    if (fl == "+") {
      if (i == 0 && sl.startsWith("$")) return false;
      continue;
    }
    if (sl == "+" || fl != sl) return false;
  }
  return f.length == s.length;
}
