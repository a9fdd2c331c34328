//! acl, in Rust: the same topic access control as plugins-as/acl/plugin.ts (and
//! its native twin), on the same config — rules with topic, access, username and
//! clientId ("%u"/"%c" templates included), "default" and "onDeniedPublish".
//! Built with Debian's rustc for wasm32-unknown-unknown, no std, no allocator
//! crate (examples/build.ts); test/plugin-c-rust.test.ts compares it with the
//! AssemblyScript build and the native twin on generated messages.
#![no_std]

mod wasmq;
use wasmq::{Json, Message, CONTINUE, DENY, DROP, LOG_ERROR};

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    core::arch::wasm32::unreachable()
}

const READ: i32 = 1;
const WRITE: i32 = 2;
const DENY_ACCESS: i32 = 4;

#[derive(Clone, Copy)]
struct Rule {
    username: Option<&'static [u8]>,
    client_id: Option<&'static [u8]>,
    topic: &'static [u8],
    access: i32,
    templated: bool,
}

const EMPTY_RULE: Rule = Rule { username: None, client_id: None, topic: b"", access: 0, templated: false };

struct State {
    rules: &'static [Rule],
    default_allow: bool,
    disconnect_on_denied_publish: bool,
    has_deny_rules: bool,
}

static mut STATE: State = State { rules: &[], default_allow: false, disconnect_on_denied_publish: false, has_deny_rules: false };

fn state() -> &'static State {
    unsafe { &STATE }
}

fn parse_access(s: &[u8]) -> i32 {
    match s {
        b"read" => READ,
        b"write" => WRITE,
        b"readwrite" => READ | WRITE,
        b"deny" => DENY_ACCESS,
        _ => 0,
    }
}

/// "*" (or a value that is not a string) means any.
fn optional(v: &'static [u8]) -> Option<&'static [u8]> {
    if v == b"*" { None } else { Some(v) }
}

fn parse_rule(j: &mut Json) -> Option<Rule> {
    let mut r = EMPTY_RULE;
    let mut access: &[u8] = b"readwrite";
    if j.peek() != b'{' {
        j.skip();
    } else {
        j.object(|j, key| {
            match key {
                b"topic" => r.topic = j.string_or(b""),
                b"access" => access = j.string_or(b"readwrite"),
                b"username" => r.username = optional(j.string_or(b"*")),
                b"clientId" => r.client_id = optional(j.string_or(b"*")),
                _ => j.skip(),
            }
            true
        });
    }
    r.access = parse_access(access);
    if r.access == 0 {
        wasmq::log(LOG_ERROR, b"a rule's access must be read, write, readwrite or deny");
        return None;
    }
    if !wasmq::valid_topic_filter(r.topic) {
        wasmq::log(LOG_ERROR, b"a rule's topic must be an MQTT topic filter");
        return None;
    }
    r.templated = r.topic.windows(2).any(|w| w[0] == b'%' && (w[1] == b'u' || w[1] == b'c'));
    Some(r)
}

fn parse_rules(j: &mut Json) -> Option<&'static [Rule]> {
    if !j.eat(b'[') {
        wasmq::log(LOG_ERROR, b"config.rules must be an array");
        return None;
    }
    // Count first, then parse into one allocation.
    let mut probe = j.fork();
    let mut n = 0;
    if !probe.eat(b']') {
        loop {
            probe.skip();
            n += 1;
            if probe.err || !probe.eat(b',') {
                break;
            }
        }
    }
    let rules = wasmq::alloc_slice(n, EMPTY_RULE)?;
    let mut count = 0;
    if !j.eat(b']') {
        loop {
            rules[count] = parse_rule(j)?;
            count += 1;
            if j.err || !j.eat(b',') {
                break;
            }
        }
        if !j.eat(b']') {
            j.err = true;
        }
    }
    Some(&rules[..count])
}

