//! Sorted-set ranges: ZRANGE (BYSCORE, BYLEX, REV, LIMIT, WITHSCORES),
//! ZRANGEBYSCORE, ZREVRANGEBYSCORE, ZREVRANGE, ZRANGEBYLEX,
//! ZREVRANGEBYLEX, ZCOUNT, ZLEXCOUNT, ZREMRANGEBYSCORE, ZREMRANGEBYRANK,
//! ZREMRANGEBYLEX.
//!
//! Every range becomes a span of ascending ranks `[lo, hi)` found with
//! the set's rank counts (`count_below`, `count_below_lex`), each
//! O(log N); LIMIT's offset is rank arithmetic on that span, and the
//! reply walks only the elements it returns. So a range costs
//! O(log N + M) as Redis documents, offsets included (Redis itself walks
//! past the offset).

use dbkv::engine::zset::ZSet;

use super::score::{parse_score_bound, reply_pairs};
use super::{eq_ignore_case, parse_int, Ctx, NOT_INTEGER, SYNTAX};

const NOT_FLOAT_RANGE: &str = "ERR min or max is not a float";
const NOT_LEX_RANGE: &str = "ERR min or max not valid string range item";

/// One end of a lexicographic range.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Lex<'a> {
    /// `-`: before every member.
    Min,
    /// `+`: after every member.
    Max,
    Incl(&'a [u8]),
    Excl(&'a [u8]),
}

fn parse_lex(b: &[u8]) -> Option<Lex<'_>> {
    match b {
        [b'-'] => Some(Lex::Min),
        [b'+'] => Some(Lex::Max),
        [b'[', rest @ ..] => Some(Lex::Incl(rest)),
        [b'(', rest @ ..] => Some(Lex::Excl(rest)),
        _ => None,
    }
}

/// A parsed range, before it meets a set.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Range<'a> {
    /// Inclusive 0-based indexes, negative from the end (Redis's rule).
    Rank(i64, i64),
    /// (min, exclusive), (max, exclusive).
    Score((f64, bool), (f64, bool)),
    Lex(Lex<'a>, Lex<'a>),
}

fn score_range<'a>(min: &[u8], max: &[u8]) -> Result<Range<'a>, &'static str> {
    match (parse_score_bound(min), parse_score_bound(max)) {
        (Some(a), Some(b)) => Ok(Range::Score(a, b)),
        _ => Err(NOT_FLOAT_RANGE),
    }
}

fn lex_range<'a>(min: &'a [u8], max: &'a [u8]) -> Result<Range<'a>, &'static str> {
    match (parse_lex(min), parse_lex(max)) {
        (Some(a), Some(b)) => Ok(Range::Lex(a, b)),
        _ => Err(NOT_LEX_RANGE),
    }
}

fn rank_range<'a>(start: &[u8], end: &[u8]) -> Result<Range<'a>, &'static str> {
    match (parse_int(start), parse_int(end)) {
        (Some(a), Some(b)) => Ok(Range::Rank(a, b)),
        _ => Err(NOT_INTEGER),
    }
}

/// The ascending ranks `[lo, hi)` of `r`'s members in `z`; `lo == hi`
/// when none. For a rank range read in reverse (ZREVRANGE) the indexes
/// count from the top, so the caller flips them.
fn span(z: &ZSet, r: &Range<'_>) -> (usize, usize) {
    let len = z.len();
    let (lo, hi) = match *r {
        Range::Rank(start, end) => {
            let n = len as i64;
            let start = if start < 0 { (n + start).max(0) } else { start };
            let end = if end < 0 { n + end } else { end.min(n - 1) };
            if start > end || start >= n {
                return (0, 0);
            }
            (start as usize, end as usize + 1)
        }
        Range::Score((min, minex), (max, maxex)) => (z.count_below(min, minex), z.count_below(max, !maxex)),
        Range::Lex(min, max) => {
            let at = |b: Lex<'_>, after_equal: bool| match b {
                Lex::Min => 0,
                Lex::Max => len,
                Lex::Incl(m) => z.count_below_lex(m, after_equal),
                Lex::Excl(m) => z.count_below_lex(m, !after_equal),
            };
            (at(min, false), at(max, true))
        }
    };
    (lo, hi.max(lo))
}

