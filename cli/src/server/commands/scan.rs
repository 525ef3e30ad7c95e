//! SCAN, KEYS, DBSIZE and RANDOMKEY. SCAN cursors are engine shard
//! indices: a call returns whole shards, so a key present for the whole
//! iteration is returned, and since a key never changes shard, no key is
//! returned twice. Inside EXEC the transaction holds every shard, so these
//! read through it: calling the engine there would wait on EXEC's locks.

use std::cell::Cell;

use dbkv::engine::Found;
use dbkv::Error;

use super::{eq_ignore_case, parse_int, Ctx, NOT_INTEGER, SYNTAX};
use crate::server::glob;
use crate::server::reply::Reply;

const INVALID_CURSOR: &str = "ERR invalid cursor";
const SCAN_DEFAULT_COUNT: usize = 10;

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
    /// SCAN TYPE: the only type listed (TYPE's name for it).
    kind: Option<&'static str>,
}

impl KeyList {
    fn new(resp3: bool, kind: Option<&'static str>) -> KeyList {
        KeyList { n: 0, buf: Vec::new(), resp3, kind }
    }

    fn offer(&mut self, filter: &Filter<'_>, key: &[u8], entry: Found<'_>) {
        if filter.accepts(key) && self.kind.is_none_or(|k| k == entry.value.type_name()) {
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
    /// TYPE names a type dbkv has (or was absent): see `kind`.
    type_matches: bool,
    /// TYPE's type, as TYPE names it.
    kind: Option<&'static str>,
}

/// The types dbkv stores, as TYPE names them.
const TYPES: [&str; 3] = ["string", "list", "zset"];

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
    let mut a = ScanArgs { cursor, pattern: None, count: SCAN_DEFAULT_COUNT, type_matches: true, kind: None };
    for pair in argv[2..].chunks(2) {
        let [opt, val] = pair else { return Err(SYNTAX) };
        if eq_ignore_case(opt, "count") {
            let n = parse_int(val).ok_or(NOT_INTEGER)?;
            a.count = usize::try_from(n).ok().filter(|&n| n >= 1).ok_or(SYNTAX)?;
        } else if eq_ignore_case(opt, "match") {
            a.pattern = Some(val);
        } else if eq_ignore_case(opt, "type") {
            // Redis 7.0 matches the name case-insensitively and lists
            // nothing for a name it does not know.
            a.kind = TYPES.iter().find(|t| eq_ignore_case(val, t)).copied();
            a.type_matches = a.kind.is_some();
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
    let mut list = KeyList::new(ctx.out.resp3, a.kind);
    let next = match (ctx.txn.as_deref(), &filter) {
        // Inside EXEC every shard is already ours: return them all at once.
        (Some(t), _) => {
            t.for_each_live(|k, e| list.offer(&filter, k, e));
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
        engine.visit_shard(shard as usize, |k, e| {
            seen += 1;
            list.offer(filter, k, e);
        })?;
        shard += 1;
    }
    Ok(if shard >= shards { 0 } else { shard })
}

pub fn keys(ctx: &mut Ctx<'_, '_>, argv: &[&[u8]]) {
    let filter = Filter::new(Some(argv[1]), true);
    let mut list = KeyList::new(ctx.out.resp3, None);
    if let Some(t) = ctx.txn.as_deref() {
        t.for_each_live(|k, e| list.offer(&filter, k, e));
    } else {
        let engine = &ctx.srv.engine;
        for shard in 0..engine.shard_count() {
            if let Err(e) = engine.visit_shard(shard, |k, e| list.offer(&filter, k, e)) {
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
        assert_eq!(a, ScanArgs { cursor: 3, pattern: Some(b"u:*"), count: 100, type_matches: true, kind: Some("string") });
        assert_eq!(parse_scan(&[b"scan", b"0", b"type", b"ZSet"]).unwrap().kind, Some("zset"));
        assert!(!parse_scan(&[b"scan", b"0", b"type", b"hash"]).unwrap().type_matches);
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
