//! String commands (GET, SET and friends, counters, APPEND, ranges).

use std::sync::atomic::Ordering;

use dbkv::engine::{Found, Txn};
use dbkv::Error;

use super::{arity_error, eq_ignore_case, format_double, parse_float, parse_int, Ctx, NOT_FLOAT, NOT_INTEGER, SYNTAX};
use crate::server::reply::Reply;

/// A TTL option of SET / GETEX.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[allow(clippy::enum_variant_names)] // KeepTtl is the name of Redis's KEEPTTL option
pub enum Ttl {
    /// No option: SET clears the TTL, GETEX leaves it.
    Unset,
    KeepTtl,
    Persist,
    /// Milliseconds from now.
    In(u64),
    /// Absolute unix milliseconds.
    At(u64),
}

impl Ttl {
    /// The absolute expiry for an entry whose current expiry is `current`;
    /// `None` when the time is already past (the key must go).
    pub fn resolve(self, now: u64, current: u64, clears: bool) -> Option<u64> {
        match self {
            Ttl::Unset if clears => Some(0),
            Ttl::Unset | Ttl::KeepTtl => Some(current),
            Ttl::Persist => Some(0),
            Ttl::In(ms) => Some(now + ms),
            Ttl::At(at) if at <= now => None,
            Ttl::At(at) => Some(at),
        }
    }
}

/// Parses `EX|PX|EXAT|PXAT n` at `argv[i]`; `Some(Err)` is the reply text.
fn parse_ttl_option(argv: &[&[u8]], i: usize, cmd: &str) -> Option<Result<Ttl, String>> {
    let opt = argv[i];
    let unit: u64 = if eq_ignore_case(opt, "ex") || eq_ignore_case(opt, "exat") { 1000 } else if eq_ignore_case(opt, "px") || eq_ignore_case(opt, "pxat") { 1 } else { return None };
    let absolute = opt.len() == 4;
    let Some(arg) = argv.get(i + 1) else { return Some(Err(SYNTAX.into())) };
    let Some(n) = parse_int(arg) else { return Some(Err(NOT_INTEGER.into())) };
    let invalid = || Err(format!("ERR invalid expire time in '{cmd}' command"));
    if n <= 0 {
        return Some(invalid());
    }
    let Some(ms) = (n as u64).checked_mul(unit).filter(|&ms| ms < (i64::MAX as u64) / 2) else { return Some(invalid()) };
    Some(Ok(if absolute { Ttl::At(ms) } else { Ttl::In(ms) }))
}

pub fn get(ctx: &mut Ctx<'_, '_>, argv: &[&[u8]]) {
    let key = argv[1];
    if ctx.txn.is_none() {
        let Ctx { srv, out, .. } = ctx;
        match srv.engine.read(key, |b| out.bulk(b)) {
            Ok(Some(())) => hit(srv, true),
            Ok(None) => {
                hit(srv, false);
                out.null()
            }
            Err(e) => ctx.engine_err(&e),
        }
        return;
    }
    ctx.atomically(&[key], |t, out| {
        let v = t.get(key)?;
        reply_value(out, v)
    });
}

fn hit(srv: &crate::server::Server, found: bool) {
    let c = if found { &srv.counters.keyspace_hits } else { &srv.counters.keyspace_misses };
    c.fetch_add(1, Ordering::Relaxed);
}

/// A live value as a bulk string (counters as their decimal text), or nil.
fn reply_value(out: &mut Reply<'_>, v: Option<Found<'_>>) -> Result<(), Error> {
    match v {
        Some(f) => f.value.with_bytes(|b| out.bulk(b)),
        None => {
            out.null();
            Ok(())
        }
    }
}

pub fn set(ctx: &mut Ctx<'_, '_>, argv: &[&[u8]]) {
    let (key, value) = (argv[1], argv[2]);
    if argv.len() == 3 && ctx.txn.is_none() {
        match ctx.srv.engine.set(key, value, 0) {
            Ok(()) => ctx.out.ok(),
            Err(e) => ctx.engine_err(&e),
        }
        return;
    }
    let (mut nx, mut xx, mut get, mut ttl) = (false, false, false, Ttl::Unset);
    let mut i = 3;
    while i < argv.len() {
        let a = argv[i];
        if eq_ignore_case(a, "nx") && !xx {
            nx = true;
        } else if eq_ignore_case(a, "xx") && !nx {
            xx = true;
        } else if eq_ignore_case(a, "get") {
            get = true;
        } else if eq_ignore_case(a, "keepttl") && ttl == Ttl::Unset {
            ttl = Ttl::KeepTtl;
        } else if ttl == Ttl::Unset && parse_ttl_option(argv, i, "set").is_some() {
            match parse_ttl_option(argv, i, "set").unwrap() {
                Ok(t) => ttl = t,
                Err(m) => return ctx.out.error(&m),
            }
            i += 1;
        } else {
            return ctx.out.error(SYNTAX);
        }
        i += 1;
    }
    ctx.atomically(&[key], |t, out| {
        let cur = t.get(key)?;
        let old = if get { cur.map(|f| f.value.to_vec()).transpose()? } else { None };
        let exists = cur.is_some();
        let current_exp = cur.map_or(0, |f| f.expires_at);
        let reply = |out: &mut Reply<'_>| if get { out.bulk_or_null(old.as_deref()) } else { out.ok() };
        if (nx && exists) || (xx && !exists) {
            if get {
                out.bulk_or_null(old.as_deref());
            } else {
                out.null();
            }
            return Ok(());
        }
        match ttl.resolve(t.now(), current_exp, true) {
            Some(exp) => t.put(key, value, exp)?,
            None => {
                t.delete(key)?;
            }
        }
        reply(out);
        Ok(())
    });
}

