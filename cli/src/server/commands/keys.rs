//! Key-space commands (DEL, EXISTS, TTLs, TYPE, SCAN, KEYS, FLUSHALL, RENAME, COPY...).
//!
//! Every key is a string today, so TYPE answers `string` or `none`. SCAN
//! cursors are engine shard indices: a call returns whole shards, so a
//! key present for the whole iteration is returned, and since a key never
//! changes shard, no key is returned twice. Inside EXEC the transaction
//! holds every shard these commands need, so they read through it:
//! calling the engine there would wait on the locks EXEC itself holds.

use std::cell::Cell;
use std::sync::atomic::Ordering;

use dbkv::engine::{Txn, Value};
use dbkv::Error;

use super::{eq_ignore_case, parse_int, Ctx, NOT_INTEGER, SYNTAX};
use crate::server::glob;
use crate::server::reply::Reply;
use crate::server::Server;

const NO_SUCH_KEY: &str = "ERR no such key";
const SAME_OBJECT: &str = "ERR source and destination objects are the same";
const DB_RANGE: &str = "ERR DB index is out of range";
const INVALID_CURSOR: &str = "ERR invalid cursor";
const SCAN_DEFAULT_COUNT: usize = 10;

/// Keyspace hit/miss counters (INFO), counted where Redis counts them:
/// the read-only lookups.
fn hit(srv: &Server, found: bool) {
    let c = if found { &srv.counters.keyspace_hits } else { &srv.counters.keyspace_misses };
    c.fetch_add(1, Ordering::Relaxed);
}

// ---- DEL / UNLINK / EXISTS / TYPE ----

/// DEL and UNLINK (freeing is immediate either way).
pub fn del(ctx: &mut Ctx<'_, '_>, argv: &[&[u8]]) {
    let keys = &argv[1..];
    if ctx.txn.is_none() {
        // One engine call: atomic, and one MDel record.
        match ctx.srv.engine.mdel(keys) {
            Ok(n) => ctx.out.int(n as i64),
            Err(e) => ctx.engine_err(&e),
        }
        return;
    }
    ctx.atomically(keys, |t, out| {
        let mut n = 0;
        for k in keys {
            n += t.delete(k)? as i64;
        }
        out.int(n);
        Ok(())
    });
}

/// Counts live keys; a key named twice counts twice, as in Redis.
pub fn exists(ctx: &mut Ctx<'_, '_>, argv: &[&[u8]]) {
    let keys = &argv[1..];
    if let [key] = keys {
        if let Some(found) = probe(ctx, key) {
            ctx.out.int(found as i64);
        }
        return;
    }
    // Several keys: one transaction, so the count is of a single instant
    // (a concurrent MSET is seen whole or not at all).
    let srv = ctx.srv;
    ctx.atomically(keys, |t, out| {
        let mut n = 0;
        for k in keys {
            let found = t.get(k)?.is_some();
            hit(srv, found);
            n += found as i64;
        }
        out.int(n);
        Ok(())
    });
}

pub fn type_(ctx: &mut Ctx<'_, '_>, argv: &[&[u8]]) {
    if let Some(found) = probe(ctx, argv[1]) {
        ctx.out.simple(if found { "string" } else { "none" });
    }
}

/// Whether `key` is live (through the EXEC transaction if inside one);
/// `None` once the engine error has been replied.
fn probe(ctx: &mut Ctx<'_, '_>, key: &[u8]) -> Option<bool> {
    let r = match ctx.txn.as_deref() {
        Some(t) => t.get(key).map(|f| f.is_some()),
        None => ctx.srv.engine.exists(key),
    };
    match r {
        Ok(found) => {
            hit(ctx.srv, found);
            Some(found)
        }
        Err(e) => {
            ctx.engine_err(&e);
            None
        }
    }
}

// ---- EXPIRE family ----

/// The NX / XX / GT / LT conditions of the EXPIRE family.
#[derive(Default, Clone, Copy, PartialEq, Eq, Debug)]
struct ExpireFlags {
    nx: bool,
    xx: bool,
    gt: bool,
    lt: bool,
}

