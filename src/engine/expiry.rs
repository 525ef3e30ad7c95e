//! Active expiry: a background thread reclaims expired keys so memory does
//! not grow with dead keys that nobody reads again (Redis's active expire
//! cycle, done per shard). Each step holds one shard's write lock for one
//! pass over that shard, and a cycle stops early once its time budget is
//! spent, so writers are never blocked for long.
//!
//! Reclaiming is logged (as Redis propagates a DEL for every key it
//! expires), so that recovery, which never consults the clock, rebuilds
//! exactly the table the engine had: without the log, a clock stepped back
//! would bring a reclaimed key back after a restart but not before it.

#![forbid(unsafe_code)]

use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::durability::Appender;
use super::Inner;
use crate::persistence::record::Record;

const CYCLE_BUDGET: Duration = Duration::from_millis(5);

pub struct Sweeper {
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: JoinHandle<()>,
}

impl Sweeper {
    pub fn start(engine: Weak<Inner>, interval_ms: u64, log: Option<Appender>) -> Sweeper {
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let stop2 = stop.clone();
        let thread = std::thread::Builder::new()
            .name("dbkv-expiry".into())
            .spawn(move || run(engine, stop2, Duration::from_millis(interval_ms.max(1)), log))
            .expect("spawn expiry thread");
        Sweeper { stop, thread }
    }

    pub fn stop(self) {
        *self.stop.0.lock().unwrap_or_else(|p| p.into_inner()) = true;
        self.stop.1.notify_all();
        let _ = self.thread.join();
    }
}

fn run(engine: Weak<Inner>, stop: Arc<(Mutex<bool>, Condvar)>, interval: Duration, log: Option<Appender>) {
    let mut next_shard = 0usize;
    loop {
        {
            // Checked before waiting too: a stop that came while this thread
            // was sweeping must not wait out a whole interval.
            let mut stopped = stop.0.lock().unwrap_or_else(|p| p.into_inner());
            if !*stopped {
                stopped = stop.1.wait_timeout(stopped, interval).unwrap_or_else(|p| p.into_inner()).0;
            }
            if *stopped {
                return;
            }
        }
        let Some(inner) = engine.upgrade() else { return };
        next_shard = sweep_cycle(&inner, next_shard, log.as_ref());
    }
}

/// Sweeps shards round-robin from `start` until the budget is spent or all
/// shards were visited; returns where the next cycle starts.
fn sweep_cycle(inner: &Inner, start: usize, log: Option<&Appender>) -> usize {
    let began = Instant::now();
    let n = inner.shards.len();
    for step in 0..n {
        let i = (start + step) % n;
        let shard = &inner.shards[i];
        if shard.read().has_ttl_entries() {
            sweep_shard(inner, i, log);
        }
        if began.elapsed() > CYCLE_BUDGET {
            return (i + 1) % n;
        }
    }
    start
}

/// Sweeps every shard now, as one operation: every shard is locked (in
/// index order, as multi-key writes do) while the expired keys are logged
/// and removed, so a recovered prefix of the log never holds half a sweep.
/// Returns how many were removed and the LSN of the last record logged.
pub fn sweep_all(inner: &Inner, log: Option<&Appender>) -> (usize, Option<u64>) {
    let mut guards: Vec<_> = inner.shards.iter().map(|s| s.write()).collect();
    let now = inner.now();
    let keys: Vec<Vec<u8>> = guards.iter().flat_map(|g| g.expired_keys(now)).collect();
    let (removed, last_lsn) = log_removals(&keys, log);
    for k in &keys[..removed] {
        guards[inner.shard_index(k)].remove_any(k);
    }
    inner.expired_reclaimed.fetch_add(removed as u64, Ordering::Relaxed);
    (removed, last_lsn)
}

/// Keys per removal record: bounded well below the record size limit.
const KEYS_PER_RECORD: usize = 1024;

/// Removes one shard's expired entries, logging them first (under the
/// shard lock, like every mutation). A failed log keeps the entries.
fn sweep_shard(inner: &Inner, shard: usize, log: Option<&Appender>) -> usize {
    let mut s = inner.shards[shard].write();
    let keys = s.expired_keys(inner.now());
    let (removed, _) = log_removals(&keys, log);
    for k in &keys[..removed] {
        s.remove_any(k);
    }
    inner.expired_reclaimed.fetch_add(removed as u64, Ordering::Relaxed);
    removed
}

/// Logs the removal of `keys` (callers hold their shard locks); returns how
/// many were logged, from the front (only those may be removed), and the
/// LSN of the last record.
fn log_removals(keys: &[Vec<u8>], log: Option<&Appender>) -> (usize, Option<u64>) {
    let Some(log) = log else { return (keys.len(), None) };
    let (mut logged, mut last_lsn) = (0, None);
    for chunk in keys.chunks(KEYS_PER_RECORD) {
        let refs: Vec<&[u8]> = chunk.iter().map(Vec::as_slice).collect();
        match log.append(&Record::MDel { keys: &refs }) {
            Ok(lsn) => last_lsn = Some(lsn),
            Err(_) => break,
        }
        logged += chunk.len();
    }
    (logged, last_lsn)
}
