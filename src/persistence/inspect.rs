//! Read-only verification of the files of a data directory, one file at a
//! time: what `dbkv check` and `dbkv stats` print per file. Recovery
//! (`recovery.rs`) decides what damage means for the database as a whole;
//! this module only says what each file holds and where it stops making
//! sense, so an operator can see the facts behind a recovery's decision.
//!
//! It works from a list of names given by the caller (not from a fresh
//! listing), so that a tool reading a live directory can fix the set of
//! files once and report a file that vanished meanwhile as such.

#![forbid(unsafe_code)]

use std::path::Path;

use super::block;
use super::snapshot::{self, parse_snapshot_name};
use super::vfs::Vfs;
use super::wal::{self, parse_segment_name, ScanView, SEGMENT_HEADER_LEN};

/// Damage found in a file: where it starts and why it is damage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    /// Byte offset in the file.
    pub offset: u64,
    pub reason: String,
}

/// What a WAL segment holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentInfo {
    /// The first LSN its name says it holds.
    pub first_lsn: u64,
    /// Records read in order from the start up to the first damage.
    pub records: u64,
    /// LSNs of the first and last of those records.
    pub lsn_range: Option<(u64, u64)>,
    /// Records readable after the first damage, resuming only where block
    /// headers say a record starts (what `SkipCorrupted` could still read).
    pub records_after_damage: u64,
    /// Every damage found, in file order (the first one ends the prefix
    /// that point-in-time recovery keeps).
    pub damage: Vec<Damage>,
    /// The file holds no header: a crash between creating the segment and
    /// writing its header. Recovery removes it when it is the newest.
    pub headerless: bool,
    /// An intact header declaring a format version this build does not read.
    pub foreign_version: Option<u32>,
}

/// What a snapshot holds, once it verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotInfo {
    pub cut_lsn: u64,
    pub entries: u64,
    pub shard_count: u32,
    pub created_ms: u64,
    pub token_hwm: u64,
    pub tail_records: u64,
    /// Where the WAL after the cut starts: segment first LSN and stream offset.
    pub resume_segment: u64,
    pub resume_offset: u64,
}

/// The verdict on one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileKind {
    Segment(SegmentInfo),
    /// `Ok` if the snapshot verifies, else the first check that failed.
    Snapshot(Result<SnapshotInfo, Damage>),
    /// `snapshot.tmp`: a snapshot that was being written; never read, and
    /// removed by the next open.
    TempSnapshot,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileReport {
    pub name: String,
    pub bytes: u64,
    pub kind: FileKind,
}

impl FileReport {
    /// The first damage in the file, if any.
    pub fn first_damage(&self) -> Option<&Damage> {
        match &self.kind {
            FileKind::Segment(s) => s.damage.first(),
            FileKind::Snapshot(Err(d)) => Some(d),
            _ => None,
        }
    }
}

/// A file named in the list could not be read (it vanished from a live
/// directory, or permissions): reported, not treated as damage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable {
    pub name: String,
    pub error: String,
}

/// LSNs no segment holds, between two segments (missing files).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gap {
    /// The segment that should have continued at `from`.
    pub before: String,
    pub from: u64,
    pub to: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inspection {
    /// Segments ascending, then snapshots ascending, then `snapshot.tmp`.
    pub files: Vec<FileReport>,
    pub unreadable: Vec<Unreadable>,
    pub gaps: Vec<Gap>,
}

impl Inspection {
    pub fn segments(&self) -> impl Iterator<Item = (&FileReport, &SegmentInfo)> {
        self.files.iter().filter_map(|f| match &f.kind {
            FileKind::Segment(s) => Some((f, s)),
            _ => None,
        })
    }

    pub fn snapshots(&self) -> impl Iterator<Item = (&FileReport, &Result<SnapshotInfo, Damage>)> {
        self.files.iter().filter_map(|f| match &f.kind {
            FileKind::Snapshot(s) => Some((f, s)),
            _ => None,
        })
    }
}

