//! Applies recovered state to a fresh engine: snapshot entries, then WAL
//! records, each record only for keys whose snapshot shard does not
//! already cover its LSN (records carry results, so this is exact).
//!
//! Nothing here looks at the clock. The engine's table holds expired
//! entries until a logged removal (the expiry sweep logs what it
//! reclaims), so replay keeps them too: a record that extends a TTL finds
//! the entry it extends, whatever the time is now.

#![forbid(unsafe_code)]

use super::collections;
use super::entry::{Entry, Value};
use super::list::List;
use super::zset::ZSet;
use super::hash::shard_of;
use super::Inner;
use crate::persistence::record::RecordView;
use crate::persistence::recovery::Sink;
use crate::persistence::snapshot::{SnapEntry, SnapshotMeta, KIND_INT};
use crate::persistence::snapshot_coll::{decode_list_chunk, decode_zset_chunk, split_lock, KIND_LIST, KIND_LIST_MORE, KIND_LOCK, KIND_ZSET, KIND_ZSET_MORE};

pub struct Restore<'a> {
    pub inner: &'a Inner,
    workers: usize,
    /// The snapshot's sharding and per-shard covered LSNs.
    covered: Option<(u64, u32, Vec<u64>)>,
}

impl<'a> Restore<'a> {
    pub fn new(inner: &'a Inner) -> Restore<'a> {
        let workers = std::thread::available_parallelism().map_or(1, |n| n.get()).min(8);
        Restore { inner, workers, covered: None }
    }

    // Each key is hashed once, for its shard and its table (reopen's hot path).
    fn put(&self, key: &[u8], value: Value<'_>, expires_at: u64) {
        let (shard, hk) = self.inner.shard_hashed(key);
        shard.write().load(hk, value, expires_at);
    }

    fn remove(&self, key: &[u8]) {
        let (shard, hk) = self.inner.shard_hashed(key);
        shard.write().remove_any(hk);
    }

    fn expire(&self, key: &[u8], expires_at: u64) {
        let (shard, hk) = self.inner.shard_hashed(key);
        shard.write().set_expiry(hk, expires_at);
    }

    /// True if the snapshot already holds the effect of `lsn` on `key`.
    fn covered(&self, key: &[u8], lsn: u64) -> bool {
        match &self.covered {
            Some((seed, shards, lsns)) => lsn <= lsns[shard_of(*seed, *shards, key)],
            None => false,
        }
    }
}

impl Restore<'_> {
    fn apply_entry(&self, e: &SnapEntry<'_>) {
        // The loader checked every chunk and lock value, so decoding here
        // cannot fail.
        let (shard, hk) = self.inner.shard_hashed(e.key);
        let mut s = shard.write();
        match e.kind {
            KIND_INT => s.load(hk, Value::Int(i64::from_le_bytes(e.value.try_into().unwrap_or([0; 8]))), e.expires_at),
            KIND_LOCK => {
                let (owner, token) = split_lock(e.value).unwrap_or((e.value, 0));
                s.put_lock(hk, owner, token, e.expires_at);
            }
            KIND_LIST | KIND_LIST_MORE => {
                if e.kind == KIND_LIST {
                    s.put_entry(Entry::new_list(e.key, List::default(), e.expires_at));
                }
                if let Some(l) = s.list_mut(e.key) {
                    for item in decode_list_chunk(e.value).unwrap_or_default() {
                        l.push(false, item);
                    }
                }
            }
            KIND_ZSET | KIND_ZSET_MORE => {
                if e.kind == KIND_ZSET {
                    s.put_entry(Entry::new_zset(e.key, ZSet::new(), e.expires_at));
                }
                if let Some(z) = s.zset_mut(e.key) {
                    for (score, m) in decode_zset_chunk(e.value).unwrap_or_default() {
                        z.insert(m, score);
                    }
                }
            }
            _ => s.load(hk, Value::Bytes(e.value), e.expires_at),
        }
    }

