//! The sharded in-memory engine. Every mutation is applied and, when a data
//! directory is set, logged while its shard lock is held, so that the WAL
//! order of any key equals its in-memory order.

mod arena;
mod clock;
pub mod collections;
mod durability;
pub mod dump;
pub mod entry;
mod expiry;
mod fence;
pub mod log;
mod metrics;
pub mod hash;
pub mod list;
mod options;
mod restore;
mod scan;
mod shard;
mod table;
mod txn;
mod txn_coll;
pub mod zset;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLockReadGuard, RwLockWriteGuard};

pub use clock::Clock;
pub use metrics::{OpKind, Stats, OP_KINDS};
pub use entry::Value;
pub use fence::FenceOutcome;
pub use log::{Log, LogFn, LogLevel, Phase, Progress, ProgressFn};
pub use options::{Options, RecoveryMode, SyncMode, HARD_MAX_VALUE_BYTES, MAX_KEY_BYTES};
pub use scan::ScanIter;
pub use txn::{Found, Scope, Txn, Watch};

use crate::error::{Error, Result};
use crate::persistence::record::{mdel_body_len, mset_body_len, Record, MAX_RECORD_BODY};
use durability::Durability;
use entry::parse_i64;
use hash::{key_hash, shard_of, shard_of_hash};
use table::Hashed;
use shard::{Shard, ShardData};

/// Result of `cas`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CasOutcome {
    Swapped,
    Mismatch,
    NotFound,
}

/// Result of `lock`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockOutcome {
    /// Granted (or refreshed for the same owner) with this fencing token.
    Granted(u64),
    /// Another owner holds the lock.
    Locked,
}

/// Result of `unlock` and `extend_lock`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnerOutcome {
    Done,
    NotFound,
    NotOwner,
}

/// State shared by the handle, its background threads and its iterators.
pub(crate) struct Inner {
    shards: Box<[Shard]>,
    /// Chooses each key's shard and slot. Random for a new store; recovery
    /// adopts the seed of the snapshot it loads (`reseed`), so that each of
    /// the snapshot's per-shard sections fills exactly one shard.
    seed: AtomicU64,
    clock: Clock,
    max_value_bytes: u64,
    /// The last fencing token handed out.
    last_token: AtomicU64,
    /// Set when a WAL write or fsync fails: from then on the table may hold
    /// writes that never became durable (some of them returned an error),
    /// so the handle serves no reads either.
    failed: Arc<AtomicBool>,
    /// Expired keys the sweep removed.
    pub(crate) expired_reclaimed: AtomicU64,
}

/// An open engine. All methods are safe to call from many threads at once.
pub struct Engine {
    inner: Arc<Inner>,
    sweeper: Option<expiry::Sweeper>,
    durability: Option<Durability>,
    /// Set when opened with `Options::read_only`: what recovery found. The
    /// handle then refuses every write.
    read_only: Option<crate::persistence::recovery::RecoveryStats>,
}

impl Inner {
    fn new(opts: &Options, seed: u64) -> Inner {
        Inner {
            shards: (0..opts.shards).map(|_| Shard::new(seed)).collect(),
            seed: AtomicU64::new(seed),
            clock: opts.clock.clone(),
            max_value_bytes: opts.max_value_bytes,
            last_token: AtomicU64::new(0),
            expired_reclaimed: AtomicU64::new(0),
            failed: Arc::new(AtomicBool::new(false)),
        }
    }

    #[inline]
    pub(crate) fn seed(&self) -> u64 {
        // Relaxed: it changes only in recovery, before any other thread
        // can reach the engine.
        self.seed.load(Ordering::Relaxed)
    }

    /// Hashes keys with `seed` from now on if every shard is empty (else
    /// changes nothing: the entries' places depend on the seed).
    fn reseed(&self, seed: u64) {
        let mut guards: Vec<_> = self.shards.iter().map(|s| s.write()).collect();
        if guards.iter().all(|g| g.len() == 0) {
            self.seed.store(seed, Ordering::Relaxed);
            guards.iter_mut().for_each(|g| g.reseed(seed));
        }
    }

    #[inline]
    pub(crate) fn shard_index(&self, key: &[u8]) -> usize {
        shard_of(self.seed(), self.shards.len() as u32, key)
    }

    #[inline]
    fn shard(&self, key: &[u8]) -> &Shard {
        &self.shards[self.shard_index(key)]
    }

