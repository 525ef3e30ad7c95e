//! `DBKV.FENCED lockkey token command [args...]`: runs a write command only
//! while `lockkey` is a live lock granted (DBKV.LOCK) with exactly
//! `token`; otherwise `-FENCED stale token` and nothing is written.
//!
//! This is what makes a fencing token useful: a lock holder that paused
//! past its lease (GC, swap, a stopped VM) and lost the lock to a newer
//! token is refused by the store itself, which is the only party that
//! sees both writes in order. The check and the command run in one engine
//! transaction over the lock key and the command's keys, so no other
//! client can take the lock between them, and their writes are one WAL
//! record. The command's own handler runs inside that transaction (as
//! EXEC runs queued commands), so every write command is fenced the same
//! way with no code of its own.

use dbkv::engine::{Scope, Txn};
use dbkv::Error;

use super::{arity_error, engine_error, flag, lookup, parse_int, unknown_command, Ctx, Spec, NOT_INTEGER};
use crate::server::reply::Reply;

pub const STALE: &str = "FENCED stale token";

/// Commands that may block for data (the list and sorted-set BPOPs,
/// WAIT...): a fenced write runs under shard locks and must not wait.
const BLOCKING: &[&str] = &["blpop", "brpop", "brpoplpush", "blmove", "blmpop", "bzpopmin", "bzpopmax", "bzmpop", "xread", "xreadgroup", "wait", "waitaof"];

/// The keys of a DBKV.FENCED call: the lock key and the inner command's
/// (for EXEC's and COMMAND GETKEYS's key lists).
pub fn keys<'k>(argv: &[&'k [u8]]) -> Vec<&'k [u8]> {
    let mut keys = argv.get(1).map(|k| vec![*k]).unwrap_or_default();
    if let Some(spec) = argv.get(3).and_then(|name| lookup(name)).filter(|s| s.name != "dbkv.fenced") {
        keys.extend(spec.keys(&argv[3..]));
    }
    keys
}

/// Why `inner` cannot run fenced, if it cannot.
fn refusal(spec: &Spec, inner: &[&[u8]], in_exec: bool) -> Option<String> {
    let upper = spec.name.to_ascii_uppercase();
    if spec.name == "dbkv.fenced" {
        return Some("ERR DBKV.FENCED cannot be nested".into());
    }
    if spec.flags & (flag::NO_QUEUE | flag::NO_MULTI) != 0 || BLOCKING.contains(&spec.name) {
        return Some(format!("ERR DBKV.FENCED cannot run '{upper}': transaction control, blocking and engine-waiting commands are refused"));
    }
    if spec.flags & flag::WRITE == 0 {
        return Some(format!("ERR DBKV.FENCED runs write commands only; '{upper}' does not write"));
    }
    if in_exec && spec.flags & flag::ALL_KEYS != 0 {
        return Some(format!("ERR DBKV.FENCED cannot run '{upper}' inside MULTI: it needs every shard, which EXEC does not hold for it"));
    }
    let n = inner.len() as i32;
    if (spec.arity > 0 && n != spec.arity) || (spec.arity < 0 && n < -spec.arity) {
        return Some(arity_error(spec.name));
    }
    None
}

pub fn fenced(ctx: &mut Ctx<'_, '_>, argv: &[&[u8]]) {
    let lock_key = argv[1];
    // Tokens are positive; anything else cannot name a grant.
    let Some(token) = parse_int(argv[2]).filter(|&t| t >= 0) else {
        return ctx.out.error(NOT_INTEGER);
    };
    let inner = &argv[3..];
    let Some(spec) = lookup(inner[0]) else { return ctx.out.error(&unknown_command(inner)) };
    if let Some(why) = refusal(spec, inner, ctx.txn.is_some()) {
        return ctx.out.error(&why);
    }
    let keys = keys(argv);
    let (srv, resp3) = (ctx.srv, ctx.client.resp3);
    let mark = ctx.out.buf.len();
    let Ctx { client, out, txn, .. } = ctx;
    let out = &mut *out.buf;
    let mut run = |t: &mut Txn<'_>| -> Result<(), Error> {
        if !t.fence_holds(lock_key, token as u64)? {
            Reply { buf: out, resp3 }.error(STALE);
            return Ok(());
        }
        (spec.run)(&mut Ctx { srv, client, out: Reply { buf: out, resp3 }, txn: Some(t) }, inner);
        Ok(())
    };
    let r = match txn.as_deref_mut() {
        Some(t) => run(t),
        None if spec.flags & flag::ALL_KEYS != 0 => srv.engine.transact(Scope::All, run).and_then(|r| r),
        None => srv.engine.transact(Scope::Keys(&keys), run).and_then(|r| r),
    };
    if let Err(e) = r {
        ctx.out.buf.truncate(mark);
        ctx.out.error(&engine_error(&e));
    }
}