impl ExpireFlags {
    /// Parses the options after the time, with Redis's error texts.
    fn parse(opts: &[&[u8]]) -> Result<ExpireFlags, String> {
        let mut f = ExpireFlags::default();
        for o in opts {
            if eq_ignore_case(o, "nx") {
                f.nx = true;
            } else if eq_ignore_case(o, "xx") {
                f.xx = true;
            } else if eq_ignore_case(o, "gt") {
                f.gt = true;
            } else if eq_ignore_case(o, "lt") {
                f.lt = true;
            } else {
                return Err(format!("ERR Unsupported option {}", String::from_utf8_lossy(o)));
            }
        }
        if f.nx && (f.xx || f.gt || f.lt) {
            return Err("ERR NX and XX, GT or LT options at the same time are not compatible".into());
        }
        if f.gt && f.lt {
            return Err("ERR GT and LT options at the same time are not compatible".into());
        }
        Ok(f)
    }

    /// Whether absolute expiry `when` may replace `current` (0 = none).
    /// No TTL counts as an infinite one: GT never beats it, LT always does.
    fn allow(self, current: u64, when: i64) -> bool {
        let has = current != 0;
        let cur = current as i64;
        !((self.nx && has) || (self.xx && !has) || (self.gt && (!has || when <= cur)) || (self.lt && has && when >= cur))
    }
}

/// The absolute expiry (unix ms) an EXPIRE-family argument `n` names:
/// `unit` ms per unit, plus `base` (now for EXPIRE/PEXPIRE, 0 for the AT
/// forms). `None` where Redis answers "invalid expire time": the unit
/// conversion or the addition overflows. Also for exactly `i64::MAX`,
/// which Redis accepts but the engine cannot store.
fn expire_when(n: i64, unit: i64, base: i64) -> Option<i64> {
    let when = n.checked_mul(unit)?;
    (when < i64::MAX - base).then_some(when + base)
}

fn invalid_expire(cmd: &str) -> String {
    format!("ERR invalid expire time in '{cmd}' command")
}

/// Sets the expiry of a live key under `flags`; a time not in the future
/// deletes the key (as Redis does). True if it was set or the key deleted.
fn apply_expire(t: &mut Txn<'_>, key: &[u8], when: i64, flags: ExpireFlags) -> Result<bool, Error> {
    let Some(cur) = t.get(key)? else { return Ok(false) };
    if !flags.allow(cur.expires_at, when) {
        return Ok(false);
    }
    if when <= t.now() as i64 {
        return t.delete(key);
    }
    t.set_expiry(key, when as u64)
}

/// EXPIRE, PEXPIRE, EXPIREAT, PEXPIREAT: `unit` ms per argument unit,
/// `relative` for the forms counted from now.
fn expire_generic(ctx: &mut Ctx<'_, '_>, argv: &[&[u8]], unit: i64, relative: bool, cmd: &str) {
    let key = argv[1];
    // Redis checks the options before the number.
    let flags = match ExpireFlags::parse(&argv[3..]) {
        Ok(f) => f,
        Err(m) => return ctx.out.error(&m),
    };
    let Some(n) = parse_int(argv[2]) else { return ctx.out.error(NOT_INTEGER) };
    if ctx.txn.is_none() && relative && n > 0 && flags == ExpireFlags::default() {
        return expire_fast(ctx, key, n, unit, cmd);
    }
    ctx.atomically(&[key], |t, out| {
        let base = if relative { t.now() as i64 } else { 0 };
        match expire_when(n, unit, base) {
            Some(when) => out.int(apply_expire(t, key, when, flags)? as i64),
            None => out.error(&invalid_expire(cmd)),
        }
        Ok(())
    });
}

