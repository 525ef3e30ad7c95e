//! Recovery: load the newest snapshot that verifies (a consistent cut at
//! LSN `cut`), replay the WAL records after `cut`, and repair damage as the
//! recovery mode says. All reading and checking happens before any file is
//! modified, so a refused recovery (`Absolute`) leaves the directory as it
//! was.
//!
//! The recovered state is always the state after some prefix of the log:
//! the snapshot is one, and replay appends whole records in LSN order,
//! stopping (`PointInTime`) or skipping (`SkipCorrupted`) only at damage
//! that loses a record the snapshot does not hold. Damage to records at or
//! below `cut` loses nothing and is passed over in every mode.

#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::time::Instant;

use super::block;
use super::record::{prefix_word, RecordView, MIN_LOCK_RECORD, RECORD_PREFIX};
use super::snapshot::{self, parse_snapshot_name, LoadedSnapshot, SnapEntry, SnapshotMeta};
use super::vfs::Vfs;
use super::wal::{self, parse_segment_name, ScanView, SEGMENT_HEADER_LEN};
use crate::error::{Error, Result};

/// What recovery does with a damaged WAL (after RocksDB's recovery modes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecoveryMode {
    /// Replay up to the first record lost to damage, then cut the WAL there.
    PointInTime = 0,
    /// Refuse to open on any damage, modifying nothing.
    Absolute = 1,
    /// Replay every record that can be read.
    SkipCorrupted = 2,
}

