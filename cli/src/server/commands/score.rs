//! Sorted-set scores as Redis 7.0 reads and writes them.
//!
//! Redis reads scores with C's `strtod` and prints them with `%.17g`, so
//! clients see exactly those texts: hexadecimal input is a number,
//! `0.1` comes back as `0.10000000000000001`, `1e20` as `1e+20`. ZADD's
//! score and range bounds read the same syntax but refuse different
//! things (a score refuses overflow and leading spaces, a bound takes
//! both), hence the two entry points over one `strtod`.

use crate::server::reply::Reply;

/// What `strtod` made of a whole argument.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Strtod {
    value: f64,
    /// ERANGE: a finite text too large for a double (read as ±inf).
    overflow: bool,
    /// ERANGE: a nonzero text too small for a double (read as 0).
    underflow_to_zero: bool,
}

/// C's whitespace (`isspace` in the C locale).
fn c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r')
}

/// `strtod` over all of `s` after leading whitespace; `None` unless it
/// consumes everything (what Redis checks with `eptr`).
fn strtod(s: &[u8]) -> Option<Strtod> {
    let start = s.iter().position(|&b| !c_space(b))?;
    let text = std::str::from_utf8(&s[start..]).ok()?;
    let (neg, body) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if body.len() > 2 && (body.starts_with("0x") || body.starts_with("0X")) {
        let v = parse_hex(&body[2..])?;
        return Some(Strtod { value: if neg { -v } else { v }, overflow: v.is_infinite(), underflow_to_zero: false });
    }
    // Rust's grammar is strtod's decimal one (inf, infinity and nan
    // included, case-insensitively); only range errors need recomputing.
    let value: f64 = text.parse().ok()?;
    let literal_inf = body.as_bytes().first().is_some_and(|c| c.eq_ignore_ascii_case(&b'i'));
    let mantissa = body.split(['e', 'E']).next().unwrap_or("");
    let nonzero_digits = mantissa.bytes().any(|c| (b'1'..=b'9').contains(&c));
    Some(Strtod {
        value,
        overflow: value.is_infinite() && !literal_inf,
        underflow_to_zero: value == 0.0 && nonzero_digits,
    })
}