/// The common case (a plain positive relative TTL) as one engine call.
fn expire_fast(ctx: &mut Ctx<'_, '_>, key: &[u8], n: i64, unit: i64, cmd: &str) {
    let engine = &ctx.srv.engine;
    if expire_when(n, unit, engine.now_ms() as i64).is_none() {
        return ctx.out.error(&invalid_expire(cmd));
    }
    match engine.expire(key, (n * unit) as u64) {
        Ok(set) => ctx.out.int(set as i64),
        Err(e) => ctx.engine_err(&e),
    }
}

pub fn expire(ctx: &mut Ctx<'_, '_>, argv: &[&[u8]]) {
    expire_generic(ctx, argv, 1000, true, "expire")
}

pub fn pexpire(ctx: &mut Ctx<'_, '_>, argv: &[&[u8]]) {
    expire_generic(ctx, argv, 1, true, "pexpire")
}

pub fn expireat(ctx: &mut Ctx<'_, '_>, argv: &[&[u8]]) {
    expire_generic(ctx, argv, 1000, false, "expireat")
}

pub fn pexpireat(ctx: &mut Ctx<'_, '_>, argv: &[&[u8]]) {
    expire_generic(ctx, argv, 1, false, "pexpireat")
}

// ---- TTL / PTTL / EXPIRETIME / PEXPIRETIME / PERSIST ----

/// Milliseconds to seconds, to the nearest second as Redis reports them.
fn ms_to_secs(ms: u64) -> i64 {
    ((ms + 500) / 1000) as i64
}

/// TTL/PTTL's reply: -2 no key, -1 no TTL, else the time left.
fn ttl_reply(remaining_ms: Option<i64>, in_ms: bool) -> i64 {
    match remaining_ms {
        None => -2,
        Some(r) if r < 0 => -1,
        Some(r) if in_ms => r,
        Some(r) => ms_to_secs(r as u64),
    }
}

/// EXPIRETIME/PEXPIRETIME's reply for an expiry (0 = none).
fn expiretime_reply(expires_at: Option<u64>, in_ms: bool) -> i64 {
    match expires_at {
        None => -2,
        Some(0) => -1,
        Some(at) if in_ms => at as i64,
        Some(at) => ms_to_secs(at),
    }
}

fn ttl_generic(ctx: &mut Ctx<'_, '_>, key: &[u8], in_ms: bool) {
    if ctx.txn.is_none() {
        match ctx.srv.engine.ttl(key) {
            Ok(r) => {
                hit(ctx.srv, r.is_some());
                ctx.out.int(ttl_reply(r, in_ms));
            }
            Err(e) => ctx.engine_err(&e),
        }
        return;
    }
    let srv = ctx.srv;
    ctx.atomically(&[key], |t, out| {
        let now = t.now();
        // A live entry expires after `now`, so the subtraction is positive.
        let r = t.get(key)?.map(|f| if f.expires_at == 0 { -1 } else { (f.expires_at - now) as i64 });
        hit(srv, r.is_some());
        out.int(ttl_reply(r, in_ms));
        Ok(())
    });
}

/// Read through a transaction, which sees the expiry without copying the
/// value (`Engine::get_entry` would copy it).
fn expiretime_generic(ctx: &mut Ctx<'_, '_>, key: &[u8], in_ms: bool) {
    let srv = ctx.srv;
    ctx.atomically(&[key], |t, out| {
        let at = t.get(key)?.map(|f| f.expires_at);
        hit(srv, at.is_some());
        out.int(expiretime_reply(at, in_ms));
        Ok(())
    });
}

pub fn ttl(ctx: &mut Ctx<'_, '_>, argv: &[&[u8]]) {
    ttl_generic(ctx, argv[1], false)
}

pub fn pttl(ctx: &mut Ctx<'_, '_>, argv: &[&[u8]]) {
    ttl_generic(ctx, argv[1], true)
}

pub fn expiretime(ctx: &mut Ctx<'_, '_>, argv: &[&[u8]]) {
    expiretime_generic(ctx, argv[1], false)
}

pub fn pexpiretime(ctx: &mut Ctx<'_, '_>, argv: &[&[u8]]) {
    expiretime_generic(ctx, argv[1], true)
}