pub fn setnx(ctx: &mut Ctx<'_, '_>, argv: &[&[u8]]) {
    let (key, value) = (argv[1], argv[2]);
    if ctx.txn.is_none() {
        match ctx.srv.engine.setnx(key, value, 0) {
            Ok(stored) => ctx.out.int(stored as i64),
            Err(e) => ctx.engine_err(&e),
        }
        return;
    }
    ctx.atomically(&[key], |t, out| {
        let stored = t.get(key)?.is_none();
        if stored {
            t.put(key, value, 0)?;
        }
        out.int(stored as i64);
        Ok(())
    });
}

fn set_with_ttl(ctx: &mut Ctx<'_, '_>, argv: &[&[u8]], unit: u64, cmd: &str) {
    let (key, value) = (argv[1], argv[3]);
    let Some(n) = parse_int(argv[2]) else { return ctx.out.error(NOT_INTEGER) };
    let Some(ms) = (n > 0).then(|| (n as u64).checked_mul(unit)).flatten().filter(|&ms| ms < (i64::MAX as u64) / 2) else {
        return ctx.out.error(&format!("ERR invalid expire time in '{cmd}' command"));
    };
    ctx.atomically(&[key], |t, out| {
        let exp = t.now() + ms;
        t.put(key, value, exp)?;
        out.ok();
        Ok(())
    });
}

pub fn setex(ctx: &mut Ctx<'_, '_>, argv: &[&[u8]]) {
    set_with_ttl(ctx, argv, 1000, "setex")
}

pub fn psetex(ctx: &mut Ctx<'_, '_>, argv: &[&[u8]]) {
    set_with_ttl(ctx, argv, 1, "psetex")
}

pub fn getdel(ctx: &mut Ctx<'_, '_>, argv: &[&[u8]]) {
    let key = argv[1];
    ctx.atomically(&[key], |t, out| {
        let old = t.get(key)?.map(|f| f.value.to_vec()).transpose()?;
        if old.is_some() {
            t.delete(key)?;
        }
        out.bulk_or_null(old.as_deref());
        Ok(())
    });
}

pub fn getex(ctx: &mut Ctx<'_, '_>, argv: &[&[u8]]) {
    let key = argv[1];
    let ttl = match argv.get(2) {
        None => Ttl::Unset,
        Some(a) if eq_ignore_case(a, "persist") && argv.len() == 3 => Ttl::Persist,
        Some(_) if argv.len() == 4 => match parse_ttl_option(argv, 2, "getex") {
            Some(Ok(t)) => t,
            Some(Err(m)) => return ctx.out.error(&m),
            None => return ctx.out.error(SYNTAX),
        },
        Some(_) => return ctx.out.error(SYNTAX),
    };
    ctx.atomically(&[key], |t, out| {
        let Some(cur) = t.get(key)? else {
            out.null();
            return Ok(());
        };
        let (value, current_exp) = (cur.value.to_vec()?, cur.expires_at);
        match ttl.resolve(t.now(), current_exp, false) {
            Some(exp) if exp != current_exp => {
                t.set_expiry(key, exp)?;
            }
            Some(_) => {}
            None => {
                t.delete(key)?;
            }
        }
        out.bulk(&value);
        Ok(())
    });
}

pub fn getset(ctx: &mut Ctx<'_, '_>, argv: &[&[u8]]) {
    let (key, value) = (argv[1], argv[2]);
    ctx.atomically(&[key], |t, out| {
        let old = t.get(key)?.map(|f| f.value.to_vec()).transpose()?;
        t.put(key, value, 0)?;
        out.bulk_or_null(old.as_deref());
        Ok(())
    });
}

