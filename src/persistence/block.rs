//! WAL blocks: a segment file is cut into 32 KiB blocks, and every block
//! but the first starts with an 8-byte header written by the WAL writer
//! that says where the first record starting in that block begins.
//!
//! Records form one logical stream that runs across block headers (a
//! record may straddle any number of blocks). The headers exist for
//! salvage: after damage, `SkipCorrupted` resumes only at a position a
//! block header names, never at bytes that merely look like a record, so
//! a stored value that contains a well-formed record image cannot steer
//! recovery (LevelDB's log format makes the same choice).
//!
//! Block header: `first: u32 | crc: u32`, where `first` is the offset in
//! the block of the first record that starts in it (8 .. 32768), or 0 when
//! no record starts in it, and `crc` is the CRC-32 of
//! `segment_first_lsn: u64 | block_index: u64 | first: u32`, which binds the
//! header to its segment and position.

#![forbid(unsafe_code)]

use super::record::{record_starts, RECORD_PREFIX};
use super::wal::SEGMENT_HEADER_LEN;

pub const BLOCK: usize = 32 << 10;
pub const BLOCK_HEADER: usize = FIRST_FIELD.end + 4;
/// Where the header's `first` and `crc` fields lie.
const FIRST_FIELD: std::ops::Range<usize> = 0..4;
const CRC_FIELD: std::ops::Range<usize> = FIRST_FIELD.end..BLOCK_HEADER;
/// Logical bytes block 0 carries (after the segment header).
const FIRST_PAYLOAD: usize = BLOCK - SEGMENT_HEADER_LEN;
/// Logical bytes every later block carries.
const PAYLOAD: usize = BLOCK - BLOCK_HEADER;

fn header_crc(segment_first_lsn: u64, block: u64, first: u32) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&segment_first_lsn.to_le_bytes());
    h.update(&block.to_le_bytes());
    h.update(&first.to_le_bytes());
    h.finalize()
}

pub fn encode_header(segment_first_lsn: u64, block: u64, first: u32) -> [u8; BLOCK_HEADER] {
    let mut h = [0u8; BLOCK_HEADER];
    h[FIRST_FIELD].copy_from_slice(&first.to_le_bytes());
    h[CRC_FIELD].copy_from_slice(&header_crc(segment_first_lsn, block, first).to_le_bytes());
    h
}

/// The `first` field of block `block`'s header, if the header is intact.
pub fn decode_header(image: &[u8], segment_first_lsn: u64, block: u64) -> Option<u32> {
    let at = usize::try_from(block).ok()?.checked_mul(BLOCK)?;
    let h = image.get(at..at + BLOCK_HEADER)?;
    let first = u32::from_le_bytes(h[FIRST_FIELD].try_into().unwrap());
    let crc = u32::from_le_bytes(h[CRC_FIELD].try_into().unwrap());
    let valid = crc == header_crc(segment_first_lsn, block, first) && (first == 0 || (BLOCK_HEADER..BLOCK).contains(&(first as usize)));
    valid.then_some(first)
}

/// The file offset of logical stream offset `l`.
pub fn physical(l: usize) -> usize {
    if l < FIRST_PAYLOAD {
        return SEGMENT_HEADER_LEN + l;
    }
    let r = l - FIRST_PAYLOAD;
    (1 + r / PAYLOAD) * BLOCK + BLOCK_HEADER + r % PAYLOAD
}

/// The logical stream offset of file offset `p`, which must not lie
/// inside the segment header or a block header.
pub fn logical(p: usize) -> usize {
    if p < BLOCK {
        return p - SEGMENT_HEADER_LEN;
    }
    FIRST_PAYLOAD + (p / BLOCK - 1) * PAYLOAD + (p % BLOCK - BLOCK_HEADER)
}

/// The logical stream of a segment image: every block's payload, in order.
/// A file that ends inside a block header simply ends the stream there.
pub fn deblock(image: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    deblock_into(image, &mut out);
    out
}

/// `deblock` into a buffer the caller reuses: replay deblocks every
/// segment into one buffer, so the kernel zero-fills its pages once, not
/// once per segment.
pub fn deblock_into(image: &[u8], out: &mut Vec<u8>) {
    out.clear();
    out.reserve(image.len());
    let mut at = SEGMENT_HEADER_LEN.min(image.len());
    while at < image.len() {
        let block_end = (at / BLOCK + 1) * BLOCK;
        out.extend_from_slice(&image[at..block_end.min(image.len())]);
        at = block_end + BLOCK_HEADER;
    }
}

