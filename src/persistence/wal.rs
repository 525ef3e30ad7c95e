//! WAL segments: files named by the LSN of their first record, each a
//! 32-byte header followed by a stream of records cut into 32 KiB blocks
//! (`block.rs`; layout in docs/FORMAT.md). Record readers here work on the
//! logical stream that `block::deblock` returns.

#![forbid(unsafe_code)]

use crate::error::{Error, Result};
use crate::persistence::record::{decode_view, record_starts, RecordView, RECORD_PREFIX};
#[cfg(any(test, feature = "test-util"))]
use crate::persistence::record::OwnedRecord;

pub const SEGMENT_MAGIC: &[u8; 8] = b"DBKVWAL\0";
/// The version this build writes. Version 3 added batch and clear records;
/// a version-2 segment is a valid version-3 segment without them, so both
/// are read.
pub const SEGMENT_VERSION: u32 = 4;
/// The oldest version this build reads.
pub const SEGMENT_MIN_VERSION: u32 = 2;

/// True for the versions this build reads.
pub fn readable_version(v: u32) -> bool {
    (SEGMENT_MIN_VERSION..=SEGMENT_VERSION).contains(&v)
}
pub const SEGMENT_HEADER_LEN: usize = size_of::<SegmentHeader>();

/// The segment header's layout (docs/FORMAT.md, "Segment header"), all
/// integers little-endian. Never read or written as a struct: it names the
/// field offsets the byte code below uses.
#[repr(C)]
struct SegmentHeader {
    magic: [u8; 8],
    version: u32,
    reserved: u32,
    first_lsn: u64,
    reserved2: u32,
    /// CRC-32 of every byte before it.
    crc: u32,
}

const VERSION_AT: usize = std::mem::offset_of!(SegmentHeader, version);
const FIRST_LSN_AT: usize = std::mem::offset_of!(SegmentHeader, first_lsn);
const CRC_AT: usize = std::mem::offset_of!(SegmentHeader, crc);
const MAGIC: std::ops::Range<usize> = 0..SEGMENT_MAGIC.len();
const VERSION: std::ops::Range<usize> = VERSION_AT..VERSION_AT + 4;
const FIRST_LSN: std::ops::Range<usize> = FIRST_LSN_AT..FIRST_LSN_AT + 8;
const CRC: std::ops::Range<usize> = CRC_AT..CRC_AT + 4;
const _: () = assert!(SEGMENT_HEADER_LEN == 32 && CRC_AT + 4 == SEGMENT_HEADER_LEN);
pub use crate::persistence::record::MAX_RECORD_BODY;

pub fn segment_name(first_lsn: u64) -> String {
    format!("wal-{first_lsn:020}.log")
}

/// The first LSN encoded in a segment file name, if it is one.
pub fn parse_segment_name(name: &str) -> Option<u64> {
    parse_lsn_digits(name.strip_prefix("wal-")?.strip_suffix(".log")?).filter(|&lsn| lsn >= 1)
}

