/*
 * wasmq.h — the wasmq plugin SDK for C, in one header (ABI v1; see host/ABI.md).
 *
 * Build a plugin with Debian's clang and lld, no libc:
 *   clang --target=wasm32 -O2 -nostdlib -ffreestanding -fno-builtin \
 *         -Wl,--no-entry -Wl,--import-memory -Wl,--strip-all -o plugin.wasm plugin.c
 *
 * Include this header in exactly one .c file of the plugin: it defines the ABI
 * exports every plugin needs (wasmq_abi_version, wasmq_reserve), a bump
 * allocator, memcpy/memset (the compiler may call them), the host imports, and
 * helpers that mirror the AssemblyScript SDK (plugins-as/sdk): message fields
 * read in place, MQTT topic matching, and a small JSON reader for the config.
 * Export hooks with WASMQ_EXPORT("onPublish") etc.; they take the record's
 * address and return a verdict (WASMQ_CONTINUE, WASMQ_DROP, wasmq_deny(code)).
 */
#ifndef WASMQ_H
#define WASMQ_H

typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef int i32;
typedef unsigned long size_t;

#define WASMQ_ABI_VERSION 1
#define WASMQ_EXPORT(name) __attribute__((export_name(name)))
#define WASMQ_IMPORT(name) __attribute__((import_module("wasmq"), import_name(name)))

/* Verdicts (low byte of a hook's return value); deny carries a CONNACK code in bits 8..15. */
enum { WASMQ_CONTINUE = 0, WASMQ_DROP = 1, WASMQ_DENY = 2 };
enum { WASMQ_RC_NOT_AUTHORIZED = 5, WASMQ_RC_BAD_USERNAME_OR_PASSWORD = 4, WASMQ_RC_SERVER_UNAVAILABLE = 3 };
static inline i32 wasmq_deny(i32 code) { return WASMQ_DENY | ((code & 0xff) << 8); }
enum { WASMQ_LOG_TRACE = 0, WASMQ_LOG_DEBUG, WASMQ_LOG_INFO, WASMQ_LOG_WARN, WASMQ_LOG_ERROR };

/* Host imports, module "wasmq" (host/ABI.md lists each with its limits and fuel). */
WASMQ_IMPORT("log") void wasmq_log_(i32 level, const void *ptr, i32 len);
WASMQ_IMPORT("now_ms") double wasmq_now_ms(void);
WASMQ_IMPORT("publish") i32 wasmq_publish(const void *topic, i32 topic_len, const void *payload, i32 payload_len, i32 qos, i32 retain);
WASMQ_IMPORT("set_topic") void wasmq_set_topic(const void *ptr, i32 len);
WASMQ_IMPORT("set_payload") void wasmq_set_payload(const void *ptr, i32 len);
WASMQ_IMPORT("set_qos") void wasmq_set_qos(i32 qos);
WASMQ_IMPORT("set_retain") void wasmq_set_retain(i32 retain);
WASMQ_IMPORT("set_ttl") void wasmq_set_ttl(i32 seconds);
WASMQ_IMPORT("kv_get") i32 wasmq_kv_get(const void *key, i32 key_len, void *out, i32 out_cap);
WASMQ_IMPORT("kv_put") i32 wasmq_kv_put(const void *key, i32 key_len, const void *val, i32 val_len);
WASMQ_IMPORT("kv_delete") i32 wasmq_kv_delete(const void *key, i32 key_len);

/* ---- memory ---------------------------------------------------------------- */

void *memcpy(void *dst, const void *src, size_t n) {
  u8 *d = dst;
  const u8 *s = src;
  while (n--) *d++ = *s++;
  return dst;
}
void *memset(void *dst, int c, size_t n) {
  u8 *d = dst;
  while (n--) *d++ = (u8)c;
  return dst;
}

extern u8 __heap_base;
static u32 wasmq_heap_top = 0;

/* Bump allocation, 8-byte aligned, growing memory as needed; 0 when the memory cap is reached. Never freed. */
static void *wasmq_alloc(u32 size) {
  if (!wasmq_heap_top) wasmq_heap_top = (u32)&__heap_base;
  u32 at = (wasmq_heap_top + 7) & ~7u;
  u32 end = at + size;
  u32 have = __builtin_wasm_memory_size(0) * 65536u;
  if (end > have && __builtin_wasm_memory_grow(0, (end - have + 65535) / 65536) == (size_t)-1) return 0;
  wasmq_heap_top = end;
  return (void *)at;
}

