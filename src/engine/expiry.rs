//! Active expiry: a background thread reclaims expired keys so memory does
//! not grow with dead keys that nobody reads again (Redis's active expire
//! cycle, done per shard). Each step holds one shard's write lock for one
//! pass over that shard, and a cycle stops early once its time budget is
//! spent, so writers are never blocked for long.

use std::sync::{Arc, Condvar, Mutex, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::Inner;

const CYCLE_BUDGET: Duration = Duration::from_millis(5);

pub struct Sweeper {
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: JoinHandle<()>,
}

impl Sweeper {
    pub fn start(engine: Weak<Inner>, interval_ms: u64) -> Sweeper {
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let stop2 = stop.clone();
        let thread = std::thread::Builder::new()
            .name("dbkv-expiry".into())
            .spawn(move || run(engine, stop2, Duration::from_millis(interval_ms.max(1))))
            .expect("spawn expiry thread");
        Sweeper { stop, thread }
    }

    pub fn stop(self) {
        *self.stop.0.lock().unwrap_or_else(|p| p.into_inner()) = true;
        self.stop.1.notify_all();
        let _ = self.thread.join();
    }
}

fn run(engine: Weak<Inner>, stop: Arc<(Mutex<bool>, Condvar)>, interval: Duration) {
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
        next_shard = sweep_cycle(&inner, next_shard);
    }
}

/// Sweeps shards round-robin from `start` until the budget is spent or all
/// shards were visited; returns where the next cycle starts.
fn sweep_cycle(inner: &Inner, start: usize) -> usize {
    let began = Instant::now();
    let n = inner.shards.len();
    for step in 0..n {
        let i = (start + step) % n;
        let shard = &inner.shards[i];
        if shard.read().has_ttl_entries() {
            let now = inner.now();
            shard.write().sweep_expired(now);
        }
        if began.elapsed() > CYCLE_BUDGET {
            return (i + 1) % n;
        }
    }
    start
}

/// Sweeps every shard now.
pub fn sweep_all(inner: &Inner) -> usize {
    let now = inner.now();
    inner.shards.iter().map(|s| s.write().sweep_expired(now)).sum()
}
