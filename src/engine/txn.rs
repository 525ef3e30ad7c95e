//! Transactions: any number of reads and writes under the write locks of
//! every shard they touch, logged as one WAL record. No reader sees part
//! of a transaction, and recovery restores all of its writes or none (a
//! single checksummed record), which is what Redis's `MULTI`/`EXEC` and
//! every read-modify-write command of the server need.
//!
//! The closure validates before it mutates: each mutation is applied to
//! the table at once (so later reads in the same transaction see it) and
//! remembered as its result, never its intent, so replay is exact.

#![forbid(unsafe_code)]

use std::sync::RwLockWriteGuard;

use super::entry::Value;
use super::shard::ShardData;
use super::{check_key, Engine, Inner};
use crate::error::{Error, Result};
use crate::persistence::coll_record::CollOp;
use crate::persistence::record::{Record, MAX_RECORD_BODY};

/// Which shards a transaction locks.
#[derive(Clone, Copy)]
pub enum Scope<'a> {
    /// The shards of these keys; the transaction may touch no other key.
    Keys(&'a [&'a [u8]]),
    /// Every shard (FLUSHALL, KEYS inside MULTI, ...).
    All,
}

/// A live entry as a transaction sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Found<'t> {
    pub value: Value<'t>,
    /// Absolute unix milliseconds, 0 = none.
    pub expires_at: u64,
}

/// A watched key and the version it had when watched (`Engine::watch`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watch {
    key: Vec<u8>,
    version: u64,
}

impl Watch {
    pub fn key(&self) -> &[u8] {
        &self.key
    }
}

/// One logged mutation, owned until the transaction ends.
enum Op {
    Set { key: Vec<u8>, value: Vec<u8>, expires_at: u64 },
    SetInt { key: Vec<u8>, value: i64, expires_at: u64 },
    Delete { key: Vec<u8> },
    Expire { key: Vec<u8>, expires_at: u64 },
    Clear,
    Coll(CollOp<Vec<u8>>),
}

impl Op {
    fn record(&self) -> Record<'_> {
        match self {
            Op::Set { key, value, expires_at } => Record::Set { key, value, expires_at: *expires_at },
            Op::SetInt { key, value, expires_at } => Record::SetInt { key, value: *value, expires_at: *expires_at },
            Op::Delete { key } => Record::Delete { key },
            Op::Expire { key, expires_at } => Record::Expire { key, expires_at: *expires_at },
            Op::Clear => Record::Clear,
            Op::Coll(op) => Record::Coll(borrow_op(op)),
        }
    }
}

fn borrow_op(op: &CollOp<Vec<u8>>) -> CollOp<&[u8]> {
    match op {
        CollOp::Push { key, left, elems } => CollOp::Push { key, left: *left, elems: elems.iter().map(Vec::as_slice).collect() },
        CollOp::Pop { key, left, count } => CollOp::Pop { key, left: *left, count: *count },
        CollOp::LSet { key, index, value } => CollOp::LSet { key, index: *index, value },
        CollOp::LTrim { key, start, end } => CollOp::LTrim { key, start: *start, end: *end },
        CollOp::LRem { key, count, value } => CollOp::LRem { key, count: *count, value },
        CollOp::ZAdd { key, pairs } => CollOp::ZAdd { key, pairs: pairs.iter().map(|(s, m)| (*s, m.as_slice())).collect() },
        CollOp::ZRem { key, members } => CollOp::ZRem { key, members: members.iter().map(Vec::as_slice).collect() },
        CollOp::ZRemRange { key, start, end } => CollOp::ZRemRange { key, start: *start, end: *end },
    }
}

/// An open transaction; see the module docs.
pub struct Txn<'e> {
    engine: &'e Engine,
    /// Sorted by shard index.
    guards: Vec<(usize, RwLockWriteGuard<'e, ShardData>)>,
    all: bool,
    now: u64,
    ops: Vec<Op>,
    /// Encoded size of `ops` so far, bounded like any record.
    body: usize,
}

/// Bytes an operation adds to a batch record besides its key and value.
const OP_OVERHEAD: usize = 32;

