//! The figures an operator graphs: operations by kind, WAL and fsync
//! activity with fsync latency, snapshots, recovery, expiry and
//! back-pressure. Counters are relaxed atomics bumped off the shard locks'
//! critical paths; `Stats` is a copy taken at one moment (fields are read
//! one by one, so two of them may straddle a concurrent write).

#![forbid(unsafe_code)]

use std::sync::atomic::{AtomicU64, Ordering};

/// Kinds of operations counted in `Stats::ops`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpKind {
    /// get, exists, ttl; each key of an mget.
    Read = 0,
    /// set, setnx, cas, fenced set; each key of an mset.
    Write = 1,
    /// delete, fenced delete; each key of an mdel.
    Delete = 2,
    /// incr, decr.
    Incr = 3,
    /// expire, persist.
    Expire = 4,
    /// lock, unlock, extend_lock.
    Lock = 5,
    /// Transactions (every command of `dbkv serve` that is not one of the above).
    Txn = 6,
    /// Scans started.
    Scan = 7,
}

pub const OP_KINDS: usize = 8;

impl OpKind {
    pub const ALL: [OpKind; OP_KINDS] = [OpKind::Read, OpKind::Write, OpKind::Delete, OpKind::Incr, OpKind::Expire, OpKind::Lock, OpKind::Txn, OpKind::Scan];

    pub fn name(self) -> &'static str {
        ["read", "write", "delete", "incr", "expire", "lock", "txn", "scan"][self as usize]
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    pub keys: u64,
    /// Operations by kind since open, indexed by `OpKind`.
    pub ops: [u64; OP_KINDS],
    pub wal_records: u64,
    pub wal_bytes: u64,
    /// WAL segment files on disk, and segments started since open.
    pub wal_segments: u64,
    pub wal_rotations: u64,
    pub fsyncs: u64,
    /// fsync latency since open: total, median, 99th percentile and
    /// maximum, in microseconds (percentiles from a log2 histogram: each is
    /// the upper bound of its bucket, at most twice the true value).
    pub fsync_total_us: u64,
    pub fsync_p50_us: u64,
    pub fsync_p99_us: u64,
    pub fsync_max_us: u64,
    pub durable_lsn: u64,
    pub last_lsn: u64,
    pub snapshots_taken: u64,
    pub snapshot_failures: u64,
    pub last_snapshot_duration_us: u64,
    pub last_snapshot_bytes: u64,
    /// Unix milliseconds when the last snapshot of this handle completed.
    pub last_snapshot_unix_ms: u64,
    pub recovery_snapshot_loaded: bool,
    pub recovery_snapshot_entries: u64,
    pub recovery_wal_records: u64,
    pub recovery_corrupt_records: u64,
    pub recovery_bytes_dropped: u64,
    pub recovery_duration_us: u64,
    /// Expired keys the sweep removed (the background sweep and `sweep_expired`).
    pub expired_reclaimed: u64,
    /// Writers that waited because the WAL queue was full, and the total
    /// time they waited.
    pub backpressure_waits: u64,
    pub backpressure_wait_us: u64,
    pub failed: bool,
}

/// Buckets of the fsync histogram: bucket i counts latencies below 2^i µs
/// (the last one everything above).
const BUCKETS: usize = 32;

/// A log2 latency histogram that many threads record into.
pub struct Histogram {
    buckets: [AtomicU64; BUCKETS],
    total_us: AtomicU64,
    max_us: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram { buckets: [const { AtomicU64::new(0) }; BUCKETS], total_us: AtomicU64::new(0), max_us: AtomicU64::new(0) }
    }
}

impl Histogram {
    pub fn record(&self, us: u64) {
        let i = (u64::BITS - us.leading_zeros()) as usize;
        self.buckets[i.min(BUCKETS - 1)].fetch_add(1, Ordering::Relaxed);
        self.total_us.fetch_add(us, Ordering::Relaxed);
        self.max_us.fetch_max(us, Ordering::Relaxed);
    }

    /// The upper bound (µs) of the bucket holding quantile `q` (0 when empty).
    pub fn quantile(&self, q: f64) -> u64 {
        let counts: Vec<u64> = self.buckets.iter().map(|b| b.load(Ordering::Relaxed)).collect();
        let n: u64 = counts.iter().sum();
        if n == 0 {
            return 0;
        }
        let rank = ((n as f64 * q).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, c) in counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return (1u64 << i).min(self.max());
            }
        }
        self.max()
    }

    pub fn total(&self) -> u64 {
        self.total_us.load(Ordering::Relaxed)
    }

    pub fn max(&self) -> u64 {
        self.max_us.load(Ordering::Relaxed)
    }
}

/// What the durability threads count beyond `Stats`'s older fields.
#[derive(Default)]
pub struct DurabilityCounters {
    pub fsync_latency: Histogram,
    pub rotations: AtomicU64,
    pub snapshot_failures: AtomicU64,
    pub last_snapshot_bytes: AtomicU64,
    pub last_snapshot_unix_ms: AtomicU64,
    pub backpressure_waits: AtomicU64,
    pub backpressure_wait_us: AtomicU64,
}

impl DurabilityCounters {
    pub fn fill(&self, st: &mut Stats) {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        st.fsync_total_us = self.fsync_latency.total();
        st.fsync_p50_us = self.fsync_latency.quantile(0.5);
        st.fsync_p99_us = self.fsync_latency.quantile(0.99);
        st.fsync_max_us = self.fsync_latency.max();
        st.wal_rotations = get(&self.rotations);
        st.snapshot_failures = get(&self.snapshot_failures);
        st.last_snapshot_bytes = get(&self.last_snapshot_bytes);
        st.last_snapshot_unix_ms = get(&self.last_snapshot_unix_ms);
        st.backpressure_waits = get(&self.backpressure_waits);
        st.backpressure_wait_us = get(&self.backpressure_wait_us);
    }
}

/// Operation counters, one set per shard so concurrent threads rarely
/// share a cache line (each sits beside its shard's lock).
#[derive(Default)]
pub struct OpCounters([AtomicU64; OP_KINDS]);

impl OpCounters {
    #[inline]
    pub fn add(&self, kind: OpKind, n: u64) {
        self.0[kind as usize].fetch_add(n, Ordering::Relaxed);
    }

    pub fn add_into(&self, into: &mut [u64; OP_KINDS]) {
        for (sum, c) in into.iter_mut().zip(&self.0) {
            *sum += c.load(Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_bucket_upper_bounds_capped_by_max() {
        let h = Histogram::default();
        assert_eq!(h.quantile(0.5), 0);
        for us in [3, 3, 3, 100, 5000] {
            h.record(us);
        }
        assert_eq!(h.quantile(0.5), 4);
        assert_eq!(h.quantile(0.99), 5000);
        assert_eq!(h.max(), 5000);
        assert_eq!(h.total(), 5109);
    }
}
