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
use super::entry::{Kind, Value};
use super::hash::{shard_of, shard_of_hash};
use super::shard::ShardData;
use super::table::Hashed;
use std::sync::RwLockWriteGuard;
use super::Inner;
use crate::persistence::record::RecordView;
use crate::persistence::recovery::{Routed, Sink};
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

    /// True if the snapshot already holds the effect of `lsn` on `key`.
    fn covered(&self, key: &[u8], lsn: u64) -> bool {
        match &self.covered {
            Some((seed, shards, lsns)) => lsn <= lsns[shard_of(*seed, *shards, key)],
            None => false,
        }
    }
}

impl Restore<'_> {
    /// Applies a batch of snapshot entries: each key is hashed once, and
    /// the entries are applied shard by shard (a stable counting sort keeps
    /// file order within a shard), so each shard lock is taken once per
    /// batch rather than once per entry, and two loading threads rarely
    /// meet on one.
    fn apply_entries(&self, batch: &[SnapEntry<'_>]) {
        let shards = self.inner.shards.len();
        let hashed: Vec<(u32, u64)> = batch.iter().map(|e| self.inner.index_hashed(e.key)).map(|(i, hk)| (i as u32, hk.hash)).collect();
        let mut starts = vec![0u32; shards + 1];
        for &(i, _) in &hashed {
            starts[i as usize + 1] += 1;
        }
        for i in 0..shards {
            starts[i + 1] += starts[i];
        }
        let mut order = vec![0u32; batch.len()];
        let mut fill = starts.clone();
        for (n, &(i, _)) in hashed.iter().enumerate() {
            order[fill[i as usize] as usize] = n as u32;
            fill[i as usize] += 1;
        }
        for i in 0..shards {
            let group = &order[starts[i] as usize..starts[i + 1] as usize];
            if group.is_empty() {
                continue;
            }
            let mut s = self.inner.shards[i].write();
            for &n in group {
                let e = &batch[n as usize];
                apply_entry(&mut s, Hashed { key: e.key, hash: hashed[n as usize].1 }, e);
            }
        }
    }

    /// Applies the parts of `rec` whose keys lie in the shards `mine`
    /// holds; `hash` is its key's hash if the reader routed it here.
    fn apply_record(&self, lsn: u64, rec: &RecordView<'_>, hash: Option<u64>, mine: &mut Owned<'_>) {
        match rec {
            RecordView::Set { key, value, expires_at } => {
                if let Some((s, hk)) = self.wanted(mine, key, hash, lsn) {
                    s.load(hk, Value::Bytes(value), *expires_at)
                }
            }
            RecordView::SetInt { key, value, expires_at } => {
                if let Some((s, hk)) = self.wanted(mine, key, hash, lsn) {
                    s.load(hk, Value::Int(*value), *expires_at)
                }
            }
            RecordView::Delete { key } => {
                if let Some((s, hk)) = self.wanted(mine, key, hash, lsn) {
                    s.remove_any(hk);
                }
            }
            RecordView::Expire { key, expires_at } => {
                if let Some((s, hk)) = self.wanted(mine, key, hash, lsn) {
                    s.set_expiry(hk, *expires_at)
                }
            }
            RecordView::Lock { key, owner, expires_at, token } => {
                if let Some((s, hk)) = self.wanted(mine, key, hash, lsn) {
                    s.put_lock(hk, owner, *token, *expires_at)
                }
            }
            RecordView::Coll(op) => {
                if let Some((s, _)) = self.wanted(mine, op.key(), hash, lsn) {
                    collections::apply(s, op);
                }
            }
            RecordView::MSet { pairs, expires_at } => {
                for (k, v) in pairs {
                    if let Some((s, hk)) = self.wanted(mine, k, hash, lsn) {
                        s.load(hk, Value::Bytes(v), *expires_at);
                    }
                }
            }
            RecordView::MDel { keys } => {
                for k in keys {
                    if let Some((s, hk)) = self.wanted(mine, k, hash, lsn) {
                        s.remove_any(hk);
                    }
                }
            }
            RecordView::Clear => {
                // Keys whose snapshot shard covers the clear were written
                // after it (or were already absent): they stay.
                for s in mine.guards.iter_mut() {
                    s.retain(|key| self.covered(key, lsn));
                }
            }
            RecordView::Batch { ops } => {
                for op in ops {
                    self.apply_record(lsn, op, None, mine);
                }
            }
        }
    }

    /// The key's shard, locked, if this worker owns it and the snapshot
    /// does not already hold the effect of record `lsn` on it. Each key is
    /// hashed once, for its shard and its table (reopen's hot path).
    fn wanted<'m, 'k>(&self, mine: &'m mut Owned<'_>, key: &'k [u8], hash: Option<u64>, lsn: u64) -> Option<(&'m mut ShardData, Hashed<'k>)> {
        // Ownership first: `covered` hashes the key again, under the
        // snapshot's seed, and a record not routed here comes to every part.
        let (s, hk) = mine.get(self.inner, key, hash)?;
        (!self.covered(key, lsn)).then_some((s, hk))
    }

    /// Worker `worker`'s shards, locked for the whole batch: nothing else
    /// uses the engine while it recovers, so one lock per shard and batch
    /// replaces one per record, and a worker hashes each key only once.
    fn lock_owned(&self, worker: usize, workers: usize) -> Owned<'_> {
        let n = self.inner.shards.len();
        let first = (0..n).position(|i| part_of(i, n, workers) == worker).unwrap_or(n);
        let owned = self.inner.shards[first..].iter().enumerate().take_while(|(j, _)| part_of(first + j, n, workers) == worker);
        Owned { first, guards: owned.map(|(_, s)| s.write()).collect() }
    }
}