/* Scratch allocations for one call: take a mark, allocate, then release everything since the mark. */
static inline u32 wasmq_alloc_mark(void) { return wasmq_heap_top; }
static inline void wasmq_alloc_release(u32 mark) { wasmq_heap_top = mark; }

static u32 wasmq_input = 0, wasmq_input_cap = 0;

WASMQ_EXPORT("wasmq_abi_version") i32 wasmq_abi_version(void) { return WASMQ_ABI_VERSION; }

/* The region the host writes each record into; asked again only when a record does not fit. */
WASMQ_EXPORT("wasmq_reserve") u32 wasmq_reserve(i32 size) {
  if ((u32)size > wasmq_input_cap) {
    wasmq_input = (u32)wasmq_alloc((u32)size);
    if (!wasmq_input) __builtin_trap();
    wasmq_input_cap = (u32)size;
  }
  return wasmq_input;
}

static inline void wasmq_log(i32 level, const char *text) {
  i32 n = 0;
  while (text[n]) n++;
  wasmq_log_(level, text, n);
}

/* ---- the message record (32-byte header, then the byte fields in BODY_ORDER) ---- */

typedef struct {
  const u8 *client_id; u32 client_id_len;
  const u8 *username; u32 username_len;
  const u8 *password; u32 password_len;
  const u8 *peer; u32 peer_len;
  const u8 *topic; u32 topic_len;
  const u8 *payload; u32 payload_len;
  u8 qos, retain, dup, flags;
  u8 has_username, has_password;
} wasmq_message;

static inline u32 wasmq_u32(const u8 *p) { return (u32)p[0] | ((u32)p[1] << 8) | ((u32)p[2] << 16) | ((u32)p[3] << 24); }

static inline void wasmq_read(u32 record, wasmq_message *m) {
  const u8 *h = (const u8 *)record;
  const u8 *p = h + 32;
  m->topic_len = wasmq_u32(h + 0);
  m->payload_len = wasmq_u32(h + 4);
  m->client_id_len = wasmq_u32(h + 8);
  m->username_len = wasmq_u32(h + 12);
  m->password_len = wasmq_u32(h + 16);
  m->peer_len = wasmq_u32(h + 20);
  m->qos = h[24]; m->retain = h[25]; m->dup = h[26]; m->flags = h[27];
  m->has_username = (h[28] & 1) != 0;
  m->has_password = (h[28] & 2) != 0;
  m->client_id = p; p += m->client_id_len;
  m->username = p; p += m->username_len;
  m->password = p; p += m->password_len;
  m->peer = p; p += m->peer_len;
  m->topic = p; p += m->topic_len;
  m->payload = p;
}

static inline int wasmq_bytes_equal(const u8 *a, u32 an, const u8 *b, u32 bn) {
  if (an != bn) return 0;
  for (u32 i = 0; i < an; i++) if (a[i] != b[i]) return 0;
  return 1;
}

/* ---- MQTT topics (MQTT 3.1.1 §4.7; same semantics as plugins-as/sdk/topic.ts) ---- */

#define WASMQ_MAX_TOPIC 65535u

/* Length of the well-formed UTF-8 sequence at i (lead byte >= 0x80), or 0. */
static u32 wasmq_utf8_len(const u8 *s, u32 n, u32 i) {
  u8 c = s[i];
  if (c < 0xc2) return 0;
  if (c < 0xe0) return i + 1 < n && (s[i + 1] & 0xc0) == 0x80 ? 2 : 0;
  if (c < 0xf0) {
    if (i + 2 >= n) return 0;
    u8 lo = c == 0xe0 ? 0xa0 : 0x80, hi = c == 0xed ? 0x9f : 0xbf;
    if (s[i + 1] < lo || s[i + 1] > hi) return 0;
    return (s[i + 2] & 0xc0) == 0x80 ? 3 : 0;
  }
  if (c < 0xf5) {
    if (i + 3 >= n) return 0;
    u8 lo = c == 0xf0 ? 0x90 : 0x80, hi = c == 0xf4 ? 0x8f : 0xbf;
    if (s[i + 1] < lo || s[i + 1] > hi || (s[i + 2] & 0xc0) != 0x80) return 0;
    return (s[i + 3] & 0xc0) == 0x80 ? 4 : 0;
  }
  return 0;
}

