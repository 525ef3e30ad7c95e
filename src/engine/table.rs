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
use super::hash::{key_hash, table_hash};

/// A key as the table is asked for it: its bytes, and its `key_hash`
/// under the table's seed, computed here (`&[u8]`) or already known
/// (`Hashed`, from the operation that chose the shard with it).
pub trait Key<'k>: Copy {
    fn bytes(self) -> &'k [u8];
    fn key_hash(self, seed: u64) -> u64;
}

// Every shape callers hold key bytes in: `&[u8]`, `&Vec<u8>`, `&&[u8]`.
impl<'k, T: AsRef<[u8]> + ?Sized> Key<'k> for &'k T {
    #[inline]
    fn bytes(self) -> &'k [u8] {
        self.as_ref()
    }
    #[inline]
    fn key_hash(self, seed: u64) -> u64 {
        key_hash(seed, self.as_ref())
    }
}

/// A key with its `key_hash` (under the engine's seed, which every shard
/// table shares).
#[derive(Clone, Copy)]
pub struct Hashed<'k> {
    pub key: &'k [u8],
    pub hash: u64,
}

impl<'k> Key<'k> for Hashed<'k> {
    #[inline]
    fn bytes(self) -> &'k [u8] {
        self.key
    }
    #[inline]
    fn key_hash(self, _seed: u64) -> u64 {
        self.hash
    }
}

/// What the table files an entry under, computed from its key when the
/// table moves entries.
fn rehash(seed: u64) -> impl Fn(&Entry) -> u64 {
    move |e| table_hash(key_hash(seed, e.key()))
}

pub struct Table {
    t: HashTable<Entry>,
    seed: u64,
    layout: u64,
}

impl Table {
    pub fn new(seed: u64) -> Table {
        Table { t: HashTable::new(), seed, layout: 0 }
    }

    /// The key with its hash, for a method that probes more than once.
    #[inline]
    pub fn hashed<'k>(&self, key: impl Key<'k>) -> Hashed<'k> {
        Hashed { key: key.bytes(), hash: key.key_hash(self.seed) }
    }

    #[inline]
    fn hash<'k>(&self, key: impl Key<'k>) -> u64 {
        table_hash(key.key_hash(self.seed))
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
    pub fn get<'k>(&self, key: impl Key<'k>) -> Option<&Entry> {
        self.t.find(self.hash(key), |e| e.key() == key.bytes())
    }

    /// Stores `e`, whose key the caller knows is absent.
    pub fn insert_new<'k>(&mut self, key: impl Key<'k>, e: Entry) {
        debug_assert!(e.key() == key.bytes());
        let h = self.hash(key);
        self.before_growth(1);
        self.t.insert_unique(h, e, rehash(self.seed));
    }

    /// Stores `e`, whose key is `key`, returning the entry it replaced.
    pub fn replace<'k>(&mut self, key: impl Key<'k>, e: Entry) -> Option<Entry> {
        debug_assert!(e.key() == key.bytes());
        let h = self.hash(key);
        self.before_growth(1);
        match self.t.entry(h, |x| x.key() == e.key(), rehash(self.seed)) {
            Slot::Occupied(mut o) => Some(std::mem::replace(o.get_mut(), e)),
            Slot::Vacant(v) => {
                v.insert(e);
                None
            }
        }
    }

    /// Removes and returns the entry for `key`.
    pub fn take<'k>(&mut self, key: impl Key<'k>) -> Option<Entry> {
        let h = self.hash(key);
        self.t.find_entry(h, |e| e.key() == key.bytes()).ok().map(|o| o.remove().0)
    }

    pub fn reserve(&mut self, additional: usize) {
        self.before_growth(additional);
        self.t.reserve(additional, rehash(self.seed));
    }

    pub fn shrink_to_fit(&mut self) {
        self.layout += 1;
        self.t.shrink_to_fit(rehash(self.seed));
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
