//! The wasmq plugin SDK for Rust (`#![no_std]`, no allocator crate): ABI v1
//! (see host/ABI.md). Mirrors examples/c-plugin/wasmq.h and the AssemblyScript
//! SDK: the ABI exports, a bump allocator, the host imports, message fields read
//! in place, MQTT topic matching and a small JSON reader for the config.
#![allow(dead_code)]

pub const ABI_VERSION: i32 = 1;
pub const CONTINUE: i32 = 0;
pub const DROP: i32 = 1;
pub const DENY: i32 = 2;
pub const LOG_ERROR: i32 = 4;

/// Deny with an MQTT CONNACK return code (connect hook).
pub fn deny(code: i32) -> i32 {
    DENY | ((code & 0xff) << 8)
}

#[link(wasm_import_module = "wasmq")]
extern "C" {
    #[link_name = "log"]
    fn log_(level: i32, ptr: *const u8, len: i32);
}

pub fn log(level: i32, text: &[u8]) {
    unsafe { log_(level, text.as_ptr(), text.len() as i32) }
}

// ---- memory ------------------------------------------------------------------

extern "C" {
    static __heap_base: u8;
}
static mut HEAP_TOP: usize = 0;
static mut INPUT: usize = 0;
static mut INPUT_CAP: usize = 0;

/// Bump allocation (8-byte aligned, never freed), growing memory as needed; None at the memory cap.
pub fn alloc(size: usize) -> Option<*mut u8> {
    unsafe {
        if HEAP_TOP == 0 {
            HEAP_TOP = &__heap_base as *const u8 as usize;
        }
        let at = (HEAP_TOP + 7) & !7;
        let end = at + size;
        let have = core::arch::wasm32::memory_size(0) * 65536;
        if end > have && core::arch::wasm32::memory_grow(0, (end - have + 65535) / 65536) == usize::MAX {
            return None;
        }
        HEAP_TOP = end;
        Some(at as *mut u8)
    }
}

/// Scratch allocations for one call: everything allocated after `mark()` is released by `release`.
pub fn mark() -> usize {
    unsafe { HEAP_TOP }
}
pub fn release(mark: usize) {
    unsafe { HEAP_TOP = mark }
}

/// A zeroed slice of `n` values of T in fresh memory.
pub fn alloc_slice<T: Copy>(n: usize, zero: T) -> Option<&'static mut [T]> {
    let p = alloc(n * core::mem::size_of::<T>() + 1)? as *mut T;
    let s = unsafe { core::slice::from_raw_parts_mut(p, n) };
    for v in s.iter_mut() {
        *v = zero;
    }
    Some(s)
}

#[export_name = "wasmq_abi_version"]
pub extern "C" fn wasmq_abi_version() -> i32 {
    ABI_VERSION
}

/// The region the host writes each record into; asked again only when a record does not fit.
#[export_name = "wasmq_reserve"]
pub extern "C" fn wasmq_reserve(size: i32) -> usize {
    unsafe {
        if size as usize > INPUT_CAP {
            INPUT = match alloc(size as usize) {
                Some(p) => p as usize,
                None => core::arch::wasm32::unreachable(),
            };
            INPUT_CAP = size as usize;
        }
        INPUT
    }
}

// ---- the message record --------------------------------------------------------

pub struct Message {
    pub client_id: &'static [u8],
    pub username: &'static [u8],
    pub password: &'static [u8],
    pub peer: &'static [u8],
    pub topic: &'static [u8],
    pub payload: &'static [u8],
    pub qos: u8,
    pub retain: bool,
    pub dup: bool,
    pub flags: u8,
    pub has_username: bool,
    pub has_password: bool,
}

