// wasmq plugin SDK — filter-covers-filter checks without allocating (AssemblyScript).
//
// What an ACL asks of a SUBSCRIBE: is every topic the subscription filter can
// match also matched by the rule's filter? The subscription filter is compared
// as the UTF-8 bytes the host wrote (no decoding, no split into level strings),
// the rule filter as an AssemblyScript string encoded on the fly — so a check
// costs no allocation and no GC step (issue #17, fuel3: the split-based
// version was most of acl subscribe's work). Same answers as filterCovers in
// topic.ts; the native twin is host/native/topic-cover.ts.

import { validTopicFilter } from "./topic";
import { C_DOLLAR, C_HASH, C_NUL, C_PERCENT, C_PLUS, C_SLASH, C_c, C_u, MAX_TOPIC_BYTES, fch, substitutionLength, tb, utf8SeqLen } from "./topic-bytes";

/** A valid MQTT topic filter given as UTF-8 bytes (validTopicFilter's rules). */
export function validTopicFilterBytes(ptr: usize, len: i32): bool {
  if (len <= 0 || len > MAX_TOPIC_BYTES) return false;
  let levelStart = 0;
  let i = 0;
  while (i < len) {
    let c = tb(ptr, i);
    if (c < 0x80) {
      if (c == C_NUL) return false;
      if (c == C_SLASH) {
        levelStart = i + 1;
      } else if (c == C_PLUS) {
        if (i != levelStart || (i + 1 < len && tb(ptr, i + 1) != C_SLASH)) return false;
      } else if (c == C_HASH) {
        if (i != levelStart || i + 1 != len) return false;
      }
      i++;
    } else {
      let k = utf8SeqLen(ptr, len, i);
      if (k == 0) return false;
      i += k;
    }
  }
  return true;
}

// "%u"/"%c" substitutions while a template is compared (len -1: unusable).
let templating = false;
let substUser: usize = 0;
let substUserLen: i32 = -1;
let substId: usize = 0;
let substIdLen: i32 = -1;

// The substitutions' usable lengths are worked out on first use (NOT_YET before):
// a rule with only "%c" never scans the username.
const NOT_YET: i32 = -2;
let substUserRaw: i32 = -1;
let substIdRaw: i32 = -1;

function substLen(user: bool): i32 {
  if (user) {
    if (substUserLen == NOT_YET) substUserLen = substitutionLength(substUser, substUserRaw);
    return substUserLen;
  }
  if (substIdLen == NOT_YET) substIdLen = substitutionLength(substId, substIdRaw);
  return substIdLen;
}

// UTF-8 length of the filter with its substitutions made; -1 when one is
// needed and unusable. (The expanded filter must itself be a valid filter.)
function expandedLength(filter: string): i32 {
  let n = filter.length;
  let bytes = 0;
  for (let i = 0; i < n; i++) {
    let c = fch(filter, i);
    if (c == C_PERCENT && templating && i + 1 < n) {
      let token = fch(filter, i + 1);
      if (token == C_u || token == C_c) {
        let sl = substLen(token == C_u);
        if (sl < 0) return -1;
        bytes += sl;
        i++;
        continue;
      }
    }
    if (c < 0x80) bytes += 1;
    else if (c < 0x800) bytes += 2;
    else if (c >= 0xd800 && c < 0xdc00) { bytes += 4; i++; }
    else bytes += 3;
  }
  return bytes;
}

