//! Snapshot files: one consistent cut of the engine at LSN `cut`. Shards
//! are copied one at a time while writes go on, each at its own covered
//! LSN; the WAL records written meanwhile (the *tail*, LSNs from the
//! smallest covered LSN + 1 to `cut`) are stored in the file too, so that
//! entries plus tail give exactly the state after record `cut`, and
//! recovery never reads WAL records at or below `cut`. Each shard section
//! and the tail carry a CRC-32C in a section table, and a SHA-256 seals
//! the header, that table and the entry count (see docs/FORMAT.md): the
//! loader verifies and loads sections in parallel at memory speed instead
//! of hashing the whole file on one core first. Written to a temp file,
//! fsynced, renamed, and the directory fsynced. Reading is in
//! `snapshot_load.rs`.

#![forbid(unsafe_code)]

use std::path::Path;

use sha2::{Digest, Sha256};

use super::vfs::{Vfs, VfsFile};
use crate::error::{Error, Result};

pub const SNAPSHOT_MAGIC: &[u8; 8] = b"DBKVSNAP";
/// The version this build writes. Version 5 added the section table
/// (a CRC-32C per section, the SHA-256 over the table instead of the whole
/// file); versions 2 to 4 (sealed by one SHA-256 over the whole file; 2
/// without batch and clear records in the tail, 3 without locks' tokens,
/// lists and sorted sets) are read too.
pub const SNAPSHOT_VERSION: u32 = 5;
/// The oldest version this build reads.
pub const SNAPSHOT_MIN_VERSION: u32 = 2;
/// The first version with a section table.
pub const SECTION_TABLE_VERSION: u32 = 5;
pub const SNAPSHOT_HEADER_LEN: usize = size_of::<Header>();
pub const SNAPSHOT_TRAILER_LEN: usize = size_of::<Trailer>();
/// One row of the section table (version 5).
pub const SECTION_ROW_LEN: usize = size_of::<SectionRow>();

/// True for the snapshot versions this build reads.
pub fn readable_snapshot_version(v: u32) -> bool {
    (SNAPSHOT_MIN_VERSION..=SNAPSHOT_VERSION).contains(&v)
}

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
pub(super) struct ShardHead {
    pub(super) covered_lsn: u64,
    pub(super) count: u64,
}

/// Before each entry's key (then the value's u32 length and the value).
#[repr(C, packed)]
pub(super) struct EntryHead {
    pub(super) kind: u8,
    pub(super) expires_at: u64,
    pub(super) key_len: u32,
}

/// The tail section's fixed part: cut, token mark, resume segment, offset
/// and check, then the record count and byte length.
#[repr(C)]
pub(super) struct TailHead {
    pub(super) cut_lsn: u64,
    pub(super) token_hwm: u64,
    pub(super) resume_segment: u64,
    pub(super) resume_offset: u64,
    pub(super) resume_check: u64,
    pub(super) count: u64,
    pub(super) len: u64,
}

/// Version 5, after the tail: one row per shard section, in shard order,
/// then one for the tail section. `len` is the section's byte length (its
/// head included) and `crc32c` the CRC-32C of those bytes.
#[repr(C)]
pub(super) struct SectionRow {
    pub(super) len: u64,
    pub(super) crc32c: u32,
    pub(super) reserved: u32,
}

/// The last bytes: the entry count, then the SHA-256 of everything before
/// (versions 2 to 4), or of the header, the section table and the entry
/// count (version 5).
#[repr(C)]
struct Trailer {
    entries: u64,
    sha256: [u8; 32],
}