/// What a range command was given.
struct Query<'a> {
    range: Range<'a>,
    rev: bool,
    withscores: bool,
    /// LIMIT offset count (count < 0: no limit).
    offset: i64,
    count: i64,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum By {
    Rank,
    Score,
    Lex,
}

/// Parses `key min max [options]` the way Redis's `zrangeGenericCommand`
/// does: options left to right (REV and BY* only where the command leaves
/// them open), then the conflicting combinations, then the range itself,
/// each step with Redis's error.
fn parse_query<'a>(argv: &[&'a [u8]], by: Option<By>, rev: Option<bool>) -> Result<Query<'a>, &'static str> {
    let (mut by_opt, mut rev_opt) = (by, rev);
    let (mut withscores, mut offset, mut count) = (false, 0, -1);
    let mut j = 4;
    while j < argv.len() {
        let (a, left) = (argv[j], argv.len() - j - 1);
        if eq_ignore_case(a, "withscores") {
            withscores = true;
        } else if eq_ignore_case(a, "limit") && left >= 2 {
            offset = parse_int(argv[j + 1]).ok_or(NOT_INTEGER)?;
            count = parse_int(argv[j + 2]).ok_or(NOT_INTEGER)?;
            j += 2;
        } else if rev_opt.is_none() && eq_ignore_case(a, "rev") {
            rev_opt = Some(true);
        } else if by_opt.is_none() && eq_ignore_case(a, "bylex") {
            by_opt = Some(By::Lex);
        } else if by_opt.is_none() && eq_ignore_case(a, "byscore") {
            by_opt = Some(By::Score);
        } else {
            return Err(SYNTAX);
        }
        j += 1;
    }
    let (by, rev) = (by_opt.unwrap_or(By::Rank), rev_opt.unwrap_or(false));
    // Redis tests the count against its default, so `LIMIT n -1` passes.
    if count != -1 && by == By::Rank {
        return Err("ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX");
    }
    if withscores && by == By::Lex {
        return Err("ERR syntax error, WITHSCORES not supported in combination with BYLEX");
    }
    // Reverse score and lex ranges are written max first.
    let (min, max) = if rev && by != By::Rank { (argv[3], argv[2]) } else { (argv[2], argv[3]) };
    let range = match by {
        By::Rank => rank_range(min, max)?,
        By::Score => score_range(min, max)?,
        By::Lex => lex_range(min, max)?,
    };
    Ok(Query { range, rev, withscores, offset, count })
}

/// Runs a parsed range read: the members (and scores) in order.
fn range_reply(ctx: &mut Ctx<'_, '_>, key: &[u8], q: Query<'_>) {
    ctx.atomically(&[key], |t, out| {
        let Some(z) = t.zset(key)? else {
            out.array(0);
            return Ok(());
        };
        let (lo, hi) = span(z, &q.range);
        let (skip, n) = match q.range {
            Range::Rank(..) => (0, hi - lo),
            // A negative offset skips everything in Redis; a negative count
            // is no limit.
            _ if q.offset < 0 => (0, 0),
            _ => {
                let available = (hi - lo).saturating_sub(q.offset as usize);
                (q.offset as usize, if q.count < 0 { available } else { available.min(q.count as usize) })
            }
        };
        if n == 0 {
            out.array(0);
            return Ok(());
        }
        let items = match (q.rev, q.range) {
            // ZREVRANGE's indexes count from the highest member.
            (true, Range::Rank(..)) => z.iter_rev_from(z.len() - 1 - lo),
            (true, _) => z.iter_rev_from(hi - 1 - skip),
            (false, _) => z.iter_from(lo + skip),
        };
        if q.withscores {
            reply_pairs(out, n, items, true);
        } else {
            out.array(n);
            for (m, _) in items.take(n) {
                out.bulk(m);
            }
        }
        Ok(())
    });
}

