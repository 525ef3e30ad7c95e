//! Snapshot files: one consistent cut of the engine at LSN `cut`. Shards
//! are copied one at a time while writes go on, each at its own covered
//! LSN; the WAL records written meanwhile (the *tail*, LSNs from the
//! smallest covered LSN + 1 to `cut`) are stored in the file too, so that
//! entries plus tail give exactly the state after record `cut`, and
//! recovery never reads WAL records at or below `cut`. Sealed by a
//! SHA-256 (see docs/FORMAT.md). Written to a temp file, fsynced,
//! renamed, and the directory fsynced.

#![forbid(unsafe_code)]

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
pub const SNAPSHOT_HEADER_LEN: usize = size_of::<Header>();
pub const SNAPSHOT_TRAILER_LEN: usize = size_of::<Trailer>();

// The layouts of docs/FORMAT.md ("Snapshot files"), all integers
// little-endian. Never read or written as structs: they name the sizes and
// field offsets the byte code below uses.

/// The file header.
#[repr(C)]
struct Header {
    magic: [u8; 8],
    version: u32,
    shard_count: u32,
    hash_seed: u64,
    created_ms: u64,
    reserved: [u8; 16],
}

/// Before each shard's entries.
#[repr(C)]
struct ShardHead {
    covered_lsn: u64,
    count: u64,
}

/// Before each entry's key (then the value's u32 length and the value).
#[repr(C, packed)]
struct EntryHead {
    kind: u8,
    expires_at: u64,
    key_len: u32,
}

/// The tail section's fixed part: cut, token mark, resume segment, offset
/// and check, then the record count and byte length.
#[repr(C)]
struct TailHead {
    cut_lsn: u64,
    token_hwm: u64,
    resume_segment: u64,
    resume_offset: u64,
    resume_check: u64,
    count: u64,
    len: u64,
}

/// After the tail: the entry count, then the SHA-256 of everything before.
#[repr(C)]
struct Trailer {
    entries: u64,
    sha256: [u8; 32],
}

use std::mem::offset_of;
const VERSION_AT: usize = offset_of!(Header, version);
const SHARD_COUNT_AT: usize = offset_of!(Header, shard_count);
const SEED_AT: usize = offset_of!(Header, hash_seed);
const CREATED_AT: usize = offset_of!(Header, created_ms);
const SHARD_HEAD: usize = size_of::<ShardHead>();
const ENTRY_HEAD: usize = size_of::<EntryHead>();
const VALUE_LEN: usize = size_of::<u32>();
const TAIL_HEAD: usize = size_of::<TailHead>();
const SHA_LEN: usize = size_of::<[u8; 32]>();
const _: () = assert!(
    SNAPSHOT_HEADER_LEN == 48 && SHARD_HEAD == 16 && ENTRY_HEAD == 13 && TAIL_HEAD == 56 && SNAPSHOT_TRAILER_LEN == 40
        && offset_of!(Trailer, sha256) == 8
);

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
    if b.len() < SNAPSHOT_HEADER_LEN + SNAPSHOT_TRAILER_LEN || &b[..SNAPSHOT_MAGIC.len()] != SNAPSHOT_MAGIC {
        return None;
    }
    let version = u32::from_le_bytes(b[VERSION_AT..VERSION_AT + 4].try_into().unwrap());
    (super::wal::readable_version(version) || is_sealed(b)).then_some(version)
}

/// The SHA-256 trailer matches everything before it.
fn is_sealed(b: &[u8]) -> bool {
    let sha_at = b.len() - SHA_LEN;
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
        h.resize(SNAPSHOT_HEADER_LEN, 0);
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
        let mut head = [0u8; SHARD_HEAD];
        head[offset_of!(ShardHead, covered_lsn)..][..8].copy_from_slice(&covered_lsn.to_le_bytes());
        head[offset_of!(ShardHead, count)..][..8].copy_from_slice(&count.to_le_bytes());
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
        let fields = [
            (offset_of!(TailHead, cut_lsn), cut.cut_lsn),
            (offset_of!(TailHead, token_hwm), cut.token_hwm),
            (offset_of!(TailHead, resume_segment), cut.resume_segment),
            (offset_of!(TailHead, resume_offset), cut.resume_offset),
            (offset_of!(TailHead, resume_check), cut.resume_check),
            (offset_of!(TailHead, count), count),
            (offset_of!(TailHead, len), records.len() as u64),
        ];
        for (at, v) in fields {
            head[at..at + 8].copy_from_slice(&v.to_le_bytes());
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
        Ok(self.bytes + SHA_LEN as u64)
    }
}

/// Gives a finished (sealed and fsynced) temp snapshot its final name
/// `name` in `dir` and fsyncs the directory: from then on recovery uses
/// it, and before then it never sees it under a snapshot name.
pub fn publish(vfs: &dyn Vfs, dir: &Path, tmp: &Path, name: &str) -> Result<()> {
    let final_path = dir.join(name);
    vfs.rename(tmp, &final_path).map_err(|e| Error::io(&format!("rename snapshot to {}", final_path.display()), &e))?;
    vfs.sync_dir(dir).map_err(|e| Error::io(&format!("fsync directory {}", dir.display()), &e))
}

