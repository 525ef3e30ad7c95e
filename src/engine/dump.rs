//! What the operator tools (`dbkv dump`, `dbkv load`, `dbkv stats`) need
//! beyond the normal API: every entry with everything that makes it up
//! (a lock's fencing token included, which readers never see), restoring
//! a lock with the token it was granted with, and a memory estimate.

#![forbid(unsafe_code)]

use std::sync::atomic::Ordering;

use super::entry::{Kind, Value};
use super::list::List;
use super::zset::ZSet;
use super::{check_key, check_owner, Engine};
use crate::error::{Error, Result};
use crate::persistence::record::Record;

/// An entry's value as a dump writes it.
#[derive(Clone, Copy)]
pub enum DumpValue<'a> {
    Bytes(&'a [u8]),
    /// A counter (`incr`/`decr`); reads see its base-10 text.
    Int(i64),
    List(&'a List),
    ZSet(&'a ZSet),
    /// A held lock: its owner and the fencing token it was granted with.
    Lock { owner: &'a [u8], token: u64 },
}

impl std::fmt::Debug for DumpValue<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DumpValue::Bytes(b) => write!(f, "Bytes({:?})", String::from_utf8_lossy(b)),
            DumpValue::Int(n) => write!(f, "Int({n})"),
            DumpValue::List(l) => write!(f, "List(len {})", l.len()),
            DumpValue::ZSet(z) => write!(f, "ZSet(len {})", z.len()),
            DumpValue::Lock { owner, token } => write!(f, "Lock {{ owner: {:?}, token: {token} }}", String::from_utf8_lossy(owner)),
        }
    }
}

/// Bytes per entry beyond its block: the 8-byte slot, the hash table's
/// control byte and load-factor slack, and the arena's rounding to 8 and
/// its partly filled chunks.
const ENTRY_OVERHEAD: u64 = 8 + 1 + 8 + 8;

impl Engine {
    /// Calls `f(key, value, expires_at)` for every entry of one shard that
    /// is live at `now_ms`, under the shard's read lock (so `f` must not
    /// call back into the engine). Passing the same `now_ms` for every
    /// shard makes a whole-table walk agree on which keys have expired.
    pub fn dump_shard(&self, shard: usize, now_ms: u64, mut f: impl FnMut(&[u8], DumpValue<'_>, u64)) -> Result<()> {
        self.check_usable()?;
        let s = self.inner.shards.get(shard).ok_or_else(|| Error::InvalidArgument(format!("shard {shard} does not exist")))?.read();
        for e in s.iter_live(now_ms) {
            let value = match (e.kind(), e.value()) {
                (Kind::Lock, Value::Bytes(owner)) => DumpValue::Lock { owner, token: e.lock_token().unwrap_or(0) },
                (_, Value::Bytes(b)) => DumpValue::Bytes(b),
                (_, Value::Int(n)) => DumpValue::Int(n),
                (_, Value::List(l)) => DumpValue::List(l),
                (_, Value::ZSet(z)) => DumpValue::ZSet(z),
            };
            f(e.key(), value, e.expires_at());
        }
        Ok(())
    }

    /// Stores a lock held by `owner` with fencing token `token` until the
    /// absolute time `expires_at` (unix ms, never 0), replacing any entry
    /// at `key`: what `dbkv load` restores a dumped lock with. The token
    /// counter is raised to at least `token`, so the next grant gets a
    /// larger one, and the Lock record carries the token to recovery.
    pub fn restore_lock(&self, key: &[u8], owner: &[u8], token: u64, expires_at: u64) -> Result<()> {
        check_key(key)?;
        check_owner(owner)?;
        self.check_value(owner)?;
        if expires_at == 0 || expires_at >= i64::MAX as u64 {
            return Err(Error::InvalidArgument(format!("lock expiry {expires_at} ms: a lock needs an expiry (unix ms, above 0)")));
        }
        if token == 0 {
            return Err(Error::InvalidArgument("fencing token 0 is never granted".into()));
        }
        self.check_writable()?;
        let lsn = {
            let (mut s, _) = self.write_shard(key, super::OpKind::Lock);
            s.put_lock(key, owner, token, expires_at);
            self.inner.last_token.fetch_max(token, Ordering::Relaxed);
            self.log(&Record::Lock { key, owner, expires_at, token })?
        };
        self.commit(lsn, false)
    }

    /// Approximate heap bytes the table holds: entry blocks, collections
    /// and per-entry table overhead (expired entries not yet swept
    /// included, since they take memory until then).
    pub fn memory_estimate(&self) -> u64 {
        let mut total = 0u64;
        for shard in self.inner.shards.iter() {
            let s = shard.read();
            for e in s.iter() {
                let coll = match e.value() {
                    Value::List(l) => l.heap_bytes(),
                    Value::ZSet(z) => z.heap_bytes(),
                    _ => 0,
                };
                total += e.block_size() as u64 + coll as u64 + ENTRY_OVERHEAD;
            }
        }
        total
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{LockOutcome, Options, Scope};

    fn dump_all(e: &Engine) -> Vec<(Vec<u8>, String, u64)> {
        let now = e.now_ms();
        let mut out = Vec::new();
        for i in 0..e.shard_count() {
            e.dump_shard(i, now, |k, v, exp| out.push((k.to_vec(), format!("{v:?}"), exp))).unwrap();
        }
        out.sort();
        out
    }

    #[test]
    fn dump_shows_lock_tokens_and_every_kind() {
        let e = Engine::open(Options::default()).unwrap();
        e.set(b"s", b"v", 0).unwrap();
        e.incr(b"n", 5).unwrap();
        let LockOutcome::Granted(t) = e.lock(b"l", b"me", 60_000).unwrap() else { panic!() };
        e.transact(Scope::Keys(&[b"q"]), |t| t.list_push(b"q", false, &[b"a"])).unwrap().unwrap();
        e.set(b"gone", b"x", 1).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(5));
        let d = dump_all(&e);
        assert_eq!(d.len(), 4, "{d:?}");
        assert!(d.iter().any(|(k, v, exp)| k == b"l" && v.contains(&format!("token: {t}")) && *exp > 0), "{d:?}");
        assert!(d.iter().any(|(k, v, _)| k == b"n" && v == "Int(5)"));
        assert!(e.memory_estimate() > 5 * ENTRY_OVERHEAD);
    }

    #[test]
    fn restored_lock_keeps_its_token_and_later_grants_exceed_it() {
        let e = Engine::open(Options::default()).unwrap();
        let exp = e.now_ms() + 60_000;
        e.restore_lock(b"l", b"owner", 1000, exp).unwrap();
        assert_eq!(e.last_token(), 1000);
        assert!(dump_all(&e)[0].1.contains("token: 1000"));
        assert_eq!(e.lock(b"other", b"x", 1000).unwrap(), LockOutcome::Granted(1001));
        assert_eq!(e.lock(b"l", b"intruder", 1000).unwrap(), LockOutcome::Locked);
        assert!(e.restore_lock(b"l", b"o", 5, 0).is_err(), "a lock needs an expiry");
        assert!(e.restore_lock(b"l", b"o", 0, exp).is_err(), "token 0 is never granted");
    }
}