fn range_command(ctx: &mut Ctx<'_, '_>, argv: &[&[u8]], by: Option<By>, rev: Option<bool>) {
    match parse_query(argv, by, rev) {
        Ok(q) => range_reply(ctx, argv[1], q),
        Err(m) => ctx.out.error(m),
    }
}

/// `ZRANGE key start stop [BYSCORE|BYLEX] [REV] [LIMIT offset count] [WITHSCORES]`
pub fn zrange(ctx: &mut Ctx<'_, '_>, argv: &[&[u8]]) {
    range_command(ctx, argv, None, None)
}

pub fn zrevrange(ctx: &mut Ctx<'_, '_>, argv: &[&[u8]]) {
    range_command(ctx, argv, Some(By::Rank), Some(true))
}

pub fn zrangebyscore(ctx: &mut Ctx<'_, '_>, argv: &[&[u8]]) {
    range_command(ctx, argv, Some(By::Score), Some(false))
}

pub fn zrevrangebyscore(ctx: &mut Ctx<'_, '_>, argv: &[&[u8]]) {
    range_command(ctx, argv, Some(By::Score), Some(true))
}

pub fn zrangebylex(ctx: &mut Ctx<'_, '_>, argv: &[&[u8]]) {
    range_command(ctx, argv, Some(By::Lex), Some(false))
}

pub fn zrevrangebylex(ctx: &mut Ctx<'_, '_>, argv: &[&[u8]]) {
    range_command(ctx, argv, Some(By::Lex), Some(true))
}

/// How many members a parsed range holds (ZCOUNT, ZLEXCOUNT): two rank
/// counts, no walk.
fn count(ctx: &mut Ctx<'_, '_>, key: &[u8], range: Result<Range<'_>, &'static str>) {
    let range = match range {
        Ok(r) => r,
        Err(m) => return ctx.out.error(m),
    };
    ctx.atomically(&[key], |t, out| {
        let n = t.zset(key)?.map_or(0, |z| {
            let (lo, hi) = span(z, &range);
            hi - lo
        });
        out.int(n as i64);
        Ok(())
    });
}

pub fn zcount(ctx: &mut Ctx<'_, '_>, argv: &[&[u8]]) {
    count(ctx, argv[1], score_range(argv[2], argv[3]))
}

pub fn zlexcount(ctx: &mut Ctx<'_, '_>, argv: &[&[u8]]) {
    count(ctx, argv[1], lex_range(argv[2], argv[3]))
}

/// Removes a parsed range with one range removal (one logged operation).
fn remove(ctx: &mut Ctx<'_, '_>, key: &[u8], range: Result<Range<'_>, &'static str>) {
    let range = match range {
        Ok(r) => r,
        Err(m) => return ctx.out.error(m),
    };
    ctx.atomically(&[key], |t, out| {
        let Some((lo, hi)) = t.zset(key)?.map(|z| span(z, &range)) else {
            out.int(0);
            return Ok(());
        };
        let n = t.zrem_range(key, lo, hi)?;
        out.int(n as i64);
        Ok(())
    });
}

pub fn zremrangebyscore(ctx: &mut Ctx<'_, '_>, argv: &[&[u8]]) {
    remove(ctx, argv[1], score_range(argv[2], argv[3]))
}

pub fn zremrangebyrank(ctx: &mut Ctx<'_, '_>, argv: &[&[u8]]) {
    remove(ctx, argv[1], rank_range(argv[2], argv[3]))
}

