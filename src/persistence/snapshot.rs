//! Snapshot files: one consistent cut of the engine at LSN `cut`. Shards
//! are copied one at a time while writes go on, each at its own covered
//! LSN; the WAL records written meanwhile (the *tail*, LSNs from the
//! smallest covered LSN + 1 to `cut`) are stored in the file too, so that
//! entries plus tail give exactly the state after record `cut`, and
//! recovery never reads WAL records at or below `cut`. Sealed by a
//! SHA-256 (see docs/FORMAT.md). Written to a temp file, fsynced,
//! renamed, and the directory fsynced.

use std::path::Path;

use sha2::{Digest, Sha256};

use super::record::is_valid_key;
use super::vfs::{Vfs, VfsFile};
use super::wal::{read_view, ScanView};
use crate::error::{Error, Result};

pub const SNAPSHOT_MAGIC: &[u8; 8] = b"DBKVSNAP";
/// The version this build writes; versions 2 (without batch and clear
/// records in the tail) and 3 (without locks' tokens, lists and sorted
/// sets) are read too, as with WAL segments.
pub const SNAPSHOT_VERSION: u32 = 4;
pub const SNAPSHOT_HEADER_LEN: usize = 48;
pub const SNAPSHOT_TRAILER_LEN: usize = 40;

/// The tail section's fixed part: cut, token mark, resume segment, offset
/// and check, then the record count and byte length.
const TAIL_HEAD: usize = 56;

pub const KIND_BYTES: u8 = 0;
pub const KIND_INT: u8 = 1;

/// Named by its cut: recovery replays the WAL after it.
pub fn snapshot_name(cut_lsn: u64) -> String {
    format!("snap-{cut_lsn:020}.snap")
}

pub fn parse_snapshot_name(name: &str) -> Option<u64> {
    super::wal::parse_lsn_digits(name.strip_prefix("snap-")?.strip_suffix(".snap")?)
}

/// The version an intact snapshot declares. A version field that does not
/// match the digest is damage, not a newer format, so the digest is checked
/// first (only when the version is not ours, to keep opens cheap).
pub fn snapshot_version(b: &[u8]) -> Option<u32> {
    if b.len() < SNAPSHOT_HEADER_LEN + SNAPSHOT_TRAILER_LEN || &b[0..8] != SNAPSHOT_MAGIC {
        return None;
    }
    let version = u32::from_le_bytes(b[8..12].try_into().unwrap());
    (super::wal::readable_version(version) || is_sealed(b)).then_some(version)
}

/// The SHA-256 trailer matches everything before it.
fn is_sealed(b: &[u8]) -> bool {
    let sha_at = b.len() - 32;
    Sha256::digest(&b[..sha_at]).as_slice() == &b[sha_at..]
}

/// What the header records besides the shards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotMeta {
    pub shard_count: u32,
    /// The seed of the shard hash, so recovery can tell which shard (and
    /// so which covered LSN) a WAL record's key belonged to.
    pub hash_seed: u64,
    pub created_ms: u64,
}

/// What the tail section records: the cut and the token mark, both known
/// only once every shard is copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotCut {
    /// The snapshot is the state right after the record with this LSN.
    pub cut_lsn: u64,
    /// Every fencing token handed out before the cut is <= this.
    pub token_hwm: u64,
    /// Where the record after the cut starts: the first LSN of its WAL
    /// segment and its offset in that segment's record stream. Recovery
    /// starts reading there, so it never parses a record the snapshot holds.
    pub resume_segment: u64,
    pub resume_offset: u64,
    /// The length-and-CRC prefix of record `cut`, which ends at the resume
    /// offset (0 when the offset is 0): recovery trusts the offset only if
    /// that record is still right before it.
    pub resume_check: u64,
}

/// Appends one entry in snapshot layout.
pub fn encode_entry(out: &mut Vec<u8>, kind: u8, expires_at: u64, key: &[u8], value: &[u8]) {
    out.push(kind);
    out.extend_from_slice(&expires_at.to_le_bytes());
    out.extend_from_slice(&(key.len() as u32).to_le_bytes());
    out.extend_from_slice(key);
    out.extend_from_slice(&(value.len() as u32).to_le_bytes());
    out.extend_from_slice(value);
}

/// Streams a snapshot into a temp file; `finish` makes it durable and
/// gives it its final name.
pub struct SnapshotWriter {
    file: Box<dyn VfsFile>,
    sha: Sha256,
    entries: u64,
    bytes: u64,
    shard_lsns: Vec<u64>,
}