    /// Applies the parts of `rec` whose keys `mine` accepts.
    fn apply_record(&self, lsn: u64, rec: &RecordView<'_>, mine: &dyn Fn(&[u8]) -> bool, mine_shard: &dyn Fn(usize) -> bool) {
        let wanted = |key: &[u8]| mine(key) && !self.covered(key, lsn);
        match rec {
            RecordView::Set { key, value, expires_at } if wanted(key) => self.put(key, Value::Bytes(value), *expires_at),
            RecordView::SetInt { key, value, expires_at } if wanted(key) => self.put(key, Value::Int(*value), *expires_at),
            RecordView::Delete { key } if wanted(key) => self.remove(key),
            RecordView::Expire { key, expires_at } if wanted(key) => self.expire(key, *expires_at),
            RecordView::Lock { key, owner, expires_at, token } if wanted(key) => {
                self.inner.shard(key).write().put_lock(key, owner, *token, *expires_at)
            }
            RecordView::Coll(op) if wanted(op.key()) => {
                collections::apply(&mut self.inner.shard(op.key()).write(), op);
            }
            RecordView::MSet { pairs, expires_at } => {
                for (k, v) in pairs.iter().filter(|(k, _)| wanted(k)) {
                    self.put(k, Value::Bytes(v), *expires_at);
                }
            }
            RecordView::MDel { keys } => {
                for k in keys.iter().filter(|k| wanted(k)) {
                    self.remove(k);
                }
            }
            RecordView::Clear => {
                // Keys whose snapshot shard covers the clear were written
                // after it (or were already absent): they stay.
                for (i, s) in self.inner.shards.iter().enumerate() {
                    if mine_shard(i) {
                        s.write().retain(|key| self.covered(key, lsn));
                    }
                }
            }
            RecordView::Batch { ops } => {
                for op in ops {
                    self.apply_record(lsn, op, &mine, &mine_shard);
                }
            }
            _ => {}
        }
    }

    /// Runs `work(worker, workers)` on every core. Each worker owns the
    /// engine shards with `index % workers == worker` and walks the whole
    /// batch in order, so every key still sees its records in LSN order.
    fn in_parallel(&self, items: usize, work: impl Fn(usize, usize) + Sync) {
        let workers = if items < PARALLEL_MIN { 1 } else { self.workers };
        if workers == 1 {
            return work(0, 1);
        }
        std::thread::scope(|scope| {
            for w in 1..workers {
                let work = &work;
                scope.spawn(move || work(w, workers));
            }
            work(0, workers);
        });
    }

    fn owns(&self, key: &[u8], worker: usize, workers: usize) -> bool {
        workers == 1 || self.inner.shard_index(key) % workers == worker
    }
}

/// Batches smaller than this are applied on the calling thread.
const PARALLEL_MIN: usize = 4096;

impl Sink for Restore<'_> {
    fn entries(&mut self, batch: &[SnapEntry<'_>]) {
        let this = &*self;
        this.in_parallel(batch.len(), |w, n| {
            batch.iter().filter(|e| this.owns(e.key, w, n)).for_each(|e| this.apply_entry(e));
        });
    }

    fn snapshot_loaded(&mut self, meta: &SnapshotMeta, shard_lsns: &[u64]) {
        self.covered = Some((meta.hash_seed, meta.shard_count, shard_lsns.to_vec()));
    }

    fn reset(&mut self) {
        self.covered = None;
        for s in self.inner.shards.iter() {
            s.write().clear();
        }
    }

    fn records(&mut self, batch: &[(u64, RecordView<'_>)]) {
        let this = &*self;
        this.in_parallel(batch.len(), |w, n| {
            for (lsn, rec) in batch {
                this.apply_record(*lsn, rec, &|k| this.owns(k, w, n), &|i| n == 1 || i % n == w);
            }
        });
    }

    fn reserve(&mut self, n: u64) {
        // Capped: a WAL of a billion increments on a few counters must not
        // reserve a billion slots. Oversized tables are shrunk afterwards.
        let per_shard = (n.min(MAX_RESERVE) / self.inner.shards.len() as u64) as usize;
        for s in self.inner.shards.iter() {
            s.write().reserve(per_shard + per_shard / 8);
        }
    }
}

const MAX_RESERVE: u64 = 16 << 20;

/// Gives back table memory reserved for keys that turned out to be updates.
pub fn shrink_tables(inner: &Inner) {
    for s in inner.shards.iter() {
        s.write().shrink_if_sparse();
    }
}
