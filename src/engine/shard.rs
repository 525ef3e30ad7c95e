//! One shard: a table of entries behind a reader-writer lock.

use super::metrics::OpCounters;
use std::collections::HashMap;
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use super::entry::{lock_value, Entry, Kind, Value};
use super::list::List;
use super::zset::ZSet;
use super::table::{Key, Table};

/// The table and its bookkeeping, guarded by the shard's lock.
/// Watched keys of a shard: key -> (version, watchers).
type Watched = HashMap<Vec<u8>, (u64, u32)>;

pub struct ShardData {
    map: Table,
    /// How many entries have an expiry; shards with none are skipped by the
    /// expiry sweep and counted in O(1).
    ttl_count: usize,
    /// Keys some client WATCHes (Redis transactions): key -> (version,
    /// watchers). Every mutation of a watched key bumps its version while
    /// the shard lock is held, so EXEC, which compares versions under the
    /// same lock, can never miss a write. `None` (the usual case) costs
    /// one branch per mutation.
    watched: Option<Box<Watched>>,
}

/// Aligned so two shards' locks never share a cache line.
#[repr(align(128))]
pub struct Shard {
    lock: RwLock<ShardData>,
    /// Operations on this shard by kind (beside the lock, whose cache
    /// line the operation touches anyway).
    pub ops: OpCounters,
}

impl Shard {
    pub fn new(seed: u64) -> Shard {
        Shard { lock: RwLock::new(ShardData { map: Table::new(seed), ttl_count: 0, watched: None }), ops: OpCounters::default() }
    }

    // A panic inside a shard operation leaves the table consistent (every
    // mutation is a single table call), so a poisoned lock is safe to reuse.
    #[inline]
    pub fn read(&self) -> RwLockReadGuard<'_, ShardData> {
        self.lock.read().unwrap_or_else(|p| p.into_inner())
    }

    #[inline]
    pub fn write(&self) -> RwLockWriteGuard<'_, ShardData> {
        self.lock.write().unwrap_or_else(|p| p.into_inner())
    }
}