impl<'e> Txn<'e> {
    fn inner(&self) -> &'e Inner {
        &self.engine.inner
    }

    /// The time the transaction runs at (unix ms); every expiry check in
    /// it uses this one instant.
    pub fn now(&self) -> u64 {
        self.now
    }

    fn shard(&self, key: &[u8]) -> Result<&ShardData> {
        check_key(key)?;
        let i = self.inner().shard_index(key);
        match self.guards.binary_search_by_key(&i, |(j, _)| *j) {
            Ok(at) => Ok(&self.guards[at].1),
            Err(_) => Err(out_of_scope(key)),
        }
    }

    fn shard_mut(&mut self, key: &[u8]) -> Result<&mut ShardData> {
        check_key(key)?;
        let i = self.inner().shard_index(key);
        match self.guards.binary_search_by_key(&i, |(j, _)| *j) {
            Ok(at) => Ok(&mut self.guards[at].1),
            Err(_) => Err(out_of_scope(key)),
        }
    }

    pub(super) fn engine(&self) -> &'e Engine {
        self.engine
    }

    pub(super) fn shard_mut_checked(&mut self, key: &[u8]) -> Result<&mut ShardData> {
        self.shard_mut(key)
    }

    pub(super) fn reserve_bytes(&mut self, bytes: usize) -> Result<()> {
        self.reserve(bytes)
    }

    /// True if the table holds an expired entry for `key`.
    pub(super) fn holds_expired(&self, key: &[u8]) -> Result<bool> {
        let now = self.now;
        let s = self.shard(key)?;
        Ok(s.entry_kind(key).is_some() && s.live(key, || now).is_none())
    }

    /// Removes any entry for `key`, live or expired, and logs it.
    pub(super) fn remove_logged(&mut self, key: &[u8]) -> Result<()> {
        self.reserve(key.len())?;
        self.shard_mut(key)?.remove_any(key);
        self.ops.push(Op::Delete { key: key.to_vec() });
        Ok(())
    }

    pub(super) fn push_coll(&mut self, op: CollOp<Vec<u8>>) {
        self.ops.push(Op::Coll(op));
    }

    /// The fencing token of the live lock at `key` (None if the key is
    /// absent, expired or not a lock).
    pub fn lock_token(&self, key: &[u8]) -> Result<Option<u64>> {
        let now = self.now;
        Ok(self.shard(key)?.live(key, || now).and_then(|e| e.lock_token()))
    }

    /// The live entry for `key`, if any.
    pub fn get(&self, key: &[u8]) -> Result<Option<Found<'_>>> {
        let now = self.now;
        Ok(self.shard(key)?.live(key, || now).map(|e| Found { value: e.value(), expires_at: e.expires_at() }))
    }

    fn reserve(&mut self, bytes: usize) -> Result<()> {
        let body = self.body.saturating_add(bytes + OP_OVERHEAD);
        if body > MAX_RECORD_BODY {
            return Err(Error::TooLarge(format!("the transaction encodes to over {MAX_RECORD_BODY} bytes")));
        }
        self.body = body;
        Ok(())
    }

    /// Stores bytes (replacing any entry) with an absolute expiry.
    pub fn put(&mut self, key: &[u8], value: &[u8], expires_at: u64) -> Result<()> {
        self.engine.check_value(value)?;
        check_expiry(expires_at)?;
        self.shard(key)?;
        self.reserve(key.len() + value.len())?;
        self.shard_mut(key)?.put_bytes(key, value, expires_at);
        self.ops.push(Op::Set { key: key.to_vec(), value: value.to_vec(), expires_at });
        Ok(())
    }

    /// Stores a counter (replacing any entry) with an absolute expiry.
    pub fn put_int(&mut self, key: &[u8], value: i64, expires_at: u64) -> Result<()> {
        check_expiry(expires_at)?;
        self.shard(key)?;
        self.reserve(key.len() + 8)?;
        self.shard_mut(key)?.put_int(key, value, expires_at);
        self.ops.push(Op::SetInt { key: key.to_vec(), value, expires_at });
        Ok(())
    }

    /// Removes a live key; false if there was none.
    pub fn delete(&mut self, key: &[u8]) -> Result<bool> {
        let now = self.now;
        if self.shard(key)?.live(key, || now).is_none() {
            return Ok(false);
        }
        self.reserve(key.len())?;
        self.shard_mut(key)?.remove_any(key);
        self.ops.push(Op::Delete { key: key.to_vec() });
        Ok(true)
    }

    /// Sets a live key's absolute expiry (0 = none); false if absent.
    pub fn set_expiry(&mut self, key: &[u8], expires_at: u64) -> Result<bool> {
        check_expiry(expires_at)?;
        let now = self.now;
        if self.shard(key)?.live(key, || now).is_none() {
            return Ok(false);
        }
        self.reserve(key.len())?;
        self.shard_mut(key)?.set_expiry(key, expires_at);
        self.ops.push(Op::Expire { key: key.to_vec(), expires_at });
        Ok(true)
    }

    /// Removes every key; needs `Scope::All`. Returns how many were live.
    pub fn clear(&mut self) -> Result<u64> {
        if !self.all {
            return Err(Error::InvalidArgument("clear needs a transaction over every shard (Scope::All)".into()));
        }
        self.reserve(0)?;
        let now = self.now;
        let mut live = 0;
        for (_, g) in self.guards.iter_mut() {
            live += g.count_live(now) as u64;
            g.clear();
        }
        self.ops.push(Op::Clear);
        Ok(live)
    }

    /// Calls `f` with every live key and entry in the locked shards.
    pub fn for_each_live(&self, mut f: impl FnMut(&[u8], Found<'_>)) {
        for (_, g) in &self.guards {
            for e in g.iter_live(self.now) {
                f(e.key(), Found { value: e.value(), expires_at: e.expires_at() });
            }
        }
    }

    /// True if no watched key changed since its `Engine::watch` (each
    /// watched key must be in the transaction's scope).
    pub fn unchanged(&self, watches: &[Watch]) -> Result<bool> {
        for w in watches {
            if self.shard(&w.key)?.watch_version(&w.key) != Some(w.version) {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

fn check_expiry(expires_at: u64) -> Result<()> {
    if expires_at >= i64::MAX as u64 {
        return Err(Error::InvalidArgument(format!("expiry {expires_at} ms is too far in the future")));
    }
    Ok(())
}

fn out_of_scope(key: &[u8]) -> Error {
    Error::InvalidArgument(format!(
        "key {:?} is outside the transaction's scope (list every key the transaction touches)",
        String::from_utf8_lossy(key)
    ))
}

impl Engine {
    /// Runs `f` under the write locks of `scope`'s shards and logs what it
    /// wrote as one record (a batch when it wrote more than once). Returns
    /// once the writes are as durable as the sync mode promises.
    pub fn transact<R>(&self, scope: Scope<'_>, f: impl FnOnce(&mut Txn<'_>) -> R) -> Result<R> {
        self.check_usable()?;
        // A transaction may write; a read-only handle reads with
        // `visit_shard` and `get_entry` instead.
        self.check_writable()?;
        let (idx, all) = match scope {
            Scope::Keys(keys) => {
                for k in keys {
                    check_key(k)?;
                }
                (self.shard_set(keys), false)
            }
            Scope::All => ((0..self.inner.shards.len()).collect(), true),
        };
        self.count_ops(idx.first().copied().unwrap_or(0), super::OpKind::Txn, 1);
        let mut txn = Txn { engine: self, guards: self.lock_all(&idx), all, now: self.inner.now(), ops: Vec::new(), body: 8 };
        let out = f(&mut txn);
        let lsn = match txn.ops.as_slice() {
            [] => None,
            [op] => Some(self.log(&op.record())?),
            ops => {
                let recs: Vec<Record<'_>> = ops.iter().map(Op::record).collect();
                Some(self.log(&Record::Batch { ops: &recs })?)
            }
        };
        drop(txn);
        if let Some(lsn) = lsn {
            self.commit(lsn, false)?;
        }
        Ok(out)
    }

    /// Starts watching `key` (Redis WATCH): a later transaction can ask
    /// whether anything wrote it since. Pair with `unwatch`.
    pub fn watch(&self, key: &[u8]) -> Result<Watch> {
        check_key(key)?;
        let version = self.inner.shard(key).write().watch(key);
        Ok(Watch { key: key.to_vec(), version })
    }

    pub fn unwatch(&self, w: &Watch) {
        self.inner.shard(&w.key).write().unwatch(&w.key);
    }
}
