//! A shard's table of entries: a `hashbrown::HashTable` keyed by each
//! entry's key, plus a layout counter that lets a scan resume at a bucket.
//!
//! Entries stay in their bucket until the table rehashes (it grows, or
//! rebuilds in place to clear tombstones) or shrinks. Every call that may
//! do that bumps `layout` first, so a scan that remembered a bucket index
//! and the layout it was taken under knows whether the index still means
//! the same place. Removals never move other entries.

#![forbid(unsafe_code)]

use hashbrown::hash_table::Entry as Slot;
use hashbrown::HashTable;

use super::entry::Entry;
use super::hash::hash_bytes;

pub struct Table {
    t: HashTable<Entry>,
    seed: u64,
    layout: u64,
}

impl Table {
    pub fn new(seed: u64) -> Table {
        Table { t: HashTable::new(), seed, layout: 0 }
    }

    #[inline]
    fn hash(&self, key: &[u8]) -> u64 {
        hash_bytes(self.seed, key)
    }

    /// Bumps the layout if making room for `additional` entries may move
    /// entries (hashbrown rehashes only when its free slots run out).
    #[inline]
    fn before_growth(&mut self, additional: usize) {
        if self.t.capacity() - self.t.len() < additional {
            self.layout += 1;
        }
    }

    #[inline]
    pub fn get(&self, key: &[u8]) -> Option<&Entry> {
        self.t.find(self.hash(key), |e| e.key() == key)
    }

    /// Stores `e`, whose key the caller knows is absent.
    pub fn insert_new(&mut self, e: Entry) {
        let h = self.hash(e.key());
        self.before_growth(1);
        let seed = self.seed;
        self.t.insert_unique(h, e, move |x| hash_bytes(seed, x.key()));
    }

    /// Stores `e`, returning the entry it replaced.
    pub fn replace(&mut self, e: Entry) -> Option<Entry> {
        let h = self.hash(e.key());
        self.before_growth(1);
        let seed = self.seed;
        match self.t.entry(h, |x| x.key() == e.key(), move |x| hash_bytes(seed, x.key())) {
            Slot::Occupied(mut o) => Some(std::mem::replace(o.get_mut(), e)),
            Slot::Vacant(v) => {
                v.insert(e);
                None
            }
        }
    }

    /// Removes and returns the entry for `key`.
    pub fn take(&mut self, key: &[u8]) -> Option<Entry> {
        let h = self.hash(key);
        self.t.find_entry(h, |e| e.key() == key).ok().map(|o| o.remove().0)
    }

    pub fn reserve(&mut self, additional: usize) {
        self.before_growth(additional);
        let seed = self.seed;
        self.t.reserve(additional, move |x| hash_bytes(seed, x.key()));
    }

    pub fn shrink_to_fit(&mut self) {
        self.layout += 1;
        let seed = self.seed;
        self.t.shrink_to_fit(move |x| hash_bytes(seed, x.key()));
    }

    pub fn len(&self) -> usize {
        self.t.len()
    }

    pub fn capacity(&self) -> usize {
        self.t.capacity()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Entry> {
        self.t.iter()
    }

    pub fn retain(&mut self, mut keep: impl FnMut(&Entry) -> bool) {
        self.t.retain(|e| keep(e));
    }

    pub fn clear(&mut self) {
        self.t.clear();
    }

    /// Which arrangement of buckets the table has now (see the module doc).
    pub fn layout(&self) -> u64 {
        self.layout
    }

    /// Calls `f` on the entries in bucket order from bucket `from` until
    /// `f` returns false; returns the bucket to resume at, or `None` once
    /// the last bucket was visited.
    pub fn visit_from(&self, from: usize, mut f: impl FnMut(&Entry) -> bool) -> Option<usize> {
        for i in from..self.t.num_buckets() {
            if let Some(e) = self.t.get_bucket(i) {
                if !f(e) {
                    return Some(i + 1);
                }
            }
        }
        None
    }
}