/// Where recovered state goes (the engine). Shared with the threads that
/// load snapshot sections and apply WAL records while the next ones are read.
pub trait Sink: Send + Sync {
    /// Snapshot entries, a batch at a time, called from several threads at
    /// once: every entry of one key comes in file order in one call or in
    /// successive calls from one thread (snapshot sections are per shard).
    fn entries(&self, batch: &[SnapEntry<'_>]);
    /// A snapshot verified and all its entries were passed to `entries`;
    /// its tail records follow through `records`.
    fn snapshot_loaded(&mut self, meta: &SnapshotMeta, shard_lsns: &[u64]);
    /// Forget everything passed so far (a snapshot turned out unusable).
    fn reset(&mut self);
    /// WAL records with their LSNs, in LSN order, a batch at a time (from
    /// one thread at a time, not always the same one).
    fn records(&self, batch: &[(u64, RecordView<'_>)]);
    /// About `n` keys are on their way: size tables once, not by doubling.
    fn reserve(&self, n: u64);
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
    /// The LSN the next record gets: above every LSN recovery saw in any
    /// file, kept or set aside, and above the snapshot's cut.
    pub next_lsn: u64,
    /// The largest fencing token seen in any snapshot header or record.
    pub max_token: u64,
    /// First LSNs of the segments left, ascending.
    pub segments: Vec<u64>,
    /// Recovery changed what the log says (cut, skipped or set aside
    /// something): the caller must take a snapshot before accepting writes,
    /// so the next open, in any mode, starts from that snapshot and never
    /// meets this damage again.
    pub repaired: bool,
    /// Every piece of damage or leftover found, with what was (or, when
    /// not applying, would be) done with it.
    pub findings: Vec<Finding>,
}

/// How one recovery runs.
pub struct Run<'a> {
    pub mode: RecoveryMode,
    /// Make the repairs (an open). False: decide them and report them in
    /// `Recovered::findings`, but modify no file (`plan`, read-only opens).
    pub apply: bool,
    /// Told how far reading has got.
    pub progress: &'a mut dyn FnMut(Progress),
}

/// A change to make once recovery has read everything.
enum Repair {
    /// Keep a copy as `<name>.dropped`, then truncate to this length.
    Cut(PathBuf, u64),
    SetAside(PathBuf),
    Remove(PathBuf),
}

fn io_err(what: &str, path: &Path, e: std::io::Error) -> Error {
    Error::io(&format!("{what} {}", path.display()), &e)
}

fn dropped_name(p: &Path) -> PathBuf {
    let mut name = p.as_os_str().to_owned();
    name.push(".dropped");
    PathBuf::from(name)
}

/// Entries or records handed to the sink at once: large enough to keep
/// parallel apply busy, small enough to stay in cache-friendly sizes.
const BATCH: usize = 1 << 16;

/// The temp file a snapshot is written to before its rename.
pub const SNAPSHOT_TMP: &str = "snapshot.tmp";

/// What an open in `mode` would do to `dir`, modifying nothing: every
/// entry and record is read and checked as an open would, then dropped.
/// `Absolute` returns its refusal as the error an open would return.
pub fn plan(vfs: &dyn Vfs, dir: &Path, mode: RecoveryMode) -> Result<Plan> {
    let r = recover(vfs, dir, Run { mode, apply: false, progress: &mut |_| {} }, &mut Discard)?;
    Ok(Plan { stats: r.stats, findings: r.findings })
}

/// A sink that keeps nothing (for `plan`).
struct Discard;

impl Sink for Discard {
    fn entries(&self, _: &[SnapEntry<'_>]) {}
    fn snapshot_loaded(&mut self, _: &SnapshotMeta, _: &[u64]) {}
    fn reset(&mut self) {}
    fn records(&self, _: &[(u64, RecordView<'_>)]) {}
    fn reserve(&self, _: u64) {}
}

pub fn recover(vfs: &dyn Vfs, dir: &Path, run: Run<'_>, sink: &mut dyn Sink) -> Result<Recovered> {
    let Run { mode, apply, progress } = run;
    let started = Instant::now();
    let names = vfs.list(dir).map_err(|e| io_err("list", dir, e))?;
    let mut segments: Vec<u64> = names.iter().filter_map(|n| parse_segment_name(n)).collect();
    segments.sort_unstable();
    let mut snapshots: Vec<u64> = names.iter().filter_map(|n| parse_snapshot_name(n)).collect();
    snapshots.sort_unstable_by(|a, b| b.cmp(a));
    refuse_unknown_versions(vfs, dir, &segments, &snapshots)?;
    let mut repairs: Vec<Repair> = Vec::new();
    let mut findings: Vec<Finding> = Vec::new();
    if names.iter().any(|n| n == SNAPSHOT_TMP) {
        let file = dir.join(SNAPSHOT_TMP);
        findings.push(Finding { file: file.clone(), offset: 0, reason: "an unfinished snapshot (the process stopped while writing it)".into(), action: Action::Remove });
        repairs.push(Repair::Remove(file));
    }
    if let Some(leftover) = empty_newest_segment(vfs, dir, &segments)? {
        let file = dir.join(wal::segment_name(leftover));
        findings.push(Finding { file: file.clone(), offset: 0, reason: "the newest segment has no header yet (the process stopped right after creating it); it holds no record".into(), action: Action::Remove });
        repairs.push(Repair::Remove(file));
        segments.pop();
    }

    let mut stats = RecoveryStats::default();
    let mut found = Found { repairs: &mut repairs, findings: &mut findings, progress };
    let chosen = choose_snapshot(vfs, dir, mode, sink, &snapshots, &mut stats, &mut found)?;
    let progress = found.progress;
    let have_snapshot = chosen.is_some();
    let chosen = chosen.unwrap_or(Chosen { cut: 0, token: 0, resume: None, resume_check: 0 });
    let cut = chosen.cut;
    check_reachable(dir, &snapshots, have_snapshot, cut, &segments)?;

    let mut replay = Replay::new(vfs, dir, mode, &*sink, &chosen, progress);
    let kept = replay.segments(&segments)?;
    let wal_end = replay.last_lsn.max(kept.last().map_or(0, |f| f - 1));
    if mode == RecoveryMode::Absolute && !replay.resume_found {
        let (seg, offset) = chosen.resume.unwrap_or_default();
        return Err(Error::Corruption(format!(
            "snapshot {} holds the state after LSN {cut}, but the WAL that follows it is missing: {} is absent or shorter than offset {offset} of its record stream. Recovery mode ABSOLUTE refuses to open and modified nothing; reopen with recovery_mode=POINT_IN_TIME to open from the snapshot and what follows it, or run `dbkv check --repair {}`",
            snapshot::snapshot_name(cut),
            dir.join(wal::segment_name(seg)).display(),
            dir.display()
        )));
    }
    let (max_seen, max_token, repaired) = (replay.max_lsn_seen, replay.max_token, replay.repaired);
    let replay_stats = replay.stats;
    merge(&mut stats, &replay_stats);
    repairs.extend(replay.repairs);
    findings.extend(replay.findings);
    let repaired = repaired || repairs.iter().any(|r| matches!(r, Repair::SetAside(_)));

    // Tokens granted by records that damage made unreadable are unknown,
    // but each took one Lock record: skip past as many as the lost bytes
    // could have held, so no token is ever handed out twice.
    let max_token = if stats.corrupt_records > 0 { max_token + stats.bytes_dropped / MIN_LOCK_RECORD + 1 } else { max_token };
    if apply {
        apply_repairs(vfs, dir, &repairs)?;
    }
    stats.duration_us = started.elapsed().as_micros() as u64;
    let next_lsn = wal_end.max(cut).max(max_seen) + 1;
    Ok(Recovered { stats, next_lsn, max_token, segments: kept, repaired, findings })
}

fn merge(into: &mut RecoveryStats, from: &RecoveryStats) {
    into.wal_records += from.wal_records;
    into.corrupt_records += from.corrupt_records;
    into.bytes_dropped += from.bytes_dropped;
}

fn apply_repairs(vfs: &dyn Vfs, dir: &Path, repairs: &[Repair]) -> Result<()> {
    for r in repairs {
        match r {
            Repair::Cut(p, len) => {
                // Keep the bytes for forensics before cutting them off.
                let image = vfs.read(p).map_err(|e| io_err("read", p, e))?;
                let copy = dropped_name(p);
                let mut f = vfs.create(&copy).map_err(|e| io_err("create", &copy, e))?;
                f.write_all(&image).and_then(|()| f.sync()).map_err(|e| io_err("write", &copy, e))?;
                vfs.truncate(p, *len).map_err(|e| io_err("truncate", p, e))?
            }
            Repair::SetAside(p) => vfs.rename(p, &dropped_name(p)).map_err(|e| io_err("rename", p, e))?,
            Repair::Remove(p) => vfs.remove(p).map_err(|e| io_err("remove", p, e))?,
        }
    }
    if !repairs.is_empty() {
        vfs.sync_dir(dir).map_err(|e| io_err("fsync directory", dir, e))?;
    }
    Ok(())
}

/// A file of a newer (or older) format is not damage: refuse to open,
/// touch nothing.
fn refuse_unknown_versions(vfs: &dyn Vfs, dir: &Path, segments: &[u64], snapshots: &[u64]) -> Result<()> {
    let names = segments.iter().map(|&s| (wal::segment_name(s), true)).chain(snapshots.iter().map(|&s| (snapshot::snapshot_name(s), false)));
    for (name, is_segment) in names {
        let path = dir.join(&name);
        let image = vfs.map(&path).map_err(|e| io_err("read", &path, e))?;
        let (version, readable, (min, max)) = if is_segment {
            (wal::segment_version(&image), wal::readable_version as fn(u32) -> bool, (wal::SEGMENT_MIN_VERSION, wal::SEGMENT_VERSION))
        } else {
            (snapshot::snapshot_version(&image), snapshot::readable_snapshot_version as fn(u32) -> bool, (snapshot::SNAPSHOT_MIN_VERSION, snapshot::SNAPSHOT_VERSION))
        };
        if let Some(v) = version.filter(|&v| !readable(v)) {
            return Err(Error::Corruption(format!(
                "{} is format version {v}; this build reads versions {min} to {max} (refusing to open, nothing modified)",
                path.display(),
            )));
        }
    }
    Ok(())
}

/// The newest segment, if it holds no header yet: a crash (or a full
/// disk) between creating a segment and making its header durable. It can
/// hold no record, so it is removed in every mode.
fn empty_newest_segment(vfs: &dyn Vfs, dir: &Path, segments: &[u64]) -> Result<Option<u64>> {
    let Some(&newest) = segments.last() else { return Ok(None) };
    let path = dir.join(wal::segment_name(newest));
    let image = vfs.map(&path).map_err(|e| io_err("read", &path, e))?;
    let headerless = image.len() < SEGMENT_HEADER_LEN || (image.len() == SEGMENT_HEADER_LEN && image.iter().all(|&b| b == 0));
    Ok(headerless.then_some(newest))
}

/// The WAL must continue the chosen snapshot (or, without one, start at
/// LSN 1): otherwise records are missing that no mode can do without.
fn check_reachable(dir: &Path, snapshots: &[u64], have_snapshot: bool, cut: u64, segments: &[u64]) -> Result<()> {
    let Some(&oldest) = segments.first() else { return Ok(()) };
    if oldest <= cut + 1 {
        return Ok(());
    }
    Err(Error::Corruption(if have_snapshot {
        format!("{} holds the state after LSN {cut} but the oldest WAL segment starts at LSN {oldest}: records {} to {} are missing (restore them, or move the segments aside to open from the snapshot alone)", snapshot::snapshot_name(cut), cut + 1, oldest - 1)
    } else if snapshots.is_empty() {
        format!("the WAL in {} starts at LSN {oldest}, not 1, and there is no snapshot", dir.display())
    } else {
        format!("no snapshot in {} verifies and the WAL does not reach back to LSN 1", dir.display())
    }))
}

/// The snapshot recovery starts from.
struct Chosen {
    cut: u64,
    token: u64,
    /// Where the record after the cut starts (segment, stream offset).
    resume: Option<(u64, usize)>,
    /// The prefix of record `cut`, which ends at the resume offset.
    resume_check: u64,
}

/// Loads the newest snapshot that verifies, tail included.
fn choose_snapshot(
    vfs: &dyn Vfs,
    dir: &Path,
    mode: RecoveryMode,
    sink: &mut dyn Sink,
    snapshots: &[u64],
    stats: &mut RecoveryStats,
    found: &mut Found<'_, '_>,
) -> Result<Option<Chosen>> {
    for &snap in snapshots {
        let name = snapshot::snapshot_name(snap);
        let path = dir.join(&name);
        let image = vfs.map(&path).map_err(|e| io_err("read", &path, e))?;
        sink.reserve(snapshot::entry_count_hint(&image));
        let loaded = load_entries(&name, &image, &*sink, &mut *found.progress).and_then(|l| {
            if l.cut.cut_lsn == snap {
                Ok(l)
            } else {
                Err(Error::Corruption(format!("{name} holds the state after LSN {}, not the LSN its name says", l.cut.cut_lsn)))
            }
        });
        match loaded {
            Ok(loaded) => {
                sink.snapshot_loaded(&loaded.meta, &loaded.shard_lsns);
                replay_tail(&image, &loaded, sink);
                stats.snapshot_loaded = true;
                stats.snapshot_entries = loaded.entries;
                let c = loaded.cut;
                let resume = Some((c.resume_segment, usize::try_from(c.resume_offset).unwrap_or(usize::MAX)));
                return Ok(Some(Chosen { cut: c.cut_lsn, token: c.token_hwm, resume, resume_check: c.resume_check }));
            }
            Err(e) if mode == RecoveryMode::Absolute => {
                return Err(Error::Corruption(format!(
                    "{} (in data directory {}). Recovery mode ABSOLUTE refuses to open and modified nothing; reopen with recovery_mode=POINT_IN_TIME to set {name} aside and open from the previous snapshot and the WAL, or run `dbkv check --repair {}`",
                    e.detail(),
                    dir.display(),
                    dir.display()
                )))
            }
            Err(e) => {
                // Fall back to the previous snapshot; set this one aside so
                // it is not picked again.
                sink.reset();
                stats.corrupt_records += 1;
                stats.bytes_dropped += image.len() as u64;
                found.findings.push(Finding { file: path.clone(), offset: 0, reason: e.detail(), action: Action::SetAside { bytes: image.len() as u64 } });
                found.repairs.push(Repair::SetAside(path));
            }
        }
    }
    Ok(None)
}

fn load_entries(name: &str, image: &[u8], sink: &dyn Sink, progress: &mut dyn FnMut(Progress)) -> Result<LoadedSnapshot> {
    let total = image.len() as u64;
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get()).min(MAX_WORKERS);
    let mut report = |done: u64| progress(Progress { phase: Phase::LoadSnapshot, done: done.min(total), total });
    let loaded = snapshot::load_parallel(name, image, workers, &|batch| sink.entries(batch), &mut report);
    report(total);
    loaded
}

/// Stream bytes of each segment sampled to estimate its record count.
const HINT_SAMPLE: usize = 1 << 20;

/// Threads that load snapshot sections at once.
const MAX_WORKERS: usize = 8;

/// Where recovery collects the repairs it will make and what it reports,
/// and whom it tells how far it has got.
struct Found<'a, 'p> {
    repairs: &'a mut Vec<Repair>,
    findings: &'a mut Vec<Finding>,
    progress: &'p mut dyn FnMut(Progress),
}

/// Applies the snapshot's tail records (verified by `snapshot::load`).
fn replay_tail(image: &[u8], loaded: &LoadedSnapshot, sink: &dyn Sink) {
    let stream = &image[loaded.tail.clone()];
    let mut batch = Vec::new();
    let mut at = 0;
    while let ScanView::Record { len, lsn, record } = wal::read_view(stream, at) {
        batch.push((lsn, record));
        at += len;
        if at >= stream.len() {
            break;
        }
    }
    sink.records(&batch);
}

struct Replay<'a> {
    vfs: &'a dyn Vfs,
    dir: &'a Path,
    mode: RecoveryMode,
    sink: &'a dyn Sink,
    /// The logical stream of the segment being read, reused across
    /// segments (its pages are faulted in once).
    stream_buf: Vec<u8>,
    stats: RecoveryStats,
    repairs: Vec<Repair>,
    findings: Vec<Finding>,
    progress: &'a mut dyn FnMut(Progress),
    /// Bytes of segments to replay, and of those finished.
    total_bytes: u64,
    done_bytes: u64,
    /// The snapshot's cut: records at or below it are already applied.
    cut: u64,
    /// Where the record after the cut starts (segment, stream offset), and
    /// the prefix of the record that must end there.
    resume: Option<(u64, usize)>,
    resume_check: u64,
    /// The WAL reaches the resume position (or a segment starts right
    /// after the cut).
    resume_found: bool,
    /// The LSN the next record must carry.
    expected: u64,
    last_lsn: u64,
    max_lsn_seen: u64,
    max_token: u64,
    repaired: bool,
    /// `SkipCorrupted` lost the rest of the previous segment: the gap
    /// before the next one is that same damage, not another.
    lost_tail: bool,
}

/// How replay of one segment ended.
enum SegmentEnd {
    /// Every record was read, or damage was skipped.
    Complete,
    /// Point-in-time stop at this segment; `keep`: it stays (cut), else it
    /// was set aside.
    Stop { keep: bool },
}

impl<'a> Replay<'a> {
    fn new(vfs: &'a dyn Vfs, dir: &'a Path, mode: RecoveryMode, sink: &'a dyn Sink, snap: &Chosen, progress: &'a mut dyn FnMut(Progress)) -> Replay<'a> {
        let stats = RecoveryStats::default();
        let (cut, token, resume, resume_check) = (snap.cut, snap.token, snap.resume, snap.resume_check);
        let (findings, total_bytes, done_bytes) = (Vec::new(), 0, 0);
        Replay { vfs, dir, mode, sink, stream_buf: Vec::new(), stats, repairs: Vec::new(), findings, progress, total_bytes, done_bytes, cut, resume, resume_check, resume_found: resume.is_none(), expected: cut + 1, last_lsn: 0, max_lsn_seen: 0, max_token: token, repaired: false, lost_tail: false }
    }

    fn map(&self, first: u64) -> Result<(String, PathBuf, super::vfs::Image)> {
        let name = wal::segment_name(first);
        let path = self.dir.join(&name);
        let image = self.vfs.map(&path).map_err(|e| io_err("read", &path, e))?;
        Ok((name, path, image))
    }

    /// Replays every segment in order; returns the segments kept.
    fn segments(&mut self, segments: &[u64]) -> Result<Vec<u64>> {
        // Segments before the one holding the record after the cut hold
        // only records the snapshot has: they are not read at all.
        // Segment 0 never exists (LSNs start at 1), so (0, 0) is "none".
        // Unpacked once so that no code reads the payload of a None (LLVM
        // may compare it before the tag, which valgrind reports).
        let (resume_segment, resume_offset) = self.resume.unwrap_or((0, 0));
        // Sizes of the segments to replay (0 for those skipped), for progress.
        let (mut hint, mut sizes) = (0, vec![0u64; segments.len()]);
        for (i, &first) in segments.iter().enumerate().filter(|(_, &f)| f >= resume_segment) {
            let image = self.map(first)?.2;
            hint += block::estimate_records(&image, HINT_SAMPLE);
            sizes[i] = image.len() as u64;
        }
        self.total_bytes = sizes.iter().sum();
        self.sink.reserve(hint);
        self.report(0);
        let mut kept = Vec::with_capacity(segments.len());
        for (i, &first) in segments.iter().enumerate() {
            if first < resume_segment {
                kept.push(first);
                continue;
            }
            let next_first = segments.get(i + 1).copied();
            let start = if first == resume_segment { resume_offset } else { 0 };
            let end = self.segment(first, next_first, start)?;
            self.done_bytes += sizes[i];
            self.report(0);
            match end {
                SegmentEnd::Complete => kept.push(first),
                SegmentEnd::Stop { keep } => {
                    if keep {
                        kept.push(first);
                    }
                    self.set_aside_later(&segments[i + 1..])?;
                    return Ok(kept);
                }
            }
        }
        Ok(kept)
    }

    fn report(&mut self, within: u64) {
        let (done, total) = ((self.done_bytes + within).min(self.total_bytes), self.total_bytes);
        (self.progress)(Progress { phase: Phase::ReplayWal, done, total });
    }

    /// Point-in-time stop: every later segment is set aside, after reading
    /// what it can tell about LSNs and tokens already handed out.
    fn set_aside_later(&mut self, later: &[u64]) -> Result<()> {
        for &first in later {
            let (_, path, image) = self.map(first)?;
            let stream = block::deblock(&image);
            self.salvage_marks(&image, &stream, first, 0);
            self.stats.bytes_dropped += image.len() as u64;
            let reason = "follows the point where the WAL was cut: its records would come after a lost one".into();
            self.findings.push(Finding { file: path.clone(), offset: 0, reason, action: Action::SetAside { bytes: image.len() as u64 } });
            self.repairs.push(Repair::SetAside(path));
        }
        Ok(())
    }

    fn segment(&mut self, first: u64, next_first: Option<u64>, start: usize) -> Result<SegmentEnd> {
        let (name, path, image) = self.map(first)?;
        let mut stream = std::mem::take(&mut self.stream_buf);
        block::deblock_into(&image, &mut stream);
        let seg = Seg { name: &name, path: &path, image: &image, stream: &stream, first };
        let end = self.segment_stream(&seg, next_first, start);
        self.stream_buf = stream;
        end
    }

    fn segment_stream(&mut self, seg: &Seg<'_>, next_first: Option<u64>, start: usize) -> Result<SegmentEnd> {
        let (name, first, stream) = (seg.name, seg.first, seg.stream);
        let mut header = match wal::decode_segment_header(name, seg.image) {
            // Reading starts after the cut: a damaged header loses nothing
            // (block headers are bound to the LSN in the file name).
            _ if start > 0 => None,
            Ok(lsn) if lsn == first => None,
            Ok(lsn) => Some(format!("{name} at offset 0: header names LSN {lsn}")),
            Err(e) => Some(e.to_string()),
        };
        // The snapshot's resume offset is trusted only while the record it
        // names (record `cut`) still ends there: bytes inserted or removed
        // before it would otherwise make it point into a value.
        let moved = start > 0 && !follows_record(stream, start, self.resume_check);
        // The WAL continues the snapshot if this segment reaches its resume
        // offset, or starts right after the cut.
        self.resume_found |= (start > 0 && start <= stream.len() && !moved) || first == self.cut + 1;
        if start > stream.len() {
            // The segment ends before the record after the cut: cut back
            // by an earlier repair, or damaged. What follows decides.
            return Ok(SegmentEnd::Complete);
        }
        if first > self.expected {
            if first - 1 > self.cut && !std::mem::take(&mut self.lost_tail) {
                let reason = format!("{name}: LSNs {} to {} are missing (a segment is missing)", self.expected, first - 1);
                if header.is_none() {
                    // The segment itself is intact: losing what precedes it
                    // is damage at its start.
                    match self.lost(seg, 0, None, reason, true)? {
                        SegmentEnd::Complete => {}
                        stop => return Ok(stop),
                    }
                } else {
                    header = Some(format!("{reason}; {}", header.unwrap_or_default()));
                }
            }
            self.expected = first;
        }
        let damage = match header {
            Some(h) => Some((h, true)),
            None => moved.then(|| (format!("{name} at offset {}: the record before the snapshot's resume position is not the one the snapshot names", block::physical(start)), false)),
        };
        // Batches are applied on a helper thread while this one reads and
        // verifies the next: reading and inserting overlap.
        let sink = self.sink;
        std::thread::scope(|scope| {
            let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<(u64, RecordView<'_>)>>(PIPELINE_DEPTH);
            let applier = scope.spawn(move || rx.into_iter().for_each(|batch| sink.records(&batch)));
            let mut out = Batches { tx, batch: Vec::with_capacity(PIPELINE_BATCH) };
            let end = self.read_stream(seg, next_first, damage, start, &mut out);
            out.flush();
            drop(out);
            applier.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
            end
        })
    }

    /// Reads the records of one segment's stream from `start`, applying
    /// those after the cut; `damage` is damage found before reading (with
    /// whether it is in the segment header, which loses the whole file).
    fn read_stream<'s>(&mut self, seg: &Seg<'s>, next_first: Option<u64>, mut damage: Option<(String, bool)>, start: usize, batch: &mut Batches<'s>) -> Result<SegmentEnd> {
        let mut at = start;
        loop {
            if let Some((reason, in_header)) = damage.take() {
                let (resume, harmless) = self.classify(seg, at, next_first);
                if harmless {
                    let offset = if in_header { 0 } else { block::physical(at.min(seg.stream.len())) as u64 };
                    let reason = format!("{reason} (only records the snapshot already holds are affected)");
                    self.findings.push(Finding { file: seg.path.to_path_buf(), offset, reason, action: Action::Ignore });
                } else {
                    batch.flush();
                    if let stop @ SegmentEnd::Stop { .. } = self.lost(seg, at, resume, reason, in_header)? {
                        return Ok(stop);
                    }
                }
                match resume {
                    Some((r, lsn)) => (at, self.expected) = (r, lsn),
                    None => return Ok(SegmentEnd::Complete),
                }
            }
            if at >= seg.stream.len() {
                return Ok(SegmentEnd::Complete);
            }
            match wal::read_view(seg.stream, at) {
                ScanView::Record { len, lsn, record } if lsn == self.expected => {
                    self.take(lsn, record, batch);
                    at += len;
                    if self.stats.wal_records % BATCH as u64 == 0 {
                        self.report(block::physical(at) as u64);
                    }
                }
                ScanView::Record { lsn, .. } => {
                    damage = Some((format!("{} at offset {}: LSN {lsn} where {} was expected", seg.name, block::physical(at), self.expected), false))
                }
                ScanView::Bad { reason } => damage = Some((format!("{} at offset {}: {reason}", seg.name, block::physical(at)), false)),
            }
        }
    }

    fn take<'s>(&mut self, lsn: u64, record: RecordView<'s>, batch: &mut Batches<'s>) {
        if let RecordView::Lock { token, .. } = &record {
            self.max_token = self.max_token.max(*token);
        }
        self.last_lsn = lsn;
        self.max_lsn_seen = self.max_lsn_seen.max(lsn);
        self.expected = lsn + 1;
        if lsn > self.cut {
            batch.push((lsn, record));
            self.stats.wal_records += 1;
        }
    }

    /// Damage at stream offset `at`: where reading could resume (a record
    /// start named by a block header, carrying an LSN not below the
    /// expected one, with that LSN), and whether every record lost in
    /// between lies at or below the snapshot's cut (then nothing is lost).
    fn classify(&self, seg: &Seg<'_>, at: usize, next_first: Option<u64>) -> (Option<(usize, u64)>, bool) {
        let resume = block::resume_points(seg.image, seg.first, at).find_map(|r| match wal::read_view(seg.stream, r) {
            ScanView::Record { lsn, .. } if lsn >= self.expected => Some((r, lsn)),
            _ => None,
        });
        let next_known = resume.map(|(_, lsn)| lsn).or(next_first);
        (resume, next_known.is_some_and(|n| n - 1 <= self.cut))
    }

    /// Damage that loses records after the cut: refuse (`Absolute`), skip
    /// to `resume` (`SkipCorrupted`), or cut the WAL here (`PointInTime`).
    fn lost(&mut self, seg: &Seg<'_>, at: usize, resume: Option<(usize, u64)>, reason: String, whole: bool) -> Result<SegmentEnd> {
        // Where the lost bytes start in the file.
        let from = match () {
            _ if whole => 0,
            _ if at >= seg.stream.len() => seg.image.len(),
            _ => block::physical(at),
        };
        if self.mode == RecoveryMode::Absolute {
            return Err(Error::Corruption(absolute_refusal(self.dir, seg, &reason, from, whole)));
        }
        self.stats.corrupt_records += 1;
        self.repaired = true;
        let file = seg.path.to_path_buf();
        if self.mode == RecoveryMode::SkipCorrupted {
            let until = resume.map_or(seg.image.len(), |(r, _)| block::physical(r));
            let bytes = until.saturating_sub(from) as u64;
            self.stats.bytes_dropped += bytes;
            self.lost_tail = resume.is_none();
            self.findings.push(Finding { file, offset: from as u64, reason, action: Action::Skip { bytes } });
            return Ok(SegmentEnd::Complete);
        }
        self.salvage_marks(seg.image, seg.stream, seg.first, at);
        let bytes = (seg.image.len() - from) as u64;
        self.stats.bytes_dropped += bytes;
        if whole {
            self.findings.push(Finding { file: file.clone(), offset: 0, reason, action: Action::SetAside { bytes } });
            self.repairs.push(Repair::SetAside(file));
            return Ok(SegmentEnd::Stop { keep: false });
        }
        self.findings.push(Finding { file: file.clone(), offset: from as u64, reason, action: Action::Cut { bytes } });
        self.repairs.push(Repair::Cut(file, from as u64));
        Ok(SegmentEnd::Stop { keep: true })
    }

    /// Reads what it can of a discarded part of a segment (from stream
    /// offset `from`), resuming only at block-header record starts, for the
    /// largest LSN and fencing token in it: both were handed out, so the
    /// next ones must be larger.
    fn salvage_marks(&mut self, image: &[u8], stream: &[u8], first: u64, from: usize) {
        let mut at = Some(from).filter(|&f| f < stream.len());
        while let Some(pos) = at {
            match wal::read_view(stream, pos) {
                ScanView::Record { len, lsn, record } => {
                    self.max_lsn_seen = self.max_lsn_seen.max(lsn);
                    if let RecordView::Lock { token, .. } = record {
                        self.max_token = self.max_token.max(token);
                    }
                    at = Some(pos + len).filter(|&n| n < stream.len());
                }
                ScanView::Bad { .. } => at = block::resume_points(image, first, pos).next(),
            }
        }
    }
}

/// The refusal of `Absolute` at damage that loses records: where, and what
/// the other modes would do about it.
fn absolute_refusal(dir: &Path, seg: &Seg<'_>, reason: &str, from: usize, whole: bool) -> String {
    let what = if whole {
        format!("set {} aside ({} bytes) with every later segment", seg.name, seg.image.len())
    } else {
        format!("cut {} bytes of {} from offset {from} (and set aside any later segment)", seg.image.len() - from, seg.name)
    };
    format!(
        "{reason} (in data directory {}). Recovery mode ABSOLUTE refuses to open and modified nothing; reopen with recovery_mode=POINT_IN_TIME to {what}, or SKIP_CORRUPTED to skip only the damaged bytes, or run `dbkv check --repair {}`",
        dir.display(),
        dir.display()
    )
}

/// The record that ends at stream offset `end` has the length-and-CRC
/// prefix `check` (see `record::prefix_word`).
fn follows_record(stream: &[u8], end: usize, check: u64) -> bool {
    let len = (check & 0xffff_ffff) as usize;
    let start = end.checked_sub(RECORD_PREFIX + len);
    start.and_then(|s| stream.get(s..s + RECORD_PREFIX)).is_some_and(|p| prefix_word(p) == check)
}

/// Records read but not yet applied, and the way to the thread that
/// applies them.
struct Batches<'s> {
    tx: std::sync::mpsc::SyncSender<Vec<(u64, RecordView<'s>)>>,
    batch: Vec<(u64, RecordView<'s>)>,
}

impl<'s> Batches<'s> {
    fn push(&mut self, r: (u64, RecordView<'s>)) {
        self.batch.push(r);
        if self.batch.len() == PIPELINE_BATCH {
            self.flush();
        }
    }

    /// Hands what was read so far to the applier (in LSN order: one
    /// channel, one applier).
    fn flush(&mut self) {
        if !self.batch.is_empty() {
            let full = std::mem::replace(&mut self.batch, Vec::with_capacity(PIPELINE_BATCH));
            // The applier only stops when this side hangs up; if it died,
            // its panic is re-raised when it is joined.
            let _ = self.tx.send(full);
        }
    }
}

/// Records per batch handed to the applier: small enough that reading and
/// applying overlap within a segment, large enough to keep the applier's
/// own worker threads busy.
const PIPELINE_BATCH: usize = 16 << 10;
/// Batches read ahead of the applier.
const PIPELINE_DEPTH: usize = 2;

/// One segment being replayed: its file image and logical stream.
struct Seg<'s> {
    name: &'s str,
    path: &'s Path,
    image: &'s [u8],
    stream: &'s [u8],
    first: u64,
}

/// What recovery does with one piece of damage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// The file is truncated at the damage (a copy is kept as `<file>.dropped`).
    Cut { bytes: u64 },
    /// The whole file is renamed to `<file>.dropped`.
    SetAside { bytes: u64 },
    /// The damaged bytes are skipped; reading resumes after them.
    Skip { bytes: u64 },
    /// A leftover file (an unfinished snapshot, an empty newest segment) is removed.
    Remove,
    /// Nothing is lost: the damaged records are already in the snapshot.
    Ignore,
}

/// One piece of damage (or leftover) recovery found, and what it does about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub file: PathBuf,
    /// Byte offset in the file where the damage starts.
    pub offset: u64,
    pub reason: String,
    pub action: Action,
}

/// What an open in one mode would do to a directory, without doing it.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub stats: RecoveryStats,
    pub findings: Vec<Finding>,
}

/// What a long piece of work (recovery in `open`) is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Reading and verifying the snapshot, and loading its entries.
    LoadSnapshot,
    /// Replaying WAL segments.
    ReplayWal,
}

impl Phase {
    pub fn name(self) -> &'static str {
        match self {
            Phase::LoadSnapshot => "loading snapshot",
            Phase::ReplayWal => "replaying WAL",
        }
    }
}

/// Progress of one phase, in bytes of files read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    pub phase: Phase,
    pub done: u64,
    pub total: u64,
}