/// How many logical bytes an image of `len` bytes carries.
pub fn stream_len(len: usize) -> usize {
    if len <= SEGMENT_HEADER_LEN {
        return 0;
    }
    let whole = len / BLOCK;
    let rest = len % BLOCK;
    let first = if whole == 0 { rest - SEGMENT_HEADER_LEN } else { FIRST_PAYLOAD };
    let middle = whole.saturating_sub(1) * PAYLOAD;
    let last = if whole == 0 { 0 } else { rest.saturating_sub(BLOCK_HEADER) };
    first + middle + last
}

/// How many records the image seems to hold, following length prefixes
/// without checking or copying anything: a hint for sizing tables.
pub fn count_records(image: &[u8]) -> u64 {
    let end = stream_len(image.len());
    let byte = |l: usize| image[physical(l)];
    let (mut at, mut n) = (0usize, 0u64);
    while at + RECORD_PREFIX <= end {
        // A length field lies within one block unless a block header
        // splits it: read it in place then (almost always; this runs once
        // per record of every segment before replay).
        let p = physical(at);
        let len = if p % BLOCK + 4 <= BLOCK {
            u32::from_le_bytes(image[p..p + 4].try_into().unwrap())
        } else {
            u32::from_le_bytes([byte(at), byte(at + 1), byte(at + 2), byte(at + 3)])
        } as usize;
        at = at.saturating_add(RECORD_PREFIX + len);
        n += 1;
    }
    n
}

/// About how many records the image holds, from the records in its first
/// `sample` stream bytes scaled to its whole stream: a hint for sizing
/// tables that reads a few pages rather than a prefix per record (walking
/// every prefix touched every page of every segment before replay did).
pub fn estimate_records(image: &[u8], sample: usize) -> u64 {
    let total = stream_len(image.len());
    if total <= sample {
        return count_records(image);
    }
    let end = physical(sample).min(image.len());
    let sampled = count_records(&image[..end]).max(1);
    (sampled as u128 * total as u128 / stream_len(end).max(1) as u128) as u64
}

/// Frames records, one at a time, for appending to a segment: copies each
/// into `out` with a block header at every block boundary it crosses.
///
/// Records come whole, so the end of the last one framed is where the next
/// record will start; a header written now can name it even though that
/// record arrives in a later batch.
pub struct Framer {
    file_len: u64,
    segment_first_lsn: u64,
}

impl Framer {
    /// A framer for a segment whose file is `file_len` bytes long.
    pub fn new(file_len: u64, segment_first_lsn: u64) -> Framer {
        Framer { file_len, segment_first_lsn }
    }

    /// The file's length once everything framed so far is written.
    pub fn file_len(&self) -> u64 {
        self.file_len
    }

    /// Appends one record, its sealed prefix and its body, to `out`.
    pub fn record(&mut self, out: &mut Vec<u8>, prefix: &[u8], body: &[u8]) {
        let in_block = (self.file_len % BLOCK as u64) as usize;
        let len = prefix.len() + body.len();
        if in_block != 0 && in_block + len <= BLOCK {
            // Most records fit in the current block: no header to place.
            out.extend_from_slice(prefix);
            out.extend_from_slice(body);
            self.file_len += len as u64;
            return;
        }
        self.span(out, prefix, body.len(), true);
        self.span(out, body, 0, false);
    }

    /// Copies `data`, followed in its record by `after` more bytes; a span
    /// that `opens` a record starts one.
    fn span(&mut self, out: &mut Vec<u8>, data: &[u8], after: usize, opens: bool) {
        let mut j = 0;
        while j < data.len() {
            let in_block = (self.file_len % BLOCK as u64) as usize;
            if in_block == 0 {
                // Bytes from here to the next record start.
                let left = if opens && j == 0 { 0 } else { data.len() - j + after };
                let first = if left < PAYLOAD { (BLOCK_HEADER + left) as u32 } else { 0 };
                out.extend_from_slice(&encode_header(self.segment_first_lsn, self.file_len / BLOCK as u64, first));
                self.file_len += BLOCK_HEADER as u64;
                continue;
            }
            let n = (BLOCK - in_block).min(data.len() - j);
            out.extend_from_slice(&data[j..j + n]);
            j += n;
            self.file_len += n as u64;
        }
    }
}

/// Frames a batch of whole, sealed records for a segment whose file is
/// `file_len` bytes long (see `Framer`), replacing `out`.
pub fn frame(out: &mut Vec<u8>, batch: &[u8], file_len: u64, segment_first_lsn: u64) {
    out.clear();
    let mut framer = Framer::new(file_len, segment_first_lsn);
    let ends = record_starts(batch).skip(1).chain(std::iter::once(batch.len()));
    for (start, end) in record_starts(batch).zip(ends) {
        framer.record(out, &batch[start..start + RECORD_PREFIX], &batch[start + RECORD_PREFIX..end]);
    }
}