/// 1 only if a TTL was removed (`Engine::persist` also says true for a
/// key that had none, so this reads first).
pub fn persist(ctx: &mut Ctx<'_, '_>, argv: &[&[u8]]) {
    let key = argv[1];
    ctx.atomically(&[key], |t, out| {
        let had_ttl = t.get(key)?.is_some_and(|f| f.expires_at != 0);
        if had_ttl {
            t.set_expiry(key, 0)?;
        }
        out.int(had_ttl as i64);
        Ok(())
    });
}

// ---- SCAN / KEYS / DBSIZE / RANDOMKEY ----

/// Which keys SCAN and KEYS return.
enum Filter<'p> {
    All,
    /// A `prefix*` pattern: a byte comparison instead of the glob.
    Prefix(Vec<u8>),
    Glob(&'p [u8]),
    /// SCAN TYPE naming a type no key has.
    Nothing,
}

impl<'p> Filter<'p> {
    fn new(pattern: Option<&'p [u8]>, type_matches: bool) -> Filter<'p> {
        match pattern {
            _ if !type_matches => Filter::Nothing,
            None => Filter::All,
            Some(p) => match glob::literal_prefix(p) {
                (prefix, true) if prefix.is_empty() => Filter::All,
                (prefix, true) => Filter::Prefix(prefix),
                _ => Filter::Glob(p),
            },
        }
    }

    fn accepts(&self, key: &[u8]) -> bool {
        match self {
            Filter::All => true,
            Filter::Prefix(p) => key.starts_with(p),
            Filter::Glob(p) => glob::matches(p, key),
            Filter::Nothing => false,
        }
    }
}

/// Keys encoded as bulk strings as they are found, so a large KEYS reply
/// costs one buffer rather than one allocation per key.
struct KeyList {
    n: usize,
    buf: Vec<u8>,
    resp3: bool,
}

impl KeyList {
    fn new(resp3: bool) -> KeyList {
        KeyList { n: 0, buf: Vec::new(), resp3 }
    }

    fn offer(&mut self, filter: &Filter<'_>, key: &[u8]) {
        if filter.accepts(key) {
            self.n += 1;
            Reply { buf: &mut self.buf, resp3: self.resp3 }.bulk(key);
        }
    }

    /// Writes the list as an array reply.
    fn write(self, out: &mut Reply<'_>) {
        out.array(self.n);
        out.buf.extend_from_slice(&self.buf);
    }
}

/// The arguments of SCAN.
#[derive(Debug, PartialEq, Eq)]
struct ScanArgs<'a> {
    cursor: u64,
    pattern: Option<&'a [u8]>,
    count: usize,
    /// TYPE was absent or `string` (the only type dbkv has).
    type_matches: bool,
}

/// A cursor as Redis's `strtoul` reads it: an optional sign (a negative
/// number wraps around), decimal digits and nothing else; "" reads as 0.
fn parse_cursor(b: &[u8]) -> Option<u64> {
    let (neg, digits) = match b.first() {
        Some(b'-') => (true, &b[1..]),
        Some(b'+') => (false, &b[1..]),
        _ => (false, b),
    };
    if digits.is_empty() {
        return b.is_empty().then_some(0);
    }
    let mut v: u64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
    }
    Some(if neg { v.wrapping_neg() } else { v })
}

/// Parses `SCAN cursor [MATCH p] [COUNT n] [TYPE t]` with Redis's error
/// texts and precedence (cursor first, then options left to right).
fn parse_scan<'a>(argv: &[&'a [u8]]) -> Result<ScanArgs<'a>, &'static str> {
    let cursor = parse_cursor(argv[1]).ok_or(INVALID_CURSOR)?;
    let mut a = ScanArgs { cursor, pattern: None, count: SCAN_DEFAULT_COUNT, type_matches: true };
    for pair in argv[2..].chunks(2) {
        let [opt, val] = pair else { return Err(SYNTAX) };
        if eq_ignore_case(opt, "count") {
            let n = parse_int(val).ok_or(NOT_INTEGER)?;
            a.count = usize::try_from(n).ok().filter(|&n| n >= 1).ok_or(SYNTAX)?;
        } else if eq_ignore_case(opt, "match") {
            a.pattern = Some(val);
        } else if eq_ignore_case(opt, "type") {
            a.type_matches = eq_ignore_case(val, "string");
        } else {
            return Err(SYNTAX);
        }
    }
    Ok(a)
}