impl Action {
    /// What the action does, in words (`applied`: done, else would be done).
    pub fn describe(&self, applied: bool) -> String {
        let (cut, set, skip, rm) = if applied { ("cut", "set aside", "skipped", "removed") } else { ("would cut", "would set aside", "would skip", "would remove") };
        match self {
            Action::Cut { bytes } => format!("{cut} the last {bytes} bytes (a copy is kept as <file>.dropped)"),
            Action::SetAside { bytes } => format!("{set} the whole file ({bytes} bytes) as <file>.dropped"),
            Action::Skip { bytes } => format!("{skip} {bytes} damaged bytes"),
            Action::Remove => rm.to_string(),
            Action::Ignore => "nothing lost, nothing changed".to_string(),
        }
    }

    /// Whether the action loses data (or may: a skip or cut drops records).
    pub fn loses_data(&self) -> bool {
        matches!(self, Action::Cut { .. } | Action::SetAside { .. } | Action::Skip { .. })
    }
}

impl Finding {
    /// One line naming the file, the offset, the damage and the action.
    pub fn describe(&self, applied: bool) -> String {
        let name = self.file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let what = match self.reason.strip_prefix(&name) {
            Some(rest) => format!("{}{rest}", self.file.display()),
            None => format!("{} at offset {}: {}", self.file.display(), self.offset, self.reason),
        };
        format!("{what}: {}", self.action.describe(applied).replace("<file>", &name))
    }
}