/// Where the stream can resume after damage at logical offset `damaged`:
/// the record starts named by the intact headers of the blocks after the
/// one holding the damage, as logical offsets, in order.
pub fn resume_points(image: &[u8], segment_first_lsn: u64, damaged: usize) -> impl Iterator<Item = usize> + '_ {
    let from_block = physical(damaged) / BLOCK + 1;
    let blocks = image.len().div_ceil(BLOCK);
    (from_block..blocks).filter_map(move |k| match decode_header(image, segment_first_lsn, k as u64) {
        Some(first) if first != 0 => Some(logical(k * BLOCK + first as usize)),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn physical_and_logical_are_inverse() {
        for l in [0, 1, FIRST_PAYLOAD - 1, FIRST_PAYLOAD, FIRST_PAYLOAD + PAYLOAD - 1, FIRST_PAYLOAD + PAYLOAD, 10 * PAYLOAD + 17] {
            assert_eq!(logical(physical(l)), l, "l = {l}");
        }
        assert_eq!(physical(FIRST_PAYLOAD), BLOCK + BLOCK_HEADER);
    }

    #[test]
    fn count_records_reads_length_fields_split_by_block_headers() {
        // Records of 8 + 100 bytes from the start of a segment: their
        // length fields fall at every offset of a block, some across a
        // block header.
        let mut stream = Vec::new();
        let n = 3 * BLOCK / 108 + 7;
        for _ in 0..n {
            stream.extend_from_slice(&100u32.to_le_bytes());
            stream.extend_from_slice(&[0u8; 104]);
        }
        let mut image = vec![0u8; SEGMENT_HEADER_LEN];
        let mut framed = Vec::new();
        frame(&mut framed, &stream, SEGMENT_HEADER_LEN as u64, 1);
        image.extend_from_slice(&framed);
        assert_eq!(deblock(&image), stream);
        assert_eq!(count_records(&image), n as u64);
        let estimate = estimate_records(&image, 4096);
        assert!(estimate.abs_diff(n as u64) <= 2, "estimated {estimate} of {n}");
        assert_eq!(estimate_records(&image, 1 << 20), n as u64, "a sample of the whole stream counts");
    }

    #[test]
    fn stream_len_matches_deblock() {
        for len in [0, 5, 32, 33, BLOCK - 1, BLOCK, BLOCK + 3, BLOCK + 8, BLOCK + 9, 3 * BLOCK + 100] {
            assert_eq!(stream_len(len), deblock(&vec![0u8; len]).len(), "len = {len}");
        }
    }

    /// Records of many sizes, chosen so that records end exactly at a
    /// block's end, cross it by 1 to 8 bytes, split their prefix, start a
    /// block, or span several, framed a few per batch: the image reads back
    /// as the records, and every block header names the first record start
    /// in its block, computed here from the record boundaries alone.
    #[test]
    fn framed_records_read_back_and_headers_name_each_blocks_first_start() {
        let first_lsn = 7;
        let mut image = vec![0u8; SEGMENT_HEADER_LEN];
        let (mut stream, mut starts) = (Vec::new(), Vec::new());
        let mut out = Vec::new();
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        for batch in 0..400 {
            let mut framer = Framer::new(image.len() as u64, first_lsn);
            out.clear();
            for _ in 0..1 + batch % 4 {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                // Bytes left in the block the record starts in.
                let left = BLOCK - physical(stream.len()) % BLOCK;
                let total = match rng % 8 {
                    0 => left,                          // ends at the block's end
                    1 => left + 1 + (rng >> 8) as usize % 8, // crosses it by 1..8
                    2 => left + PAYLOAD,                // ends at the next block's end
                    3 => 2 * BLOCK + (rng >> 8) as usize % 100,
                    _ => 9 + (rng >> 8) as usize % 600,
                };
                let body = vec![batch as u8; total.max(RECORD_PREFIX + 1) - RECORD_PREFIX];
                let prefix = (body.len() as u64).to_le_bytes();
                starts.push(stream.len());
                stream.extend_from_slice(&prefix);
                stream.extend_from_slice(&body);
                framer.record(&mut out, &prefix, &body);
            }
            image.extend_from_slice(&out);
            assert_eq!(framer.file_len(), image.len() as u64);
        }
        assert_eq!(deblock(&image), stream);
        starts.push(stream.len()); // where the next record will start
        let blocks = image.len().div_ceil(BLOCK);
        assert!(blocks > 100, "{blocks} blocks");
        for k in 1..blocks {
            let want = starts.iter().map(|&l| physical(l)).find(|&p| p / BLOCK == k).map_or(0, |p| (p - k * BLOCK) as u32);
            assert_eq!(decode_header(&image, first_lsn, k as u64), Some(want), "block {k}");
        }
    }
}
