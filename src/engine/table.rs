//! A shard's table of entries: a `hashbrown::HashTable` keyed by each
//! entry's key, plus a layout counter that lets a scan resume at a bucket.
//!
//! Entries stay in their bucket until the table rehashes (it grows, or
//! rebuilds in place to clear tombstones) or shrinks. Every call that may
//! do that bumps `layout` first, so a scan that remembered a bucket index
//! and the layout it was taken under knows whether the index still means
//! the same place. Removals never move other entries.
//!
//! The table also owns the arena its entries' blocks live in, so it is the
//! one place that frees a block and the one place that can find the entry
//! pointing at a block when the arena empties a sparse chunk: every `&mut`
//! method first moves the live blocks out of such chunks (`settle`), so no
//! borrow of an entry can be alive while a block moves. Moving a block
//! changes the entry's pointer, not its bucket.

use hashbrown::hash_table::Entry as Slot;
use hashbrown::HashTable;

use super::arena::Arena;
use super::entry::{block_in_chunk, Entry};
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
    /// Where the entries' blocks live (see the module doc).
    arena: Arena,
    seed: u64,
    layout: u64,
}

impl Table {
    pub fn new(seed: u64) -> Table {
        Table { t: HashTable::new(), arena: Arena::new(), seed, layout: 0 }
    }

    /// Moves the live blocks out of every sparse chunk and frees it.
    #[inline]
    fn settle(&mut self) {
        if self.arena.has_sparse() {
            self.empty_sparse_chunks();
        }
    }

    #[cold]
    fn empty_sparse_chunks(&mut self) {
        let Table { t, arena, seed, .. } = self;
        while let Some(chunk) = arena.take_sparse() {
            let mut orphans = 0;
            chunk.walk(|p| {
                // SAFETY: p is a block start in a chunk of this table's
                // arena, freed only below, after the walk.
                let (len, key) = unsafe { block_in_chunk(p) };
                if let Some(key) = key {
                    match t.find(table_hash(key_hash(*seed, key)), |e| e.is_at(p)) {
                        // SAFETY: the entry is this table's, so its block
                        // is in `arena`; `&mut self` is exclusive access.
                        Some(e) => unsafe { e.move_to(arena) },
                        None => orphans += 1,
                    }
                }
                len
            });
            // A live block no entry points at would be a bug elsewhere;
            // keeping its chunk (never reused) is the safe way to live with
            // it.
            debug_assert_eq!(orphans, 0, "live blocks without an entry");
            if orphans == 0 {
                // SAFETY: every live block of the chunk was moved above.
                unsafe { arena.release(chunk) };
            }
        }
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

    /// The entry for `key`, to change with the arena its block lives in.
    #[inline]
    pub fn get_mut<'k>(&mut self, key: impl Key<'k>) -> Option<(&Entry, &mut Arena)> {
        self.settle();
        let h = self.hash(key);
        let arena = &mut self.arena;
        self.t.find(h, |e| e.key() == key.bytes()).map(|e| (e, arena))
    }