pub fn mget(ctx: &mut Ctx<'_, '_>, argv: &[&[u8]]) {
    let keys = &argv[1..];
    if ctx.txn.is_none() {
        match ctx.srv.engine.mget(keys) {
            Ok(values) => {
                ctx.out.array(values.len());
                for v in &values {
                    ctx.out.bulk_or_null(v.as_deref());
                }
            }
            Err(e) => ctx.engine_err(&e),
        }
        return;
    }
    ctx.atomically(keys, |t, out| {
        let values = keys.iter().map(|k| Ok(t.get(k)?.and_then(|f| f.value.to_vec().ok()))).collect::<Result<Vec<_>, Error>>()?;
        out.array(values.len());
        for v in &values {
            out.bulk_or_null(v.as_deref());
        }
        Ok(())
    });
}

/// Keys and their values, in the same order.
type KeysValues<'k> = (Vec<&'k [u8]>, Vec<&'k [u8]>);

/// The keys and values of MSET-style arguments, or the arity error.
fn pairs<'k>(argv: &[&'k [u8]], name: &str) -> Result<KeysValues<'k>, String> {
    if argv.len() % 2 == 0 {
        return Err(arity_error(name));
    }
    Ok(argv[1..].chunks(2).map(|p| (p[0], p[1])).unzip())
}

pub fn mset(ctx: &mut Ctx<'_, '_>, argv: &[&[u8]]) {
    let (keys, values) = match pairs(argv, "mset") {
        Ok(p) => p,
        Err(m) => return ctx.out.error(&m),
    };
    if ctx.txn.is_none() {
        match ctx.srv.engine.mset(&keys, &values, 0) {
            Ok(()) => ctx.out.ok(),
            Err(e) => ctx.engine_err(&e),
        }
        return;
    }
    ctx.atomically(&keys, |t, out| {
        for (k, v) in keys.iter().zip(&values) {
            t.put(k, v, 0)?;
        }
        out.ok();
        Ok(())
    });
}

pub fn msetnx(ctx: &mut Ctx<'_, '_>, argv: &[&[u8]]) {
    let (keys, values) = match pairs(argv, "msetnx") {
        Ok(p) => p,
        Err(m) => return ctx.out.error(&m),
    };
    ctx.atomically(&keys, |t, out| {
        for k in &keys {
            if t.get(k)?.is_some() {
                out.int(0);
                return Ok(());
            }
        }
        for (k, v) in keys.iter().zip(&values) {
            t.put(k, v, 0)?;
        }
        out.int(1);
        Ok(())
    });
}

fn add(ctx: &mut Ctx<'_, '_>, key: &[u8], delta: i64) {
    if ctx.txn.is_none() {
        match ctx.srv.engine.incr(key, delta) {
            Ok(n) => ctx.out.int(n),
            Err(e) => ctx.engine_err(&e),
        }
        return;
    }
    ctx.atomically(&[key], |t, out| {
        let (n, exp) = match t.get(key)? {
            None => (0, 0),
            Some(f) => (counter(&f)?, f.expires_at),
        };
        let v = n.checked_add(delta).ok_or(Error::Overflow)?;
        t.put_int(key, v, exp)?;
        out.int(v);
        Ok(())
    });
}

fn counter(f: &Found<'_>) -> Result<i64, Error> {
    match f.value {
        dbkv::engine::Value::Int(n) => Ok(n),
        dbkv::engine::Value::Bytes(b) => parse_int(b).ok_or(Error::NotInteger),
        _ => Err(Error::WrongType),
    }
}

pub fn incr(ctx: &mut Ctx<'_, '_>, argv: &[&[u8]]) {
    add(ctx, argv[1], 1)
}

pub fn decr(ctx: &mut Ctx<'_, '_>, argv: &[&[u8]]) {
    add(ctx, argv[1], -1)
}

pub fn incrby(ctx: &mut Ctx<'_, '_>, argv: &[&[u8]]) {
    match parse_int(argv[2]) {
        Some(d) => add(ctx, argv[1], d),
        None => ctx.out.error(NOT_INTEGER),
    }
}

pub fn decrby(ctx: &mut Ctx<'_, '_>, argv: &[&[u8]]) {
    match parse_int(argv[2]) {
        Some(i64::MIN) => ctx.out.error("ERR decrement would overflow"),
        Some(d) => add(ctx, argv[1], -d),
        None => ctx.out.error(NOT_INTEGER),
    }
}

/// Logged as the resulting text (a Set record), so replay never redoes
/// floating-point arithmetic.
pub fn incrbyfloat(ctx: &mut Ctx<'_, '_>, argv: &[&[u8]]) {
    let key = argv[1];
    let Some(incr) = parse_float(argv[2]) else { return ctx.out.error(NOT_FLOAT) };
    ctx.atomically(&[key], |t, out| {
        let (cur, exp) = match t.get(key)? {
            None => (0.0, 0),
            Some(f) => match f.value.with_bytes(parse_float)? {
                Some(v) => (v, f.expires_at),
                None => {
                    out.error(NOT_FLOAT);
                    return Ok(());
                }
            },
        };
        let v = cur + incr;
        if !v.is_finite() {
            out.error("ERR increment would produce NaN or Infinity");
            return Ok(());
        }
        let text = format_double(v);
        t.put(key, text.as_bytes(), exp)?;
        out.bulk(text.as_bytes());
        Ok(())
    });
}

