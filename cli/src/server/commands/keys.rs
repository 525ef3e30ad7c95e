//! Key commands: DEL, EXISTS, TYPE, FLUSHALL, RENAME, COPY (TTLs are in
//! `expire`, iteration in `scan`). Each works on every type: strings,
//! lists and sorted sets.

use std::sync::atomic::Ordering;

use dbkv::engine::{Txn, Value};
use dbkv::Error;

use super::{eq_ignore_case, parse_int, Ctx, NOT_INTEGER, SYNTAX};
use crate::server::Server;

const NO_SUCH_KEY: &str = "ERR no such key";
const SAME_OBJECT: &str = "ERR source and destination objects are the same";
const DB_RANGE: &str = "ERR DB index is out of range";

/// Keyspace hit/miss counters (INFO), counted where Redis counts them:
/// the read-only lookups.
pub(super) fn hit(srv: &Server, found: bool) {
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
    let (key, srv) = (argv[1], ctx.srv);
    ctx.atomically(&[key], |t, out| {
        let found = t.get(key)?;
        hit(srv, found.is_some());
        out.simple(found.map_or("none", |f| f.value.type_name()));
        Ok(())
    });
}

/// Whether `key` is live (through the EXEC transaction if inside one);
/// `None` once the engine error has been replied.
pub(super) fn probe(ctx: &mut Ctx<'_, '_>, key: &[u8]) -> Option<bool> {
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
        Value::List(l) => {
            let l = l.clone();
            t.put_value(dst, Value::List(&l), exp)?
        }
        Value::ZSet(z) => {
            let z = z.clone();
            t.put_value(dst, Value::ZSet(&z), exp)?
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
/// move in one transaction, logged as one record. A list moved onto `dst`
/// serves clients blocked on it.
fn move_key(ctx: &mut Ctx<'_, '_>, src: &[u8], dst: &[u8], nx: bool) {
    let mut filled = false;
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
            filled = matches!(t.list(dst), Ok(Some(_)));
        }
        if nx {
            out.int(moved as i64);
        } else {
            out.ok();
        }
        Ok(())
    });
    if filled {
        ctx.key_ready(dst);
    }
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
    let mut filled = false;
    ctx.atomically(&[src, dst], |t, out| {
        let copied = (replace || t.get(dst)?.is_none()) && copy_entry(t, src, dst)?;
        filled = copied && matches!(t.list(dst), Ok(Some(_)));
        out.int(copied as i64);
        Ok(())
    });
    if filled {
        ctx.key_ready(dst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