    /// The key's shard, and the key with the hash that chose it.
    #[inline]
    fn shard_hashed<'k>(&self, key: &'k [u8]) -> (&Shard, Hashed<'k>) {
        let (i, hk) = self.index_hashed(key);
        (&self.shards[i], hk)
    }

    /// The key's shard index, and the key with the hash that chose it.
    #[inline]
    fn index_hashed<'k>(&self, key: &'k [u8]) -> (usize, Hashed<'k>) {
        let hash = key_hash(self.seed(), key);
        (shard_of_hash(hash, self.shards.len() as u32), Hashed { key, hash })
    }

    #[inline]
    fn now(&self) -> u64 {
        self.clock.now_ms()
    }
}

fn check_key(key: &[u8]) -> Result<()> {
    if key.is_empty() {
        return Err(Error::InvalidArgument("key is empty (keys are 1 to 65535 bytes)".into()));
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(Error::TooLarge(format!("key is {} bytes, the limit is {MAX_KEY_BYTES}", key.len())));
    }
    Ok(())
}

impl Engine {
    /// Opens an engine; with a data directory, recovers its contents first.
    pub fn open(opts: Options) -> Result<Engine> {
        validate(&opts)?;
        let inner = Arc::new(Inner::new(&opts, hash::random_seed()));
        if opts.read_only {
            if opts.data_dir.is_none() {
                return Err(Error::InvalidArgument("read_only needs a data directory to read".into()));
            }
            let recovered = durability::recover_read_only(&opts, &inner)?;
            // No sweeper: expired entries stay hidden but are not removed.
            return Ok(Engine { inner, sweeper: None, durability: None, read_only: Some(recovered) });
        }
        let durability = match &opts.data_dir {
            Some(_) => Some(Durability::open(&opts, &inner)?),
            None => None,
        };
        let log = durability.as_ref().map(|d| d.appender());
        let sweeper = expiry::Sweeper::start(Arc::downgrade(&inner), opts.expiry_sweep_interval_ms, log);
        Ok(Engine { inner, sweeper: Some(sweeper), durability, read_only: None })
    }

    /// Drains and fsyncs the WAL, stops background threads, releases the
    /// data directory. Reports a final flush failure, if any.
    pub fn close(mut self) -> Result<()> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<()> {
        if let Some(s) = self.sweeper.take() {
            s.stop();
        }
        match self.durability.take() {
            Some(d) => d.close(),
            None => Ok(()),
        }
    }

    fn check_value(&self, value: &[u8]) -> Result<()> {
        if value.len() as u64 > self.inner.max_value_bytes {
            return Err(Error::TooLarge(format!(
                "value is {} bytes, max_value_bytes is {}",
                value.len(),
                self.inner.max_value_bytes
            )));
        }
        Ok(())
    }

    /// Absolute expiry for a TTL; 0 stays 0 (no expiry).
    fn expiry(&self, ttl_ms: u64) -> Result<u64> {
        if ttl_ms == 0 {
            return Ok(0);
        }
        self.inner
            .now()
            .checked_add(ttl_ms)
            .filter(|&t| t < i64::MAX as u64)
            .ok_or_else(|| Error::InvalidArgument(format!("ttl_ms {ttl_ms} is too far in the future")))
    }

    /// The checks every single-key store makes before touching anything;
    /// returns the absolute expiry.
    fn check_store(&self, key: &[u8], value: &[u8], ttl_ms: u64) -> Result<u64> {
        check_key(key)?;
        self.check_value(value)?;
        let expires_at = self.expiry(ttl_ms)?;
        self.check_writable()?;
        Ok(expires_at)
    }

    fn check_writable(&self) -> Result<()> {
        if self.read_only.is_some() {
            return Err(read_only_error());
        }
        match &self.durability {
            Some(d) => d.check_writable(),
            None => Ok(()),
        }
    }

    /// `Error::Failed` once the handle failed, else Ok. Reads check it
    /// too: memory may hold writes whose fsync failed and whose calls
    /// returned an error.
    #[inline]
    pub fn check_usable(&self) -> Result<()> {
        if self.inner.failed.load(Ordering::Relaxed) {
            return self.check_writable();
        }
        Ok(())
    }