impl SnapshotWriter {
    pub fn create(vfs: &dyn Vfs, tmp_path: &Path, meta: &SnapshotMeta) -> Result<SnapshotWriter> {
        let file = vfs.create(tmp_path).map_err(|e| Error::io(&format!("create {}", tmp_path.display()), &e))?;
        let mut w = SnapshotWriter { file, sha: Sha256::new(), entries: 0, bytes: 0, shard_lsns: Vec::new() };
        let mut h = Vec::with_capacity(SNAPSHOT_HEADER_LEN);
        h.extend_from_slice(SNAPSHOT_MAGIC);
        h.extend_from_slice(&SNAPSHOT_VERSION.to_le_bytes());
        h.extend_from_slice(&meta.shard_count.to_le_bytes());
        h.extend_from_slice(&meta.hash_seed.to_le_bytes());
        h.extend_from_slice(&meta.created_ms.to_le_bytes());
        h.extend_from_slice(&[0u8; 16]);
        w.put(&h)?;
        Ok(w)
    }

    fn put(&mut self, b: &[u8]) -> Result<()> {
        self.sha.update(b);
        self.bytes += b.len() as u64;
        self.file.write_all(b).map_err(|e| Error::io("write snapshot", &e))
    }

    /// Writes one shard: its covered LSN and its entries (already encoded
    /// with `encode_entry`).
    pub fn shard(&mut self, covered_lsn: u64, count: u64, encoded: &[u8]) -> Result<()> {
        let mut head = [0u8; 16];
        head[..8].copy_from_slice(&covered_lsn.to_le_bytes());
        head[8..].copy_from_slice(&count.to_le_bytes());
        self.put(&head)?;
        self.put(encoded)?;
        self.entries += count;
        self.shard_lsns.push(covered_lsn);
        Ok(())
    }

    /// Writes the tail: the cut, and `count` sealed WAL records, in LSN
    /// order, that bring every shard from its covered LSN to the cut.
    pub fn tail(&mut self, cut: SnapshotCut, count: u64, records: &[u8]) -> Result<()> {
        let mut head = [0u8; TAIL_HEAD];
        for (i, v) in [cut.cut_lsn, cut.token_hwm, cut.resume_segment, cut.resume_offset, cut.resume_check, count, records.len() as u64].into_iter().enumerate() {
            head[i * 8..i * 8 + 8].copy_from_slice(&v.to_le_bytes());
        }
        self.put(&head)?;
        self.put(records)
    }

    /// Seals the file and fsyncs it; the caller renames it into place.
    /// Returns the file size.
    pub fn finish(mut self) -> Result<u64> {
        let total = self.entries.to_le_bytes();
        self.put(&total)?;
        let digest = std::mem::take(&mut self.sha).finalize();
        self.file.write_all(&digest).map_err(|e| Error::io("write snapshot", &e))?;
        self.file.sync().map_err(|e| Error::io("fsync snapshot", &e))?;
        Ok(self.bytes + 32)
    }
}

/// The entry count the trailer claims (unverified): a sizing hint.
pub fn entry_count_hint(b: &[u8]) -> u64 {
    if b.len() < SNAPSHOT_HEADER_LEN + SNAPSHOT_TRAILER_LEN {
        return 0;
    }
    let at = b.len() - SNAPSHOT_TRAILER_LEN;
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

/// A verified snapshot image.
pub struct LoadedSnapshot {
    pub meta: SnapshotMeta,
    pub cut: SnapshotCut,
    pub shard_lsns: Vec<u64>,
    pub entries: u64,
    /// Where the tail records lie in the image (a run of WAL records, read
    /// with `wal::read_view`), and how many there are.
    pub tail: std::ops::Range<usize>,
    pub tail_records: u64,
}

/// One entry as read back.
pub struct SnapEntry<'a> {
    pub kind: u8,
    pub expires_at: u64,
    pub key: &'a [u8],
    pub value: &'a [u8],
}