pub fn scan(ctx: &mut Ctx<'_, '_>, argv: &[&[u8]]) {
    let a = match parse_scan(argv) {
        Ok(a) => a,
        Err(m) => return ctx.out.error(m),
    };
    let filter = Filter::new(a.pattern, a.type_matches);
    let mut list = KeyList::new(ctx.out.resp3);
    let next = match (ctx.txn.as_deref(), &filter) {
        // Inside EXEC every shard is already ours: return them all at once.
        (Some(t), _) => {
            t.for_each_live(|k, _| list.offer(&filter, k));
            0
        }
        (None, Filter::Nothing) => 0,
        (None, _) => match scan_shards(&ctx.srv.engine, a.cursor, a.count, &filter, &mut list) {
            Ok(next) => next,
            Err(e) => return ctx.engine_err(&e),
        },
    };
    ctx.out.array(2);
    ctx.out.bulk(next.to_string().as_bytes());
    list.write(&mut ctx.out);
}

/// Lists whole shards from `cursor` on until `count` keys were examined
/// (COUNT is work per call, as in Redis) or the shards end; returns the
/// next cursor, 0 when done.
fn scan_shards(engine: &dbkv::Engine, cursor: u64, count: usize, filter: &Filter<'_>, list: &mut KeyList) -> Result<u64, Error> {
    let shards = engine.shard_count() as u64;
    let (mut shard, mut seen) = (cursor, 0usize);
    while shard < shards && seen < count {
        engine.visit_shard(shard as usize, |k, _| {
            seen += 1;
            list.offer(filter, k);
        })?;
        shard += 1;
    }
    Ok(if shard >= shards { 0 } else { shard })
}

pub fn keys(ctx: &mut Ctx<'_, '_>, argv: &[&[u8]]) {
    let filter = Filter::new(Some(argv[1]), true);
    let mut list = KeyList::new(ctx.out.resp3);
    if let Some(t) = ctx.txn.as_deref() {
        t.for_each_live(|k, _| list.offer(&filter, k));
    } else {
        let engine = &ctx.srv.engine;
        for shard in 0..engine.shard_count() {
            if let Err(e) = engine.visit_shard(shard, |k, _| list.offer(&filter, k)) {
                return ctx.engine_err(&e);
            }
        }
    }
    list.write(&mut ctx.out);
}

pub fn dbsize(ctx: &mut Ctx<'_, '_>, _argv: &[&[u8]]) {
    let n = match ctx.txn.as_deref() {
        Some(t) => {
            let mut n = 0u64;
            t.for_each_live(|_, _| n += 1);
            n
        }
        None => ctx.srv.engine.count(),
    };
    ctx.out.int(n as i64);
}

/// A per-thread xorshift64 generator seeded from the clock and the
/// thread's stack address: RANDOMKEY needs spread, not secrecy.
fn next_random() -> u64 {
    thread_local! {
        static STATE: Cell<u64> = Cell::new(random_seed());
    }
    STATE.with(|s| {
        let mut x = s.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.set(x);
        x
    })
}

fn random_seed() -> u64 {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    let local = 0u8;
    let addr = &local as *const u8 as u64;
    (nanos ^ addr.rotate_left(32)) | 1
}

/// Picks one of the offered keys uniformly in a single pass (reservoir
/// sampling), so a shard is read once under its lock.
#[derive(Default)]
struct Reservoir {
    seen: u64,
    key: Option<Vec<u8>>,
}