impl Message {
    /// The record at `ptr`: a 32-byte header, then the byte fields in ABI body order.
    pub fn read(ptr: usize) -> Message {
        let h = unsafe { core::slice::from_raw_parts(ptr as *const u8, 32) };
        let u = |o: usize| u32::from_le_bytes([h[o], h[o + 1], h[o + 2], h[o + 3]]) as usize;
        let (topic_len, payload_len, id_len, user_len, pass_len, peer_len) = (u(0), u(4), u(8), u(12), u(16), u(20));
        let mut at = ptr + 32;
        let mut take = |n: usize| {
            let s = unsafe { core::slice::from_raw_parts(at as *const u8, n) };
            at += n;
            s
        };
        let client_id = take(id_len);
        let username = take(user_len);
        let password = take(pass_len);
        let peer = take(peer_len);
        let topic = take(topic_len);
        let payload = take(payload_len);
        Message {
            client_id,
            username,
            password,
            peer,
            topic,
            payload,
            qos: h[24],
            retain: h[25] != 0,
            dup: h[26] != 0,
            flags: h[27],
            has_username: h[28] & 1 != 0,
            has_password: h[28] & 2 != 0,
        }
    }
}

// ---- MQTT topics (MQTT 3.1.1 §4.7; same semantics as plugins-as/sdk/topic.ts) ----

const MAX_TOPIC: usize = 65535;

fn utf8_len(s: &[u8], i: usize) -> usize {
    let n = s.len();
    let c = s[i];
    if c < 0xc2 {
        return 0;
    }
    if c < 0xe0 {
        return if i + 1 < n && s[i + 1] & 0xc0 == 0x80 { 2 } else { 0 };
    }
    if c < 0xf0 {
        if i + 2 >= n {
            return 0;
        }
        let (lo, hi) = (if c == 0xe0 { 0xa0 } else { 0x80 }, if c == 0xed { 0x9f } else { 0xbf });
        if s[i + 1] < lo || s[i + 1] > hi {
            return 0;
        }
        return if s[i + 2] & 0xc0 == 0x80 { 3 } else { 0 };
    }
    if c < 0xf5 {
        if i + 3 >= n {
            return 0;
        }
        let (lo, hi) = (if c == 0xf0 { 0x90 } else { 0x80 }, if c == 0xf4 { 0x8f } else { 0xbf });
        if s[i + 1] < lo || s[i + 1] > hi || s[i + 2] & 0xc0 != 0x80 {
            return 0;
        }
        return if s[i + 3] & 0xc0 == 0x80 { 4 } else { 0 };
    }
    0
}

fn valid_topic(s: &[u8], filter: bool) -> bool {
    let n = s.len();
    if n == 0 || n > MAX_TOPIC {
        return false;
    }
    let (mut i, mut level) = (0, 0);
    while i < n {
        let c = s[i];
        if c >= 0x80 {
            let k = utf8_len(s, i);
            if k == 0 {
                return false;
            }
            i += k;
            continue;
        }
        if c == 0 {
            return false;
        }
        if c == b'+' || c == b'#' {
            if !filter || i != level {
                return false;
            }
            if c == b'+' && i + 1 < n && s[i + 1] != b'/' {
                return false;
            }
            if c == b'#' && i + 1 != n {
                return false;
            }
        }
        if c == b'/' {
            level = i + 1;
        }
        i += 1;
    }
    true
}

pub fn valid_topic_name(s: &[u8]) -> bool {
    valid_topic(s, false)
}
pub fn valid_topic_filter(s: &[u8]) -> bool {
    valid_topic(s, true)
}

/// A "%u"/"%c" substitution: non-empty, without '/', '+', '#' or NUL.
pub fn substitution(s: &[u8], present: bool) -> Option<&[u8]> {
    if !present || s.is_empty() || s.iter().any(|&c| c == b'/' || c == b'+' || c == b'#' || c == 0) {
        None
    } else {
        Some(s)
    }
}

