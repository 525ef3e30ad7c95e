//! Placeholder replaced by the persistence work in the next commit.
use std::sync::Arc;
use super::{Inner, Options};
use crate::error::{Error, Result};
use crate::persistence::record::Record;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    pub keys: u64,
    pub wal_records: u64,
    pub wal_bytes: u64,
    pub fsyncs: u64,
    pub durable_lsn: u64,
    pub last_lsn: u64,
    pub snapshots_taken: u64,
    pub last_snapshot_duration_us: u64,
    pub recovery_snapshot_loaded: bool,
    pub recovery_snapshot_entries: u64,
    pub recovery_wal_records: u64,
    pub recovery_corrupt_records: u64,
    pub recovery_bytes_dropped: u64,
    pub recovery_duration_us: u64,
    pub failed: bool,
}

pub struct Durability;
impl Durability {
    pub fn open(_o: &Options, _i: &Arc<Inner>) -> Result<Durability> { Err(Error::Io("persistence not built yet".into())) }
    pub fn check_writable(&self) -> Result<()> { Ok(()) }
    pub fn append(&self, _r: &Record<'_>) -> Result<u64> { Ok(0) }
    pub fn commit(&self, _l: u64, _f: bool) -> Result<()> { Ok(()) }
    pub fn sync(&self) -> Result<()> { Ok(()) }
    pub fn snapshot_now(&self) -> Result<()> { Ok(()) }
    pub fn stats(&self) -> Stats { Stats::default() }
    pub fn close(self) -> Result<()> { Ok(()) }
}