impl Reservoir {
    fn offer(&mut self, key: &[u8]) {
        self.seen += 1;
        if next_random() % self.seen == 0 {
            let k = self.key.get_or_insert_with(Vec::new);
            k.clear();
            k.extend_from_slice(key);
        }
    }
}

/// A random key of the first non-empty shard from a random one on.
pub fn randomkey(ctx: &mut Ctx<'_, '_>, _argv: &[&[u8]]) {
    let mut pick = Reservoir::default();
    if let Some(t) = ctx.txn.as_deref() {
        t.for_each_live(|k, _| pick.offer(k));
    } else {
        let engine = &ctx.srv.engine;
        let shards = engine.shard_count();
        let start = (next_random() % shards as u64) as usize;
        for i in 0..shards {
            if let Err(e) = engine.visit_shard((start + i) % shards, |k, _| pick.offer(k)) {
                return ctx.engine_err(&e);
            }
            if pick.key.is_some() {
                break;
            }
        }
    }
    ctx.out.bulk_or_null(pick.key.as_deref());
}

// ---- FLUSHALL / FLUSHDB ----

/// One Clear record, durable per the sync mode. ASYNC and SYNC both
/// clear at once (the clear is a table drop under the shard locks).
pub fn flushall(ctx: &mut Ctx<'_, '_>, argv: &[&[u8]]) {
    let ok = match argv {
        [_] => true,
        [_, mode] => eq_ignore_case(mode, "sync") || eq_ignore_case(mode, "async"),
        _ => false,
    };
    if !ok {
        return ctx.out.error(SYNTAX);
    }
    ctx.atomically_all(|t, out| {
        t.clear()?;
        out.ok();
        Ok(())
    });
}

// ---- RENAME / RENAMENX / COPY ----

/// Writes `src`'s live value and expiry to `dst` (a counter stays a
/// counter); false if `src` does not exist.
fn copy_entry(t: &mut Txn<'_>, src: &[u8], dst: &[u8]) -> Result<bool, Error> {
    let Some(f) = t.get(src)? else { return Ok(false) };
    let exp = f.expires_at;
    match f.value {
        Value::Int(n) => t.put_int(dst, n, exp)?,
        Value::Bytes(b) => {
            let v = b.to_vec();
            t.put(dst, &v, exp)?
        }
    }
    Ok(true)
}

pub fn rename(ctx: &mut Ctx<'_, '_>, argv: &[&[u8]]) {
    move_key(ctx, argv[1], argv[2], false)
}

pub fn renamenx(ctx: &mut Ctx<'_, '_>, argv: &[&[u8]]) {
    move_key(ctx, argv[1], argv[2], true)
}

/// RENAME (`nx` false: OK) and RENAMENX (1 moved / 0 not): value and TTL
/// move in one transaction, logged as one record.
fn move_key(ctx: &mut Ctx<'_, '_>, src: &[u8], dst: &[u8], nx: bool) {
    ctx.atomically(&[src, dst], |t, out| {
        if t.get(src)?.is_none() {
            out.error(NO_SUCH_KEY);
            return Ok(());
        }
        // Same name: nothing moves (RENAMENX still answers 0, as Redis).
        let moved = src != dst && !(nx && t.get(dst)?.is_some());
        if moved {
            copy_entry(t, src, dst)?;
            t.delete(src)?;
        }
        if nx {
            out.int(moved as i64);
        } else {
            out.ok();
        }
        Ok(())
    });
}

/// COPY's `[DB n] [REPLACE]`: whether REPLACE was given. dbkv has only
/// database 0, so any other index is out of range.
fn parse_copy_options(opts: &[&[u8]]) -> Result<bool, &'static str> {
    let (mut replace, mut i) = (false, 0);
    while i < opts.len() {
        if eq_ignore_case(opts[i], "replace") {
            replace = true;
        } else if eq_ignore_case(opts[i], "db") && i + 1 < opts.len() {
            // Redis reads the index as a C int.
            let db = parse_int(opts[i + 1]).and_then(|n| i32::try_from(n).ok()).ok_or(NOT_INTEGER)?;
            if db != 0 {
                return Err(DB_RANGE);
            }
            i += 1;
        } else {
            return Err(SYNTAX);
        }
        i += 1;
    }
    Ok(replace)
}