use std::mem::offset_of;
pub(super) const VERSION_AT: usize = offset_of!(Header, version);
pub(super) const SHARD_COUNT_AT: usize = offset_of!(Header, shard_count);
pub(super) const SEED_AT: usize = offset_of!(Header, hash_seed);
pub(super) const CREATED_AT: usize = offset_of!(Header, created_ms);
pub(super) const SHARD_HEAD: usize = size_of::<ShardHead>();
pub(super) const ENTRY_HEAD: usize = size_of::<EntryHead>();
pub(super) const VALUE_LEN: usize = size_of::<u32>();
pub(super) const TAIL_HEAD: usize = size_of::<TailHead>();
pub(super) const SHA_LEN: usize = size_of::<[u8; 32]>();
pub(super) const ENTRIES_FROM_END: usize = SNAPSHOT_TRAILER_LEN - offset_of!(Trailer, entries);
pub(super) const ROW_CRC_AT: usize = offset_of!(SectionRow, crc32c);
const _: () = assert!(
    SNAPSHOT_HEADER_LEN == 48 && SHARD_HEAD == 16 && ENTRY_HEAD == 13 && TAIL_HEAD == 56 && SNAPSHOT_TRAILER_LEN == 40
        && offset_of!(Trailer, sha256) == 8 && SECTION_ROW_LEN == 16 && ROW_CRC_AT == 8
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
/// first (only when the version is not ours, to keep opens cheap). A
/// version this build does not know counts as intact if either seal
/// matches: the whole-file digest of versions 2 to 4 or the section-table
/// digest of version 5.
pub fn snapshot_version(b: &[u8]) -> Option<u32> {
    if b.len() < SNAPSHOT_HEADER_LEN + SNAPSHOT_TRAILER_LEN || &b[..SNAPSHOT_MAGIC.len()] != SNAPSHOT_MAGIC {
        return None;
    }
    let version = u32::from_le_bytes(b[VERSION_AT..VERSION_AT + 4].try_into().unwrap());
    (readable_snapshot_version(version) || is_sealed_whole(b) || is_sealed_table(b)).then_some(version)
}

/// The SHA-256 trailer matches everything before it (versions 2 to 4).
pub(super) fn is_sealed_whole(b: &[u8]) -> bool {
    let sha_at = b.len() - SHA_LEN;
    Sha256::digest(&b[..sha_at]).as_slice() == &b[sha_at..]
}

/// Where the section table of a version-5 image starts, from its shard
/// count (one row per shard and one for the tail), if the image can hold it.
pub(super) fn table_at(b: &[u8]) -> Option<usize> {
    let shards = u32::from_le_bytes(b[SHARD_COUNT_AT..SHARD_COUNT_AT + 4].try_into().unwrap()) as usize;
    let table_len = (shards + 1).checked_mul(SECTION_ROW_LEN)?;
    (b.len() - SNAPSHOT_TRAILER_LEN).checked_sub(table_len).filter(|&at| at >= SNAPSHOT_HEADER_LEN)
}

/// The version-5 seal: the SHA-256 of the header, the section table and
/// the entry count matches the trailer.
pub(super) fn is_sealed_table(b: &[u8]) -> bool {
    let Some(at) = table_at(b) else { return false };
    let sha_at = b.len() - SHA_LEN;
    table_digest(&b[..SNAPSHOT_HEADER_LEN], &b[at..sha_at]).as_ref() == &b[sha_at..]
}

/// SHA-256 of the header, then the section table and the entry count.
fn table_digest(header: &[u8], table_and_count: &[u8]) -> impl AsRef<[u8]> {
    let mut sha = Sha256::new();
    sha.update(header);
    sha.update(table_and_count);
    sha.finalize()
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
    header: [u8; SNAPSHOT_HEADER_LEN],
    /// The section being written: its length and CRC-32C so far.
    section: (u64, u32),
    /// The section table, one row per finished section.
    table: Vec<u8>,
    entries: u64,
    bytes: u64,
}

impl SnapshotWriter {
    pub fn create(vfs: &dyn Vfs, tmp_path: &Path, meta: &SnapshotMeta) -> Result<SnapshotWriter> {
        let file = vfs.create(tmp_path).map_err(|e| Error::io(&format!("create {}", tmp_path.display()), &e))?;
        let mut header = [0u8; SNAPSHOT_HEADER_LEN];
        header[..SNAPSHOT_MAGIC.len()].copy_from_slice(SNAPSHOT_MAGIC);
        header[VERSION_AT..VERSION_AT + 4].copy_from_slice(&SNAPSHOT_VERSION.to_le_bytes());
        header[SHARD_COUNT_AT..SHARD_COUNT_AT + 4].copy_from_slice(&meta.shard_count.to_le_bytes());
        header[SEED_AT..SEED_AT + 8].copy_from_slice(&meta.hash_seed.to_le_bytes());
        header[CREATED_AT..CREATED_AT + 8].copy_from_slice(&meta.created_ms.to_le_bytes());
        let mut w = SnapshotWriter { file, header, section: (0, 0), table: Vec::new(), entries: 0, bytes: 0 };
        w.write(&header)?;
        Ok(w)
    }

    fn write(&mut self, b: &[u8]) -> Result<()> {
        self.bytes += b.len() as u64;
        self.file.write_all(b).map_err(|e| Error::io("write snapshot", &e))
    }

    /// Writes part of the current section.
    fn put(&mut self, b: &[u8]) -> Result<()> {
        self.section = (self.section.0 + b.len() as u64, crc32c::crc32c_append(self.section.1, b));
        self.write(b)
    }

    /// Ends the current section: its row goes into the table.
    fn end_section(&mut self) {
        let (len, crc) = std::mem::take(&mut self.section);
        let mut row = [0u8; SECTION_ROW_LEN];
        row[offset_of!(SectionRow, len)..][..8].copy_from_slice(&len.to_le_bytes());
        row[ROW_CRC_AT..][..4].copy_from_slice(&crc.to_le_bytes());
        self.table.extend_from_slice(&row);
    }

    /// Writes one shard: its covered LSN and its entries (already encoded
    /// with `encode_entry`).
    pub fn shard(&mut self, covered_lsn: u64, count: u64, encoded: &[u8]) -> Result<()> {
        let mut head = [0u8; SHARD_HEAD];
        head[offset_of!(ShardHead, covered_lsn)..][..8].copy_from_slice(&covered_lsn.to_le_bytes());
        head[offset_of!(ShardHead, count)..][..8].copy_from_slice(&count.to_le_bytes());
        self.put(&head)?;
        self.put(encoded)?;
        self.end_section();
        self.entries += count;
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
        self.put(records)?;
        self.end_section();
        Ok(())
    }

    /// Seals the file and fsyncs it; the caller renames it into place.
    /// Returns the file size.
    pub fn finish(mut self) -> Result<u64> {
        let mut sealed = std::mem::take(&mut self.table);
        sealed.extend_from_slice(&self.entries.to_le_bytes());
        let digest = table_digest(&self.header, &sealed);
        self.write(&sealed)?;
        self.write(digest.as_ref())?;
        self.file.sync().map_err(|e| Error::io("fsync snapshot", &e))?;
        Ok(self.bytes)
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


pub use super::snapshot_load::{entry_count_hint, load, seed_hint, load_parallel, LoadedSnapshot, SnapEntry};