/// init: the config JSON is the record's payload. Non-zero = accepted.
#[export_name = "init"]
pub extern "C" fn init(record: usize) -> i32 {
    let m = Message::read(record);
    let mut j = Json::new(m.payload);
    let mut s = State { rules: &[], default_allow: false, disconnect_on_denied_publish: false, has_deny_rules: false };
    let mut ok = true;
    let parsed = j.object(|j, key| {
        match key {
            b"rules" => match parse_rules(j) {
                Some(r) => s.rules = r,
                None => ok = false,
            },
            b"default" => match j.string_or(b"deny") {
                b"allow" => s.default_allow = true,
                b"deny" => s.default_allow = false,
                _ => {
                    wasmq::log(LOG_ERROR, b"config.default must be allow or deny");
                    ok = false;
                }
            },
            b"onDeniedPublish" => match j.string_or(b"drop") {
                b"drop" => s.disconnect_on_denied_publish = false,
                b"disconnect" => s.disconnect_on_denied_publish = true,
                _ => {
                    wasmq::log(LOG_ERROR, b"config.onDeniedPublish must be drop or disconnect");
                    ok = false;
                }
            },
            _ => j.skip(),
        }
        ok
    });
    if !ok {
        return 0;
    }
    if !parsed {
        wasmq::log(LOG_ERROR, b"config is not a valid JSON object");
        return 0;
    }
    s.has_deny_rules = s.rules.iter().any(|r| r.access == DENY_ACCESS);
    unsafe { STATE = s };
    1
}

fn unsafe_for_pattern(s: &[u8]) -> bool {
    s.iter().any(|&c| c == b'/' || c == b'+' || c == b'#')
}

/// The rule's filter with %u/%c replaced (for SUBSCRIBE); None when a substitution is needed and unusable.
fn expand(rule: &Rule, m: &Message) -> Option<&'static [u8]> {
    let t = rule.topic;
    let percents = t.iter().filter(|&&c| c == b'%').count();
    let out = wasmq::alloc_slice(t.len() + percents * (m.username.len() + m.client_id.len()) + 1, 0u8)?;
    let (mut o, mut from, mut i) = (0, 0, 0);
    while i + 1 < t.len() {
        if t[i] == b'%' && (t[i + 1] == b'u' || t[i + 1] == b'c') {
            let user = t[i + 1] == b'u';
            if user && !m.has_username {
                return None;
            }
            let sub = if user { m.username } else { m.client_id };
            if sub.is_empty() || unsafe_for_pattern(sub) {
                return None;
            }
            for part in [&t[from..i], sub] {
                out[o..o + part.len()].copy_from_slice(part);
                o += part.len();
            }
            i += 1;
            from = i + 1;
        }
        i += 1;
    }
    out[o..o + t.len() - from].copy_from_slice(&t[from..]);
    o += t.len() - from;
    Some(&out[..o])
}

fn allowed(m: &Message, need: i32, subscribing: bool) -> bool {
    let st = state();
    let mark = wasmq::mark();
    let mut granted = false;
    let mut denied = false;
    for rule in st.rules {
        if let Some(user) = rule.username {
            if !(m.has_username && m.username == user) {
                continue;
            }
        }
        if let Some(id) = rule.client_id {
            if m.client_id != id {
                continue;
            }
        }
        let matched = if rule.templated {
            if subscribing {
                expand(rule, m).map_or(false, |f| wasmq::filter_covers(f, m.topic))
            } else {
                let subst = (wasmq::substitution(m.username, m.has_username), wasmq::substitution(m.client_id, true));
                wasmq::matches(rule.topic, m.topic, Some(subst))
            }
        } else if subscribing {
            wasmq::filter_covers(rule.topic, m.topic)
        } else {
            wasmq::matches(rule.topic, m.topic, None)
        };
        if !matched {
            continue;
        }
        if rule.access & DENY_ACCESS != 0 {
            denied = true;
            break;
        }
        if rule.access & need != 0 {
            granted = true;
        }
    }
    wasmq::release(mark);
    !denied && (granted || st.default_allow)
}

#[export_name = "onSubscribe"]
pub extern "C" fn on_subscribe(record: usize) -> i32 {
    if allowed(&Message::read(record), READ, true) { CONTINUE } else { DENY }
}

#[export_name = "onPublish"]
pub extern "C" fn on_publish(record: usize) -> i32 {
    if allowed(&Message::read(record), WRITE, false) {
        CONTINUE
    } else if state().disconnect_on_denied_publish {
        DENY
    } else {
        DROP
    }
}

/// A broad subscription can still match topics a narrower deny rule forbids: check each delivery.
#[export_name = "onDeliver"]
pub extern "C" fn on_deliver(record: usize) -> i32 {
    if !state().has_deny_rules {
        return CONTINUE;
    }
    if allowed(&Message::read(record), READ, false) { CONTINUE } else { DROP }
}
