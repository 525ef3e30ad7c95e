//! Messages from the library to the program that embeds it: recovery
//! summaries, damage found and what was done with it, snapshots, failures
//! and WAL rotation. Silent unless the program sets a logger.
//!
//! A logger may be called from the caller's thread (recovery in `open`) or
//! from dbkv's background threads (WAL, snapshot). It is never called while
//! a shard lock is held, so a logger may call back into the engine.

#![forbid(unsafe_code)]

use std::fmt;
use std::sync::Arc;

/// Severity, most severe first; a logger receives events at its minimum
/// level and above (a smaller number is more severe).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LogLevel {
    /// The handle stopped accepting writes, or a file could not be written.
    Error = 1,
    /// Damage found in a data directory and what recovery did with it.
    Warn = 2,
    /// Recovery summaries, snapshots taken.
    Info = 3,
    /// WAL segment rotation and file retention.
    Debug = 4,
}

impl LogLevel {
    pub fn from_int(v: i64) -> Option<LogLevel> {
        match v {
            1 => Some(LogLevel::Error),
            2 => Some(LogLevel::Warn),
            3 => Some(LogLevel::Info),
            4 => Some(LogLevel::Debug),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
        }
    }
}

impl fmt::Display for LogLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The function events go to.
pub type LogFn = Arc<dyn Fn(LogLevel, &str) + Send + Sync>;

/// A logger with its minimum level; cheap to clone and to call when off.
#[derive(Clone)]
pub struct Log {
    sink: Option<LogFn>,
    min: LogLevel,
}

impl Log {
    pub fn new(sink: Option<LogFn>, min: LogLevel) -> Log {
        Log { sink, min }
    }

    pub fn enabled(&self, level: LogLevel) -> bool {
        self.sink.is_some() && level <= self.min
    }

    /// Formats the message only when it will be delivered.
    pub fn emit(&self, level: LogLevel, msg: impl FnOnce() -> String) {
        if let (true, Some(sink)) = (self.enabled(level), &self.sink) {
            sink(level, &msg());
        }
    }

    pub fn error(&self, msg: impl FnOnce() -> String) {
        self.emit(LogLevel::Error, msg)
    }
    pub fn warn(&self, msg: impl FnOnce() -> String) {
        self.emit(LogLevel::Warn, msg)
    }
    pub fn info(&self, msg: impl FnOnce() -> String) {
        self.emit(LogLevel::Info, msg)
    }
    pub fn debug(&self, msg: impl FnOnce() -> String) {
        self.emit(LogLevel::Debug, msg)
    }
}

impl fmt::Debug for Log {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Log({:?})", self.sink.as_ref().map(|_| self.min))
    }
}

pub use crate::persistence::recovery::{Phase, Progress};

/// Called from the opening thread as recovery advances (a few times per
/// second at most, and once at the end of each phase).
pub type ProgressFn = Arc<dyn Fn(Progress) + Send + Sync>;