/// Verifies the version and SHA-256 of a snapshot image, then calls `each`
/// for every entry while checking the structure. On an error part of the
/// entries may already have been passed: the caller discards them.
pub fn load<'a>(file: &str, b: &'a [u8], mut each: impl FnMut(SnapEntry<'a>)) -> Result<LoadedSnapshot> {
    let bad = |off: usize, what: &str| Error::Corruption(format!("{file} at offset {off}: {what}"));
    if b.len() < SNAPSHOT_HEADER_LEN + SNAPSHOT_TRAILER_LEN {
        return Err(bad(0, "snapshot is truncated"));
    }
    if &b[..8] != SNAPSHOT_MAGIC {
        return Err(bad(0, "not a dbkv snapshot (bad magic)"));
    }
    let u32_at = |o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap());
    let u64_at = |o: usize| u64::from_le_bytes(b[o..o + 8].try_into().unwrap());
    let sha_at = b.len() - 32;
    if !is_sealed(b) {
        return Err(bad(sha_at, "snapshot SHA-256 mismatch"));
    }
    let version = u32_at(8);
    if !super::wal::readable_version(version) {
        return Err(bad(8, &format!("unsupported snapshot version {version}")));
    }
    let meta = SnapshotMeta { shard_count: u32_at(12), hash_seed: u64_at(16), created_ms: u64_at(24) };
    if meta.shard_count == 0 || !meta.shard_count.is_power_of_two() {
        return Err(bad(12, &format!("shard count {} is not a power of two", meta.shard_count)));
    }
    // The checksum matched, so the structure was written by us; the bounds
    // checks below guard against a version skew, not against damage.
    let body_end = sha_at - 8;
    let mut off = SNAPSHOT_HEADER_LEN;
    let mut shard_lsns = Vec::with_capacity(meta.shard_count as usize);
    let mut entries = 0u64;
    for _ in 0..meta.shard_count {
        if off + 16 > body_end {
            return Err(bad(off, "shard header past the end"));
        }
        shard_lsns.push(u64_at(off));
        let count = u64_at(off + 8);
        off += 16;
        for _ in 0..count {
            if off + 13 > body_end {
                return Err(bad(off, "entry past the end"));
            }
            let (kind, expires_at, klen) = (b[off], u64_at(off + 1), u32_at(off + 9) as usize);
            let kstart = off + 13;
            if kstart + klen + 4 > body_end {
                return Err(bad(off, "entry key past the end"));
            }
            let vlen = u32_at(kstart + klen) as usize;
            let vstart = kstart + klen + 4;
            if vstart + vlen > body_end {
                return Err(bad(off, "entry value past the end"));
            }
            let value = &b[vstart..vstart + vlen];
            let valid = match kind {
                KIND_BYTES => true,
                KIND_INT => vlen == 8,
                _ => version >= 4 && super::snapshot_coll::check(kind, value).is_ok(),
            };
            if !valid || !is_valid_key(&b[kstart..kstart + klen]) {
                return Err(bad(off, &format!("entry kind {kind} with a {klen}-byte key and a {vlen}-byte value")));
            }
            each(SnapEntry { kind, expires_at, key: &b[kstart..kstart + klen], value: &b[vstart..vstart + vlen] });
            off = vstart + vlen;
            entries += 1;
        }
    }
    if off + TAIL_HEAD > body_end {
        return Err(bad(off, "tail header past the end"));
    }
    let cut = SnapshotCut { cut_lsn: u64_at(off), token_hwm: u64_at(off + 8), resume_segment: u64_at(off + 16), resume_offset: u64_at(off + 24), resume_check: u64_at(off + 32) };
    if cut.resume_segment == 0 || cut.resume_segment > cut.cut_lsn + 1 {
        return Err(bad(off + 16, "the resume segment cannot hold the record after the cut"));
    }
    if shard_lsns.iter().any(|&l| l > cut.cut_lsn) {
        return Err(bad(off, "a shard covers more than the snapshot's cut"));
    }
    let (tail, tail_records) = check_tail(b, off + 40, body_end, &shard_lsns, cut.cut_lsn).map_err(|(o, what)| bad(o, what))?;
    if tail.end != body_end || u64_at(body_end) != entries {
        return Err(bad(tail.end, "entry count does not match the trailer"));
    }
    Ok(LoadedSnapshot { meta, cut, shard_lsns, entries, tail, tail_records })
}

/// Checks the tail section at `off`: whole records with ascending LSNs
/// above the smallest covered LSN, the last one being the cut.
fn check_tail(b: &[u8], off: usize, body_end: usize, shard_lsns: &[u64], cut: u64) -> std::result::Result<(std::ops::Range<usize>, u64), (usize, &'static str)> {
    if off + 16 > body_end {
        return Err((off, "tail header past the end"));
    }
    let count = u64::from_le_bytes(b[off..off + 8].try_into().unwrap());
    let len = u64::from_le_bytes(b[off + 8..off + 16].try_into().unwrap());
    let start = off + 16;
    let end = usize::try_from(len).ok().and_then(|l| start.checked_add(l)).filter(|&e| e <= body_end).ok_or((off, "tail past the end"))?;
    let stream = &b[start..end];
    let mut prev = shard_lsns.iter().copied().min().unwrap_or(0);
    let (mut at, mut n) = (0, 0u64);
    while at < stream.len() {
        match read_view(stream, at) {
            ScanView::Record { len, lsn, .. } if lsn > prev && lsn <= cut => {
                prev = lsn;
                at += len;
                n += 1;
            }
            _ => return Err((start + at, "bad record in the tail")),
        }
    }
    if n != count || prev != cut {
        return Err((off, "tail record count or last LSN does not match the header"));
    }
    Ok((start..end, count))
}
