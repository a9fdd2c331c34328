/*
 * acl, in C: the same topic access control as plugins-as/acl/plugin.ts (and its
 * native twin), on the same config — rules with topic, access, username and
 * clientId ("%u"/"%c" templates included), "default" and "onDeniedPublish".
 * The differential test (test/plugin-c-rust.test.ts) runs it, the AssemblyScript
 * build and the native twin on the same generated messages.
 */
#include "wasmq.h"

enum { READ = 1, WRITE = 2, DENY = 4 };

typedef struct {
  u8 *username; u32 username_len; int any_user;
  u8 *client_id; u32 client_id_len; int any_client;
  u8 *topic; u32 topic_len;
  i32 access;
  int templated;
} rule;

static rule *rules = 0;
static u32 rule_count = 0;
static int default_allow = 0;
static int disconnect_on_denied_publish = 0;
static int has_deny_rules = 0;

static void refuse(const char *a, const char *b) {
  /* Log "a" + "b" as one line. */
  static u8 line[256];
  u32 n = 0;
  for (; *a && n < 255; a++) line[n++] = (u8)*a;
  for (; b && *b && n < 255; b++) line[n++] = (u8)*b;
  wasmq_log_(WASMQ_LOG_ERROR, line, (i32)n);
}

static i32 parse_access(const u8 *s, u32 n) {
  if (wasmq_key_is(s, n, "read")) return READ;
  if (wasmq_key_is(s, n, "write")) return WRITE;
  if (wasmq_key_is(s, n, "readwrite")) return READ | WRITE;
  if (wasmq_key_is(s, n, "deny")) return DENY;
  return 0;
}

static int contains_template(const u8 *t, u32 n) {
  for (u32 i = 0; i + 1 < n; i++) if (t[i] == '%' && (t[i + 1] == 'u' || t[i + 1] == 'c')) return 1;
  return 0;
}

/* A string value, or the fallback when the value is not a string (the SDK's config.string). */
static u8 *string_or(wasmq_json *j, u32 *len, const char *fallback) {
  if (wasmq_json_peek(j) == '"') return wasmq_json_string(j, len);
  wasmq_json_skip(j);
  u32 n = 0;
  while (fallback[n]) n++;
  *len = n;
  return (u8 *)fallback;
}

static int parse_rule(wasmq_json *j, rule *r) {
  u8 *access = (u8 *)"readwrite";
  u32 access_len = 9;
  r->topic = (u8 *)"";
  r->topic_len = 0;
  r->any_user = r->any_client = 1;
  if (!wasmq_json_eat(j, '{')) { wasmq_json_skip(j); return 1; }
  if (!wasmq_json_eat(j, '}')) {
    do {
      u32 kn;
      u8 *k = wasmq_json_string(j, &kn);
      if (!wasmq_json_eat(j, ':')) { j->err = 1; return 0; }
      if (wasmq_key_is(k, kn, "topic")) r->topic = string_or(j, &r->topic_len, "");
      else if (wasmq_key_is(k, kn, "access")) access = string_or(j, &access_len, "readwrite");
      else if (wasmq_key_is(k, kn, "username")) {
        r->username = string_or(j, &r->username_len, "*");
        r->any_user = wasmq_key_is(r->username, r->username_len, "*");
      } else if (wasmq_key_is(k, kn, "clientId")) {
        r->client_id = string_or(j, &r->client_id_len, "*");
        r->any_client = wasmq_key_is(r->client_id, r->client_id_len, "*");
      } else wasmq_json_skip(j);
    } while (!j->err && wasmq_json_eat(j, ','));
    if (!wasmq_json_eat(j, '}')) j->err = 1;
  }
  r->access = parse_access(access, access_len);
  if (!r->access) { refuse("a rule's access must be read, write, readwrite or deny", 0); return 0; }
  if (!wasmq_valid_topic_filter(r->topic, r->topic_len)) { refuse("a rule's topic must be an MQTT topic filter", 0); return 0; }
  if (r->access == DENY) has_deny_rules = 1;
  r->templated = contains_template(r->topic, r->topic_len);
  return 1;
}

