// wasmq plugin SDK — MQTT topic utilities (AssemblyScript).
//
// Topics are raw UTF-8 bytes in linear memory `(ptr, len)` (as the host wrote
// them from the wire); filters are AssemblyScript strings (usually constants
// or from the plugin config). topicMatches / topicLevelCount / validTopicName
// never allocate: UTF-16 filter characters are encoded to UTF-8 on the fly and
// compared byte by byte. The native twin is host/native/topic.ts.
//
// Semantics (MQTT 3.1.1 §4.7, identical in both twins):
// - Levels are separated by '/'; empty levels are levels ("/finance" has two).
// - '+' matches exactly one level (possibly empty); '#' matches the remaining
//   levels including none, so "a/#" also matches "a" (the parent) and "#"
//   matches everything. A filter beginning with '+' or '#' does not match a
//   topic beginning with '$' ($SYS, ...).
// - topicMatches / topicCapture are false / null when the filter is not a
//   valid filter or the topic is not a valid topic name.
// - validTopicFilter: non-empty, at most 65535 UTF-8 bytes, no U+0000, no lone
//   surrogates, '#' only as the whole last level, '+' only as a whole level.
// - validTopicName: non-empty, at most 65535 bytes, no U+0000, no '+' or '#',
//   well-formed UTF-8 (the byte-level equivalent of "no lone surrogates").
// - topicLevelCount: number of '/' + 1, and 0 for the empty topic.
// - topicLevel: the index-th level, "" when out of range.
// - topicMatchesTemplate: topicMatches with "%u"/"%c" in the filter standing
//   for the client's username / client id (see the function).
// - topicCapture: the index-th wildcard capture of a match, in filter order:
//   each '+' captures its level, '#' captures the rest joined with '/' ("" when
//   it matched the parent). null when no match or no such capture.

import { C_DOLLAR, C_HASH, C_NUL, C_PERCENT, C_PLUS, C_SLASH, C_c, C_u, MAX_TOPIC_BYTES, fch, substitutionLength, tb, utf8SeqLen } from "./topic-bytes";

const NO_MATCH: i64 = -2;
const NO_CAPTURE: i64 = -1;

// Substitutions for "%u" and "%c" while topicMatchesTemplate runs (len -1: none usable).
let templating = false;
let substUser: usize = 0;
let substUserLen: i32 = -1;
let substId: usize = 0;
let substIdLen: i32 = -1;

// Filters found valid lately, remembered by identity so that a plugin matching
// its configured filters on every message checks each one once, not per call. An
// AssemblyScript string never changes, and holding it here keeps its address from
// being reused for another string while it is remembered. Four, reused in turn:
// what a plugin with a few rules per hook needs; more only costs a re-check.
let knownFilter0: string | null = null;
let knownFilter1: string | null = null;
let knownFilter2: string | null = null;
let knownFilter3: string | null = null;
let knownNext = 0;

// @ts-ignore: decorator
@inline function isKnownFilter(filter: string): bool {
  const p = changetype<usize>(filter);
  // An empty slot is null, address 0: never a remembered filter.
  return p != 0 && (p == changetype<usize>(knownFilter0) || p == changetype<usize>(knownFilter1) ||
         p == changetype<usize>(knownFilter2) || p == changetype<usize>(knownFilter3));
}

function rememberFilter(filter: string): void {
  const slot = knownNext;
  knownNext = (slot + 1) & 3;
  if (slot == 0) knownFilter0 = filter;
  else if (slot == 1) knownFilter1 = filter;
  else if (slot == 2) knownFilter2 = filter;
  else knownFilter3 = filter;
}

/** A valid MQTT topic filter (wildcards allowed, see module comment). */
// Inline: a remembered filter, the usual case, is answered without a call.
// @ts-ignore: decorator
@inline export function validTopicFilter(filter: string): bool {
  return isKnownFilter(filter) || learnTopicFilter(filter);
}

// validTopicFilter for a filter not remembered: checked, and remembered when valid.
function learnTopicFilter(filter: string): bool {
  if (!checkTopicFilter(filter)) return false;
  rememberFilter(filter);
  return true;
}