/// Does topic name `t` match filter `f`? `subst` = Some((user, id)) expands "%u"/"%c" (None: unusable).
pub fn matches(f: &[u8], t: &[u8], subst: Option<(Option<&[u8]>, Option<&[u8]>)>) -> bool {
    if !valid_topic_filter(f) || !valid_topic_name(t) {
        return false;
    }
    if t[0] == b'$' && (f[0] == b'+' || f[0] == b'#') {
        return false;
    }
    let (fnl, tn) = (f.len(), t.len());
    let (mut fi, mut ti) = (0, 0);
    loop {
        if fi < fnl && f[fi] == b'#' {
            return true;
        }
        if fi < fnl && f[fi] == b'+' {
            while ti < tn && t[ti] != b'/' {
                ti += 1;
            }
            fi += 1;
        } else {
            while fi < fnl && f[fi] != b'/' {
                if let Some((user, id)) = subst {
                    if f[fi] == b'%' && fi + 1 < fnl && (f[fi + 1] == b'u' || f[fi + 1] == b'c') {
                        let s = match if f[fi + 1] == b'u' { user } else { id } {
                            Some(s) => s,
                            None => return false,
                        };
                        if ti + s.len() > tn || &t[ti..ti + s.len()] != s {
                            return false;
                        }
                        ti += s.len();
                        fi += 2;
                        continue;
                    }
                }
                if ti >= tn || t[ti] != f[fi] {
                    return false;
                }
                ti += 1;
                fi += 1;
            }
            if ti < tn && t[ti] != b'/' {
                return false;
            }
        }
        let (f_end, t_end) = (fi >= fnl, ti >= tn);
        if f_end {
            return t_end;
        }
        if t_end {
            return fi + 2 == fnl && f[fi + 1] == b'#'; // "a/#" matches the parent "a"
        }
        fi += 1;
        ti += 1;
    }
}

/// Is every topic the subscription filter `s` can match also matched by `f`? (the SDK's filterCovers)
pub fn filter_covers(f: &[u8], s: &[u8]) -> bool {
    if !valid_topic_filter(f) || !valid_topic_filter(s) {
        return false;
    }
    let mut fl = f.split(|&c| c == b'/');
    let mut sl = s.split(|&c| c == b'/');
    let mut level = 0;
    loop {
        let fv = match fl.next() {
            Some(v) => v,
            None => return sl.next().is_none(),
        };
        if fv == b"#" {
            return !(level == 0 && s[0] == b'$');
        }
        let sv = match sl.next() {
            Some(v) => v,
            None => return false,
        };
        if sv == b"#" {
            return false;
        }
        if fv == b"+" {
            if level == 0 && !sv.is_empty() && sv[0] == b'$' {
                return false;
            }
        } else if sv == b"+" || fv != sv {
            return false;
        }
        level += 1;
    }
}

// ---- a small JSON reader, enough for a plugin's config ---------------------------

pub struct Json {
    s: &'static [u8],
    p: usize,
    pub err: bool,
}