pub fn copy(ctx: &mut Ctx<'_, '_>, argv: &[&[u8]]) {
    let (src, dst) = (argv[1], argv[2]);
    let replace = match parse_copy_options(&argv[3..]) {
        Ok(r) => r,
        Err(m) => return ctx.out.error(m),
    };
    if src == dst {
        return ctx.out.error(SAME_OBJECT);
    }
    ctx.atomically(&[src, dst], |t, out| {
        let copied = (replace || t.get(dst)?.is_none()) && copy_entry(t, src, dst)?;
        out.int(copied as i64);
        Ok(())
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_parse_as_strtoul() {
        assert_eq!(parse_cursor(b"0"), Some(0));
        assert_eq!(parse_cursor(b"17"), Some(17));
        assert_eq!(parse_cursor(b"007"), Some(7));
        assert_eq!(parse_cursor(b"+5"), Some(5));
        assert_eq!(parse_cursor(b""), Some(0));
        assert_eq!(parse_cursor(b"-1"), Some(u64::MAX));
        assert_eq!(parse_cursor(b"18446744073709551615"), Some(u64::MAX));
        for bad in [&b"18446744073709551616"[..], b"abc", b" 1", b"1 ", b"-", b"+", b"1x", b"0x10"] {
            assert_eq!(parse_cursor(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn scan_options() {
        let a = parse_scan(&[b"scan", b"3", b"MATCH", b"u:*", b"count", b"100", b"TYPE", b"String"]).unwrap();
        assert_eq!(a, ScanArgs { cursor: 3, pattern: Some(b"u:*"), count: 100, type_matches: true });
        assert!(!parse_scan(&[b"scan", b"0", b"type", b"list"]).unwrap().type_matches);
        assert_eq!(parse_scan(&[b"scan", b"0"]).unwrap().count, SCAN_DEFAULT_COUNT);
        assert_eq!(parse_scan(&[b"scan", b"x"]), Err(INVALID_CURSOR));
        assert_eq!(parse_scan(&[b"scan", b"x", b"bogus"]), Err(INVALID_CURSOR));
        assert_eq!(parse_scan(&[b"scan", b"0", b"count", b"0"]), Err(SYNTAX));
        assert_eq!(parse_scan(&[b"scan", b"0", b"count", b"-3"]), Err(SYNTAX));
        assert_eq!(parse_scan(&[b"scan", b"0", b"count", b"x"]), Err(NOT_INTEGER));
        assert_eq!(parse_scan(&[b"scan", b"0", b"match"]), Err(SYNTAX));
        assert_eq!(parse_scan(&[b"scan", b"0", b"bogus", b"1"]), Err(SYNTAX));
    }

    #[test]
    fn filters() {
        assert!(matches!(Filter::new(Some(b"*"), true), Filter::All));
        assert!(matches!(Filter::new(Some(b"*"), false), Filter::Nothing));
        let f = Filter::new(Some(b"user:*"), true);
        assert!(matches!(f, Filter::Prefix(_)));
        assert!(f.accepts(b"user:1") && !f.accepts(b"use"));
        let g = Filter::new(Some(b"u?er:*"), true);
        assert!(matches!(g, Filter::Glob(_)));
        assert!(g.accepts(b"user:1") && !g.accepts(b"usr:1"));
    }

    #[test]
    fn expire_options() {
        let f = |opts: &[&[u8]]| ExpireFlags::parse(opts);
        assert_eq!(f(&[]), Ok(ExpireFlags::default()));
        assert_eq!(f(&[b"Gt", b"xx"]), Ok(ExpireFlags { xx: true, gt: true, ..Default::default() }));
        let nx = "ERR NX and XX, GT or LT options at the same time are not compatible";
        assert_eq!(f(&[b"nx", b"xx"]).unwrap_err(), nx);
        assert_eq!(f(&[b"lt", b"nx"]).unwrap_err(), nx);
        assert_eq!(f(&[b"gt", b"lt"]).unwrap_err(), "ERR GT and LT options at the same time are not compatible");
        assert_eq!(f(&[b"foo"]).unwrap_err(), "ERR Unsupported option foo");
    }

    #[test]
    fn expire_conditions() {
        let (nx, xx) = (ExpireFlags { nx: true, ..Default::default() }, ExpireFlags { xx: true, ..Default::default() });
        let (gt, lt) = (ExpireFlags { gt: true, ..Default::default() }, ExpireFlags { lt: true, ..Default::default() });
        assert!(nx.allow(0, 5) && !nx.allow(10, 5));
        assert!(!xx.allow(0, 5) && xx.allow(10, 5));
        assert!(!gt.allow(0, 5) && !gt.allow(10, 10) && gt.allow(10, 11));
        assert!(lt.allow(0, 5) && !lt.allow(10, 10) && lt.allow(10, 9));
        assert!(ExpireFlags::default().allow(0, -5));
    }

    #[test]
    fn expire_times_and_overflow() {
        assert_eq!(expire_when(10, 1000, 5), Some(10_005));
        assert_eq!(expire_when(-3, 1000, 0), Some(-3000));
        assert_eq!(expire_when(i64::MAX / 1000 + 1, 1000, 0), None);
        assert_eq!(expire_when(i64::MIN / 1000 - 1, 1000, 0), None);
        assert_eq!(expire_when(i64::MAX - 10, 1, 10), None);
        assert_eq!(expire_when(i64::MAX - 11, 1, 10), Some(i64::MAX - 1));
        assert_eq!(expire_when(i64::MIN, 1, 10), Some(i64::MIN + 10));
    }

    #[test]
    fn ttl_rounding() {
        assert_eq!(ttl_reply(None, false), -2);
        assert_eq!(ttl_reply(Some(-1), true), -1);
        assert_eq!(ttl_reply(Some(1499), false), 1);
        assert_eq!(ttl_reply(Some(1500), false), 2);
        assert_eq!(ttl_reply(Some(499), false), 0);
        assert_eq!(ttl_reply(Some(1499), true), 1499);
        assert_eq!(expiretime_reply(None, true), -2);
        assert_eq!(expiretime_reply(Some(0), false), -1);
        assert_eq!(expiretime_reply(Some(1_999_999_999_500), false), 2_000_000_000);
        assert_eq!(expiretime_reply(Some(1_999_999_999_499), false), 1_999_999_999);
        assert_eq!(expiretime_reply(Some(1_999_999_999_499), true), 1_999_999_999_499);
    }

    #[test]
    fn copy_options() {
        assert_eq!(parse_copy_options(&[]), Ok(false));
        assert_eq!(parse_copy_options(&[b"REPLACE", b"db", b"0"]), Ok(true));
        assert_eq!(parse_copy_options(&[b"db", b"1"]), Err(DB_RANGE));
        assert_eq!(parse_copy_options(&[b"db", b"-1"]), Err(DB_RANGE));
        assert_eq!(parse_copy_options(&[b"db", b"1x"]), Err(NOT_INTEGER));
        assert_eq!(parse_copy_options(&[b"db", b"4294967296"]), Err(NOT_INTEGER));
        assert_eq!(parse_copy_options(&[b"db"]), Err(SYNTAX));
        assert_eq!(parse_copy_options(&[b"bogus"]), Err(SYNTAX));
    }

    #[test]
    fn reservoir_picks_every_key() {
        let mut hits = [0u32; 4];
        for _ in 0..4000 {
            let mut r = Reservoir::default();
            for k in [b"a", b"b", b"c", b"d"] {
                r.offer(k);
            }
            hits[(r.key.unwrap()[0] - b'a') as usize] += 1;
        }
        assert!(hits.iter().all(|&h| h > 700), "{hits:?}");
    }
}