function checkTopicFilter(filter: string): bool {
  let n = filter.length;
  if (n == 0) return false;
  let bytes = 0;
  let levelStart = 0;
  for (let i = 0; i < n; i++) {
    let c = fch(filter, i);
    if (c == C_NUL) return false;
    if (c < 0x80) {
      bytes += 1;
      if (c == C_SLASH) {
        levelStart = i + 1;
      } else if (c == C_PLUS) {
        if (i != levelStart || (i + 1 < n && fch(filter, i + 1) != C_SLASH)) return false;
      } else if (c == C_HASH) {
        if (i != levelStart || i + 1 != n) return false;
      }
    } else if (c < 0x800) {
      bytes += 2;
    } else if (c >= 0xd800 && c < 0xdc00) {
      if (i + 1 >= n) return false;
      let d = fch(filter, i + 1);
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

/** A valid MQTT topic name (UTF-8 bytes at ptr, no wildcards). */
export function validTopicName(ptr: usize, len: i32): bool {
  if (len <= 0 || len > MAX_TOPIC_BYTES) return false;
  let i = plainPrefix(ptr, len);
  while (i < len) {
    let c = tb(ptr, i);
    if (c < 0x80) {
      if (c == C_NUL || c == C_PLUS || c == C_HASH) return false;
      i++;
    } else {
      let k = utf8SeqLen(ptr, len, i);
      if (k == 0) return false;
      i += k;
    }
  }
  return true;
}

// How many leading bytes validTopicName can skip without looking at them one by
// one: none of them is >= 0x80, U+0000, '+' or '#'. A topic of 16 bytes or more is
// read in 16-byte SIMD blocks, a shorter one (or any, built without SIMD) in 8-byte
// words; the last block or word may overlap the one before. The byte loop takes
// over at the first block with anything to look at, and does all of a topic under 8
// bytes. One step per block instead of one loop iteration per byte. Loads stay
// inside the topic's bytes.
function plainPrefix(ptr: usize, len: i32): i32 {
  if (len < 8) return 0;
  if (ASC_FEATURE_SIMD) {
    if (len >= 16) {
      const nul = i8x16.splat(<i8>C_NUL);
      const plus = i8x16.splat(<i8>C_PLUS);
      const hash = i8x16.splat(<i8>C_HASH);
      let i = 0;
      while (true) {
        const at = i + 16 <= len ? i : len - 16;
        const v = v128.load(ptr + <usize>at);
        // A byte >= 0x80 is negative as i8.
        const bad = v128.or(v128.or(i8x16.lt_s(v, nul), i8x16.eq(v, nul)), v128.or(i8x16.eq(v, plus), i8x16.eq(v, hash)));
        if (v128.any_true(bad)) return at;
        if (at + 16 >= len) return len;
        i = at + 16;
      }
    }
  }
  // 8-byte words (every length without SIMD, asc without `--enable simd`; 8 to 15 with it).
  let i = 0;
  while (true) {
    const at = i + 8 <= len ? i : len - 8;
    if (!plainWord(load<u64>(ptr + <usize>at))) return at;
    if (at + 8 >= len) return len;
    i = at + 8;
  }
  return len; // not reached (keeps AS flow analysis happy)
}

const BYTE_ONES: u64 = 0x0101010101010101;
const BYTE_HIGHS: u64 = 0x8080808080808080;

// The high bit of each byte of v that is zero (and maybe of bytes above a zero
// byte, which is enough to tell whether there is one).
// @ts-ignore: decorator
@inline function zeroBytes(v: u64): u64 {
  return (v - BYTE_ONES) & ~v & BYTE_HIGHS;
}

// No byte of the 8 in w is >= 0x80, U+0000, '+' or '#'.
// @ts-ignore: decorator
@inline function plainWord(w: u64): bool {
  return ((w & BYTE_HIGHS) | zeroBytes(w) | zeroBytes(w ^ (BYTE_ONES * <u64>C_PLUS)) | zeroBytes(w ^ (BYTE_ONES * <u64>C_HASH))) == 0;
}

const UNIT_ONES: u64 = 0x0001000100010001;
const UNIT_HIGHS: u64 = 0x8000800080008000;

// Four topic bytes as four UTF-16 units (each byte zero-extended), to compare with
// four units of a filter in one step.
// @ts-ignore: decorator
@inline function widenBytes(b: u32): u64 {
  const x = <u64>b;
  return (x & 0xff) | ((x & 0xff00) << 8) | ((x & 0xff0000) << 16) | ((x & 0xff000000) << 24);
}

// None of the four filter units is >= 0x80 (its UTF-8 is not that byte), '/' (the
// level ends) or '%' (a template token): four units equal to four topic bytes are
// then four matched characters of a literal level.
// @ts-ignore: decorator
@inline function plainUnits(u: u64): bool {
  const slash = u ^ (UNIT_ONES * <u64>C_SLASH);
  const percent = u ^ (UNIT_ONES * <u64>C_PERCENT);
  return ((u & 0xff80ff80ff80ff80) | ((slash - UNIT_ONES) & ~slash & UNIT_HIGHS) | ((percent - UNIT_ONES) & ~percent & UNIT_HIGHS)) == 0;
}

// Core matcher (filter and topic already validated). Returns NO_MATCH,
// NO_CAPTURE (match, but capture `want` does not exist, or want < 0), or the
// byte range of capture `want` packed as (start << 32) | end.
function matchTopic(filter: string, ptr: usize, len: i32, want: i32): i64 {
  let fn = filter.length;
  let first = fch(filter, 0);
  if (tb(ptr, 0) == C_DOLLAR && (first == C_PLUS || first == C_HASH)) return NO_MATCH;
  let fi = 0;
  let ti = 0;
  let cap = 0;
  let result: i64 = NO_CAPTURE;
  while (true) {
    // At the start of a level in both the filter and the topic.
    let c = fi < fn ? fch(filter, fi) : -1;
    if (c == C_HASH) {
      return cap == want ? (<i64>ti << 32) | <i64>len : result;
    }
    if (c == C_PLUS) {
      let s = ti;
      while (ti < len && tb(ptr, ti) != C_SLASH) ti++;
      if (cap == want) result = (<i64>s << 32) | <i64>ti;
      cap++;
      fi++;
    } else {
      // Literal level: compare UTF-16 filter characters with UTF-8 bytes, four at a
      // time while they are plain ASCII, then one by one.
      while (fi + 4 <= fn && ti + 4 <= len) {
        const units = load<u64>(changetype<usize>(filter) + (<usize>fi << 1));
        if (units != widenBytes(load<u32>(ptr + <usize>ti)) || !plainUnits(units)) break;
        fi += 4;
        ti += 4;
      }
      while (fi < fn) {
        let ch = fch(filter, fi);
        if (ch == C_SLASH) break;
        if (ch == C_PERCENT && templating && fi + 1 < fn) {
          let token = fch(filter, fi + 1);
          if (token == C_u || token == C_c) {
            let sp = token == C_u ? substUser : substId;
            let sl = token == C_u ? substUserLen : substIdLen;
            if (sl < 0 || ti + sl > len) return NO_MATCH;
            for (let k = 0; k < sl; k++) {
              if (tb(ptr, ti + k) != tb(sp, k)) return NO_MATCH;
            }
            ti += sl;
            fi += 2;
            continue;
          }
        }
        if (ch < 0x80) {
          if (ti >= len || tb(ptr, ti) != ch) return NO_MATCH;
          ti++;
          fi++;
        } else if (ch < 0x800) {
          if (ti + 2 > len ||
              tb(ptr, ti) != (0xc0 | (ch >> 6)) ||
              tb(ptr, ti + 1) != (0x80 | (ch & 0x3f))) return NO_MATCH;
          ti += 2;
          fi++;
        } else if (ch >= 0xd800 && ch < 0xdc00) {
          let cp = 0x10000 + ((ch - 0xd800) << 10) + (fch(filter, fi + 1) - 0xdc00);
          if (ti + 4 > len ||
              tb(ptr, ti) != (0xf0 | (cp >> 18)) ||
              tb(ptr, ti + 1) != (0x80 | ((cp >> 12) & 0x3f)) ||
              tb(ptr, ti + 2) != (0x80 | ((cp >> 6) & 0x3f)) ||
              tb(ptr, ti + 3) != (0x80 | (cp & 0x3f))) return NO_MATCH;
          ti += 4;
          fi += 2;
        } else {
          if (ti + 3 > len ||
              tb(ptr, ti) != (0xe0 | (ch >> 12)) ||
              tb(ptr, ti + 1) != (0x80 | ((ch >> 6) & 0x3f)) ||
              tb(ptr, ti + 2) != (0x80 | (ch & 0x3f))) return NO_MATCH;
          ti += 3;
          fi++;
        }
      }
      if (ti < len && tb(ptr, ti) != C_SLASH) return NO_MATCH;
    }
    // Both at '/' or at their end.
    let fEnd = fi >= fn;
    let tEnd = ti >= len;
    if (fEnd) return tEnd ? result : NO_MATCH;
    if (tEnd) {
      // "a/#" matches the parent "a".
      if (fi + 2 == fn && fch(filter, fi + 1) == C_HASH) {
        return cap == want ? (<i64>len << 32) | <i64>len : result;
      }
      return NO_MATCH;
    }
    fi++;
    ti++;
  }
  return NO_MATCH; // not reached (keeps AS flow analysis happy)
}

/** MQTT 3.1.1 §4.7 match of a topic name (UTF-8 bytes) against a filter. */
export function topicMatches(filter: string, ptr: usize, len: i32): bool {
  return validTopicName(ptr, len) && matchesValidName(filter, ptr, len);
}

/** topicMatches for a topic the caller has already found valid (validTopicName). */
export function matchesValidName(filter: string, ptr: usize, len: i32): bool {
  return validTopicFilter(filter) && matchTopic(filter, ptr, len, -1) != NO_MATCH;
}

/**
 * topicMatches for a filter in which "%u" stands for the client's username and
 * "%c" for its client id (UTF-8 bytes at userPtr/idPtr; userLen -1 when the
 * client sent none), as in Mosquitto's ACL patterns. A filter that needs a
 * substitution that is absent, empty, or contains '/', '+', '#' or U+0000
 * matches nothing. Substitutions are taken literally (a username containing
 * "%c" is not expanded again). Allocates nothing.
 */
export function topicMatchesTemplate(filter: string, ptr: usize, len: i32, userPtr: usize, userLen: i32, idPtr: usize, idLen: i32): bool {
  return validTopicName(ptr, len) && templateMatchesValidName(filter, ptr, len, userPtr, userLen, idPtr, idLen);
}

/** topicMatchesTemplate for a topic the caller has already found valid (validTopicName). */
export function templateMatchesValidName(filter: string, ptr: usize, len: i32, userPtr: usize, userLen: i32, idPtr: usize, idLen: i32): bool {
  if (!validTopicFilter(filter)) return false;
  substUser = userPtr;
  substUserLen = substitutionLength(userPtr, userLen);
  substId = idPtr;
  substIdLen = substitutionLength(idPtr, idLen);
  templating = true;
  let r = matchTopic(filter, ptr, len, -1);
  templating = false;
  return r != NO_MATCH;
}

/** Number of levels ('/' count + 1); 0 for the empty topic. */
export function topicLevelCount(ptr: usize, len: i32): i32 {
  if (len <= 0) return 0;
  let n = 1;
  for (let i = 0; i < len; i++) {
    if (tb(ptr, i) == C_SLASH) n++;
  }
  return n;
}

/** The index-th level (decoded), or "" when out of range. Allocates. */
export function topicLevel(ptr: usize, len: i32, index: i32): string {
  if (len <= 0 || index < 0) return "";
  let level = 0;
  let s = 0;
  for (let i = 0; i <= len; i++) {
    if (i == len || tb(ptr, i) == C_SLASH) {
      if (level == index) return String.UTF8.decodeUnsafe(ptr + <usize>s, <usize>(i - s));
      level++;
      s = i + 1;
    }
  }
  return "";
}

/** The index-th wildcard capture of filter on the topic, or null. Allocates. */
export function topicCapture(filter: string, ptr: usize, len: i32, index: i32): string | null {
  return validTopicName(ptr, len) ? captureOfValidName(filter, ptr, len, index) : null;
}

/** topicCapture for a topic the caller has already found valid (validTopicName). */
export function captureOfValidName(filter: string, ptr: usize, len: i32, index: i32): string | null {
  if (index < 0 || !validTopicFilter(filter)) return null;
  let r = matchTopic(filter, ptr, len, index);
  if (r < 0) return null;
  let s = <i32>(r >> 32);
  let e = <i32>(r & 0xffffffff);
  return String.UTF8.decodeUnsafe(ptr + <usize>s, <usize>(e - s));
}

/**
 * Is every topic that `sub` (a subscription filter) can match also matched by
 * `filter`? What an ACL asks of a SUBSCRIBE: "sensors/#" covers "sensors/+/temp",
 * "sensors/+/temp" does not cover "sensors/#". Allocates (control path).
 */
export function filterCovers(filter: string, sub: string): bool {
  // `sub` is checked without being remembered: usually made per call, it would push the configured filters out.
  if (!validTopicFilter(filter) || !checkTopicFilter(sub)) return false;
  const f = filter.split("/");
  const s = sub.split("/");
  for (let i = 0; i < f.length; i++) {
    const fl = unchecked(f[i]);
    if (fl == "#") return !(i == 0 && unchecked(s[0]).startsWith("$"));
    if (i >= s.length) return false;
    const sl = unchecked(s[i]);
    if (sl == "#") return false;
    if (fl == "+") {
      if (i == 0 && sl.startsWith("$")) return false;
      continue;
    }
    if (sl == "+" || fl != sl) return false;
  }
  return f.length == s.length;
}