/// The dbkv files among `names`, in the order `Inspection::files` lists them.
pub fn dbkv_files(names: &[String]) -> Vec<String> {
    let mut segs: Vec<u64> = names.iter().filter_map(|n| parse_segment_name(n)).collect();
    segs.sort_unstable();
    let mut snaps: Vec<u64> = names.iter().filter_map(|n| parse_snapshot_name(n)).collect();
    snaps.sort_unstable();
    let tmp = names.iter().filter(|n| *n == super::recovery::SNAPSHOT_TMP).cloned();
    segs.into_iter().map(wal::segment_name).chain(snaps.into_iter().map(snapshot::snapshot_name)).chain(tmp).collect()
}

/// Verifies every dbkv file among `names` in `dir`, modifying nothing.
/// `progress` is told the bytes of each file once it has been read.
pub fn inspect(vfs: &dyn Vfs, dir: &Path, names: &[String], progress: &mut dyn FnMut(u64)) -> Inspection {
    let mut out = Inspection::default();
    for name in dbkv_files(names) {
        let image = match vfs.map(&dir.join(&name)) {
            Ok(i) => i,
            Err(e) => {
                out.unreadable.push(Unreadable { name, error: e.to_string() });
                continue;
            }
        };
        let kind = if let Some(first) = parse_segment_name(&name) {
            FileKind::Segment(segment(&image, first))
        } else if let Some(cut) = parse_snapshot_name(&name) {
            FileKind::Snapshot(snapshot_file(&name, &image, cut))
        } else {
            FileKind::TempSnapshot
        };
        progress(image.len() as u64);
        out.files.push(FileReport { name, bytes: image.len() as u64, kind });
    }
    out.gaps = gaps(&out.files);
    out
}

/// Reads a segment image the way replay would, without a snapshot: every
/// record must carry the LSN after the previous one, starting at the LSN
/// the name says.
pub fn segment(image: &[u8], first: u64) -> SegmentInfo {
    let mut info = SegmentInfo { first_lsn: first, records: 0, lsn_range: None, records_after_damage: 0, damage: Vec::new(), headerless: false, foreign_version: None };
    info.headerless = image.len() < SEGMENT_HEADER_LEN || (image.len() == SEGMENT_HEADER_LEN && image.iter().all(|&b| b == 0));
    if let Some(v) = wal::segment_version(image).filter(|&v| !wal::readable_version(v)) {
        info.foreign_version = Some(v);
        return info;
    }
    let stream = block::deblock(image);
    let mut at = 0;
    match wal::decode_segment_header("", image) {
        Ok(lsn) if lsn == first => {}
        Ok(lsn) => info.damage.push(Damage { offset: 0, reason: format!("header names LSN {lsn}, the file name {first}") }),
        Err(e) => {
            info.damage.push(Damage { offset: 0, reason: strip_location(&e.to_string()) });
            // Block headers are bound to the LSN in the name: salvage can
            // still find records after the first block.
            match block::resume_points(image, first, 0).next() {
                Some(r) => at = r,
                None => return info,
            }
        }
    }
    let mut expected = first;
    while at < stream.len() {
        let reason = match wal::read_view(&stream, at) {
            ScanView::Record { len, lsn, .. } if lsn == expected || (!info.damage.is_empty() && lsn > expected) => {
                if info.damage.is_empty() {
                    info.records += 1;
                    info.lsn_range = Some((info.lsn_range.map_or(lsn, |r| r.0), lsn));
                } else {
                    info.records_after_damage += 1;
                }
                expected = lsn + 1;
                at += len;
                continue;
            }
            ScanView::Record { lsn, .. } => format!("LSN {lsn} where {expected} was expected"),
            ScanView::Bad { reason } => reason.to_string(),
        };
        info.damage.push(Damage { offset: block::physical(at) as u64, reason });
        match block::resume_points(image, first, at).next() {
            Some(r) => at = r,
            None => break,
        }
    }
    info
}