/// The entry count the trailer claims (unverified): a sizing hint.
pub fn entry_count_hint(b: &[u8]) -> u64 {
    if b.len() < SNAPSHOT_HEADER_LEN + SNAPSHOT_TRAILER_LEN {
        return 0;
    }
    let at = b.len() - SNAPSHOT_TRAILER_LEN + offset_of!(Trailer, entries);
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
    if &b[..SNAPSHOT_MAGIC.len()] != SNAPSHOT_MAGIC {
        return Err(bad(0, "not a dbkv snapshot (bad magic)"));
    }
    let u32_at = |o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap());
    let u64_at = |o: usize| u64::from_le_bytes(b[o..o + 8].try_into().unwrap());
    let sha_at = b.len() - SHA_LEN;
    if !is_sealed(b) {
        return Err(bad(sha_at, "snapshot SHA-256 mismatch"));
    }
    let version = u32_at(VERSION_AT);
    if !super::wal::readable_version(version) {
        return Err(bad(VERSION_AT, &format!("unsupported snapshot version {version}")));
    }
    let meta = SnapshotMeta { shard_count: u32_at(SHARD_COUNT_AT), hash_seed: u64_at(SEED_AT), created_ms: u64_at(CREATED_AT) };
    if meta.shard_count == 0 || !meta.shard_count.is_power_of_two() {
        return Err(bad(SHARD_COUNT_AT, &format!("shard count {} is not a power of two", meta.shard_count)));
    }
    // The checksum matched, so the structure was written by us; the bounds
    // checks below guard against a version skew, not against damage.
    let body_end = b.len() - SNAPSHOT_TRAILER_LEN;
    let mut off = SNAPSHOT_HEADER_LEN;
    let mut shard_lsns = Vec::with_capacity(meta.shard_count as usize);
    let mut entries = 0u64;
    for _ in 0..meta.shard_count {
        if off + SHARD_HEAD > body_end {
            return Err(bad(off, "shard header past the end"));
        }
        shard_lsns.push(u64_at(off + offset_of!(ShardHead, covered_lsn)));
        let count = u64_at(off + offset_of!(ShardHead, count));
        off += SHARD_HEAD;
        for _ in 0..count {
            if off + ENTRY_HEAD > body_end {
                return Err(bad(off, "entry past the end"));
            }
            let kind = b[off + offset_of!(EntryHead, kind)];
            let expires_at = u64_at(off + offset_of!(EntryHead, expires_at));
            let klen = u32_at(off + offset_of!(EntryHead, key_len)) as usize;
            let kstart = off + ENTRY_HEAD;
            if kstart + klen + VALUE_LEN > body_end {
                return Err(bad(off, "entry key past the end"));
            }
            let vlen = u32_at(kstart + klen) as usize;
            let vstart = kstart + klen + VALUE_LEN;
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
    let field = |at: usize| u64_at(off + at);
    let cut = SnapshotCut {
        cut_lsn: field(offset_of!(TailHead, cut_lsn)),
        token_hwm: field(offset_of!(TailHead, token_hwm)),
        resume_segment: field(offset_of!(TailHead, resume_segment)),
        resume_offset: field(offset_of!(TailHead, resume_offset)),
        resume_check: field(offset_of!(TailHead, resume_check)),
    };
    if cut.resume_segment == 0 || cut.resume_segment > cut.cut_lsn + 1 {
        return Err(bad(off + offset_of!(TailHead, resume_segment), "the resume segment cannot hold the record after the cut"));
    }
    if shard_lsns.iter().any(|&l| l > cut.cut_lsn) {
        return Err(bad(off, "a shard covers more than the snapshot's cut"));
    }
    let counts_at = off + offset_of!(TailHead, count);
    let (tail, tail_records) = check_tail(b, counts_at, body_end, &shard_lsns, cut.cut_lsn).map_err(|(o, what)| bad(o, what))?;
    if tail.end != body_end || u64_at(body_end) != entries {
        return Err(bad(tail.end, "entry count does not match the trailer"));
    }
    Ok(LoadedSnapshot { meta, cut, shard_lsns, entries, tail, tail_records })
}

/// Checks the tail section at `off`: whole records with ascending LSNs
/// above the smallest covered LSN, the last one being the cut.
fn check_tail(b: &[u8], off: usize, body_end: usize, shard_lsns: &[u64], cut: u64) -> std::result::Result<(std::ops::Range<usize>, u64), (usize, &'static str)> {
    // `off` is the tail head's record count, followed by the byte length.
    const COUNTS: usize = TAIL_HEAD - offset_of!(TailHead, count);
    if off + COUNTS > body_end {
        return Err((off, "tail header past the end"));
    }
    let count = u64::from_le_bytes(b[off..off + 8].try_into().unwrap());
    let len = u64::from_le_bytes(b[off + 8..off + COUNTS].try_into().unwrap());
    let start = off + COUNTS;
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
