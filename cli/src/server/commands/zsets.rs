//! Sorted-set commands on members: ZADD, ZINCRBY, ZREM, ZCARD, ZSCORE,
//! ZMSCORE, ZRANK, ZREVRANK, ZPOPMIN, ZPOPMAX. Ranges (ZRANGE and its
//! variants, ZCOUNT, ZREMRANGEBY*) are in `zrange.rs`.
//!
//! Each command is one `ctx.atomically` transaction over its key, so it is
//! atomic, logs one record, and runs unchanged inside EXEC and
//! DBKV.FENCED. Arguments are checked before the transaction and the set
//! is read before anything is written (the engine applies writes at once
//! and does not roll back), so a refused command changes nothing.

use std::collections::HashMap;

use super::score::{parse_score, reply_pairs, reply_score, reply_score_or_null};
use super::{arity_error, eq_ignore_case, parse_int, Ctx, NOT_FLOAT, SYNTAX};

const NAN_RESULT: &str = "ERR resulting score is not a number (NaN)";
const POSITIVE: &str = "ERR value is out of range, must be positive";

/// ZADD's options.
#[derive(Default, Clone, Copy)]
struct AddFlags {
    nx: bool,
    xx: bool,
    gt: bool,
    lt: bool,
    ch: bool,
    incr: bool,
}

/// `ZADD key [NX|XX] [GT|LT] [CH] [INCR] score member [score member ...]`
/// with Redis 7's checks in Redis's order.
pub fn zadd(ctx: &mut Ctx<'_, '_>, argv: &[&[u8]]) {
    let mut f = AddFlags::default();
    let mut i = 2;
    while let Some(a) = argv.get(i) {
        let flag = match () {
            _ if eq_ignore_case(a, "nx") => &mut f.nx,
            _ if eq_ignore_case(a, "xx") => &mut f.xx,
            _ if eq_ignore_case(a, "gt") => &mut f.gt,
            _ if eq_ignore_case(a, "lt") => &mut f.lt,
            _ if eq_ignore_case(a, "ch") => &mut f.ch,
            _ if eq_ignore_case(a, "incr") => &mut f.incr,
            _ => break,
        };
        *flag = true;
        i += 1;
    }
    let rest = &argv[i..];
    if rest.is_empty() || rest.len() % 2 != 0 {
        return ctx.out.error(SYNTAX);
    }
    if f.nx && f.xx {
        return ctx.out.error("ERR XX and NX options at the same time are not compatible");
    }
    if (f.gt || f.lt) && f.nx || (f.gt && f.lt) {
        return ctx.out.error("ERR GT, LT, and/or NX options at the same time are not compatible");
    }
    if f.incr && rest.len() > 2 {
        return ctx.out.error("ERR INCR option supports a single increment-element pair");
    }
    let mut pairs = Vec::with_capacity(rest.len() / 2);
    for p in rest.chunks(2) {
        let Some(score) = parse_score(p[0]) else { return ctx.out.error(NOT_FLOAT) };
        pairs.push((score, p[1]));
    }
    add(ctx, argv[1], &pairs, f);
}

/// `ZINCRBY key increment member`: ZADD INCR without options.
pub fn zincrby(ctx: &mut Ctx<'_, '_>, argv: &[&[u8]]) {
    let Some(by) = parse_score(argv[2]) else { return ctx.out.error(NOT_FLOAT) };
    add(ctx, argv[1], &[(by, argv[3])], AddFlags { incr: true, ..AddFlags::default() });
}

/// Applies ZADD's pairs in order, as Redis's `zsetAdd` does one by one
/// (so a member named twice is added, then updated), computing every
/// outcome before the one engine write that stores the final scores.
fn add(ctx: &mut Ctx<'_, '_>, key: &[u8], pairs: &[(f64, &[u8])], f: AddFlags) {
    ctx.atomically(&[key], |t, out| {
        let current = t.zset(key)?;
        let (mut added, mut updated, mut last) = (0i64, 0i64, None);
        if current.is_some() || !f.xx {
            // Scores this command has set so far, in first-touch order.
            let mut now: HashMap<&[u8], f64> = HashMap::new();
            let mut order: Vec<&[u8]> = Vec::new();
            for &(score, m) in pairs {
                let before = now.get(m).copied().or_else(|| current.and_then(|z| z.score(m)));
                let new = match before {
                    Some(_) if f.nx => continue,
                    Some(cur) => {
                        let s = if f.incr { cur + score } else { score };
                        if s.is_nan() {
                            out.error(NAN_RESULT);
                            return Ok(());
                        }
                        if (f.lt && s >= cur) || (f.gt && s <= cur) {
                            continue;
                        }
                        last = Some(s);
                        if s == cur {
                            continue;
                        }
                        updated += 1;
                        s
                    }
                    None if f.xx => continue,
                    None => {
                        added += 1;
                        last = Some(score);
                        score
                    }
                };
                if now.insert(m, new).is_none() {
                    order.push(m);
                }
            }
            let changed: Vec<(f64, &[u8])> = order.iter().map(|m| (now[m], *m)).collect();
            t.zadd(key, &changed)?;
        }
        if f.incr {
            reply_score_or_null(out, last);
        } else {
            out.int(if f.ch { added + updated } else { added });
        }
        Ok(())
    });
}

