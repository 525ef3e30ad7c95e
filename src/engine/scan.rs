//! Prefix scans, copied in bounded chunks.
//!
//! A scan walks the shards in order and each shard's table in bucket
//! order. Each step copies a bounded chunk of matching entries under the
//! shard's read lock and remembers the bucket to resume at, so a writer
//! waits for one chunk at most. Chunks start small and double up to
//! `MAX_CHUNK_ENTRIES` / `MAX_CHUNK_BYTES`: a scan that is started and
//! abandoned (memory a garbage-collected binding cannot see) holds a few
//! entries, and a long scan takes a lock once per few hundred entries.
//!
//! The guarantee: a key present and unchanged for the whole scan is
//! returned exactly once; keys written during it may or may not be.
//! Between two chunks an unchanged entry stays in its bucket unless the
//! table rehashed; the table counts its rehashes (`ShardData::layout`), and
//! when the layout changed under a half-walked shard the scan walks that
//! shard again from its first bucket. Either way it skips the keys it
//! already returned from the shard (`seen`, kept only for the shard being
//! walked), so no key is ever returned twice, not even one deleted and
//! written again into a later bucket.

#![forbid(unsafe_code)]

use std::collections::HashSet;
use std::sync::Arc;

use super::entry::Entry;
use super::Inner;

/// The first chunk holds at most this many entries...
const FIRST_CHUNK_ENTRIES: usize = 4;
/// ...and each later one twice the last, up to this many...
const MAX_CHUNK_ENTRIES: usize = 256;
/// ...and a step stops after the entry that takes its copy past the byte
/// budget (one large value is still returned whole), which starts at
/// `FIRST_CHUNK_BYTES` and doubles up to `MAX_CHUNK_BYTES`.
const FIRST_CHUNK_BYTES: usize = 4 * 1024;
const MAX_CHUNK_BYTES: usize = 256 * 1024;

type Pair = (Vec<u8>, Vec<u8>);

/// Where the walk of the current shard stands: resume at `bucket` if the
/// shard's layout is still `layout`, else from bucket 0. A shard not yet
/// started is bucket 0 (whatever the layout). Plain fields rather than an
/// enum with a payload, so no byte of it is ever uninitialised (valgrind
/// flags a compiled comparison that reads an absent payload).
#[derive(Clone, Copy, Default)]
struct Resume {
    bucket: usize,
    layout: u64,
}

pub struct ScanIter {
    inner: Arc<Inner>,
    prefix: Vec<u8>,
    shard: usize,
    resume: Resume,
    /// Keys of the current shard returned (or queued) so far.
    seen: HashSet<Vec<u8>>,
    batch: std::vec::IntoIter<Pair>,
    /// The next chunk's limits.
    max_entries: usize,
    max_bytes: usize,
}

impl ScanIter {
    pub(super) fn new(inner: Arc<Inner>, prefix: Vec<u8>) -> ScanIter {
        ScanIter { inner, prefix, shard: 0, resume: Resume::default(), seen: HashSet::new(), batch: Vec::new().into_iter(), max_entries: FIRST_CHUNK_ENTRIES, max_bytes: FIRST_CHUNK_BYTES }
    }

    /// The handle failed during the scan: the scan ended early and its
    /// result is incomplete.
    pub fn failed(&self) -> bool {
        self.inner.failed.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Copies the next chunk into `batch`; false when the scan is over.
    fn refill(&mut self) -> bool {
        while self.shard < self.inner.shards.len() && !self.failed() {
            let chunk = self.copy_chunk();
            if !chunk.is_empty() {
                self.batch = chunk.into_iter();
                return true;
            }
        }
        false
    }

    /// One step of the walk of the current shard (possibly empty), moving
    /// on to the next shard when this one is done.
    fn copy_chunk(&mut self) -> Vec<Pair> {
        let shard = self.inner.shards[self.shard].read();
        let layout = shard.layout();
        let from = if self.resume.layout == layout { self.resume.bucket } else { 0 };
        let now = self.inner.now();
        let (max_entries, max_bytes) = (self.max_entries, self.max_bytes);
        let mut chunk = Vec::new();
        let mut bytes = 0;
        let next = shard.visit_from(from, |e| {
            if let Some(pair) = self.copy_entry(e, now) {
                bytes += pair.0.len() + pair.1.len();
                chunk.push(pair);
            }
            chunk.len() < max_entries && bytes < max_bytes
        });
        drop(shard);
        self.max_entries = (max_entries * 2).min(MAX_CHUNK_ENTRIES);
        self.max_bytes = (max_bytes * 2).min(MAX_CHUNK_BYTES);
        match next {
            Some(bucket) => {
                self.resume = Resume { bucket, layout };
                self.seen.extend(chunk.iter().map(|(k, _)| k.clone()));
            }
            None => {
                self.shard += 1;
                self.resume = Resume::default();
                self.seen = HashSet::new();
            }
        }
        chunk
    }

    /// The entry's key and value if the scan returns it.
    fn copy_entry(&self, e: &Entry, now: u64) -> Option<Pair> {
        if !e.key().starts_with(&self.prefix) || !e.is_live(|| now) {
            return None;
        }
        if self.seen.contains(e.key()) {
            return None;
        }
        // Lists and sorted sets have no single value: the scan of this API
        // yields strings (dbkv serve's SCAN lists all keys).
        let value = e.value().to_vec().ok()?;
        Some((e.key().to_vec(), value))
    }
}

impl Iterator for ScanIter {
    type Item = Pair;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(kv) = self.batch.next() {
                return Some(kv);
            }
            if !self.refill() {
                return None;
            }
        }
    }
}