/// Verifies a snapshot image (digest, structure, tail) and that its cut is
/// the LSN its name says.
pub fn snapshot_file(name: &str, image: &[u8], cut_from_name: u64) -> Result<SnapshotInfo, Damage> {
    let loaded = snapshot::load(name, image, |_| {}).map_err(|e| split_damage(name, &e.to_string()))?;
    let c = loaded.cut;
    if c.cut_lsn != cut_from_name {
        return Err(Damage { offset: 0, reason: format!("holds the state after LSN {}, not the LSN {cut_from_name} its name says", c.cut_lsn) });
    }
    Ok(SnapshotInfo {
        cut_lsn: c.cut_lsn,
        entries: loaded.entries,
        shard_count: loaded.meta.shard_count,
        created_ms: loaded.meta.created_ms,
        token_hwm: c.token_hwm,
        tail_records: loaded.tail_records,
        resume_segment: c.resume_segment,
        resume_offset: c.resume_offset,
    })
}

/// Snapshot errors read "corruption: NAME at offset N: WHAT": split the
/// offset out so the caller can print it in its own column.
fn split_damage(name: &str, msg: &str) -> Damage {
    let rest = msg.trim_start_matches("corruption: ").trim_start_matches(name);
    if let Some(after) = rest.strip_prefix(" at offset ") {
        if let Some((n, what)) = after.split_once(": ") {
            if let Ok(offset) = n.parse() {
                return Damage { offset, reason: what.to_string() };
            }
        }
    }
    Damage { offset: 0, reason: rest.trim_start_matches(": ").to_string() }
}

/// Segment header errors read "corruption: at offset 0: WHAT" (no name
/// given): keep WHAT.
fn strip_location(msg: &str) -> String {
    msg.rsplit_once("at offset 0: ").map_or(msg, |(_, what)| what).to_string()
}

