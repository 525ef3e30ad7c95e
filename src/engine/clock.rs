//! Wall-clock time in unix milliseconds. Expiry is stored as an absolute
//! wall-clock instant so that it means the same after a restart.

#![forbid(unsafe_code)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// Where the engine reads the time. `Manual` lets tests move time by hand.
#[derive(Clone, Debug, Default)]
pub enum Clock {
    #[default]
    System,
    Manual(Arc<AtomicU64>),
}

impl Clock {
    /// A manual clock starting at `start_ms`, and the handle that moves it.
    pub fn manual(start_ms: u64) -> (Clock, Arc<AtomicU64>) {
        let cell = Arc::new(AtomicU64::new(start_ms));
        (Clock::Manual(cell.clone()), cell)
    }

    #[inline]
    pub fn now_ms(&self) -> u64 {
        match self {
            Clock::System => system_now_ms(),
            Clock::Manual(cell) => cell.load(Ordering::Relaxed),
        }
    }
}

pub fn system_now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}
