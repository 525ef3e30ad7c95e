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

use super::record::{RecordView, MIN_LOCK_RECORD};
use super::replay::Replay;
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
    /// WAL records in LSN order, a batch at a time: apply the parts of
    /// them that belong to part `part` of `parts` (a partition of the keys
    /// the sink chooses, e.g. by shard). Each part's batches come in order
    /// from one thread, the parts concurrently, so no part waits for
    /// another between batches. A record of one key routed by `route`
    /// comes only to its part, with the hash `route` returned.
    fn records(&self, batch: &[Routed<'_>], part: usize, parts: usize);
    /// How many parts `records` splits the keys into (threads that apply
    /// WAL records at once).
    fn parts(&self) -> usize;
    /// The part of `parts` that `key` belongs to, and the key's hash as
    /// `records` wants it back: computed by the thread that reads the WAL,
    /// while the key is in its cache.
    fn route(&self, key: &[u8], parts: usize) -> (usize, u64);
    /// About `n` keys are on their way: size tables once, not by doubling.
    fn reserve(&self, n: u64);
    /// The snapshot about to be loaded placed its keys in sections by this
    /// hash seed: an empty sink may adopt it, so that each section's keys
    /// land together. Called before each snapshot's entries.
    fn adopt_seed(&mut self, seed: u64);
}

/// A WAL record on its way to the sink.
pub struct Routed<'a> {
    pub lsn: u64,
    pub record: RecordView<'a>,
    /// For a record of one key routed to one part: the key's hash from
    /// `Sink::route`. None: the record goes to every part, and each applies
    /// the keys that are its own.
    pub key_hash: Option<u64>,
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
pub(super) enum Repair {
    /// Keep a copy as `<name>.dropped`, then truncate to this length.
    Cut(PathBuf, u64),
    SetAside(PathBuf),
    Remove(PathBuf),
}

pub(super) fn io_err(what: &str, path: &Path, e: std::io::Error) -> Error {
    Error::io(&format!("{what} {}", path.display()), &e)
}

fn dropped_name(p: &Path) -> PathBuf {
    let mut name = p.as_os_str().to_owned();
    name.push(".dropped");
    PathBuf::from(name)
}

/// Entries or records handed to the sink at once: large enough to keep
/// parallel apply busy, small enough to stay in cache-friendly sizes.
pub(super) const BATCH: usize = 1 << 16;

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
    fn records(&self, _: &[Routed<'_>], _: usize, _: usize) {}
    fn route(&self, _: &[u8], _: usize) -> (usize, u64) {
        (0, 0)
    }
    fn parts(&self) -> usize {
        1
    }
    fn reserve(&self, _: u64) {}
    fn adopt_seed(&mut self, _: u64) {}
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
pub(super) struct Chosen {
    pub(super) cut: u64,
    pub(super) token: u64,
    /// Where the record after the cut starts (segment, stream offset).
    pub(super) resume: Option<(u64, usize)>,
    /// The prefix of record `cut`, which ends at the resume offset.
    pub(super) resume_check: u64,
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
        if let Some(seed) = snapshot::seed_hint(&image) {
            sink.adopt_seed(seed);
        }
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
        batch.push(Routed { lsn, record, key_hash: None });
        at += len;
        if at >= stream.len() {
            break;
        }
    }
    apply_parts(sink, &batch);
}

/// Applies `batch` on one thread per part of the sink.
fn apply_parts(sink: &dyn Sink, batch: &[Routed<'_>]) {
    let parts = sink.parts().max(1);
    std::thread::scope(|scope| {
        for part in 1..parts {
            scope.spawn(move || sink.records(batch, part, parts));
        }
        sink.records(batch, 0, parts);
    });
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