/* Non-empty, at most 65535 bytes, well-formed UTF-8 without U+0000; wildcards only when `filter`. */
static int wasmq_valid_topic(const u8 *s, u32 n, int filter) {
  if (n == 0 || n > WASMQ_MAX_TOPIC) return 0;
  u32 level = 0;
  for (u32 i = 0; i < n;) {
    u8 c = s[i];
    if (c >= 0x80) {
      u32 k = wasmq_utf8_len(s, n, i);
      if (!k) return 0;
      i += k;
      continue;
    }
    if (c == 0) return 0;
    if (c == '+' || c == '#') {
      if (!filter || i != level) return 0;
      if (c == '+' && i + 1 < n && s[i + 1] != '/') return 0;
      if (c == '#' && i + 1 != n) return 0;
    }
    if (c == '/') level = i + 1;
    i++;
  }
  return 1;
}
static inline int wasmq_valid_topic_name(const u8 *s, u32 n) { return wasmq_valid_topic(s, n, 0); }
static inline int wasmq_valid_topic_filter(const u8 *s, u32 n) { return wasmq_valid_topic(s, n, 1); }

/* A "%u"/"%c" substitution: non-empty, without '/', '+', '#' or NUL; -1 when unusable. */
static i32 wasmq_substitution_len(const u8 *s, i32 n) {
  if (n <= 0) return -1;
  for (i32 i = 0; i < n; i++) if (s[i] == '/' || s[i] == '+' || s[i] == '#' || s[i] == 0) return -1;
  return n;
}

/*
 * Does topic name `t` match filter `f`? With `templated`, "%u" / "%c" in the
 * filter stand for user / id (length -1: absent or unusable, so no match).
 */
static int wasmq_match(const u8 *f, u32 fn, const u8 *t, u32 tn, int templated, const u8 *user, i32 user_len, const u8 *id, i32 id_len) {
  if (!wasmq_valid_topic_filter(f, fn) || !wasmq_valid_topic_name(t, tn)) return 0;
  if (t[0] == '$' && (f[0] == '+' || f[0] == '#')) return 0;
  u32 fi = 0, ti = 0;
  for (;;) {
    if (fi < fn && f[fi] == '#') return 1;
    if (fi < fn && f[fi] == '+') {
      while (ti < tn && t[ti] != '/') ti++;
      fi++;
    } else {
      while (fi < fn && f[fi] != '/') {
        if (templated && f[fi] == '%' && fi + 1 < fn && (f[fi + 1] == 'u' || f[fi + 1] == 'c')) {
          const u8 *sp = f[fi + 1] == 'u' ? user : id;
          i32 sl = f[fi + 1] == 'u' ? user_len : id_len;
          if (sl < 0 || ti + (u32)sl > tn) return 0;
          for (i32 k = 0; k < sl; k++) if (t[ti + k] != sp[k]) return 0;
          ti += (u32)sl;
          fi += 2;
          continue;
        }
        if (ti >= tn || t[ti] != f[fi]) return 0;
        ti++;
        fi++;
      }
      if (ti < tn && t[ti] != '/') return 0;
    }
    int f_end = fi >= fn, t_end = ti >= tn;
    if (f_end) return t_end;
    if (t_end) return fi + 2 == fn && f[fi + 1] == '#'; /* "a/#" matches the parent "a" */
    fi++;
    ti++;
  }
}
static inline int wasmq_topic_matches(const u8 *f, u32 fn, const u8 *t, u32 tn) { return wasmq_match(f, fn, t, tn, 0, 0, -1, 0, -1); }

/* Is every topic subscription filter `s` can match also matched by filter `f`? (the SDK's filterCovers) */
static int wasmq_filter_covers(const u8 *f, u32 fn, const u8 *s, u32 sn) {
  if (!wasmq_valid_topic_filter(f, fn) || !wasmq_valid_topic_filter(s, sn)) return 0;
  u32 fi = 0, si = 0, level = 0;
  for (;;) {
    u32 fe = fi, se = si;
    while (fe < fn && f[fe] != '/') fe++;
    int f_hash = fe - fi == 1 && f[fi] == '#';
    if (f_hash) return !(level == 0 && sn > 0 && s[0] == '$');
    if (si > sn) return 0; /* the subscription has fewer levels */
    while (se < sn && s[se] != '/') se++;
    int s_hash = se - si == 1 && s[si] == '#';
    int s_plus = se - si == 1 && s[si] == '+';
    if (s_hash) return 0;
    if (fe - fi == 1 && f[fi] == '+') {
      if (level == 0 && se > si && s[si] == '$') return 0;
    } else if (s_plus || !wasmq_bytes_equal(f + fi, fe - fi, s + si, se - si)) {
      return 0;
    }
    int f_more = fe < fn, s_more = se < sn;
    if (!f_more) return !s_more;
    fi = fe + 1;
    si = s_more ? se + 1 : sn + 1;
    level++;
  }
}

/* ---- a small JSON reader, enough for a plugin's config ---------------------- */

typedef struct { const u8 *p, *end; int err; } wasmq_json;