    /// Logs a mutation; must be called with the mutated shard(s) locked.
    #[inline]
    fn log(&self, rec: &Record<'_>) -> Result<u64> {
        match &self.durability {
            Some(d) => d.append(rec),
            None => Ok(0),
        }
    }

    /// Waits, after the shard lock is released, until the write is as
    /// durable as the sync mode (or `force`, for lock grants) requires.
    #[inline]
    fn commit(&self, lsn: u64, force: bool) -> Result<()> {
        match &self.durability {
            Some(d) => d.commit(lsn, force),
            None => Ok(()),
        }
    }

    /// Locks `key`'s shard for writing, counting one operation of `kind`.
    /// Returns the key with its hash, which chose the shard and which the
    /// shard's table reuses (one hash per operation).
    fn write_shard<'k>(&self, key: &'k [u8], kind: OpKind) -> (RwLockWriteGuard<'_, ShardData>, Hashed<'k>) {
        let (shard, hk) = self.inner.shard_hashed(key);
        shard.ops.add(kind, 1);
        (shard.write(), hk)
    }

    fn read_shard<'k>(&self, key: &'k [u8], kind: OpKind) -> (RwLockReadGuard<'_, ShardData>, Hashed<'k>) {
        let (shard, hk) = self.inner.shard_hashed(key);
        shard.ops.add(kind, 1);
        (shard.read(), hk)
    }

    /// Counts `n` operations of a batch (mget, mset, mdel, transactions).
    fn count_ops(&self, shard: usize, kind: OpKind, n: u64) {
        if let Some(s) = self.inner.shards.get(shard) {
            s.ops.add(kind, n);
        }
    }

    /// The rule every single-key mutation follows, in one place: lock the
    /// key's shard (counting one operation of `kind`); let `change` look,
    /// decide and apply under the lock, returning its result and the
    /// record of what it changed (`Unchanged`: nothing to log or wait
    /// for); queue that record before the lock is released, so the WAL's
    /// order is the order changes were applied in; release; then wait
    /// until the record is as durable as the sync mode, or `durable`
    /// (lock grants, unlocks, extends), requires.
    fn mutate<'k, 'r, R>(
        &self,
        key: &'k [u8],
        kind: OpKind,
        durable: bool,
        change: impl FnOnce(&mut ShardData, Hashed<'k>) -> Result<Change<'r, R>>,
    ) -> Result<R> {
        let (result, lsn) = {
            let (mut s, hk) = self.write_shard(key, kind);
            match change(&mut s, hk)? {
                Change::Unchanged(r) => return Ok(r),
                Change::Logged(r, record) => (r, self.log(&record)?),
            }
        };
        self.commit(lsn, durable)?;
        Ok(result)
    }

    pub fn set(&self, key: &[u8], value: &[u8], ttl_ms: u64) -> Result<()> {
        let expires_at = self.check_store(key, value, ttl_ms)?;
        self.mutate(key, OpKind::Write, false, |s, hk| {
            s.put_bytes(hk, value, expires_at);
            Ok(Change::Logged((), Record::Set { key, value, expires_at }))
        })
    }

    /// Calls `f` with the value of a live key, under the shard's read lock.
    #[inline]
    pub fn read<R>(&self, key: &[u8], f: impl FnOnce(&[u8]) -> R) -> Result<Option<R>> {
        check_key(key)?;
        self.check_usable()?;
        let (s, hk) = self.read_shard(key, OpKind::Read);
        s.live(hk, || self.inner.now()).map(|e| e.value().with_bytes(f)).transpose()
    }

    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.read(key, |b| b.to_vec())
    }

    pub fn exists(&self, key: &[u8]) -> Result<bool> {
        check_key(key)?;
        self.check_usable()?;
        let (s, hk) = self.read_shard(key, OpKind::Read);
        Ok(s.live(hk, || self.inner.now()).is_some())
    }

    /// Removes a key; false if it was absent.
    pub fn delete(&self, key: &[u8]) -> Result<bool> {
        check_key(key)?;
        self.check_writable()?;
        self.mutate(key, OpKind::Delete, false, |s, hk| {
            Ok(match s.remove(hk, || self.inner.now()) {
                false => Change::Unchanged(false),
                true => Change::Logged(true, Record::Delete { key }),
            })
        })
    }

    pub fn incr(&self, key: &[u8], delta: i64) -> Result<i64> {
        self.add(key, delta, i64::checked_add)
    }

    pub fn decr(&self, key: &[u8], delta: i64) -> Result<i64> {
        self.add(key, delta, i64::checked_sub)
    }

    fn add(&self, key: &[u8], delta: i64, op: fn(i64, i64) -> Option<i64>) -> Result<i64> {
        check_key(key)?;
        self.check_writable()?;
        self.mutate(key, OpKind::Incr, false, |s, hk| {
            let (current, expires_at) = match s.live(hk, || self.inner.now()) {
                None => (0, 0),
                Some(e) => {
                    let n = match e.value() {
                        Value::Int(n) => n,
                        Value::Bytes(b) => parse_i64(b).ok_or(Error::NotInteger)?,
                        Value::List(_) | Value::ZSet(_) => return Err(Error::WrongType),
                    };
                    (n, e.expires_at())
                }
            };
            let value = op(current, delta).ok_or(Error::Overflow)?;
            s.put_int(hk, value, expires_at);
            Ok(Change::Logged(value, Record::SetInt { key, value, expires_at }))
        })
    }

    /// Stores only if the key is absent; false if it exists.
    pub fn setnx(&self, key: &[u8], value: &[u8], ttl_ms: u64) -> Result<bool> {
        let expires_at = self.check_store(key, value, ttl_ms)?;
        self.mutate(key, OpKind::Write, false, |s, hk| {
            if s.live(hk, || self.inner.now()).is_some() {
                return Ok(Change::Unchanged(false));
            }
            s.put_bytes(hk, value, expires_at);
            Ok(Change::Logged(true, Record::Set { key, value, expires_at }))
        })
    }

    /// Replaces the value if it equals `expected` byte for byte.
    pub fn cas(&self, key: &[u8], expected: &[u8], new: &[u8], ttl_ms: u64) -> Result<CasOutcome> {
        let expires_at = self.check_store(key, new, ttl_ms)?;
        self.mutate(key, OpKind::Write, false, |s, hk| {
            match s.live(hk, || self.inner.now()) {
                None => return Ok(Change::Unchanged(CasOutcome::NotFound)),
                Some(e) if !e.value().with_bytes(|b| b == expected)? => return Ok(Change::Unchanged(CasOutcome::Mismatch)),
                Some(_) => {}
            }
            s.put_bytes(hk, new, expires_at);
            Ok(Change::Logged(CasOutcome::Swapped, Record::Set { key, value: new, expires_at }))
        })
    }

    /// Sets a key's TTL (0 removes it, like `persist`); false if absent.
    pub fn expire(&self, key: &[u8], ttl_ms: u64) -> Result<bool> {
        check_key(key)?;
        let expires_at = self.expiry(ttl_ms)?;
        self.set_expiry(key, expires_at, false)
    }

    /// Removes a key's TTL; false if absent.
    pub fn persist(&self, key: &[u8]) -> Result<bool> {
        check_key(key)?;
        self.set_expiry(key, 0, false)
    }

    fn set_expiry(&self, key: &[u8], expires_at: u64, durable: bool) -> Result<bool> {
        self.check_writable()?;
        self.mutate(key, OpKind::Expire, durable, |s, hk| {
            match s.live(hk, || self.inner.now()) {
                None => return Ok(Change::Unchanged(false)),
                Some(e) if e.expires_at() == expires_at => return Ok(Change::Unchanged(true)),
                Some(_) => {}
            }
            s.set_expiry(hk, expires_at);
            Ok(Change::Logged(true, Record::Expire { key, expires_at }))
        })
    }

    /// Milliseconds left: `Some(-1)` for no expiry, `None` if absent.
    pub fn ttl(&self, key: &[u8]) -> Result<Option<i64>> {
        check_key(key)?;
        self.check_usable()?;
        let (s, hk) = self.read_shard(key, OpKind::Read);
        let now = self.inner.now();
        Ok(s.live(hk, || now).map(|e| match e.expires_at() {
            0 => -1,
            t => (t - now) as i64,
        }))
    }

    /// Indices of the shards `keys` live in, sorted and unique: the order
    /// in which multi-key operations take locks, so they never deadlock.
    fn shard_set(&self, keys: &[&[u8]]) -> Vec<usize> {
        let mut idx: Vec<usize> = keys.iter().map(|k| self.inner.shard_index(k)).collect();
        idx.sort_unstable();
        idx.dedup();
        idx
    }

    /// Each key's shard and hash (computed once for a multi-key call), and
    /// the sorted, unique shard indices to lock.
    fn hash_keys<'k>(&self, keys: &[&'k [u8]]) -> (Vec<(usize, Hashed<'k>)>, Vec<usize>) {
        let hashed: Vec<(usize, Hashed<'k>)> = keys.iter().map(|k| self.inner.index_hashed(k)).collect();
        let mut idx: Vec<usize> = hashed.iter().map(|(i, _)| *i).collect();
        idx.sort_unstable();
        idx.dedup();
        (hashed, idx)
    }

    fn lock_all(&self, shard_idx: &[usize]) -> Vec<(usize, RwLockWriteGuard<'_, ShardData>)> {
        shard_idx.iter().map(|&i| (i, self.inner.shards[i].write())).collect()
    }

    /// Stores all pairs atomically: no reader sees some without the others.
    pub fn mset(&self, keys: &[&[u8]], values: &[&[u8]], ttl_ms: u64) -> Result<()> {
        if keys.len() != values.len() {
            return Err(Error::InvalidArgument("mset needs as many values as keys".into()));
        }
        for (k, v) in keys.iter().zip(values) {
            check_key(k)?;
            self.check_value(v)?;
        }
        let expires_at = self.expiry(ttl_ms)?;
        if keys.is_empty() {
            return Ok(());
        }
        check_record_size(mset_body_len(keys, values))?;
        self.check_writable()?;
        let (hashed, idx) = self.hash_keys(keys);
        self.count_ops(hashed[0].0, OpKind::Write, keys.len() as u64);
        let lsn = {
            let mut guards = self.lock_all(&idx);
            for (&(i, hk), v) in hashed.iter().zip(values) {
                guard_for(&mut guards, i).put_bytes(hk, v, expires_at);
            }
            self.log(&Record::MSet { keys, values, expires_at })?
        };
        self.commit(lsn, false)
    }

    /// One optional value per key, read at a single point in time.
    pub fn mget(&self, keys: &[&[u8]]) -> Result<Vec<Option<Vec<u8>>>> {
        for k in keys {
            check_key(k)?;
        }
        self.check_usable()?;
        let (hashed, idx) = self.hash_keys(keys);
        self.count_ops(idx.first().copied().unwrap_or(0), OpKind::Read, keys.len() as u64);
        let guards: Vec<(usize, RwLockReadGuard<'_, ShardData>)> =
            idx.iter().map(|&i| (i, self.inner.shards[i].read())).collect();
        let now = self.inner.now();
        Ok(hashed
            .iter()
            .map(|&(i, hk)| {
                let g = &guards[guards.binary_search_by_key(&i, |(j, _)| *j).expect("shard locked")].1;
                g.live(hk, || now).and_then(|e| e.value().to_vec().ok())
            })
            .collect())
    }

    /// Deletes the keys atomically; returns how many existed.
    pub fn mdel(&self, keys: &[&[u8]]) -> Result<usize> {
        for k in keys {
            check_key(k)?;
        }
        check_record_size(mdel_body_len(keys))?;
        self.check_writable()?;
        let (hashed, idx) = self.hash_keys(keys);
        self.count_ops(hashed.first().map_or(0, |(i, _)| *i), OpKind::Delete, keys.len() as u64);
        let (deleted, lsn) = {
            let mut guards = self.lock_all(&idx);
            let now = self.inner.now();
            let removed: Vec<&[u8]> = hashed
                .iter()
                .filter(|&&(i, hk)| guard_for(&mut guards, i).remove(hk, || now))
                .map(|(_, hk)| hk.key)
                .collect();
            if removed.is_empty() {
                return Ok(0);
            }
            (removed.len(), self.log(&Record::MDel { keys: &removed })?)
        };
        self.commit(lsn, false)?;
        Ok(deleted)
    }

    /// Takes or refreshes a lock. The key's value is its owner.
    pub fn lock(&self, key: &[u8], owner: &[u8], ttl_ms: u64) -> Result<LockOutcome> {
        check_key(key)?;
        check_owner(owner)?;
        self.check_value(owner)?;
        let expires_at = self.lock_expiry(ttl_ms)?;
        self.check_writable()?;
        self.mutate(key, OpKind::Lock, true, |s, hk| {
            if let Some(e) = s.live(hk, || self.inner.now()) {
                if !e.value().with_bytes(|b| b == owner).unwrap_or(false) {
                    return Ok(Change::Unchanged(LockOutcome::Locked));
                }
            }
            let token = self.inner.last_token.fetch_add(1, Ordering::Relaxed) + 1;
            s.put_lock(hk, owner, token, expires_at);
            Ok(Change::Logged(LockOutcome::Granted(token), Record::Lock { key, owner, expires_at, token }))
        })
    }

    pub fn unlock(&self, key: &[u8], owner: &[u8]) -> Result<OwnerOutcome> {
        check_key(key)?;
        check_owner(owner)?;
        self.check_writable()?;
        self.mutate(key, OpKind::Lock, true, |s, hk| {
            match self.owner_check(s, hk, owner) {
                OwnerOutcome::Done => {}
                other => return Ok(Change::Unchanged(other)),
            }
            s.remove(hk, || self.inner.now());
            Ok(Change::Logged(OwnerOutcome::Done, Record::Delete { key }))
        })
    }

    /// Moves a held lock's expiry to now + `ttl_ms`.
    pub fn extend_lock(&self, key: &[u8], owner: &[u8], ttl_ms: u64) -> Result<OwnerOutcome> {
        check_key(key)?;
        check_owner(owner)?;
        let expires_at = self.lock_expiry(ttl_ms)?;
        self.check_writable()?;
        self.mutate(key, OpKind::Lock, true, |s, hk| {
            match self.owner_check(s, hk, owner) {
                OwnerOutcome::Done => {}
                other => return Ok(Change::Unchanged(other)),
            }
            s.set_expiry(hk, expires_at);
            Ok(Change::Logged(OwnerOutcome::Done, Record::Expire { key, expires_at }))
        })
    }

    fn owner_check(&self, s: &ShardData, key: Hashed<'_>, owner: &[u8]) -> OwnerOutcome {
        match s.live(key, || self.inner.now()) {
            None => OwnerOutcome::NotFound,
            Some(e) if !e.value().with_bytes(|b| b == owner).unwrap_or(false) => OwnerOutcome::NotOwner,
            Some(_) => OwnerOutcome::Done,
        }
    }

    fn lock_expiry(&self, ttl_ms: u64) -> Result<u64> {
        if ttl_ms == 0 {
            return Err(Error::InvalidArgument(
                "lock ttl_ms must be > 0: a lock without expiry outlives a crashed owner".into(),
            ));
        }
        self.expiry(ttl_ms)
    }

    /// Live keys with `prefix`, copied one shard at a time.
    pub fn scan(&self, prefix: &[u8]) -> ScanIter {
        self.count_ops(0, OpKind::Scan, 1);
        ScanIter::new(self.inner.clone(), prefix.to_vec())
    }

    /// Live keys (expired keys not yet reclaimed are not counted).
    pub fn count(&self) -> u64 {
        let now = self.inner.now();
        self.inner.shards.iter().map(|s| s.read().count_live(now) as u64).sum()
    }

    /// Reclaims expired keys in every shard now (logging the removals);
    /// returns how many.
    /// In `SyncMode::Always` the removals are durable when it returns.
    pub fn sweep_expired(&self) -> usize {
        if self.read_only.is_some() {
            return 0;
        }
        let log = self.durability.as_ref().map(|d| d.appender());
        let (swept, last_lsn) = expiry::sweep_all(&self.inner, log.as_ref());
        if let (Some(d), Some(lsn)) = (&self.durability, last_lsn) {
            // A failed handle keeps what it could not log; nothing to wait for.
            let _ = d.commit(lsn, false);
        }
        swept
    }

    /// True once a WAL write or fsync failed: every call but `stats` and
    /// `close` then returns `Error::Failed`.
    pub fn is_failed(&self) -> bool {
        self.inner.failed.load(Ordering::Acquire)
    }

    /// Returns once every write made before the call is durable.
    pub fn sync(&self) -> Result<()> {
        match &self.durability {
            Some(d) => d.sync(),
            None => Ok(()),
        }
    }

    /// Takes a snapshot and returns once it is durable.
    pub fn snapshot(&self) -> Result<()> {
        match &self.durability {
            Some(d) => d.snapshot_now(),
            None => Err(Error::InvalidArgument("snapshot needs a data directory (the handle is in-memory)".into())),
        }
    }

    pub fn stats(&self) -> Stats {
        let mut st = match &self.durability {
            Some(d) => d.stats(),
            None => Stats::default(),
        };
        if let Some(r) = &self.read_only {
            st.recovery_snapshot_loaded = r.snapshot_loaded;
            st.recovery_snapshot_entries = r.snapshot_entries;
            st.recovery_wal_records = r.wal_records;
            st.recovery_corrupt_records = r.corrupt_records;
            st.recovery_bytes_dropped = r.bytes_dropped;
            st.recovery_duration_us = r.duration_us;
        }
        st.keys = self.count();
        for shard in self.inner.shards.iter() {
            shard.ops.add_into(&mut st.ops);
        }
        st.expired_reclaimed = self.inner.expired_reclaimed.load(Ordering::Relaxed);
        st
    }

    /// The newest fencing token handed out.
    pub fn last_token(&self) -> u64 {
        self.inner.last_token.load(Ordering::Relaxed)
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

fn read_only_error() -> Error {
    Error::InvalidArgument("the handle was opened read-only (Options::read_only) and refuses writes; open the directory normally to write".into())
}

/// One mset or mdel is one WAL record; its size is bounded like a value's.
fn check_record_size(body: usize) -> Result<()> {
    if body > MAX_RECORD_BODY {
        return Err(Error::TooLarge(format!("the batch encodes to {body} bytes; one batch is at most {MAX_RECORD_BODY}")));
    }
    Ok(())
}

fn check_owner(owner: &[u8]) -> Result<()> {
    if owner.is_empty() {
        return Err(Error::InvalidArgument("lock owner is empty".into()));
    }
    Ok(())
}

fn validate(opts: &Options) -> Result<()> {
    let mut probe = Options::default();
    probe.set_shards(opts.shards)?;
    probe.set_max_value_bytes(opts.max_value_bytes)?;
    probe.set_sync_interval_ms(opts.sync_interval_ms)?;
    probe.set_wal_segment_bytes(opts.wal_segment_bytes)?;
    probe.set_snapshot_keep(opts.snapshot_keep)?;
    Ok(())
}

/// What a single-key mutation did under its shard's lock (`Engine::mutate`).
enum Change<'r, R> {
    /// Nothing changed: no record, nothing to wait for.
    Unchanged(R),
    /// Applied; this record says what changed.
    Logged(R, Record<'r>),
}

/// The guard of `shard` among guards sorted by shard index.
fn guard_for<'g, 'a>(guards: &'g mut [(usize, RwLockWriteGuard<'a, ShardData>)], shard: usize) -> &'g mut ShardData {
    let at = guards.binary_search_by_key(&shard, |(i, _)| *i).expect("shard locked");
    &mut guards[at].1
}


impl Engine {
    /// How many shards the table is split into (SCAN cursors walk them).
    pub fn shard_count(&self) -> usize {
        self.inner.shards.len()
    }

    /// Calls `f` with every live entry of one shard, under its read lock
    /// (so `f` must not call back into the engine).
    pub fn visit_shard(&self, shard: usize, mut f: impl FnMut(&[u8], Found<'_>)) -> Result<()> {
        self.check_usable()?;
        let s = self.inner.shards.get(shard).ok_or_else(|| Error::InvalidArgument(format!("shard {shard} does not exist")))?.read();
        for e in s.iter_live(self.inner.now()) {
            f(e.key(), Found { value: e.value(), expires_at: e.expires_at() });
        }
        Ok(())
    }

    /// The live entry of `key` with its expiry, copied out.
    pub fn get_entry(&self, key: &[u8]) -> Result<Option<(Vec<u8>, u64)>> {
        check_key(key)?;
        self.check_usable()?;
        let (s, hk) = self.read_shard(key, OpKind::Read);
        s.live(hk, || self.inner.now()).map(|e| Ok((e.value().to_vec()?, e.expires_at()))).transpose()
    }

    /// Entries with a TTL (expired ones not yet swept included): O(shards).
    pub fn count_expiring(&self) -> u64 {
        self.inner.shards.iter().map(|s| s.read().ttl_entries() as u64).sum()
    }

    /// The engine's clock (unix ms): what TTLs are measured against.
    pub fn now_ms(&self) -> u64 {
        self.inner.now()
    }
}