// Compares the literal filter level starting at fi with the bytes at ti
// (substituting "%u"/"%c" when templating). Returns the packed positions after
// it, (fi << 32) | ti, or -1 on a mismatch. Stops at '/' or the filter's end.
function literalLevel(filter: string, fi: i32, ptr: usize, len: i32, ti: i32): i64 {
  let fn = filter.length;
  while (fi < fn) {
    let ch = fch(filter, fi);
    if (ch == C_SLASH) break;
    if (ch == C_PERCENT && templating && fi + 1 < fn) {
      let token = fch(filter, fi + 1);
      if (token == C_u || token == C_c) {
        let sp = token == C_u ? substUser : substId;
        let sl = substLen(token == C_u);
        if (sl < 0 || ti + sl > len) return -1;
        for (let k = 0; k < sl; k++) {
          if (tb(ptr, ti + k) != tb(sp, k)) return -1;
        }
        ti += sl;
        fi += 2;
        continue;
      }
    }
    if (ch < 0x80) {
      if (ti >= len || tb(ptr, ti) != ch) return -1;
      ti++;
      fi++;
    } else if (ch < 0x800) {
      if (ti + 2 > len ||
          tb(ptr, ti) != (0xc0 | (ch >> 6)) ||
          tb(ptr, ti + 1) != (0x80 | (ch & 0x3f))) return -1;
      ti += 2;
      fi++;
    } else if (ch >= 0xd800 && ch < 0xdc00) {
      let cp = 0x10000 + ((ch - 0xd800) << 10) + (fch(filter, fi + 1) - 0xdc00);
      if (ti + 4 > len ||
          tb(ptr, ti) != (0xf0 | (cp >> 18)) ||
          tb(ptr, ti + 1) != (0x80 | ((cp >> 12) & 0x3f)) ||
          tb(ptr, ti + 2) != (0x80 | ((cp >> 6) & 0x3f)) ||
          tb(ptr, ti + 3) != (0x80 | (cp & 0x3f))) return -1;
      ti += 4;
      fi += 2;
    } else {
      if (ti + 3 > len ||
          tb(ptr, ti) != (0xe0 | (ch >> 12)) ||
          tb(ptr, ti + 1) != (0x80 | ((ch >> 6) & 0x3f)) ||
          tb(ptr, ti + 2) != (0x80 | (ch & 0x3f))) return -1;
      ti += 3;
      fi++;
    }
  }
  // The sub's level must end here too.
  if (ti < len && tb(ptr, ti) != C_SLASH) return -1;
  return (<i64>fi << 32) | <i64>ti;
}

// Level by level (both validated): '#' covers the rest (also the parent level,
// "a/#" covers "a"), '+' covers one level but not '#', a literal level covers
// only itself (so not '+' or '#'); a first-level wildcard does not cover topics
// beginning with '$' [MQTT-4.7.2-1].
function covers(filter: string, ptr: usize, len: i32): bool {
  let fn = filter.length;
  let fi = 0;
  let ti = 0;
  while (true) {
    // At the start of a level in the filter; ti at the start of the sub's level or at its end.
    let c = fi < fn ? fch(filter, fi) : -1;
    if (c == C_HASH) return !(fi == 0 && tb(ptr, 0) == C_DOLLAR);
    if (ti > len) return false; // the sub has fewer levels
    if (c == C_PLUS) {
      if (ti < len && tb(ptr, ti) == C_HASH) return false;
      if (fi == 0 && ti < len && tb(ptr, ti) == C_DOLLAR) return false;
      while (ti < len && tb(ptr, ti) != C_SLASH) ti++;
      fi++;
    } else {
      let r = literalLevel(filter, fi, ptr, len, ti);
      if (r < 0) return false;
      fi = <i32>(r >> 32);
      ti = <i32>(r & 0xffffffff);
    }
    // Both at '/' or at their end.
    if (fi >= fn) return ti >= len;
    fi++; // past the filter's '/'
    ti++; // past the sub's '/', or one past its end when it has no more levels
  }
  return false; // not reached (keeps AS flow analysis happy)
}

/**
 * filterCovers (topic.ts) for a subscription filter given as UTF-8 bytes:
 * is every topic it can match also matched by `filter`? Allocates nothing.
 */
export function filterCoversBytes(filter: string, ptr: usize, len: i32): bool {
  if (!validTopicFilter(filter)) return false;
  // covers() stays within the subscription's bytes whatever they hold, so the
  // subscription is validated only when it would be covered (the usual
  // refusal, a first level that differs, skips that pass): same answer.
  return covers(filter, ptr, len) && validTopicFilterBytes(ptr, len);
}

/**
 * filterCoversBytes for a rule filter in which "%u" stands for the client's
 * username and "%c" for its client id (UTF-8 bytes; userLen -1 when the client
 * sent none), as topicMatchesTemplate does for topics: a rule that needs a
 * substitution that is absent, empty, or contains '/', '+', '#' or U+0000
 * covers nothing; substitutions are taken literally. Allocates nothing.
 */
export function filterCoversTemplate(filter: string, ptr: usize, len: i32, userPtr: usize, userLen: i32, idPtr: usize, idLen: i32): bool {
  if (!validTopicFilter(filter)) return false;
  substUser = userPtr;
  substUserRaw = userLen;
  substUserLen = NOT_YET;
  substId = idPtr;
  substIdRaw = idLen;
  substIdLen = NOT_YET;
  templating = true;
  // As filterCoversBytes: the subscription (and the expanded rule's length, the
  // one way an expansion of a valid rule can be invalid) checked only when covered.
  let r = covers(filter, ptr, len);
  if (r) {
    let expanded = expandedLength(filter);
    r = expanded >= 0 && expanded <= MAX_TOPIC_BYTES && validTopicFilterBytes(ptr, len);
  }
  templating = false;
  return r;
}
