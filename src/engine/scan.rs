//! Prefix scans. Each shard's matching entries are copied under its read
//! lock, then handed out one by one, so writers wait at most for one
//! shard's copy and a key present and unchanged for the whole scan is
//! returned exactly once (every key lives in exactly one shard).

use std::sync::Arc;

use super::Inner;

pub struct ScanIter {
    inner: Arc<Inner>,
    prefix: Vec<u8>,
    next_shard: usize,
    batch: std::vec::IntoIter<(Vec<u8>, Vec<u8>)>,
}

impl ScanIter {
    pub(super) fn new(inner: Arc<Inner>, prefix: Vec<u8>) -> ScanIter {
        ScanIter { inner, prefix, next_shard: 0, batch: Vec::new().into_iter() }
    }

    /// The handle failed during the scan: the scan ended early and its
    /// result is incomplete.
    pub fn failed(&self) -> bool {
        self.inner.failed.load(std::sync::atomic::Ordering::Acquire)
    }

    fn load_next_shard(&mut self) -> bool {
        while self.next_shard < self.inner.shards.len() && !self.failed() {
            let shard = &self.inner.shards[self.next_shard];
            self.next_shard += 1;
            let now = self.inner.now();
            let copied: Vec<(Vec<u8>, Vec<u8>)> = shard
                .read()
                .iter_live(now)
                .filter(|e| e.key().starts_with(&self.prefix))
                // Lists and sorted sets have no single value: the scan of
                // this API yields strings (dbkv serve's SCAN lists all keys).
                .filter_map(|e| Some((e.key().to_vec(), e.value().to_vec().ok()?)))
                .collect();
            if !copied.is_empty() {
                self.batch = copied.into_iter();
                return true;
            }
        }
        false
    }
}

impl Iterator for ScanIter {
    type Item = (Vec<u8>, Vec<u8>);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(kv) = self.batch.next() {
                return Some(kv);
            }
            if !self.load_next_shard() {
                return None;
            }
        }
    }
}
