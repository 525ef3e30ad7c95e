//! List commands (LPUSH ... LMOVE; the blocking ones are in
//! `lists_blocking`). Each runs in one transaction (`Ctx::atomically`):
//! atomic, and one WAL record. A command that gives a list elements
//! reports the key (`Ctx::key_ready`) so clients blocked on it are served
//! once the command is over.
//!
//! Argument checks happen in Redis 7's order (some before the key lookup,
//! some after), since that decides which error a bad call gets.

use dbkv::engine::Txn;
use dbkv::Error;

use super::{eq_ignore_case, parse_int, Ctx, NOT_INTEGER, SYNTAX};

const NO_SUCH_KEY: &str = "ERR no such key";
const INDEX_RANGE: &str = "ERR index out of range";
const COUNT_RANGE: &str = "ERR value is out of range, must be positive";
const RANK_ZERO: &str = "ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list";
/// Redis 7.2's answer: -RANK would overflow (7.0 runs into undefined behaviour).
const RANK_MIN: &str = "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807";

// ---- pushes ----

pub fn lpush(ctx: &mut Ctx<'_, '_>, argv: &[&[u8]]) {
    push(ctx, argv, true, false)
}

pub fn rpush(ctx: &mut Ctx<'_, '_>, argv: &[&[u8]]) {
    push(ctx, argv, false, false)
}

pub fn lpushx(ctx: &mut Ctx<'_, '_>, argv: &[&[u8]]) {
    push(ctx, argv, true, true)
}

pub fn rpushx(ctx: &mut Ctx<'_, '_>, argv: &[&[u8]]) {
    push(ctx, argv, false, true)
}

/// Pushes every element (left: each at the head in turn, as Redis does);
/// `existing`: only onto a list that exists (LPUSHX / RPUSHX).
fn push(ctx: &mut Ctx<'_, '_>, argv: &[&[u8]], left: bool, existing: bool) {
    let (key, elems) = (argv[1], &argv[2..]);
    let mut pushed = false;
    ctx.atomically(&[key], |t, out| {
        if existing && t.list(key)?.is_none() {
            out.int(0);
            return Ok(());
        }
        let len = t.list_push(key, left, elems)?;
        pushed = true;
        out.int(len as i64);
        Ok(())
    });
    if pushed {
        ctx.key_ready(key);
    }
}

// ---- pops ----

pub fn lpop(ctx: &mut Ctx<'_, '_>, argv: &[&[u8]]) {
    pop(ctx, argv, true)
}

pub fn rpop(ctx: &mut Ctx<'_, '_>, argv: &[&[u8]]) {
    pop(ctx, argv, false)
}

/// `LPOP key` answers one element or nil; `LPOP key count` an array, or
/// a nil array when the key is missing (Redis 7).
fn pop(ctx: &mut Ctx<'_, '_>, argv: &[&[u8]], left: bool) {
    let key = argv[1];
    if argv.len() > 3 {
        return ctx.out.error(&super::arity_error(if left { "lpop" } else { "rpop" }));
    }
    let count = match argv.get(2) {
        None => None,
        Some(c) => match parse_int(c) {
            Some(n) if n >= 0 => Some(n as usize),
            _ => return ctx.out.error(COUNT_RANGE),
        },
    };
    ctx.atomically(&[key], |t, out| {
        if t.list(key)?.is_none() {
            match count {
                Some(_) => out.null_array(),
                None => out.null(),
            }
            return Ok(());
        }
        let popped = t.list_pop(key, left, count.unwrap_or(1))?;
        match count {
            Some(_) => out.bulks(popped.iter().map(|e| &**e)),
            None => out.bulk(&popped[0]),
        }
        Ok(())
    });
}

// ---- reads ----

pub fn llen(ctx: &mut Ctx<'_, '_>, argv: &[&[u8]]) {
    let key = argv[1];
    ctx.atomically(&[key], |t, out| {
        out.int(t.list(key)?.map_or(0, |l| l.len()) as i64);
        Ok(())
    });
}

/// Redis's range rule for LRANGE and LTRIM: negative indexes count from
/// the end, then clamp; `None` if nothing is in range, else `start..end`.
pub fn clamp_range(len: usize, start: i64, stop: i64) -> Option<(usize, usize)> {
    let len = len as i64;
    let start = if start < 0 { (start + len).max(0) } else { start };
    let stop = if stop < 0 { stop + len } else { stop };
    if start > stop || start >= len {
        return None;
    }
    Some((start as usize, stop.min(len - 1) as usize + 1))
}

/// A possibly negative index into a list of `len`, if it is inside.
fn index(len: usize, i: i64) -> Option<usize> {
    let i = if i < 0 { i + len as i64 } else { i };
    (0..len as i64).contains(&i).then_some(i as usize)
}