/* init: the config JSON is the record's payload. Non-zero = accepted. */
WASMQ_EXPORT("init") i32 init(u32 record) {
  wasmq_message m;
  wasmq_read(record, &m);
  wasmq_json j = { m.payload, m.payload + m.payload_len, 0 };
  rules = 0;
  rule_count = 0;
  has_deny_rules = 0;
  default_allow = 0;
  disconnect_on_denied_publish = 0;
  if (!wasmq_json_eat(&j, '{')) { refuse("config must be a JSON object", 0); return 0; }
  if (!wasmq_json_eat(&j, '}')) {
    do {
      u32 kn;
      u8 *k = wasmq_json_string(&j, &kn);
      if (!wasmq_json_eat(&j, ':')) j.err = 1;
      if (j.err) break;
      if (wasmq_key_is(k, kn, "rules")) {
        if (!wasmq_json_eat(&j, '[')) { refuse("config.rules must be an array", 0); return 0; }
        /* Count first, then parse into one allocation. */
        wasmq_json probe = j;
        u32 n = 0;
        if (!wasmq_json_eat(&probe, ']')) {
          do { wasmq_json_skip(&probe); n++; } while (!probe.err && wasmq_json_eat(&probe, ','));
        }
        rules = wasmq_alloc(n * sizeof(rule) + 1);
        if (!rules) return 0;
        if (!wasmq_json_eat(&j, ']')) {
          do {
            rule *r = &rules[rule_count];
            *r = (rule){0};
            if (!parse_rule(&j, r)) return 0;
            rule_count++;
          } while (!j.err && wasmq_json_eat(&j, ','));
          if (!wasmq_json_eat(&j, ']')) j.err = 1;
        }
      } else if (wasmq_key_is(k, kn, "default")) {
        u32 n;
        u8 *v = string_or(&j, &n, "deny");
        if (!wasmq_key_is(v, n, "allow") && !wasmq_key_is(v, n, "deny")) { refuse("config.default must be allow or deny", 0); return 0; }
        default_allow = wasmq_key_is(v, n, "allow");
      } else if (wasmq_key_is(k, kn, "onDeniedPublish")) {
        u32 n;
        u8 *v = string_or(&j, &n, "drop");
        if (!wasmq_key_is(v, n, "drop") && !wasmq_key_is(v, n, "disconnect")) { refuse("config.onDeniedPublish must be drop or disconnect", 0); return 0; }
        disconnect_on_denied_publish = wasmq_key_is(v, n, "disconnect");
      } else {
        wasmq_json_skip(&j);
      }
    } while (!j.err && wasmq_json_eat(&j, ','));
    if (!j.err && !wasmq_json_eat(&j, '}')) j.err = 1;
  }
  if (j.err) { refuse("config is not valid JSON", 0); return 0; }
  return 1;
}

static int unsafe_for_pattern(const u8 *s, u32 n) {
  for (u32 i = 0; i < n; i++) if (s[i] == '/' || s[i] == '+' || s[i] == '#') return 1;
  return 0;
}

/* The rule's filter with %u/%c replaced (for SUBSCRIBE); 0 when a substitution is needed and unusable. */
static u8 *expand(const rule *r, const wasmq_message *m, u32 *len) {
  const u8 *t = r->topic;
  u32 n = r->topic_len, cap = n;
  for (u32 i = 0; i + 1 < n; i++) if (t[i] == '%') cap += m->username_len + m->client_id_len;
  u8 *out = wasmq_alloc(cap + 1), *o = out;
  if (!out) return 0;
  u32 from = 0;
  for (u32 i = 0; i + 1 < n; i++) {
    if (t[i] != '%' || (t[i + 1] != 'u' && t[i + 1] != 'c')) continue;
    int user = t[i + 1] == 'u';
    if (user && !m->has_username) return 0;
    const u8 *sub = user ? m->username : m->client_id;
    u32 sl = user ? m->username_len : m->client_id_len;
    if (sl == 0 || unsafe_for_pattern(sub, sl)) return 0;
    memcpy(o, t + from, i - from); o += i - from;
    memcpy(o, sub, sl); o += sl;
    i++;
    from = i + 1;
  }
  memcpy(o, t + from, n - from); o += n - from;
  *len = (u32)(o - out);
  return out;
}

static int allowed(const wasmq_message *m, i32 need, int subscribing) {
  int granted = 0;
  u32 mark = wasmq_alloc_mark();
  for (u32 i = 0; i < rule_count; i++) {
    const rule *r = &rules[i];
    if (!r->any_user && !(m->has_username && wasmq_bytes_equal(m->username, m->username_len, r->username, r->username_len))) continue;
    if (!r->any_client && !wasmq_bytes_equal(m->client_id, m->client_id_len, r->client_id, r->client_id_len)) continue;
    int matched;
    if (r->templated) {
      if (subscribing) {
        u32 fl;
        u8 *f = expand(r, m, &fl);
        matched = f && wasmq_filter_covers(f, fl, m->topic, m->topic_len);
      } else {
        i32 ul = m->has_username ? wasmq_substitution_len(m->username, (i32)m->username_len) : -1;
        i32 il = wasmq_substitution_len(m->client_id, (i32)m->client_id_len);
        matched = wasmq_match(r->topic, r->topic_len, m->topic, m->topic_len, 1, m->username, ul, m->client_id, il);
      }
    } else {
      matched = subscribing ? wasmq_filter_covers(r->topic, r->topic_len, m->topic, m->topic_len) : wasmq_topic_matches(r->topic, r->topic_len, m->topic, m->topic_len);
    }
    if (!matched) continue;
    if (r->access & DENY) { wasmq_alloc_release(mark); return 0; }
    if (r->access & need) granted = 1;
  }
  wasmq_alloc_release(mark);
  return granted || default_allow;
}

WASMQ_EXPORT("onSubscribe") i32 on_subscribe(u32 record) {
  wasmq_message m;
  wasmq_read(record, &m);
  return allowed(&m, READ, 1) ? WASMQ_CONTINUE : WASMQ_DENY;
}

WASMQ_EXPORT("onPublish") i32 on_publish(u32 record) {
  wasmq_message m;
  wasmq_read(record, &m);
  if (allowed(&m, WRITE, 0)) return WASMQ_CONTINUE;
  return disconnect_on_denied_publish ? WASMQ_DENY : WASMQ_DROP;
}

/* A broad subscription can still match topics a narrower deny rule forbids: check each delivery. */
WASMQ_EXPORT("onDeliver") i32 on_deliver(u32 record) {
  if (!has_deny_rules) return WASMQ_CONTINUE;
  wasmq_message m;
  wasmq_read(record, &m);
  return allowed(&m, READ, 0) ? WASMQ_CONTINUE : WASMQ_DROP;
}
