//! Options for opening an engine, with their defaults and limits.

#![forbid(unsafe_code)]

use std::path::PathBuf;

use std::sync::Arc;

use super::clock::Clock;
use super::log::{Log, LogFn, LogLevel, ProgressFn};
pub use crate::persistence::RecoveryMode;
use crate::persistence::vfs::Vfs;
use crate::error::{Error, Result};

pub const DEFAULT_SHARDS: u32 = 256;
pub const MAX_SHARDS: u32 = 1 << 16;
pub const DEFAULT_MAX_VALUE_BYTES: u64 = 64 << 20;
pub const HARD_MAX_VALUE_BYTES: u64 = 1 << 30;
pub const MAX_KEY_BYTES: usize = 65_535;

/// When a write's WAL record reaches stable storage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncMode {
    /// fsync only on segment rotation, snapshot and close.
    None = 0,
    /// fsync every `sync_interval_ms`; writes return once queued.
    Interval = 1,
    /// A write returns once its record is fsynced (group commit).
    Always = 2,
}

impl SyncMode {
    pub fn from_int(v: i64) -> Result<SyncMode> {
        match v {
            0 => Ok(SyncMode::None),
            1 => Ok(SyncMode::Interval),
            2 => Ok(SyncMode::Always),
            _ => Err(Error::InvalidArgument(format!("sync mode {v} is not one of DBKV_SYNC_NONE (0), DBKV_SYNC_INTERVAL (1), DBKV_SYNC_ALWAYS (2)"))),
        }
    }
}

impl RecoveryMode {
    pub fn from_int(v: i64) -> Result<RecoveryMode> {
        match v {
            0 => Ok(RecoveryMode::PointInTime),
            1 => Ok(RecoveryMode::Absolute),
            2 => Ok(RecoveryMode::SkipCorrupted),
            _ => Err(Error::InvalidArgument(format!(
                "recovery mode {v} is not one of DBKV_RECOVERY_POINT_IN_TIME (0), DBKV_RECOVERY_ABSOLUTE (1), DBKV_RECOVERY_SKIP_CORRUPTED (2)"
            ))),
        }
    }
}

#[derive(Clone)]
pub struct Options {
    /// `None` keeps everything in memory only.
    pub data_dir: Option<PathBuf>,
    pub shards: u32,
    pub max_value_bytes: u64,
    pub sync_mode: SyncMode,
    pub sync_interval_ms: u64,
    pub wal_segment_bytes: u64,
    pub snapshot_interval_secs: u64,
    pub snapshot_ops: u64,
    pub snapshot_keep: u32,
    pub recovery_mode: RecoveryMode,
    /// How often the active expiry sweep runs.
    pub expiry_sweep_interval_ms: u64,
    pub clock: Clock,
    /// The file layer; `None` is the operating system. Tests pass a
    /// `SimVfs` to inject faults and power loss.
    pub vfs: Option<Arc<dyn Vfs>>,
    /// Where library events go (`None`: nowhere), and the least severe
    /// level delivered.
    pub logger: Option<LogFn>,
    pub log_level: LogLevel,
    /// Recover the data directory into memory without modifying any file
    /// (damage is handled as `recovery_mode` says, in memory only), then
    /// release it: the handle refuses writes. What `dbkv dump` and
    /// `dbkv stats` read a directory with.
    pub read_only: bool,
    /// Told how recovery advances (for progress bars); `None`: not told.
    pub progress: Option<ProgressFn>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            data_dir: None,
            shards: DEFAULT_SHARDS,
            max_value_bytes: DEFAULT_MAX_VALUE_BYTES,
            sync_mode: SyncMode::Interval,
            sync_interval_ms: 100,
            wal_segment_bytes: 64 << 20,
            snapshot_interval_secs: 300,
            // A snapshot once 4M records have been logged since the last one:
            // bounds replay to a couple of seconds and keeps snapshot work
            // proportional to WAL written. See the README.
            snapshot_ops: 4_000_000,
            snapshot_keep: 3,
            recovery_mode: RecoveryMode::PointInTime,
            expiry_sweep_interval_ms: 100,
            clock: Clock::System,
            vfs: None,
            logger: None,
            log_level: LogLevel::Info,
            read_only: false,
            progress: None,
        }
    }
}

/// Setters validate one value each, so a bad value is refused at the call
/// that named it and leaves the options unchanged.
impl Options {
    /// The logger events of a handle opened with these options go to.
    pub fn log(&self) -> Log {
        Log::new(self.logger.clone(), self.log_level)
    }

    pub fn set_shards(&mut self, n: u32) -> Result<()> {
        if n == 0 || !n.is_power_of_two() || n > MAX_SHARDS {
            return Err(Error::InvalidArgument(format!("shards must be a power of two from 1 to {MAX_SHARDS}, got {n}")));
        }
        self.shards = n;
        Ok(())
    }

    pub fn set_max_value_bytes(&mut self, n: u64) -> Result<()> {
        if n > HARD_MAX_VALUE_BYTES {
            return Err(Error::InvalidArgument(format!("max_value_bytes {n} exceeds the hard cap of {HARD_MAX_VALUE_BYTES} (1 GiB)")));
        }
        self.max_value_bytes = n;
        Ok(())
    }

    pub fn set_sync_interval_ms(&mut self, ms: u64) -> Result<()> {
        if ms == 0 || ms > 60_000 {
            return Err(Error::InvalidArgument(format!("sync_interval_ms must be 1 to 60000, got {ms}")));
        }
        self.sync_interval_ms = ms;
        Ok(())
    }

    pub fn set_wal_segment_bytes(&mut self, n: u64) -> Result<()> {
        if !(4096..=(1 << 40)).contains(&n) {
            return Err(Error::InvalidArgument(format!("wal_segment_bytes must be 4096 to 2^40, got {n}")));
        }
        self.wal_segment_bytes = n;
        Ok(())
    }

    pub fn set_snapshot_keep(&mut self, n: u32) -> Result<()> {
        if n == 0 || n > 1000 {
            return Err(Error::InvalidArgument(format!("snapshot_keep must be 1 to 1000, got {n}")));
        }
        self.snapshot_keep = n;
        Ok(())
    }
}