pub fn lrange(ctx: &mut Ctx<'_, '_>, argv: &[&[u8]]) {
    let key = argv[1];
    let (Some(start), Some(stop)) = (parse_int(argv[2]), parse_int(argv[3])) else { return ctx.out.error(NOT_INTEGER) };
    ctx.atomically(&[key], |t, out| {
        let Some(l) = t.list(key)? else {
            out.array(0);
            return Ok(());
        };
        match clamp_range(l.len(), start, stop) {
            None => out.array(0),
            Some((s, e)) => {
                out.array(e - s);
                l.iter_from(s).take(e - s).for_each(|v| out.bulk(v));
            }
        }
        Ok(())
    });
}

pub fn lindex(ctx: &mut Ctx<'_, '_>, argv: &[&[u8]]) {
    let key = argv[1];
    ctx.atomically(&[key], |t, out| {
        // Redis looks the key up before it reads the index.
        let Some(l) = t.list(key)? else {
            out.null();
            return Ok(());
        };
        match parse_int(argv[2]) {
            None => out.error(NOT_INTEGER),
            Some(i) => out.bulk_or_null(index(l.len(), i).and_then(|i| l.get(i))),
        }
        Ok(())
    });
}

/// LPOS key element [RANK r] [COUNT n] [MAXLEN m].
#[derive(Debug, PartialEq)]
struct PosOpts {
    rank: i64,
    count: Option<usize>,
    maxlen: usize,
}

fn parse_pos_opts(args: &[&[u8]]) -> Result<PosOpts, &'static str> {
    let mut o = PosOpts { rank: 1, count: None, maxlen: 0 };
    let mut i = 0;
    while i < args.len() {
        let Some(v) = args.get(i + 1) else { return Err(SYNTAX) };
        let opt = args[i];
        if eq_ignore_case(opt, "rank") {
            o.rank = parse_int(v).ok_or(NOT_INTEGER)?;
            if o.rank == 0 {
                return Err(RANK_ZERO);
            }
            if o.rank == i64::MIN {
                return Err(RANK_MIN);
            }
        } else if eq_ignore_case(opt, "count") {
            o.count = Some(parse_int(v).filter(|&n| n >= 0).ok_or("ERR COUNT can't be negative")? as usize);
        } else if eq_ignore_case(opt, "maxlen") {
            o.maxlen = parse_int(v).filter(|&n| n >= 0).ok_or("ERR MAXLEN can't be negative")? as usize;
        } else {
            return Err(SYNTAX);
        }
        i += 2;
    }
    Ok(o)
}

pub fn lpos(ctx: &mut Ctx<'_, '_>, argv: &[&[u8]]) {
    let (key, elem) = (argv[1], argv[2]);
    let o = match parse_pos_opts(&argv[3..]) {
        Ok(o) => o,
        Err(e) => return ctx.out.error(e),
    };
    ctx.atomically(&[key], |t, out| {
        let mut found = Vec::new();
        if let Some(l) = t.list(key)? {
            // A negative rank searches from the tail; MAXLEN bounds the
            // comparisons in the search direction; COUNT 0 means all.
            let want = match o.count {
                Some(0) => usize::MAX,
                Some(n) => n,
                None => 1,
            };
            let skip = (o.rank.unsigned_abs() - 1) as usize;
            let limit = if o.maxlen == 0 { usize::MAX } else { o.maxlen };
            let len = l.len();
            let hits = |(i, v): (usize, &[u8])| (v == elem).then_some(i);
            if o.rank > 0 {
                found.extend(l.iter_from(0).take(limit).enumerate().filter_map(hits).skip(skip).take(want));
            } else {
                found.extend(l.iter_from(0).rev().take(limit).enumerate().filter_map(hits).skip(skip).take(want).map(|i| len - 1 - i));
            }
        }
        match o.count {
            Some(_) => {
                out.array(found.len());
                found.iter().for_each(|&i| out.int(i as i64));
            }
            None => match found.first() {
                Some(&i) => out.int(i as i64),
                None => out.null(),
            },
        }
        Ok(())
    });
}

// ---- in-place writes ----

pub fn lset(ctx: &mut Ctx<'_, '_>, argv: &[&[u8]]) {
    let (key, value) = (argv[1], argv[3]);
    ctx.atomically(&[key], |t, out| {
        let Some(len) = t.list(key)?.map(|l| l.len()) else {
            out.error(NO_SUCH_KEY);
            return Ok(());
        };
        let Some(i) = parse_int(argv[2]) else {
            out.error(NOT_INTEGER);
            return Ok(());
        };
        match index(len, i) {
            Some(i) => {
                t.list_set(key, i, value)?;
                out.ok();
            }
            None => out.error(INDEX_RANGE),
        }
        Ok(())
    });
}

pub fn lrem(ctx: &mut Ctx<'_, '_>, argv: &[&[u8]]) {
    let (key, value) = (argv[1], argv[3]);
    let Some(count) = parse_int(argv[2]) else { return ctx.out.error(NOT_INTEGER) };
    ctx.atomically(&[key], |t, out| {
        out.int(t.list_remove(key, count, value)? as i64);
        Ok(())
    });
}