impl ShardData {
    /// The entry for `key` if it exists and has not expired.
    #[inline]
    pub fn live<'k>(&self, key: impl Key<'k>, now: impl FnOnce() -> u64) -> Option<&Entry> {
        self.map.get(key).filter(|e| e.is_live(now))
    }

    /// Stores a value, replacing any entry (live or expired) for the key.
    pub fn put<'k>(&mut self, key: impl Key<'k>, kind: Kind, value: &[u8], expires_at: u64) {
        let key = self.map.hashed(key);
        self.touch(key.key);
        let had_ttl = match self.map.get_mut(key) {
            Some((e, arena)) => {
                let had_ttl = e.expires_at() != 0;
                e.replace(arena, kind, value, expires_at);
                had_ttl
            }
            None => {
                self.map.insert_new(key, |arena, k| Entry::new(arena, k, kind, value, expires_at));
                false
            }
        };
        self.adjust_ttl_count(had_ttl, expires_at != 0);
    }

    pub fn put_bytes<'k>(&mut self, key: impl Key<'k>, value: &[u8], expires_at: u64) {
        self.put(key, Kind::Bytes, value, expires_at)
    }

    pub fn put_int<'k>(&mut self, key: impl Key<'k>, value: i64, expires_at: u64) {
        self.put(key, Kind::Int, &value.to_ne_bytes(), expires_at)
    }

    /// Stores a lock held by `owner` with its fencing token.
    pub fn put_lock<'k>(&mut self, key: impl Key<'k>, owner: &[u8], token: u64, expires_at: u64) {
        self.put(key, Kind::Lock, &lock_value(owner, token), expires_at)
    }

    /// Stores an empty list or sorted set at `key`, replacing any entry.
    pub fn put_empty_collection(&mut self, key: &[u8], kind: Kind, expires_at: u64) {
        self.touch(key);
        let had = self.map.upsert(key, |arena, k| match kind {
            Kind::List => Entry::new_list(arena, k, List::default(), expires_at),
            _ => Entry::new_zset(arena, k, ZSet::new(), expires_at),
        });
        self.adjust_ttl_count(had.is_some_and(|exp| exp != 0), expires_at != 0);
    }

    /// The kind of the entry at `key`, live or expired.
    pub fn entry_kind(&self, key: &[u8]) -> Option<Kind> {
        self.map.get(key).map(Entry::kind)
    }

    /// The list at `key` (live or expired), to modify.
    pub fn list_mut(&mut self, key: &[u8]) -> Option<&mut List> {
        self.touch(key);
        // SAFETY: `&mut self` is the shard's write lock: exclusive access.
        self.map.get(key).and_then(|e| unsafe { e.list_mut() })
    }

    /// The sorted set at `key` (live or expired), to modify.
    pub fn zset_mut(&mut self, key: &[u8]) -> Option<&mut ZSet> {
        self.touch(key);
        // SAFETY: `&mut self` is the shard's write lock: exclusive access.
        self.map.get(key).and_then(|e| unsafe { e.zset_mut() })
    }

    /// Stores a value with one table probe: recovery's path, where most
    /// keys are new, so building the entry up front costs nothing extra.
    pub fn load<'k>(&mut self, key: impl Key<'k>, value: Value<'_>, expires_at: u64) {
        self.touch(key.bytes());
        let had = self.map.upsert(key, |arena, k| match value {
            Value::Bytes(b) => Entry::new_bytes(arena, k, b, expires_at),
            Value::Int(n) => Entry::new_int(arena, k, n, expires_at),
            Value::List(l) => Entry::new_list(arena, k, l.clone(), expires_at),
            Value::ZSet(z) => Entry::new_zset(arena, k, z.clone(), expires_at),
        });
        self.adjust_ttl_count(had.is_some_and(|exp| exp != 0), expires_at != 0);
    }

    pub fn reserve(&mut self, additional: usize) {
        self.map.reserve(additional)
    }

    pub fn shrink_if_sparse(&mut self) {
        if self.map.capacity() > 4 * self.map.len() + 1024 {
            self.map.shrink_to_fit();
        }
    }

    /// Removes the entry if it is live; true if it was. An expired entry
    /// stays until the expiry sweep removes it, because every removal must
    /// be logged for recovery to rebuild this table exactly.
    pub fn remove<'k>(&mut self, key: impl Key<'k>, now: impl FnOnce() -> u64) -> bool {
        let key = self.map.hashed(key);
        if self.live(key, now).is_none() {
            return false;
        }
        self.remove_any(key)
    }

    /// Removes the entry, live or expired; true if there was one.
    pub fn remove_any<'k>(&mut self, key: impl Key<'k>) -> bool {
        match self.map.remove(key) {
            Some(expires_at) => {
                self.touch(key.bytes());
                self.adjust_ttl_count(expires_at != 0, false);
                true
            }
            None => false,
        }
    }

    /// Sets the expiry of an existing entry (0 = none).
    pub fn set_expiry<'k>(&mut self, key: impl Key<'k>, expires_at: u64) {
        if let Some((e, arena)) = self.map.get_mut(key) {
            let had_ttl = e.expires_at() != 0;
            e.set_expires_at(arena, expires_at);
            if let Some(w) = self.watched.as_mut() {
                bump(w, key.bytes());
            }
            self.adjust_ttl_count(had_ttl, expires_at != 0);
        }
    }

    fn adjust_ttl_count(&mut self, had: bool, has: bool) {
        match (had, has) {
            (false, true) => self.ttl_count += 1,
            (true, false) => self.ttl_count -= 1,
            _ => {}
        }
    }

    /// Keys of expired entries (the sweep logs them, then removes them
    /// with `remove_any`).
    pub fn expired_keys(&self, now_ms: u64) -> Vec<Vec<u8>> {
        if self.ttl_count == 0 {
            return Vec::new();
        }
        self.map.iter().filter(|e| !e.is_live(|| now_ms)).map(|e| e.key().to_vec()).collect()
    }

    pub fn ttl_entries(&self) -> usize {
        self.ttl_count
    }

    pub fn has_ttl_entries(&self) -> bool {
        self.ttl_count != 0
    }

    /// Live entries; O(1) unless some entries carry an expiry.
    pub fn count_live(&self, now_ms: u64) -> usize {
        if self.ttl_count == 0 {
            return self.map.len();
        }
        self.map.iter().filter(|e| e.is_live(|| now_ms)).count()
    }

    /// Every entry, expired ones included.
    pub fn iter(&self) -> impl Iterator<Item = &Entry> {
        self.map.iter()
    }

    /// Every live entry.
    pub fn iter_live(&self, now_ms: u64) -> impl Iterator<Item = &Entry> {
        self.map.iter().filter(move |e| e.is_live(|| now_ms))
    }

    /// Which arrangement of buckets the table has (a scan's resume point
    /// is valid only under the arrangement it was taken in).
    pub fn layout(&self) -> u64 {
        self.map.layout()
    }

    /// Visits every entry, live or expired, in bucket order from bucket
    /// `from` until `f` returns false; returns where to resume (`None`:
    /// the whole table was visited).
    pub fn visit_from(&self, from: usize, f: impl FnMut(&Entry) -> bool) -> Option<usize> {
        self.map.visit_from(from, f)
    }

    /// Keeps only the entries whose key `keep` accepts.
    pub fn retain(&mut self, mut keep: impl FnMut(&[u8]) -> bool) {
        self.map.retain(|e| keep(e.key()));
        self.ttl_count = self.map.iter().filter(|e| e.expires_at() != 0).count();
        self.touch_all();
    }

    /// Entries held, expired ones included.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Hashes keys with `seed` from now on; the shard must be empty.
    pub fn reseed(&mut self, seed: u64) {
        self.map.reseed(seed)
    }

    pub fn clear(&mut self) {
        self.map.clear();
        self.ttl_count = 0;
        self.touch_all();
    }

    #[inline]
    fn touch(&mut self, key: &[u8]) {
        if let Some(w) = self.watched.as_mut() {
            bump(w, key);
        }
    }

    fn touch_all(&mut self) {
        for (version, _) in self.watched.iter_mut().flat_map(|w| w.values_mut()) {
            *version += 1;
        }
    }

    /// Registers a watcher of `key`; returns the key's current version.
    pub fn watch(&mut self, key: &[u8]) -> u64 {
        let slot = self.watched.get_or_insert_with(Default::default).entry(key.to_vec()).or_insert((0, 0));
        slot.1 += 1;
        slot.0
    }

    /// Drops one watcher of `key`.
    pub fn unwatch(&mut self, key: &[u8]) {
        let Some(w) = self.watched.as_mut() else { return };
        if let Some(slot) = w.get_mut(key) {
            slot.1 -= 1;
            if slot.1 == 0 {
                w.remove(key);
            }
        }
        if w.is_empty() {
            self.watched = None;
        }
    }

    /// The version of a watched key (None if nobody watches it).
    pub fn watch_version(&self, key: &[u8]) -> Option<u64> {
        self.watched.as_ref()?.get(key).map(|s| s.0)
    }
}

fn bump(w: &mut HashMap<Vec<u8>, (u64, u32)>, key: &[u8]) {
    if let Some(slot) = w.get_mut(key) {
        slot.0 += 1;
    }
}
