//! BLPOP, BRPOP, BLMOVE, BRPOPLPUSH. The wait queues and the serving of
//! woken clients live in `server::blocking`; the timeouts in the worker's
//! event loop (`event_loop`). Inside EXEC these never block: they answer
//! at once, nil when every list is empty, as in Redis.

use std::time::{Duration, Instant};

use dbkv::engine::Txn;
use dbkv::Error;

use super::lists::{move_element, side};
use super::{parse_float, Ctx, SYNTAX};
use crate::server::blocking::{Op, Outcome};
use crate::server::client::Blocked;
use crate::server::reply::Reply;

pub fn blpop(ctx: &mut Ctx<'_, '_>, argv: &[&[u8]]) {
    bpop(ctx, argv, true)
}

pub fn brpop(ctx: &mut Ctx<'_, '_>, argv: &[&[u8]]) {
    bpop(ctx, argv, false)
}

fn bpop(ctx: &mut Ctx<'_, '_>, argv: &[&[u8]], left: bool) {
    let (keys, timeout) = argv[1..].split_at(argv.len() - 2);
    match parse_timeout(timeout[0]) {
        Ok(t) => wait(ctx, keys, None, Op::Pop { left }, t),
        Err(e) => ctx.out.error(e),
    }
}

pub fn blmove(ctx: &mut Ctx<'_, '_>, argv: &[&[u8]]) {
    let (Some(from_left), Some(to_left)) = (side(argv[3]), side(argv[4])) else { return ctx.out.error(SYNTAX) };
    match parse_timeout(argv[5]) {
        Ok(t) => wait(ctx, &[argv[1]], Some(argv[2]), Op::Move { dst: argv[2].to_vec(), from_left, to_left }, t),
        Err(e) => ctx.out.error(e),
    }
}

pub fn brpoplpush(ctx: &mut Ctx<'_, '_>, argv: &[&[u8]]) {
    match parse_timeout(argv[3]) {
        Ok(t) => wait(ctx, &[argv[1]], Some(argv[2]), Op::Move { dst: argv[2].to_vec(), from_left: false, to_left: true }, t),
        Err(e) => ctx.out.error(e),
    }
}

/// A timeout in seconds (fractions allowed) as Redis 7 reads it: it keeps
/// whole milliseconds, truncated, so 0 and anything below 1 ms wait
/// forever (None). A value past what a C `long long` holds turns negative
/// there, so it is "negative" here too.
fn parse_timeout(arg: &[u8]) -> Result<Option<Duration>, &'static str> {
    let secs = parse_float(arg).ok_or("ERR timeout is not a float or out of range")?;
    let ms = secs * 1000.0;
    if !(ms > -9.223_372_036_854_775e18 && ms < 9.223_372_036_854_775e18) || (ms as i64) < 0 {
        return Err("ERR timeout is negative");
    }
    Ok(match ms as i64 {
        0 => None,
        ms => Some(Duration::from_millis(ms as u64)),
    })
}

/// Tries `op` on each of `keys` in order (a key of another type is an
/// error, as far as the scan gets); true once one was served.
pub fn attempt(t: &mut Txn<'_>, keys: &[&[u8]], op: &Op, out: &mut Reply<'_>) -> Result<bool, Error> {
    for key in keys {
        t.list(key)?;
        if run_op(t, key, op, out)? {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Runs a blocked client's `op` on `key` if it is a non-empty list (a key
/// that became another type leaves the client waiting, as in Redis) and
/// writes its reply; false if there was nothing to take.
pub fn run_op(t: &mut Txn<'_>, key: &[u8], op: &Op, out: &mut Reply<'_>) -> Result<bool, Error> {
    if !matches!(t.list(key), Ok(Some(l)) if !l.is_empty()) {
        return Ok(false);
    }
    match op {
        Op::Pop { left } => {
            let v = t.list_pop(key, *left, 1)?;
            out.array(2);
            out.bulk(key);
            out.bulk(&v[0]);
        }
        Op::Move { dst, from_left, to_left } => {
            let v = move_element(t, key, dst, *from_left, *to_left)?;
            out.bulk_or_null(v.as_deref());
        }
    }
    Ok(true)
}

/// Answers at once if it can, else blocks the client (inside EXEC: the
/// empty answer instead). `dst`: BLMOVE's destination, reported to the
/// registry when it got an element.
fn wait(ctx: &mut Ctx<'_, '_>, keys: &[&[u8]], dst: Option<&[u8]>, op: Op, timeout: Option<Duration>) {
    let scope: Vec<&[u8]> = keys.iter().copied().chain(dst).collect();
    if ctx.txn.is_some() {
        let mut served = false;
        ctx.atomically(&scope, |t, out| {
            served = attempt(t, keys, &op, out)?;
            if !served {
                // What the non-blocking forms answer: LMOVE nil, no array.
                match op {
                    Op::Pop { .. } => out.null_array(),
                    Op::Move { .. } => out.null(),
                }
            }
            Ok(())
        });
        if let (true, Some(d)) = (served, dst) {
            ctx.key_ready(d);
        }
        return;
    }
    let srv = ctx.srv;
    let handle = ctx.client.handle.clone();
    match srv.blocking.block(srv, &handle, keys, &scope, op, &mut ctx.out) {
        Outcome::Answered => {
            if let Some(d) = dst {
                ctx.key_ready(d);
            }
        }
        Outcome::Blocked(ticket) => {
            let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
            ctx.client.blocked = Some(Blocked { ticket, deadline, armed: false });
            handle.info().blocked = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_as_redis_reads_them() {
        assert_eq!(parse_timeout(b"0"), Ok(None));
        assert_eq!(parse_timeout(b"0.0001"), Ok(None));
        assert_eq!(parse_timeout(b"-0.0001"), Ok(None));
        assert_eq!(parse_timeout(b"1.5"), Ok(Some(Duration::from_millis(1500))));
        assert_eq!(parse_timeout(b"-1"), Err("ERR timeout is negative"));
        assert_eq!(parse_timeout(b"1e30"), Err("ERR timeout is negative"));
        assert_eq!(parse_timeout(b"inf"), Err("ERR timeout is negative"));
        assert_eq!(parse_timeout(b"nan"), Err("ERR timeout is not a float or out of range"));
        assert_eq!(parse_timeout(b"abc"), Err("ERR timeout is not a float or out of range"));
        assert_eq!(parse_timeout(b" 1"), Err("ERR timeout is not a float or out of range"));
    }
}
