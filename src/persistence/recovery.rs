//! Recovery: pick the newest snapshot that verifies, feed it to the engine,
//! replay the WAL after it, and repair the WAL's tail as the recovery mode
//! says. All reading and checking happens before any file is modified, so
//! a refused recovery (`Absolute`) leaves the directory as it was.

use std::path::{Path, PathBuf};
use std::time::Instant;

use super::record::RecordView;
use super::snapshot::{self, parse_snapshot_name, SnapEntry, SnapshotMeta};
use super::vfs::Vfs;
use super::wal::{self, parse_segment_name, ScanView, SEGMENT_HEADER_LEN};
use crate::error::{Error, Result};

/// What recovery does with a damaged WAL (after RocksDB's recovery modes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecoveryMode {
    /// Replay up to the first bad or torn record, then cut the WAL there.
    PointInTime = 0,
    /// Refuse to open on any damage, modifying nothing.
    Absolute = 1,
    /// Replay every record whose checksum is good.
    SkipCorrupted = 2,
}

/// Where recovered state goes (the engine).
pub trait Sink {
    /// Snapshot entries, in file order, a batch at a time.
    fn entries(&mut self, batch: &[SnapEntry<'_>]);
    /// A snapshot verified and all its entries were passed to `entry`.
    fn snapshot_loaded(&mut self, meta: &SnapshotMeta, shard_lsns: &[u64]);
    /// Forget everything passed so far (a snapshot turned out unusable).
    fn reset(&mut self);
    /// WAL records with their LSNs, in LSN order, a batch at a time.
    fn records(&mut self, batch: &[(u64, RecordView<'_>)]);
    /// About `n` keys are on their way: size tables once, not by doubling.
    fn reserve(&mut self, n: u64);
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryStats {
    pub snapshot_loaded: bool,
    pub snapshot_entries: u64,
    pub wal_records: u64,
    pub corrupt_records: u64,
    pub bytes_dropped: u64,
    pub duration_us: u64,
}

#[derive(Debug)]
pub struct Recovered {
    pub stats: RecoveryStats,
    /// The LSN the next record gets: above every LSN in the WAL and every
    /// LSN the snapshot covers.
    pub next_lsn: u64,
    /// The largest fencing token seen in the snapshot header or the WAL.
    pub max_token: u64,
    /// First LSNs of the segments left, ascending.
    pub segments: Vec<u64>,
    /// The WAL ends below what the snapshot covers (a damaged tail was cut):
    /// the caller must take a snapshot before accepting writes, or the next
    /// recovery would see the LSN gap.
    pub wal_behind_snapshot: bool,
}

/// A change to make once recovery has read everything.
enum Repair {
    Truncate(PathBuf, u64),
    SetAside(PathBuf),
    Remove(PathBuf),
}

fn io_err(what: &str, path: &Path, e: std::io::Error) -> Error {
    Error::io(&format!("{what} {}", path.display()), &e)
}

pub fn recover(vfs: &dyn Vfs, dir: &Path, mode: RecoveryMode, sink: &mut dyn Sink) -> Result<Recovered> {
    let started = Instant::now();
    let names = vfs.list(dir).map_err(|e| io_err("list", dir, e))?;
    let mut segments: Vec<u64> = names.iter().filter_map(|n| parse_segment_name(n)).collect();
    segments.sort_unstable();
    let mut snapshots: Vec<u64> = names.iter().filter_map(|n| parse_snapshot_name(n)).collect();
    snapshots.sort_unstable_by(|a, b| b.cmp(a));
    refuse_unknown_versions(vfs, dir, &segments, &snapshots)?;
    let mut repairs: Vec<Repair> = names.iter().filter(|n| *n == SNAPSHOT_TMP).map(|n| Repair::Remove(dir.join(n))).collect();

    let mut stats = RecoveryStats::default();
    let chosen = choose_snapshot(vfs, dir, mode, sink, &snapshots, &segments, &mut stats, &mut repairs)?;
    let (replay_after, snap_max, snap_token) = chosen.unwrap_or((0, 0, 0));

    let mut replay = Replay { vfs, dir, mode, sink, stats: &mut stats, repairs: &mut repairs, max_token: snap_token, last_lsn: 0 };
    let kept = replay.segments(&segments, replay_after)?;
    let (last_lsn, max_token) = (replay.last_lsn, replay.max_token);

    for r in &repairs {
        match r {
            Repair::Truncate(p, len) => vfs.truncate(p, *len).map_err(|e| io_err("truncate", p, e))?,
            Repair::SetAside(p) => {
                let to = p.with_extension(format!("{}.dropped", p.extension().unwrap_or_default().to_string_lossy()));
                vfs.rename(p, &to).map_err(|e| io_err("rename", p, e))?
            }
            Repair::Remove(p) => vfs.remove(p).map_err(|e| io_err("remove", p, e))?,
        }
    }
    if !repairs.is_empty() {
        vfs.sync_dir(dir).map_err(|e| io_err("fsync directory", dir, e))?;
    }
    stats.duration_us = started.elapsed().as_micros() as u64;
    let wal_end = last_lsn.max(kept.last().map_or(0, |f| f - 1));
    Ok(Recovered { stats, next_lsn: wal_end.max(snap_max) + 1, max_token, segments: kept, wal_behind_snapshot: wal_end < snap_max })
}

/// Entries or records handed to the sink at once: large enough to keep
/// parallel apply busy, small enough to stay in cache-friendly sizes.
const BATCH: usize = 1 << 16;

/// The temp file a snapshot is written to before its rename.
pub const SNAPSHOT_TMP: &str = "snapshot.tmp";

/// A file of a newer format is not damage: refuse to open, touch nothing.
fn refuse_unknown_versions(vfs: &dyn Vfs, dir: &Path, segments: &[u64], snapshots: &[u64]) -> Result<()> {
    let names = segments.iter().map(|&s| (wal::segment_name(s), true)).chain(snapshots.iter().map(|&s| (snapshot::snapshot_name(s), false)));
    for (name, is_segment) in names {
        let path = dir.join(&name);
        let image = vfs.map(&path).map_err(|e| io_err("read", &path, e))?;
        let (version, supported) = if is_segment {
            (wal::segment_version(&image), wal::SEGMENT_VERSION)
        } else {
            (snapshot::snapshot_version(&image), snapshot::SNAPSHOT_VERSION)
        };
        if let Some(v) = version.filter(|&v| v != supported) {
            return Err(Error::Corruption(format!(
                "{} is format version {v}; this build reads version {supported} (refusing to open, nothing modified)",
                path.display()
            )));
        }
    }
    Ok(())
}

/// Loads the newest snapshot that verifies and whose WAL is still there;
/// returns its smallest and largest covered LSN and its token mark.
#[allow(clippy::too_many_arguments)]
fn choose_snapshot(
    vfs: &dyn Vfs,
    dir: &Path,
    mode: RecoveryMode,
    sink: &mut dyn Sink,
    snapshots: &[u64],
    segments: &[u64],
    stats: &mut RecoveryStats,
    repairs: &mut Vec<Repair>,
) -> Result<Option<(u64, u64, u64)>> {
    for &snap in snapshots {
        let name = snapshot::snapshot_name(snap);
        let path = dir.join(&name);
        let image = vfs.map(&path).map_err(|e| io_err("read", &path, e))?;
        sink.reserve(snapshot::entry_count_hint(&image));
        let mut batch = Vec::with_capacity(BATCH);
        let loaded = snapshot::load(&name, &image, |e| {
            batch.push(e);
            if batch.len() == BATCH {
                sink.entries(&batch);
                batch.clear();
            }
        });
        sink.entries(&batch);
        drop(batch);
        match loaded {
            Ok(loaded) => {
                let min = loaded.shard_lsns.iter().copied().min().unwrap_or(0);
                let max = loaded.shard_lsns.iter().copied().max().unwrap_or(0);
                if let Some(&first) = segments.first() {
                    if first > min + 1 {
                        sink.reset();
                        return Err(Error::Corruption(format!(
                            "{name} needs WAL records from LSN {} but the oldest segment starts at {first}",
                            min + 1
                        )));
                    }
                }
                sink.snapshot_loaded(&loaded.meta, &loaded.shard_lsns);
                stats.snapshot_loaded = true;
                stats.snapshot_entries = loaded.entries;
                return Ok(Some((min, max, loaded.meta.token_hwm)));
            }
            Err(e) if mode == RecoveryMode::Absolute => return Err(e),
            Err(_) => {
                // Fall back to the previous snapshot; set this one aside so
                // it is not picked again.
                sink.reset();
                stats.corrupt_records += 1;
                stats.bytes_dropped += image.len() as u64;
                repairs.push(Repair::SetAside(path));
            }
        }
    }
    if !snapshots.is_empty() && segments.first().map_or(true, |&f| f > 1) {
        return Err(Error::Corruption(format!(
            "no snapshot in {} verifies and the WAL does not reach back to LSN 1",
            dir.display()
        )));
    }
    Ok(None)
}

struct Replay<'a> {
    vfs: &'a dyn Vfs,
    dir: &'a Path,
    mode: RecoveryMode,
    sink: &'a mut dyn Sink,
    stats: &'a mut RecoveryStats,
    repairs: &'a mut Vec<Repair>,
    max_token: u64,
    last_lsn: u64,
}

/// How replay of one segment ended.
struct SegmentEnd {
    /// The segment stays in the WAL (it was not set aside).
    keep: bool,
    /// Point-in-time stop: later segments are set aside.
    stop: bool,
}

const COMPLETE: SegmentEnd = SegmentEnd { keep: true, stop: false };

impl Replay<'_> {
    /// Replays every segment in order; returns the segments kept.
    fn segments(&mut self, segments: &[u64], replay_after: u64) -> Result<Vec<u64>> {
        // A segment wholly covered by the snapshot need not be read.
        let needed = |i: usize| segments.get(i + 1).map_or(true, |&n| n - 1 > replay_after);
        let mut records = 0;
        for &first in segments.iter().enumerate().filter(|(i, _)| needed(*i)).map(|(_, f)| f) {
            let path = self.dir.join(wal::segment_name(first));
            records += wal::count_records(&self.vfs.map(&path).map_err(|e| io_err("read", &path, e))?);
        }
        self.sink.reserve(records);
        let mut kept = Vec::with_capacity(segments.len());
        for (i, &first) in segments.iter().enumerate() {
            if !needed(i) {
                kept.push(first);
                continue;
            }
            // Records after the snapshot must form one unbroken LSN run.
            let want = (self.last_lsn + 1).max(replay_after + 1);
            let covered_tail = segments.get(i + 1).is_some_and(|&n| n - 1 <= replay_after);
            let name = wal::segment_name(first);
            let path = self.dir.join(&name);
            let end = if first > want && self.mode != RecoveryMode::SkipCorrupted {
                let gap = format!("LSNs {want} to {} are missing (a segment is missing)", first - 1);
                let image = self.vfs.map(&path).map_err(|e| io_err("read", &path, e))?;
                self.damaged(&name, &path, &image, 0, gap, false)?
            } else {
                self.stats.corrupt_records += (first > want) as u64;
                let image = self.vfs.map(&path).map_err(|e| io_err("read", &path, e))?;
                let mut batch = Vec::with_capacity(BATCH);
                let end = self.segment(&name, &path, &image, first, replay_after, covered_tail, &mut batch);
                self.sink.records(&batch);
                end?
            };
            if end.keep {
                kept.push(first);
            }
            if end.stop {
                for &later in &segments[i + 1..] {
                    let p = self.dir.join(wal::segment_name(later));
                    self.stats.bytes_dropped += self.vfs.map(&p).map(|b| b.len() as u64).unwrap_or(0);
                    self.repairs.push(Repair::SetAside(p));
                }
                return Ok(kept);
            }
        }
        Ok(kept)
    }

    /// Replays one segment, handing records to the sink through `batch`
    /// (the caller passes on what is left in it).
    #[allow(clippy::too_many_arguments)]
    fn segment<'b>(
        &mut self,
        name: &str,
        path: &Path,
        b: &'b [u8],
        first: u64,
        replay_after: u64,
        covered_tail: bool,
        batch: &mut Vec<(u64, RecordView<'b>)>,
    ) -> Result<SegmentEnd> {
        let skip = self.mode == RecoveryMode::SkipCorrupted;
        let (mut offset, mut damage) = match wal::decode_segment_header(name, b) {
            Ok(lsn) if lsn == first => (SEGMENT_HEADER_LEN, None),
            Ok(lsn) => (0, Some(format!("header names LSN {lsn}, file name {first}"))),
            Err(e) => (0, Some(e.to_string())),
        };
        let mut expected = first;
        loop {
            if let Some(reason) = damage.take() {
                match skip.then(|| wal::resync(b, offset + 1, expected)).flatten() {
                    Some(good) if self.mode != RecoveryMode::Absolute => {
                        self.stats.corrupt_records += 1;
                        self.stats.bytes_dropped += (good - offset) as u64;
                        offset = good;
                    }
                    _ => return self.damaged(name, path, b, offset, reason, covered_tail),
                }
            }
            if offset >= b.len() {
                return Ok(COMPLETE);
            }
            match wal::read_view(b, offset) {
                ScanView::Record { len, lsn, record } if lsn == expected || (skip && lsn > expected) => {
                    if let RecordView::Lock { token, .. } = &record {
                        self.max_token = self.max_token.max(*token);
                    }
                    if lsn > replay_after {
                        batch.push((lsn, record));
                        self.stats.wal_records += 1;
                        if batch.len() == BATCH {
                            self.sink.records(batch);
                            batch.clear();
                        }
                    }
                    self.last_lsn = lsn;
                    expected = lsn + 1;
                    offset += len;
                }
                ScanView::Record { lsn, .. } => damage = Some(format!("LSN {lsn} where {expected} was expected")),
                ScanView::Bad { reason } => damage = Some(reason.to_string()),
            }
        }
    }

    /// Damage at `offset` that could not be skipped: refuse (`Absolute`),
    /// or cut the segment there and stop (`PointInTime`), or keep what was
    /// read (`SkipCorrupted`). Damage in records the snapshot already
    /// covers (`covered_tail`) loses nothing and cuts nothing.
    fn damaged(&mut self, name: &str, path: &Path, b: &[u8], offset: usize, reason: String, covered_tail: bool) -> Result<SegmentEnd> {
        if self.mode == RecoveryMode::Absolute {
            return Err(Error::Corruption(format!("{name} at offset {offset}: {reason}")));
        }
        self.stats.corrupt_records += 1;
        if covered_tail {
            return Ok(COMPLETE);
        }
        self.stats.bytes_dropped += (b.len() - offset) as u64;
        let stop = self.mode == RecoveryMode::PointInTime;
        if offset < SEGMENT_HEADER_LEN {
            // A cut inside the header would leave a segment that fails again
            // on every open: set the whole file aside.
            self.repairs.push(Repair::SetAside(path.to_path_buf()));
            return Ok(SegmentEnd { keep: false, stop });
        }
        self.repairs.push(Repair::Truncate(path.to_path_buf(), offset as u64));
        Ok(SegmentEnd { keep: true, stop })
    }
}