pub fn zrem(ctx: &mut Ctx<'_, '_>, argv: &[&[u8]]) {
    let (key, members) = (argv[1], &argv[2..]);
    ctx.atomically(&[key], |t, out| {
        let n = t.zrem(key, members)?;
        out.int(n as i64);
        Ok(())
    });
}

pub fn zcard(ctx: &mut Ctx<'_, '_>, argv: &[&[u8]]) {
    let key = argv[1];
    ctx.atomically(&[key], |t, out| {
        out.int(t.zset(key)?.map_or(0, |z| z.len()) as i64);
        Ok(())
    });
}

pub fn zscore(ctx: &mut Ctx<'_, '_>, argv: &[&[u8]]) {
    let (key, member) = (argv[1], argv[2]);
    ctx.atomically(&[key], |t, out| {
        reply_score_or_null(out, t.zset(key)?.and_then(|z| z.score(member)));
        Ok(())
    });
}

pub fn zmscore(ctx: &mut Ctx<'_, '_>, argv: &[&[u8]]) {
    let (key, members) = (argv[1], &argv[2..]);
    ctx.atomically(&[key], |t, out| {
        let z = t.zset(key)?;
        out.array(members.len());
        for m in members {
            reply_score_or_null(out, z.and_then(|z| z.score(m)));
        }
        Ok(())
    });
}

pub fn zrank(ctx: &mut Ctx<'_, '_>, argv: &[&[u8]]) {
    rank(ctx, argv, false)
}

pub fn zrevrank(ctx: &mut Ctx<'_, '_>, argv: &[&[u8]]) {
    rank(ctx, argv, true)
}

/// `Z[REV]RANK key member [WITHSCORE]`. WITHSCORE is Redis 7.2's (7.0
/// refuses it as an arity error): `[rank, score]`, or a nil array.
fn rank(ctx: &mut Ctx<'_, '_>, argv: &[&[u8]], rev: bool) {
    let withscore = match argv {
        [_, _, _] => false,
        [_, _, _, opt] if eq_ignore_case(opt, "withscore") => true,
        [_, _, _, _] => return ctx.out.error(SYNTAX),
        _ => return ctx.out.error(&arity_error(if rev { "zrevrank" } else { "zrank" })),
    };
    let (key, member) = (argv[1], argv[2]);
    ctx.atomically(&[key], |t, out| {
        let z = t.zset(key)?;
        let found = z.and_then(|z| Some((z.rank(member)?, z.score(member)?, z.len())));
        match found {
            None if withscore => out.null_array(),
            None => out.null(),
            Some((r, score, len)) => {
                let r = if rev { len - 1 - r } else { r };
                if withscore {
                    out.array(2);
                    out.int(r as i64);
                    reply_score(out, score);
                } else {
                    out.int(r as i64);
                }
            }
        }
        Ok(())
    });
}

pub fn zpopmin(ctx: &mut Ctx<'_, '_>, argv: &[&[u8]]) {
    pop(ctx, argv, false)
}

pub fn zpopmax(ctx: &mut Ctx<'_, '_>, argv: &[&[u8]]) {
    pop(ctx, argv, true)
}

/// `ZPOP{MIN,MAX} key [count]`: the lowest (highest) members, removed with
/// one range removal. Without a count the reply is one flat pair even in
/// RESP3; with one, RESP3 nests each pair (as Redis 7).
fn pop(ctx: &mut Ctx<'_, '_>, argv: &[&[u8]], max: bool) {
    let count = match argv {
        [_, _] => None,
        [_, _, c] => match parse_int(c) {
            Some(n) if n >= 0 => Some(n as u64),
            _ => return ctx.out.error(POSITIVE),
        },
        _ => return ctx.out.error(SYNTAX),
    };
    let key = argv[1];
    ctx.atomically(&[key], |t, out| {
        let Some(z) = t.zset(key)? else {
            out.array(0);
            return Ok(());
        };
        let len = z.len();
        let n = count.unwrap_or(1).min(len as u64) as usize;
        let popped: Vec<(Vec<u8>, f64)> = if max {
            z.iter_rev_from(len.saturating_sub(1)).take(n).map(|(m, s)| (m.to_vec(), s)).collect()
        } else {
            z.iter().take(n).map(|(m, s)| (m.to_vec(), s)).collect()
        };
        let start = if max { len - n } else { 0 };
        t.zrem_range(key, start, start + n)?;
        reply_pairs(out, n, popped.iter().map(|(m, s)| (m.as_slice(), *s)), count.is_some());
        Ok(())
    });
}