static inline void wasmq_json_ws(wasmq_json *j) {
  while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r')) j->p++;
}
/* The next non-space byte (0 at the end). */
static inline u8 wasmq_json_peek(wasmq_json *j) {
  wasmq_json_ws(j);
  return j->p < j->end ? *j->p : 0;
}
static inline int wasmq_json_eat(wasmq_json *j, u8 c) {
  if (wasmq_json_peek(j) != c) return 0;
  j->p++;
  return 1;
}
static u32 wasmq_hex4(wasmq_json *j) {
  u32 v = 0;
  for (int i = 0; i < 4; i++) {
    if (j->p >= j->end) { j->err = 1; return 0; }
    u8 c = *j->p++;
    v <<= 4;
    if (c >= '0' && c <= '9') v |= c - '0';
    else if (c >= 'a' && c <= 'f') v |= c - 'a' + 10;
    else if (c >= 'A' && c <= 'F') v |= c - 'A' + 10;
    else { j->err = 1; return 0; }
  }
  return v;
}
/*
 * Read a JSON string into fresh memory as UTF-8 (escapes decoded; a lone
 * surrogate becomes U+FFFD, as JavaScript's encoder writes it). Sets *len.
 */
static u8 *wasmq_json_string(wasmq_json *j, u32 *len) {
  if (!wasmq_json_eat(j, '"')) { j->err = 1; return 0; }
  u8 *out = wasmq_alloc((u32)(j->end - j->p) * 3 / 2 + 4), *o = out;
  if (!out) { j->err = 1; return 0; }
  while (j->p < j->end && *j->p != '"') {
    u8 c = *j->p++;
    if (c != '\\') { *o++ = c; continue; }
    if (j->p >= j->end) break;
    c = *j->p++;
    u32 cp;
    switch (c) {
      case 'b': *o++ = 8; continue;
      case 'f': *o++ = 12; continue;
      case 'n': *o++ = 10; continue;
      case 'r': *o++ = 13; continue;
      case 't': *o++ = 9; continue;
      case 'u':
        cp = wasmq_hex4(j);
        if (cp >= 0xd800 && cp < 0xdc00 && j->p + 6 <= j->end && j->p[0] == '\\' && j->p[1] == 'u') {
          const u8 *save = j->p;
          j->p += 2;
          u32 lo = wasmq_hex4(j);
          if (lo >= 0xdc00 && lo < 0xe000) cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
          else j->p = save;
        }
        if (cp >= 0xd800 && cp < 0xe000) cp = 0xfffd;
        if (cp < 0x80) *o++ = (u8)cp;
        else if (cp < 0x800) { *o++ = 0xc0 | (cp >> 6); *o++ = 0x80 | (cp & 0x3f); }
        else if (cp < 0x10000) { *o++ = 0xe0 | (cp >> 12); *o++ = 0x80 | ((cp >> 6) & 0x3f); *o++ = 0x80 | (cp & 0x3f); }
        else { *o++ = 0xf0 | (cp >> 18); *o++ = 0x80 | ((cp >> 12) & 0x3f); *o++ = 0x80 | ((cp >> 6) & 0x3f); *o++ = 0x80 | (cp & 0x3f); }
        continue;
      default: *o++ = c; /* \" \\ \/ */
    }
  }
  if (!wasmq_json_eat(j, '"')) j->err = 1;
  *len = (u32)(o - out);
  return out;
}
/* Skip any value. */
static void wasmq_json_skip(wasmq_json *j) {
  u8 c = wasmq_json_peek(j);
  if (c == '"') { u32 n; wasmq_json_string(j, &n); return; }
  if (c == '{' || c == '[') {
    u8 close = c == '{' ? '}' : ']';
    j->p++;
    if (wasmq_json_eat(j, close)) return;
    do {
      if (close == '}') { u32 n; wasmq_json_string(j, &n); if (!wasmq_json_eat(j, ':')) { j->err = 1; return; } }
      wasmq_json_skip(j);
    } while (!j->err && wasmq_json_eat(j, ','));
    if (!wasmq_json_eat(j, close)) j->err = 1;
    return;
  }
  if (!c) { j->err = 1; return; }
  while (j->p < j->end && *j->p != ',' && *j->p != '}' && *j->p != ']' && *j->p != ' ' && *j->p != '\n' && *j->p != '\r' && *j->p != '\t') j->p++;
}
static inline int wasmq_key_is(const u8 *k, u32 n, const char *want) {
  u32 i = 0;
  for (; want[i]; i++) if (i >= n || k[i] != (u8)want[i]) return 0;
  return i == n;
}

#endif