impl Json {
    pub fn new(s: &'static [u8]) -> Json {
        Json { s, p: 0, err: false }
    }
    fn ws(&mut self) {
        while self.p < self.s.len() && matches!(self.s[self.p], b' ' | b'\t' | b'\n' | b'\r') {
            self.p += 1;
        }
    }
    /// The next non-space byte (0 at the end).
    pub fn peek(&mut self) -> u8 {
        self.ws();
        if self.p < self.s.len() { self.s[self.p] } else { 0 }
    }
    pub fn eat(&mut self, c: u8) -> bool {
        if self.peek() != c {
            return false;
        }
        self.p += 1;
        true
    }
    fn hex4(&mut self) -> u32 {
        let mut v = 0;
        for _ in 0..4 {
            if self.p >= self.s.len() {
                self.err = true;
                return 0;
            }
            let c = self.s[self.p];
            self.p += 1;
            v = (v << 4)
                | match c {
                    b'0'..=b'9' => (c - b'0') as u32,
                    b'a'..=b'f' => (c - b'a' + 10) as u32,
                    b'A'..=b'F' => (c - b'A' + 10) as u32,
                    _ => {
                        self.err = true;
                        0
                    }
                };
        }
        v
    }
    /// A JSON string decoded to UTF-8 in fresh memory (a lone surrogate becomes U+FFFD, as JavaScript writes it).
    pub fn string(&mut self) -> &'static [u8] {
        if !self.eat(b'"') {
            self.err = true;
            return b"";
        }
        let out = match alloc_slice((self.s.len() - self.p) * 3 / 2 + 4, 0u8) {
            Some(o) => o,
            None => {
                self.err = true;
                return b"";
            }
        };
        let mut o = 0;
        while self.p < self.s.len() && self.s[self.p] != b'"' {
            let c = self.s[self.p];
            self.p += 1;
            if c != b'\\' {
                out[o] = c;
                o += 1;
                continue;
            }
            if self.p >= self.s.len() {
                break;
            }
            let e = self.s[self.p];
            self.p += 1;
            let mut cp = match e {
                b'b' => 8,
                b'f' => 12,
                b'n' => 10,
                b'r' => 13,
                b't' => 9,
                b'u' => self.hex4(),
                other => other as u32,
            };
            if e == b'u' && (0xd800..0xdc00).contains(&cp) && self.p + 6 <= self.s.len() && self.s[self.p] == b'\\' && self.s[self.p + 1] == b'u' {
                let save = self.p;
                self.p += 2;
                let lo = self.hex4();
                if (0xdc00..0xe000).contains(&lo) {
                    cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                } else {
                    self.p = save;
                }
            }
            if (0xd800..0xe000).contains(&cp) {
                cp = 0xfffd;
            }
            let ch = char::from_u32(cp).unwrap_or('\u{fffd}');
            o += ch.encode_utf8(&mut out[o..]).len();
        }
        if !self.eat(b'"') {
            self.err = true;
        }
        &out[..o]
    }
    /// Skip any value.
    pub fn skip(&mut self) {
        let c = self.peek();
        if c == b'"' {
            self.string();
            return;
        }
        if c == b'{' || c == b'[' {
            let close = if c == b'{' { b'}' } else { b']' };
            self.p += 1;
            if self.eat(close) {
                return;
            }
            loop {
                if close == b'}' {
                    self.string();
                    if !self.eat(b':') {
                        self.err = true;
                        return;
                    }
                }
                self.skip();
                if self.err || !self.eat(b',') {
                    break;
                }
            }
            if !self.eat(close) {
                self.err = true;
            }
            return;
        }
        if c == 0 {
            self.err = true;
            return;
        }
        while self.p < self.s.len() && !matches!(self.s[self.p], b',' | b'}' | b']' | b' ' | b'\n' | b'\r' | b'\t') {
            self.p += 1;
        }
    }
    /// A string value, or `fallback` when the value is something else (the SDK's config.string).
    pub fn string_or(&mut self, fallback: &'static [u8]) -> &'static [u8] {
        if self.peek() == b'"' {
            return self.string();
        }
        self.skip();
        fallback
    }
    /// Iterate an object's members: calls `f(self, key)` with the reader at each value.
    pub fn object(&mut self, mut f: impl FnMut(&mut Json, &[u8]) -> bool) -> bool {
        if !self.eat(b'{') {
            return false;
        }
        if self.eat(b'}') {
            return true;
        }
        loop {
            let k = self.string();
            if !self.eat(b':') {
                self.err = true;
            }
            if self.err || !f(self, k) {
                return false;
            }
            if self.err || !self.eat(b',') {
                break;
            }
        }
        if !self.eat(b'}') {
            self.err = true;
        }
        !self.err
    }
    /// Copy of the reader (to look ahead).
    pub fn fork(&self) -> Json {
        Json { s: self.s, p: self.p, err: self.err }
    }
}