pub fn zremrangebylex(ctx: &mut Ctx<'_, '_>, argv: &[&[u8]]) {
    remove(ctx, argv[1], lex_range(argv[2], argv[3]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(pairs: &[(f64, &str)]) -> ZSet {
        let mut z = ZSet::new();
        for (s, m) in pairs {
            z.insert(m.as_bytes(), *s);
        }
        z
    }

    #[test]
    fn spans_follow_redis_bounds() {
        let z = set(&[(1.0, "a"), (2.0, "b"), (3.0, "c"), (4.0, "d"), (5.0, "e")]);
        assert_eq!(span(&z, &Range::Rank(0, -1)), (0, 5));
        assert_eq!(span(&z, &Range::Rank(-2, -1)), (3, 5));
        assert_eq!(span(&z, &Range::Rank(-100, 100)), (0, 5));
        assert_eq!(span(&z, &Range::Rank(3, 1)), (0, 0));
        assert_eq!(span(&z, &Range::Rank(5, 9)), (0, 0));
        assert_eq!(span(&z, &Range::Score((1.0, true), (4.0, true))), (1, 3));
        assert_eq!(span(&z, &Range::Score((2.0, false), (2.0, false))), (1, 2));
        assert_eq!(span(&z, &Range::Score((2.0, true), (2.0, false))), (2, 2));
        assert_eq!(span(&z, &Range::Score((5.0, false), (1.0, false))), (4, 4));
        assert_eq!(span(&z, &Range::Score((f64::NEG_INFINITY, false), (f64::INFINITY, false))), (0, 5));
        let l = set(&[(0.0, "a"), (0.0, "b"), (0.0, "c"), (0.0, "d")]);
        assert_eq!(span(&l, &Range::Lex(Lex::Min, Lex::Max)), (0, 4));
        assert_eq!(span(&l, &Range::Lex(Lex::Incl(b"b"), Lex::Excl(b"d"))), (1, 3));
        assert_eq!(span(&l, &Range::Lex(Lex::Excl(b"b"), Lex::Incl(b"d"))), (2, 4));
        assert_eq!(span(&l, &Range::Lex(Lex::Max, Lex::Min)), (4, 4));
    }

    #[test]
    fn options_and_their_errors() {
        type Parsed = Result<(Range<'static>, bool, bool, i64, i64), &'static str>;
        fn q(args: &[&'static str], by: Option<By>, rev: Option<bool>) -> Parsed {
            let mut v: Vec<&'static [u8]> = vec![b"zrange", b"k"];
            v.extend(args.iter().map(|a| a.as_bytes()));
            parse_query(&v, by, rev).map(|q| (q.range, q.rev, q.withscores, q.offset, q.count))
        }
        assert_eq!(q(&["0", "-1"], None, None), Ok((Range::Rank(0, -1), false, false, 0, -1)));
        assert_eq!(q(&["(5", "1", "BYSCORE", "REV", "LIMIT", "1", "2", "WITHSCORES"], None, None), Ok((Range::Score((1.0, false), (5.0, true)), true, true, 1, 2)));
        assert_eq!(q(&["0", "-1", "REV", "REV"], None, None), Err(SYNTAX));
        assert_eq!(q(&["0", "-1", "BYSCORE", "BYLEX"], None, None), Err(SYNTAX));
        assert_eq!(q(&["0", "-1", "REV"], Some(By::Score), Some(false)), Err(SYNTAX));
        assert_eq!(q(&["0", "-1", "LIMIT", "0"], None, None), Err(SYNTAX));
        assert_eq!(q(&["0", "-1", "LIMIT", "x", "1"], None, None), Err(NOT_INTEGER));
        assert!(q(&["0", "-1", "LIMIT", "0", "1"], None, None).unwrap_err().contains("LIMIT is only supported"));
        assert!(q(&["0", "-1", "LIMIT", "3", "-1"], None, None).is_ok());
        assert!(q(&["-", "+", "WITHSCORES"], Some(By::Lex), Some(false)).unwrap_err().contains("WITHSCORES not supported"));
        assert_eq!(q(&["a", "+"], Some(By::Lex), Some(false)), Err(NOT_LEX_RANGE));
        assert_eq!(q(&["x", "1", "BYSCORE"], None, None), Err(NOT_FLOAT_RANGE));
        assert_eq!(q(&["x", "1"], None, None), Err(NOT_INTEGER));
    }
}
