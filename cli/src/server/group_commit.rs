//! `--sync always` without stalling a worker on fsync: pipelined group
//! commit.
//!
//! A worker that ran writes in a pass takes a ticket and holds the replies
//! of those clients; one syncer thread fsyncs everything logged so far and
//! marks every ticket taken before that as durable, then wakes the
//! workers, which send the held replies. While an fsync is in flight the
//! workers keep reading and running commands, so the next fsync covers
//! everything that arrived meanwhile (Redis's `appendfsync always` instead
//! fsyncs inside its single event loop, which then serves nobody).
//!
//! A ticket is taken after its writes are in the engine's WAL queue, and
//! `Engine::sync` makes durable everything queued before it was called,
//! so completing "the newest ticket seen when the fsync started" is exact.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use super::Server;

#[derive(Default)]
pub struct Gate {
    requested: AtomicU64,
    completed: AtomicU64,
    failed: AtomicBool,
    wake: Mutex<()>,
    cv: Condvar,
}

impl Gate {
    /// A ticket for the writes made so far; the syncer is told.
    pub fn request(&self) -> u64 {
        let t = self.requested.fetch_add(1, Ordering::AcqRel) + 1;
        let _g = self.wake.lock().unwrap_or_else(|p| p.into_inner());
        self.cv.notify_one();
        t
    }

    /// True once the writes before `ticket` are durable.
    pub fn done(&self, ticket: u64) -> bool {
        self.completed.load(Ordering::Acquire) >= ticket
    }

    /// True once an fsync failed: held replies must never be sent.
    pub fn failed(&self) -> bool {
        self.failed.load(Ordering::Acquire)
    }

    /// The syncer: runs until the server shuts down.
    pub fn run(srv: Arc<Server>) {
        let gate = &srv.gate;
        loop {
            {
                let mut g = gate.wake.lock().unwrap_or_else(|p| p.into_inner());
                while gate.requested.load(Ordering::Acquire) == gate.completed.load(Ordering::Acquire) && !srv.shutting_down() {
                    g = gate.cv.wait_timeout(g, std::time::Duration::from_millis(200)).unwrap_or_else(|p| p.into_inner()).0;
                }
            }
            if srv.shutting_down() && gate.requested.load(Ordering::Acquire) == gate.completed.load(Ordering::Acquire) {
                return;
            }
            let target = gate.requested.load(Ordering::Acquire);
            match srv.engine.sync() {
                Ok(()) => gate.completed.store(target, Ordering::Release),
                Err(e) => {
                    tracing::error!("fsync failed; clients waiting on it are closed without an acknowledgement: {e}");
                    gate.failed.store(true, Ordering::Release);
                }
            }
            for w in srv.wakers.get().into_iter().flatten() {
                w.wake();
            }
            if gate.failed() {
                return;
            }
        }
    }

    /// Wakes the syncer so it sees a shutdown.
    pub fn stop(&self) {
        let _g = self.wake.lock().unwrap_or_else(|p| p.into_inner());
        self.cv.notify_all();
    }
}