/// Exactly the 20 ASCII digits the writers produce; anything else in the
/// directory is not ours to read.
pub fn parse_lsn_digits(digits: &str) -> Option<u64> {
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The version an intact segment header declares (a version field that
/// fails the header CRC is damage, not a newer format).
pub fn segment_version(b: &[u8]) -> Option<u32> {
    (b.len() >= SEGMENT_HEADER_LEN && &b[MAGIC] == SEGMENT_MAGIC && header_crc_ok(b)).then(|| u32::from_le_bytes(b[VERSION].try_into().unwrap()))
}

fn header_crc_ok(b: &[u8]) -> bool {
    crc32fast::hash(&b[..CRC_AT]) == u32::from_le_bytes(b[CRC].try_into().unwrap())
}

pub fn encode_segment_header(first_lsn: u64) -> [u8; SEGMENT_HEADER_LEN] {
    let mut h = [0u8; SEGMENT_HEADER_LEN];
    h[MAGIC].copy_from_slice(SEGMENT_MAGIC);
    h[VERSION].copy_from_slice(&SEGMENT_VERSION.to_le_bytes());
    h[FIRST_LSN].copy_from_slice(&first_lsn.to_le_bytes());
    let crc = crc32fast::hash(&h[..CRC_AT]);
    h[CRC].copy_from_slice(&crc.to_le_bytes());
    h
}

/// Checks a segment header; returns the first LSN it names.
pub fn decode_segment_header(file: &str, b: &[u8]) -> Result<u64> {
    let bad = |what: &str| Error::Corruption(format!("{file} at offset 0: {what}"));
    if b.is_empty() {
        return Err(bad("segment is empty (no header)"));
    }
    if b.len() < SEGMENT_HEADER_LEN {
        return Err(bad("segment header is torn"));
    }
    if &b[MAGIC] != SEGMENT_MAGIC {
        return Err(bad("not a dbkv WAL segment (bad magic)"));
    }
    if !header_crc_ok(b) {
        return Err(bad("segment header checksum mismatch"));
    }
    let version = u32::from_le_bytes(b[VERSION].try_into().unwrap());
    if !readable_version(version) {
        return Err(bad(&format!("unsupported segment version {version}")));
    }
    Ok(u64::from_le_bytes(b[FIRST_LSN].try_into().unwrap()))
}

/// One step of reading a segment, with the record copied out (tests).
#[cfg(any(test, feature = "test-util"))]
#[derive(Debug)]
pub enum Scan {
    /// A good record at `offset`, `len` bytes long (prefix included).
    Record { offset: usize, len: usize, lsn: u64, record: OwnedRecord },
    /// Damage at `offset`: a torn or failed record.
    Bad { offset: usize, reason: String },
}

/// `Scan` with the record borrowed from the segment image.
#[derive(Debug)]
pub enum ScanView<'a> {
    Record { len: usize, lsn: u64, record: RecordView<'a> },
    Bad { reason: &'static str },
}

/// Reads the record at `offset` of a logical stream.
#[cfg(any(test, feature = "test-util"))]
pub fn read_record(b: &[u8], offset: usize) -> Scan {
    match read_view(b, offset) {
        ScanView::Record { len, lsn, record } => Scan::Record { offset, len, lsn, record: record.to_owned_record() },
        ScanView::Bad { reason } => Scan::Bad { offset, reason: reason.to_string() },
    }
}

/// Reads the record at `offset` without copying it.
pub fn read_view(b: &[u8], offset: usize) -> ScanView<'_> {
    let rest = &b[offset..];
    if rest.len() < RECORD_PREFIX {
        return ScanView::Bad { reason: "torn record prefix" };
    }
    let len = u32::from_le_bytes(rest[..4].try_into().unwrap()) as usize;
    let crc = u32::from_le_bytes(rest[4..RECORD_PREFIX].try_into().unwrap());
    if !(9..=MAX_RECORD_BODY).contains(&len) {
        return ScanView::Bad { reason: "record length out of range" };
    }
    if rest.len() < RECORD_PREFIX + len {
        return ScanView::Bad { reason: "torn record (file ends inside it)" };
    }
    let body = &rest[RECORD_PREFIX..RECORD_PREFIX + len];
    if crc32fast::hash(body) != crc {
        return ScanView::Bad { reason: "record checksum mismatch" };
    }
    match decode_view(body) {
        Ok((lsn, record)) => ScanView::Record { len: RECORD_PREFIX + len, lsn, record },
        Err(_) => ScanView::Bad { reason: "record body does not decode (a field or key length is out of range)" },
    }
}

/// How many records a logical stream seems to hold, following length
/// prefixes without checking anything: a cheap hint for sizing tables.
pub fn count_records(b: &[u8]) -> u64 {
    record_starts(b).count() as u64
}

/// Every record of a segment image up to the first damage, with its file
/// offsets: for tests that look at records where they lie.
#[cfg(any(test, feature = "test-util"))]
pub fn records_with_offsets(image: &[u8]) -> Vec<Scan> {
    let stream = super::block::deblock(image);
    let mut out = Vec::new();
    let mut at = 0;
    while at < stream.len() {
        match read_record(&stream, at) {
            Scan::Record { offset, len, lsn, record } => {
                let start = super::block::physical(offset);
                let end = super::block::physical(offset + len - 1) + 1;
                out.push(Scan::Record { offset: start, len: end - start, lsn, record });
                at += len;
            }
            Scan::Bad { offset, reason } => {
                out.push(Scan::Bad { offset: super::block::physical(offset), reason });
                break;
            }
        }
    }
    out
}