pub fn ltrim(ctx: &mut Ctx<'_, '_>, argv: &[&[u8]]) {
    let key = argv[1];
    let (Some(start), Some(stop)) = (parse_int(argv[2]), parse_int(argv[3])) else { return ctx.out.error(NOT_INTEGER) };
    ctx.atomically(&[key], |t, out| {
        if let Some(len) = t.list(key)?.map(|l| l.len()) {
            // Nothing in range empties the list, which deletes the key.
            let (s, e) = clamp_range(len, start, stop).unwrap_or((0, 0));
            t.list_trim(key, s, e)?;
        }
        out.ok();
        Ok(())
    });
}

// ---- moves ----

/// LEFT / RIGHT as `left`; None for anything else.
pub fn side(arg: &[u8]) -> Option<bool> {
    if eq_ignore_case(arg, "left") {
        Some(true)
    } else if eq_ignore_case(arg, "right") {
        Some(false)
    } else {
        None
    }
}

/// Moves one element from `src` to `dst` inside `t`; the element, or None
/// if `src` is missing. A `dst` of another type fails before anything moves.
pub fn move_element(t: &mut Txn<'_>, src: &[u8], dst: &[u8], from_left: bool, to_left: bool) -> Result<Option<Box<[u8]>>, Error> {
    let Some(l) = t.list(src)? else { return Ok(None) };
    let len = l.len();
    if src == dst && len == 1 {
        // Rotating one element changes nothing; popping it first would
        // delete the key, and its TTL with it.
        return Ok(l.get(0).map(Into::into));
    }
    t.list(dst)?;
    let Some(v) = t.list_pop(src, from_left, 1)?.pop() else { return Ok(None) };
    t.list_push(dst, to_left, &[&v])?;
    Ok(Some(v))
}

pub fn lmove(ctx: &mut Ctx<'_, '_>, argv: &[&[u8]]) {
    let (Some(from), Some(to)) = (side(argv[3]), side(argv[4])) else { return ctx.out.error(SYNTAX) };
    move_cmd(ctx, argv[1], argv[2], from, to)
}

pub fn rpoplpush(ctx: &mut Ctx<'_, '_>, argv: &[&[u8]]) {
    move_cmd(ctx, argv[1], argv[2], false, true)
}

fn move_cmd(ctx: &mut Ctx<'_, '_>, src: &[u8], dst: &[u8], from_left: bool, to_left: bool) {
    let mut moved = false;
    ctx.atomically(&[src, dst], |t, out| {
        let v = move_element(t, src, dst, from_left, to_left)?;
        moved = v.is_some();
        out.bulk_or_null(v.as_deref());
        Ok(())
    });
    if moved {
        ctx.key_ready(dst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_follow_redis() {
        assert_eq!(clamp_range(7, 0, -1), Some((0, 7)));
        assert_eq!(clamp_range(7, -3, -2), Some((4, 6)));
        assert_eq!(clamp_range(7, 2, 1), None);
        assert_eq!(clamp_range(7, -100, -50), None);
        assert_eq!(clamp_range(7, -100, 0), Some((0, 1)));
        assert_eq!(clamp_range(7, 7, 9), None);
        assert_eq!(clamp_range(3, i64::MIN, i64::MAX), Some((0, 3)));
        assert_eq!(clamp_range(0, 0, -1), None);
        assert_eq!(index(3, -1), Some(2));
        assert_eq!(index(3, -4), None);
        assert_eq!(index(3, 3), None);
        assert_eq!(index(3, i64::MIN), None);
    }

    #[test]
    fn lpos_options() {
        assert_eq!(parse_pos_opts(&[]), Ok(PosOpts { rank: 1, count: None, maxlen: 0 }));
        assert_eq!(parse_pos_opts(&[b"RANK", b"-2", b"count", b"0", b"MaxLen", b"5"]), Ok(PosOpts { rank: -2, count: Some(0), maxlen: 5 }));
        assert_eq!(parse_pos_opts(&[b"count", b"1", b"count", b"2"]).unwrap().count, Some(2));
        assert_eq!(parse_pos_opts(&[b"rank", b"0"]), Err(RANK_ZERO));
        assert_eq!(parse_pos_opts(&[b"rank", b"x"]), Err(NOT_INTEGER));
        assert_eq!(parse_pos_opts(&[b"count", b"x"]), Err("ERR COUNT can't be negative"));
        assert_eq!(parse_pos_opts(&[b"maxlen", b"-1"]), Err("ERR MAXLEN can't be negative"));
        assert_eq!(parse_pos_opts(&[b"rank"]), Err(SYNTAX));
        assert_eq!(parse_pos_opts(&[b"foo", b"1"]), Err(SYNTAX));
    }
}