/// The part (of `parts`) that shard `i` of `n` belongs to: runs of
/// neighbouring shards, as even as the counts allow.
fn part_of(i: usize, n: usize, parts: usize) -> usize {
    i * parts / n
}

/// A run of shards one worker holds locked, from shard index `first`.
struct Owned<'a> {
    first: usize,
    guards: Vec<RwLockWriteGuard<'a, ShardData>>,
}

impl Owned<'_> {
    /// The key's shard if it is one of these, and the key with the hash
    /// that chose it (`hash` if the reader computed it already).
    fn get<'m, 'k>(&'m mut self, inner: &Inner, key: &'k [u8], hash: Option<u64>) -> Option<(&'m mut ShardData, Hashed<'k>)> {
        let (i, hk) = match hash {
            Some(hash) => (shard_of_hash(hash, inner.shards.len() as u32), Hashed { key, hash }),
            None => inner.index_hashed(key),
        };
        let s = self.guards.get_mut(i.checked_sub(self.first)?)?;
        Some((&mut **s, hk))
    }
}

/// Applies one snapshot entry to its (locked) shard.
fn apply_entry(s: &mut ShardData, hk: Hashed<'_>, e: &SnapEntry<'_>) {
    // The loader checked every chunk and lock value, so decoding here
    // cannot fail.
    match e.kind {
        KIND_INT => s.load(hk, Value::Int(i64::from_le_bytes(e.value.try_into().unwrap_or([0; 8]))), e.expires_at),
        KIND_LOCK => {
            let (owner, token) = split_lock(e.value).unwrap_or((e.value, 0));
            s.put_lock(hk, owner, token, e.expires_at);
        }
        KIND_LIST | KIND_LIST_MORE => {
            if e.kind == KIND_LIST {
                s.put_empty_collection(e.key, Kind::List, e.expires_at);
            }
            if let Some(l) = s.list_mut(e.key) {
                for item in decode_list_chunk(e.value).unwrap_or_default() {
                    l.push(false, item);
                }
            }
        }
        KIND_ZSET | KIND_ZSET_MORE => {
            if e.kind == KIND_ZSET {
                s.put_empty_collection(e.key, Kind::ZSet, e.expires_at);
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

impl Sink for Restore<'_> {
    fn entries(&self, batch: &[SnapEntry<'_>]) {
        self.apply_entries(batch);
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

    fn records(&self, batch: &[Routed<'_>], part: usize, parts: usize) {
        // Each part is a run of shards; a key always routes to the same
        // part, whose thread applies its batches in order, so every key
        // sees its records in LSN order.
        let mut mine = self.lock_owned(part, parts);
        for r in batch {
            self.apply_record(r.lsn, &r.record, r.key_hash, &mut mine);
        }
    }

    fn route(&self, key: &[u8], parts: usize) -> (usize, u64) {
        let (i, hk) = self.inner.index_hashed(key);
        (part_of(i, self.inner.shards.len(), parts), hk.hash)
    }

    fn parts(&self) -> usize {
        self.workers
    }

    fn adopt_seed(&mut self, seed: u64) {
        // A snapshot written with another seed (or shard count) spreads
        // each section's keys over every shard, and each insert misses the
        // cache in a table no longer hot; with its seed, a section fills one
        // shard, whose table stays in cache. A recovery that already holds
        // entries keeps its seed.
        self.inner.reseed(seed);
    }

    fn reserve(&self, n: u64) {
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

#[cfg(test)]
mod tests {
    use crate::engine::{Engine, Options};

    fn shard_sizes(e: &Engine) -> Vec<usize> {
        e.inner.shards.iter().map(|s| s.read().len()).collect()
    }

    #[test]
    fn a_reopen_from_a_snapshot_adopts_its_seed_so_each_section_fills_one_shard() {
        let dir = std::env::temp_dir().join(format!("dbkv-restore-seed-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let opts = || Options { data_dir: Some(dir.clone()), shards: 16, ..Options::default() };
        let e = Engine::open(opts()).unwrap();
        for i in 0..2_000 {
            e.set(format!("key:{i}").as_bytes(), b"v", 0).unwrap();
        }
        let (seed, sizes) = (e.inner.seed(), shard_sizes(&e));
        e.snapshot().unwrap();
        e.close().unwrap();

        let e = Engine::open(opts()).unwrap();
        assert_eq!(e.inner.seed(), seed, "the snapshot's seed");
        assert_eq!(shard_sizes(&e), sizes, "every key in the shard it was written from");
        assert_eq!(e.get(b"key:1999").unwrap().as_deref(), Some(&b"v"[..]));
        e.set(b"after", b"w", 0).unwrap();
        e.close().unwrap();

        // Keys already loaded (here: none is possible, but a reseed with
        // entries must change nothing) keep the seed that placed them.
        let e = Engine::open(opts()).unwrap();
        e.inner.reseed(seed ^ 1);
        assert_eq!(e.inner.seed(), seed);
        assert_eq!(e.get(b"after").unwrap().as_deref(), Some(&b"w"[..]));
        e.close().unwrap();
        let _ = std::fs::remove_dir_all(&dir);
    }
}
