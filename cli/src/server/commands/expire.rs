//! The EXPIRE family, TTL/PTTL, EXPIRETIME/PEXPIRETIME and PERSIST.

use dbkv::engine::Txn;
use dbkv::Error;

use super::{eq_ignore_case, parse_int, Ctx, NOT_INTEGER};

use super::keys::hit;

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
