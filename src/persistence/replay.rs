//! WAL replay, the part of recovery that reads segments: records after
//! the snapshot's cut are read and verified on this thread and applied by
//! the sink on another (`Batches`), and damage is classified and repaired
//! as the recovery mode says (see `recovery.rs` for the rules).

#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};

use super::block;
use super::record::{prefix_word, RecordView, RECORD_PREFIX};
use super::recovery::{io_err, Action, Chosen, Finding, Phase, Progress, RecoveryMode, RecoveryStats, Repair, Routed, Sink, BATCH};
use super::vfs::Vfs;
use super::wal::{self, ScanView};
use crate::error::{Error, Result};

/// Stream bytes of each segment sampled to estimate its record count.
const HINT_SAMPLE: usize = 1 << 20;

pub(super) struct Replay<'a> {
    vfs: &'a dyn Vfs,
    dir: &'a Path,
    mode: RecoveryMode,
    sink: &'a dyn Sink,
    /// The logical stream of the segment being read, reused across
    /// segments (its pages are faulted in once).
    stream_buf: Vec<u8>,
    pub(super) stats: RecoveryStats,
    pub(super) repairs: Vec<Repair>,
    pub(super) findings: Vec<Finding>,
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
    pub(super) resume_found: bool,
    /// The LSN the next record must carry.
    expected: u64,
    pub(super) last_lsn: u64,
    pub(super) max_lsn_seen: u64,
    pub(super) max_token: u64,
    pub(super) repaired: bool,
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
    pub(super) fn new(vfs: &'a dyn Vfs, dir: &'a Path, mode: RecoveryMode, sink: &'a dyn Sink, snap: &Chosen, progress: &'a mut dyn FnMut(Progress)) -> Replay<'a> {
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
    pub(super) fn segments(&mut self, segments: &[u64]) -> Result<Vec<u64>> {
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
        // Batches are applied by one thread per part of the sink while
        // this one reads, verifies and routes the next: reading and
        // inserting overlap, and the parts never wait for each other
        // within a segment.
        let sink = self.sink;
        let parts = sink.parts().max(1);
        std::thread::scope(|scope| {
            let mut txs = Vec::with_capacity(parts);
            let mut appliers = Vec::with_capacity(parts);
            for part in 0..parts {
                let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<Routed<'_>>>(PIPELINE_DEPTH);
                txs.push(tx);
                appliers.push(scope.spawn(move || rx.into_iter().for_each(|batch| sink.records(&batch, part, parts))));
            }
            let mut out = Batches { sink, batches: (0..parts).map(|_| Vec::with_capacity(PIPELINE_BATCH / parts)).collect(), read: 0, txs };
            let end = self.read_stream(seg, next_first, damage, start, &mut out);
            out.flush();
            drop(out);
            for a in appliers {
                a.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
            }
            end
        })
    }

    /// Reads the records of one segment's stream from `start`, applying
    /// those after the cut; `damage` is damage found before reading (with
    /// whether it is in the segment header, which loses the whole file).
    fn read_stream<'s>(&mut self, seg: &Seg<'s>, next_first: Option<u64>, mut damage: Option<(String, bool)>, start: usize, batch: &mut Batches<'s, '_>) -> Result<SegmentEnd> {
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

    fn take<'s>(&mut self, lsn: u64, record: RecordView<'s>, batch: &mut Batches<'s, '_>) {
        if let RecordView::Lock { token, .. } = &record {
            self.max_token = self.max_token.max(*token);
        }
        self.last_lsn = lsn;
        self.max_lsn_seen = self.max_lsn_seen.max(lsn);
        self.expected = lsn + 1;
        if lsn > self.cut {
            batch.push(lsn, record);
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

/// Records read but not yet applied, one batch per part of the sink, and
/// the way to the threads that apply them.
struct Batches<'s, 'k> {
    sink: &'k dyn Sink,
    batches: Vec<Vec<Routed<'s>>>,
    /// Records in `batches`.
    read: usize,
    txs: Vec<std::sync::mpsc::SyncSender<Vec<Routed<'s>>>>,
}

impl<'s> Batches<'s, '_> {
    /// A record of one key goes to its part only, with its hash; any other
    /// to every part (multi-key records are rare, and each part applies
    /// the keys that are its own).
    fn push(&mut self, lsn: u64, record: RecordView<'s>) {
        let parts = self.batches.len();
        match single_key(&record) {
            Some(key) => {
                let (part, hash) = self.sink.route(key, parts);
                self.batches[part].push(Routed { lsn, record, key_hash: Some(hash) });
            }
            None => {
                for b in &mut self.batches[1..] {
                    b.push(Routed { lsn, record: record.clone(), key_hash: None });
                }
                self.batches[0].push(Routed { lsn, record, key_hash: None });
            }
        }
        self.read += 1;
        if self.read == PIPELINE_BATCH {
            self.flush();
        }
    }

    /// Hands what was read so far to the appliers (in LSN order: one
    /// channel to each part, one thread behind each).
    fn flush(&mut self) {
        self.read = 0;
        let per_part = PIPELINE_BATCH / self.batches.len();
        for (b, tx) in self.batches.iter_mut().zip(&self.txs) {
            if !b.is_empty() {
                // An applier only stops when this side hangs up; if it
                // died, its panic is re-raised when it is joined.
                let _ = tx.send(std::mem::replace(b, Vec::with_capacity(per_part)));
            }
        }
    }
}

/// The key of a record that touches exactly one.
fn single_key<'r>(record: &'r RecordView<'_>) -> Option<&'r [u8]> {
    match record {
        RecordView::Set { key, .. } | RecordView::SetInt { key, .. } | RecordView::Delete { key } | RecordView::Expire { key, .. } | RecordView::Lock { key, .. } => Some(key),
        RecordView::Coll(op) => Some(op.key()),
        RecordView::MSet { .. } | RecordView::MDel { .. } | RecordView::Clear | RecordView::Batch { .. } => None,
    }
}

/// Records per batch handed to the appliers: small enough that reading and
/// applying overlap within a segment, large enough that handing one over
/// costs nothing next to applying it.
const PIPELINE_BATCH: usize = 16 << 10;
/// Batches read ahead of the slowest applier.
const PIPELINE_DEPTH: usize = 2;

/// One segment being replayed: its file image and logical stream.
struct Seg<'s> {
    name: &'s str,
    path: &'s Path,
    image: &'s [u8],
    stream: &'s [u8],
    first: u64,
}