    /// Stores the entry `make` builds in the table's arena for `key`,
    /// which the caller knows is absent.
    pub fn insert_new<'k>(&mut self, key: impl Key<'k>, make: impl FnOnce(&mut Arena, &[u8]) -> Entry) {
        self.settle();
        let h = self.hash(key);
        self.before_growth(1);
        let e = make(&mut self.arena, key.bytes());
        debug_assert!(e.key() == key.bytes());
        self.t.insert_unique(h, e, rehash(self.seed));
    }

    /// Stores the entry `make` builds for `key`, freeing the one it
    /// replaces; returns the replaced entry's expiry (`Some(0)`: none).
    pub fn upsert<'k>(&mut self, key: impl Key<'k>, make: impl FnOnce(&mut Arena, &[u8]) -> Entry) -> Option<u64> {
        self.settle();
        let h = self.hash(key);
        self.before_growth(1);
        let e = make(&mut self.arena, key.bytes());
        debug_assert!(e.key() == key.bytes());
        match self.t.entry(h, |x| x.key() == key.bytes(), rehash(self.seed)) {
            Slot::Occupied(mut o) => {
                let old = std::mem::replace(o.get_mut(), e);
                // SAFETY: the old entry was this table's.
                Some(unsafe { old.free(&mut self.arena) })
            }
            Slot::Vacant(v) => {
                v.insert(e);
                None
            }
        }
    }

    /// Removes and frees the entry for `key`; returns its expiry
    /// (`Some(0)`: none).
    pub fn remove<'k>(&mut self, key: impl Key<'k>) -> Option<u64> {
        self.settle();
        let h = self.hash(key);
        let e = self.t.find_entry(h, |e| e.key() == key.bytes()).ok().map(|o| o.remove().0)?;
        // SAFETY: the entry was this table's.
        Some(unsafe { e.free(&mut self.arena) })
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

    /// Hashes keys with `seed` from now on. Only an empty table may change
    /// its seed: the slots of the entries it holds were chosen by the old
    /// one.
    pub fn reseed(&mut self, seed: u64) {
        assert!(self.t.is_empty(), "reseed of a table that holds entries");
        self.seed = seed;
    }

    pub fn capacity(&self) -> usize {
        self.t.capacity()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Entry> {
        self.t.iter()
    }

    pub fn retain(&mut self, mut keep: impl FnMut(&Entry) -> bool) {
        self.settle();
        let arena = &mut self.arena;
        for e in self.t.extract_if(|e| !keep(e)) {
            // SAFETY: the entry was this table's.
            unsafe { e.free(arena) };
        }
    }

    pub fn clear(&mut self) {
        self.free_all();
        self.arena = Arena::new();
    }

    /// Frees every entry: what their blocks reference (collections) and the
    /// blocks outside the arena; the arena's chunks go with the arena.
    fn free_all(&mut self) {
        let arena = &mut self.arena;
        for e in self.t.drain() {
            // SAFETY: the entry was this table's.
            unsafe { e.free(arena) };
        }
    }

    /// Arena chunks held (for tests of the compaction bound).
    #[cfg(test)]
    pub fn arena_chunks(&self) -> usize {
        self.arena.chunks()
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

impl Drop for Table {
    fn drop(&mut self) {
        self.free_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::arena::CHUNK;
    use crate::engine::entry::{Kind, Value};
    use crate::engine::list::List;
    use std::collections::HashMap;
    use std::sync::Arc;

    /// A small xorshift, so the test needs no crate and replays exactly.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    fn value(key: u64, version: u64, len: usize) -> Vec<u8> {
        (0..len).map(|i| (key.wrapping_mul(31) ^ version ^ i as u64) as u8).collect()
    }

    /// Random puts of changing sizes (some past `MAX_BLOCK`), expiries
    /// added and cleared, lists and removals, checked against a model after
    /// every step; emptying sparse chunks must never lose or garble a
    /// block, and the arena must stay within twice the live bytes.
    #[test]
    fn blocks_survive_compaction_and_the_arena_stays_bounded() {
        let mut t = Table::new(7);
        let mut model: HashMap<u64, (Vec<u8>, u64)> = HashMap::new();
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let keys = 3000;
        for step in 0..60_000u64 {
            let k = rng.below(keys);
            let key = format!("key-{k:05}");
            let op = rng.below(10);
            if op < 6 {
                let len = match rng.below(20) {
                    0 => 9000 + rng.below(3000) as usize,
                    _ => rng.below(600) as usize,
                };
                let v = value(k, step, len);
                let exp = if rng.below(3) == 0 { step + 1 } else { 0 };
                match t.get_mut(key.as_bytes()) {
                    Some((e, arena)) => e.replace(arena, Kind::Bytes, &v, exp),
                    None => t.insert_new(key.as_bytes(), |a, kb| Entry::new(a, kb, Kind::Bytes, &v, exp)),
                }
                model.insert(k, (v, exp));
            } else if op < 8 {
                assert_eq!(t.remove(key.as_bytes()).is_some(), model.remove(&k).is_some());
            } else if let Some((e, arena)) = t.get_mut(key.as_bytes()) {
                let exp = if rng.below(2) == 0 { 0 } else { step + 2 };
                e.set_expires_at(arena, exp);
                model.get_mut(&k).unwrap().1 = exp;
            }
            if step % 1000 == 0 || step == 59_999 {
                t.settle();
                assert_eq!(t.len(), model.len());
                let mut live = 0;
                for (k, (v, exp)) in &model {
                    let e = t.get(format!("key-{k:05}").as_bytes()).expect("present");
                    assert_eq!((e.value(), e.expires_at()), (Value::Bytes(v), *exp), "key {k} at step {step}");
                    live += e.block_size();
                }
                assert!(t.arena_chunks() <= 2 * live / CHUNK + 2, "{} chunks for {live} live bytes", t.arena_chunks());
            }
        }
        // Lists: removing or replacing the entry releases its reference,
        // also after its block was moved.
        t.insert_new(&b"list"[..], |a, kb| Entry::new_list(a, kb, List::default(), 0));
        let shared = t.get(&b"list"[..]).unwrap().share_list().unwrap();
        for k in 0..keys {
            t.remove(format!("key-{k:05}").as_bytes());
        }
        t.settle();
        assert!(matches!(t.get(&b"list"[..]).unwrap().value(), Value::List(_)));
        assert_eq!(Arc::strong_count(&shared), 2);
        t.remove(&b"list"[..]);
        assert_eq!(Arc::strong_count(&shared), 1);
        assert!(t.arena_chunks() <= 1);
    }
}