/// LSNs between consecutive segments that no file holds. A segment whose
/// records end early at damage is not a gap (the damage is reported).
fn gaps(files: &[FileReport]) -> Vec<Gap> {
    let segs: Vec<(&str, &SegmentInfo)> = files
        .iter()
        .filter_map(|f| match &f.kind {
            FileKind::Segment(s) => Some((f.name.as_str(), s)),
            _ => None,
        })
        .collect();
    let mut out = Vec::new();
    for pair in segs.windows(2) {
        let ((name, prev), (_, next)) = (pair[0], pair[1]);
        if !prev.damage.is_empty() || prev.headerless {
            continue;
        }
        let end = prev.lsn_range.map_or(prev.first_lsn, |r| r.1 + 1);
        if next.first_lsn > end {
            out.push(Gap { before: name.to_string(), from: end, to: next.first_lsn - 1 });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::persistence::block::frame;
    use crate::persistence::record::{seal_all, Record};
    use crate::persistence::vfs::{SimVfs, Vfs};
    use std::path::PathBuf;

    /// A segment image holding `n` Set records from `first`, each with a
    /// value of `value_len` bytes.
    fn segment_image(first: u64, n: u64, value_len: usize) -> Vec<u8> {
        let mut batch = Vec::new();
        let value = vec![7u8; value_len];
        for lsn in first..first + n {
            Record::Set { key: b"k", value: &value, expires_at: 0 }.encode(lsn, &mut batch);
        }
        seal_all(&mut batch);
        let mut image = wal::encode_segment_header(first).to_vec();
        let mut framed = Vec::new();
        frame(&mut framed, &batch, image.len() as u64, first);
        image.extend_from_slice(&framed);
        image
    }

    #[test]
    fn clean_segment_counts_records_and_lsns() {
        let info = segment(&segment_image(5, 10, 10), 5);
        assert_eq!((info.records, info.lsn_range, info.damage.len()), (10, Some((5, 14)), 0));
    }

    #[test]
    fn torn_tail_is_damage_at_the_last_record() {
        let image = segment_image(1, 3, 10);
        let full = segment(&image, 1);
        let torn = segment(&image[..image.len() - 5], 1);
        assert_eq!((torn.records, torn.lsn_range), (2, Some((1, 2))));
        let d = &torn.damage[0];
        assert!(d.reason.contains("torn"), "{d:?}");
        // The third record starts where two records end.
        let record_len = (image.len() as u64 - 32) / 3;
        assert_eq!(d.offset, 32 + 2 * record_len);
        assert!(full.damage.is_empty());
    }

    #[test]
    fn bit_flip_resumes_at_the_next_block_header() {
        // Records of ~1 KiB over several blocks: a flip in the first block
        // loses the rest of that block only.
        let mut image = segment_image(1, 100, 1000);
        image[100] ^= 0x40;
        let info = segment(&image, 1);
        assert_eq!(info.records, 0, "the first record is the damaged one");
        assert_eq!(info.damage[0].offset, 32);
        assert!(info.damage[0].reason.contains("checksum"), "{:?}", info.damage);
        assert!(info.records_after_damage > 50, "{info:?}");
        assert_eq!(info.damage.len(), 1);
    }

    #[test]
    fn wrong_header_and_headerless_files() {
        let mut image = segment_image(1, 2, 10);
        assert_eq!(segment(&image, 2).damage[0].reason, "header names LSN 1, the file name 2");
        image[3] ^= 1;
        let info = segment(&image, 1);
        assert_eq!(info.damage[0].offset, 0);
        assert!(info.damage[0].reason.contains("magic"), "{info:?}");
        assert!(segment(&[0u8; 32], 9).headerless);
        assert!(segment(&[], 9).headerless);
    }

    #[test]
    fn snapshots_verify_or_name_the_failed_check() {
        let vfs = SimVfs::new();
        let dir = PathBuf::from("/d");
        vfs.create_dir(&dir).unwrap();
        let meta = snapshot::SnapshotMeta { shard_count: 1, hash_seed: 3, created_ms: 1_700_000_000_000 };
        let tmp = dir.join("t");
        let mut w = snapshot::SnapshotWriter::create(&vfs, &tmp, &meta).unwrap();
        let mut entries = Vec::new();
        snapshot::encode_entry(&mut entries, snapshot::KIND_BYTES, 0, b"a", b"1");
        w.shard(4, 1, &entries).unwrap();
        let cut = snapshot::SnapshotCut { cut_lsn: 4, token_hwm: 9, resume_segment: 1, resume_offset: 0, resume_check: 0 };
        w.tail(cut, 0, &[]).unwrap();
        w.finish().unwrap();
        let mut image = vfs.read(&tmp).unwrap();
        let info = snapshot_file("snap-4", &image, 4).unwrap();
        assert_eq!((info.cut_lsn, info.entries, info.token_hwm, info.created_ms), (4, 1, 9, 1_700_000_000_000));
        assert!(snapshot_file("snap-5", &image, 5).unwrap_err().reason.contains("not the LSN 5"));
        // A byte of the shard section (48..48 + 16 + 19): its CRC-32C.
        image[60] ^= 1;
        let d = snapshot_file("snap-4", &image, 4).unwrap_err();
        assert_eq!(d.offset, 48);
        assert_eq!(d.reason, "snapshot section CRC-32C mismatch");
        // A byte of the header: the SHA-256 over the header and the section table.
        image[60] ^= 1;
        image[20] ^= 1;
        let d = snapshot_file("snap-4", &image, 4).unwrap_err();
        assert_eq!(d.offset, image.len() as u64 - 32);
        assert_eq!(d.reason, "snapshot SHA-256 mismatch");
    }

    #[test]
    fn directory_listing_gaps_and_vanished_files() {
        let vfs = SimVfs::new();
        let dir = PathBuf::from("/d");
        vfs.create_dir(&dir).unwrap();
        for (first, n) in [(1, 3), (10, 2)] {
            let mut f = vfs.create(&dir.join(wal::segment_name(first))).unwrap();
            f.write_all(&segment_image(first, n, 5)).unwrap();
        }
        let mut names = vfs.list(&dir).unwrap();
        names.push("not-ours.txt".into());
        names.push(wal::segment_name(20)); // listed, then gone
        let mut read = 0;
        let ins = inspect(&vfs, &dir, &names, &mut |b| read += b);
        assert_eq!(ins.files.len(), 2);
        assert_eq!(ins.gaps, vec![Gap { before: wal::segment_name(1), from: 4, to: 9 }]);
        assert_eq!(ins.unreadable.len(), 1);
        assert_eq!(read, ins.files.iter().map(|f| f.bytes).sum::<u64>());
    }
}