/// The digits after `0x`: `h[.h][p[+-]d]`, as strtod reads them. Digits
/// past the 16th only scale the value (their bits are below a double's
/// precision anyway).
fn parse_hex(s: &str) -> Option<f64> {
    let (mant, exp) = match s.find(['p', 'P']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let (int, frac) = mant.split_once('.').unwrap_or((mant, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let (mut m, mut e2, mut used) = (0u64, 0i64, 0);
    for (i, c) in int.chars().chain(frac.chars()).enumerate() {
        let d = c.to_digit(16)? as u64;
        if used < 16 {
            m = m * 16 + d;
            used += usize::from(m != 0);
            if i >= int.len() {
                e2 -= 4;
            }
        } else if i < int.len() {
            e2 += 4;
        }
    }
    if let Some(e) = exp {
        let digits = e.strip_prefix(['+', '-']).unwrap_or(e);
        if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        e2 += e.parse::<i64>().unwrap_or(if e.starts_with('-') { -100_000 } else { 100_000 });
    }
    Some(m as f64 * 2f64.powi(e2.clamp(-100_000, 100_000) as i32))
}

/// A score argument (ZADD, ZINCRBY) as Redis's `getDoubleFromObject`
/// takes it: no leading space, no NaN, no overflow or underflow to zero.
/// `-0` becomes `0`, as Redis's compact encoding stores it, so small and
/// large sets answer alike.
pub fn parse_score(b: &[u8]) -> Option<f64> {
    if b.is_empty() || c_space(b[0]) {
        return None;
    }
    let r = strtod(b)?;
    if r.value.is_nan() || r.overflow || r.underflow_to_zero {
        return None;
    }
    Some(r.value + 0.0)
}

/// One end of a score range (`zslParseRange`): `(` makes it exclusive;
/// the rest is strtod up to the first NUL, where an empty text reads as
/// 0 and overflow is ±inf. `(value, exclusive)`.
pub fn parse_score_bound(b: &[u8]) -> Option<(f64, bool)> {
    let (ex, rest) = match b.first() {
        Some(b'(') => (true, &b[1..]),
        _ => (false, b),
    };
    let rest = &rest[..rest.iter().position(|&c| c == 0).unwrap_or(rest.len())];
    let v = if rest.is_empty() { 0.0 } else { strtod(rest)?.value };
    (!v.is_nan()).then_some((v, ex))
}

/// `%.17g`: 17 significant digits, trailing zeros dropped, exponent form
/// below 1e-4 and from 1e17.
pub fn format_score(v: f64) -> String {
    if v.is_infinite() {
        return if v > 0.0 { "inf" } else { "-inf" }.into();
    }
    if v == 0.0 {
        return if v.is_sign_negative() { "-0" } else { "0" }.into();
    }
    let sci = format!("{v:.16e}");
    let (mant, exp) = sci.split_once('e').expect("exponent form");
    let exp: i32 = exp.parse().expect("exponent");
    if !(-4..17).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{}e{sign}{:02}", strip_zeros(mant), exp.abs())
    } else {
        strip_zeros(&format!("{v:.*}", (16 - exp) as usize)).to_string()
    }
}

fn strip_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

/// A score reply: a bulk string in RESP2, a `,` double in RESP3.
pub fn reply_score(out: &mut Reply<'_>, v: f64) {
    let text = format_score(v);
    if out.resp3 {
        out.buf.push(b',');
        out.buf.extend_from_slice(text.as_bytes());
        out.buf.extend_from_slice(b"\r\n");
    } else {
        out.bulk(text.as_bytes());
    }
}

/// A score or nil (ZSCORE, ZMSCORE, ZADD INCR).
pub fn reply_score_or_null(out: &mut Reply<'_>, v: Option<f64>) {
    match v {
        Some(v) => reply_score(out, v),
        None => out.null(),
    }
}

/// Members with their scores: `[m, s, m, s]` in RESP2, `[[m, s], ...]`
/// in RESP3 (`nested`), as ZRANGE WITHSCORES and ZPOPMIN with a count.
pub fn reply_pairs<'m>(out: &mut Reply<'_>, n: usize, items: impl Iterator<Item = (&'m [u8], f64)>, nested: bool) {
    let nested = nested && out.resp3;
    out.array(if nested { n } else { 2 * n });
    for (m, s) in items.take(n) {
        if nested {
            out.array(2);
        }
        out.bulk(m);
        reply_score(out, s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_like_percent_17g() {
        for (v, s) in [
            (0.1, "0.10000000000000001"),
            (1.0, "1"),
            (-2.5, "-2.5"),
            (1e20, "1e+20"),
            (123456789012345678.0, "1.2345678901234568e+17"),
            (1e16, "10000000000000000"),
            (1e-5, "1.0000000000000001e-05"),
            (0.0001, "0.0001"),
            (1e-320, "9.9998886718268301e-321"),
            (1.0 / 3.0, "0.33333333333333331"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
            (0.0, "0"),
        ] {
            assert_eq!(format_score(v), s, "{v:e}");
        }
    }

    #[test]
    fn reads_scores_like_redis() {
        for (t, v) in [("1", 1.0), ("-1.5", -1.5), ("inf", f64::INFINITY), ("+inf", f64::INFINITY), ("-INF", f64::NEG_INFINITY), ("Infinity", f64::INFINITY), ("0x10", 16.0), ("-0x1p-2", -0.25), ("0x.8", 0.5), (".5", 0.5), ("5.", 5.0), ("1e-320", 1e-320), ("-0", 0.0)] {
            assert_eq!(parse_score(t.as_bytes()), Some(v), "{t}");
        }
        assert!(parse_score(b"-0").unwrap().is_sign_positive());
        for t in ["", " 1", "1 ", "nan", "NaN", "abc", "1e400", "-1e400", "1e-400", "0x", "1e", "1\x002", "0x1p", "inf "] {
            assert_eq!(parse_score(t.as_bytes()), None, "{t:?}");
        }
    }

    #[test]
    fn reads_bounds_like_zslparserange() {
        assert_eq!(parse_score_bound(b"(1"), Some((1.0, true)));
        assert_eq!(parse_score_bound(b"("), Some((0.0, true)));
        assert_eq!(parse_score_bound(b""), Some((0.0, false)));
        assert_eq!(parse_score_bound(b" 2"), Some((2.0, false)));
        assert_eq!(parse_score_bound(b"1e400"), Some((f64::INFINITY, false)));
        assert_eq!(parse_score_bound(b"-inf"), Some((f64::NEG_INFINITY, false)));
        assert_eq!(parse_score_bound(b"3\x00junk"), Some((3.0, false)));
        for t in ["2 ", " ", "x", "nan", "((1", "[1"] {
            assert_eq!(parse_score_bound(t.as_bytes()), None, "{t:?}");
        }
    }
}