pub fn append(ctx: &mut Ctx<'_, '_>, argv: &[&[u8]]) {
    let (key, tail) = (argv[1], argv[2]);
    ctx.atomically(&[key], |t, out| {
        let (mut v, exp) = match t.get(key)? {
            None => (Vec::new(), 0),
            Some(f) => (f.value.to_vec()?, f.expires_at),
        };
        v.extend_from_slice(tail);
        t.put(key, &v, exp)?;
        out.int(v.len() as i64);
        Ok(())
    });
}

pub fn strlen(ctx: &mut Ctx<'_, '_>, argv: &[&[u8]]) {
    let key = argv[1];
    if ctx.txn.is_none() {
        match ctx.srv.engine.read(key, |b| b.len()) {
            Ok(n) => ctx.out.int(n.unwrap_or(0) as i64),
            Err(e) => ctx.engine_err(&e),
        }
        return;
    }
    ctx.atomically(&[key], |t, out| {
        out.int(t.get(key)?.map_or(Ok(0), |f| f.value.with_bytes(|b| b.len()))? as i64);
        Ok(())
    });
}

pub fn getrange(ctx: &mut Ctx<'_, '_>, argv: &[&[u8]]) {
    let key = argv[1];
    let (Some(start), Some(end)) = (parse_int(argv[2]), parse_int(argv[3])) else { return ctx.out.error(NOT_INTEGER) };
    ctx.atomically(&[key], |t, out| {
        let v = t.get(key)?.map(|f| f.value.to_vec()).transpose()?.unwrap_or_default();
        out.bulk(substr(&v, start, end));
        Ok(())
    });
}

/// Redis's GETRANGE indexing: negative counts from the end, clamped.
fn substr(v: &[u8], start: i64, end: i64) -> &[u8] {
    let len = v.len() as i64;
    if len == 0 || (start < 0 && end < 0 && start > end) {
        return &[];
    }
    let s = if start < 0 { (len + start).max(0) } else { start };
    let e = if end < 0 { (len + end).max(0) } else { end.min(len - 1) };
    if s > e || s >= len {
        return &[];
    }
    &v[s as usize..=e as usize]
}

pub fn setrange(ctx: &mut Ctx<'_, '_>, argv: &[&[u8]]) {
    let (key, patch) = (argv[1], argv[3]);
    let Some(offset) = parse_int(argv[2]) else { return ctx.out.error(NOT_INTEGER) };
    if offset < 0 {
        return ctx.out.error("ERR offset is out of range");
    }
    let max = ctx.srv.settings.max_value_bytes;
    if offset as u64 + patch.len() as u64 > max {
        return ctx.out.error(&format!("ERR string exceeds maximum allowed size ({max} bytes, --max-value-bytes)"));
    }
    ctx.atomically(&[key], |t: &mut Txn<'_>, out| {
        let cur = t.get(key)?;
        let exp = cur.map_or(0, |f| f.expires_at);
        let mut v = cur.map(|f| f.value.to_vec()).transpose()?.unwrap_or_default();
        if patch.is_empty() {
            out.int(v.len() as i64);
            return Ok(());
        }
        let end = offset as usize + patch.len();
        if v.len() < end {
            v.resize(end, 0);
        }
        v[offset as usize..end].copy_from_slice(patch);
        t.put(key, &v, exp)?;
        out.int(v.len() as i64);
        Ok(())
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn getrange_indexes_as_redis() {
        let v = b"This is a string";
        assert_eq!(substr(v, 0, 3), b"This");
        assert_eq!(substr(v, -3, -1), b"ing");
        assert_eq!(substr(v, 0, -1), v);
        assert_eq!(substr(v, 10, 100), b"string");
        assert_eq!(substr(v, 5, 3), b"");
        assert_eq!(substr(b"", 0, -1), b"");
    }

    #[test]
    fn ttl_resolution() {
        assert_eq!(Ttl::Unset.resolve(100, 50_000, true), Some(0));
        assert_eq!(Ttl::Unset.resolve(100, 50_000, false), Some(50_000));
        assert_eq!(Ttl::KeepTtl.resolve(100, 50_000, true), Some(50_000));
        assert_eq!(Ttl::In(10).resolve(100, 0, true), Some(110));
        assert_eq!(Ttl::At(100).resolve(100, 0, true), None);
        assert_eq!(Ttl::At(101).resolve(100, 0, true), Some(101));
    }
}
