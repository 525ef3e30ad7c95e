//! WAL records: the result of each mutation, never its intent, so that
//! replaying a record twice leaves the same state as replaying it once.
//!
//! Byte layout is specified in docs/FORMAT.md and pinned by golden tests.

#![forbid(unsafe_code)]

use super::coll_record::{self, CollOp, Fields};
use crate::error::{Error, Result};

pub const TYPE_SET: u8 = 1;
pub const TYPE_SET_INT: u8 = 2;
pub const TYPE_DELETE: u8 = 3;
pub const TYPE_MSET: u8 = 4;
pub const TYPE_MDEL: u8 = 5;
pub const TYPE_EXPIRE: u8 = 6;
pub const TYPE_LOCK: u8 = 7;
/// Several mutations that recover together or not at all (`Engine::transact`).
pub const TYPE_BATCH: u8 = 8;
/// Every key removed (FLUSHALL).
pub const TYPE_CLEAR: u8 = 9;

// Field sizes of the record layout (docs/FORMAT.md, "WAL records").
/// The body length before each record (u32).
const LEN_FIELD: usize = 4;
/// The CRC-32 of the body, after the length (u32).
const CRC_FIELD: usize = 4;
/// A record's LSN, the first field of its body (u64).
const LSN_FIELD: usize = 8;
/// The operation type byte.
const TYPE_FIELD: usize = 1;
/// An absolute expiry or a fencing token (u64).
const U64_FIELD: usize = 8;
/// A count of keys or operations (u32).
const COUNT_FIELD: usize = 4;
/// The length before a key, value or owner (u32).
const BYTES_LEN_FIELD: usize = 4;

/// Bytes before a record's body: body length (u32) and CRC-32 of the body (u32).
pub const RECORD_PREFIX: usize = LEN_FIELD + CRC_FIELD;

/// No record body is larger than this: a 1 GiB value plus its key and
/// fields. Writers refuse larger multi-key records; readers treat a longer
/// length field as damage.
pub const MAX_RECORD_BODY: usize = (1 << 30) + (1 << 20);

/// The smallest Lock record on disk (1-byte key and owner): a run of `n`
/// unreadable bytes held at most `n / MIN_LOCK_RECORD` fencing tokens.
/// (prefix, LSN, type, expiry, token, then key and owner of one byte each).
pub const MIN_LOCK_RECORD: u64 =
    (RECORD_PREFIX + LSN_FIELD + TYPE_FIELD + 2 * U64_FIELD + 2 * (BYTES_LEN_FIELD + 1)) as u64;

/// The body size of an mset record of these pairs, computed without
/// encoding it (the engine refuses an oversized mset before locking).
pub fn mset_body_len(keys: &[&[u8]], values: &[&[u8]]) -> usize {
    LSN_FIELD + TYPE_FIELD + U64_FIELD + COUNT_FIELD + keys.iter().chain(values).map(|b| BYTES_LEN_FIELD + b.len()).sum::<usize>()
}

/// The body size of an mdel record of these keys.
pub fn mdel_body_len(keys: &[&[u8]]) -> usize {
    LSN_FIELD + TYPE_FIELD + COUNT_FIELD + keys.iter().map(|k| BYTES_LEN_FIELD + k.len()).sum::<usize>()
}

/// One mutation, borrowed from the caller while the shard lock is held.
/// Expiries are absolute unix milliseconds, 0 = none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record<'a> {
    Set { key: &'a [u8], value: &'a [u8], expires_at: u64 },
    /// A counter's new value (what `incr`/`decr` produced).
    SetInt { key: &'a [u8], value: i64, expires_at: u64 },
    Delete { key: &'a [u8] },
    MSet { keys: &'a [&'a [u8]], values: &'a [&'a [u8]], expires_at: u64 },
    MDel { keys: &'a [&'a [u8]] },
    Expire { key: &'a [u8], expires_at: u64 },
    /// A lock grant or refresh: the key now holds `owner` until `expires_at`.
    Lock { key: &'a [u8], owner: &'a [u8], expires_at: u64, token: u64 },
    /// Every key removed.
    Clear,
    /// These mutations, in order, as one record: a crash keeps all or none.
    /// Never nested.
    Batch { ops: &'a [Record<'a>] },
    /// A list or sorted-set operation.
    Coll(CollOp<&'a [u8]>),
}

/// A decoded record that owns its bytes (tests compare these).
#[cfg(any(test, feature = "test-util"))]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OwnedRecord {
    Set { key: Vec<u8>, value: Vec<u8>, expires_at: u64 },
    SetInt { key: Vec<u8>, value: i64, expires_at: u64 },
    Delete { key: Vec<u8> },
    MSet { pairs: Vec<(Vec<u8>, Vec<u8>)>, expires_at: u64 },
    MDel { keys: Vec<Vec<u8>> },
    Expire { key: Vec<u8>, expires_at: u64 },
    Lock { key: Vec<u8>, owner: Vec<u8>, expires_at: u64, token: u64 },
    Clear,
    Batch { ops: Vec<OwnedRecord> },
    Coll(CollOp<Vec<u8>>),
}

fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}
fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}
fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_u32(out, b.len() as u32);
    out.extend_from_slice(b);
}

impl Record<'_> {
    /// Appends `len | crc | lsn | type | fields` to `out`.
    pub fn encode(&self, lsn: u64, out: &mut Vec<u8>) {
        let start = out.len();
        self.encode_unsealed(lsn, out);
        seal_all(&mut out[start..]);
    }

    /// Appends the record with its CRC left as zero. The WAL lanes use
    /// this so that writers, who hold a shard lock, do not pay for the
    /// checksum: the WAL thread seals each record (`sealed_prefix`) as it
    /// frames it.
    pub fn encode_unsealed(&self, lsn: u64, out: &mut Vec<u8>) {
        let start = out.len();
        out.extend_from_slice(&[0u8; RECORD_PREFIX]);
        put_u64(out, lsn);
        self.encode_op(out);
        let len = (out.len() - start - RECORD_PREFIX) as u32;
        out[start..start + LEN_FIELD].copy_from_slice(&len.to_le_bytes());
    }

    /// Appends `type | fields` (a whole record after its LSN, or one
    /// operation of a batch).
    fn encode_op(&self, out: &mut Vec<u8>) {
        match *self {
            Record::Set { key, value, expires_at } => {
                out.push(TYPE_SET);
                put_u64(out, expires_at);
                put_bytes(out, key);
                put_bytes(out, value);
            }
            Record::SetInt { key, value, expires_at } => {
                out.push(TYPE_SET_INT);
                put_u64(out, expires_at);
                put_bytes(out, key);
                put_u64(out, value as u64);
            }
            Record::Delete { key } => {
                out.push(TYPE_DELETE);
                put_bytes(out, key);
            }
            Record::MSet { keys, values, expires_at } => {
                assert_eq!(keys.len(), values.len(), "an mset record pairs every key with a value");
                out.push(TYPE_MSET);
                put_u64(out, expires_at);
                put_u32(out, keys.len() as u32);
                for (k, v) in keys.iter().zip(values) {
                    put_bytes(out, k);
                    put_bytes(out, v);
                }
            }
            Record::MDel { keys } => {
                out.push(TYPE_MDEL);
                put_u32(out, keys.len() as u32);
                for k in keys {
                    put_bytes(out, k);
                }
            }
            Record::Expire { key, expires_at } => {
                out.push(TYPE_EXPIRE);
                put_u64(out, expires_at);
                put_bytes(out, key);
            }
            Record::Lock { key, owner, expires_at, token } => {
                out.push(TYPE_LOCK);
                put_u64(out, expires_at);
                put_u64(out, token);
                put_bytes(out, key);
                put_bytes(out, owner);
            }
            Record::Clear => out.push(TYPE_CLEAR),
            Record::Coll(ref op) => op.encode(out),
            Record::Batch { ops } => {
                out.push(TYPE_BATCH);
                put_u32(out, ops.len() as u32);
                for op in ops {
                    assert!(!matches!(op, Record::Batch { .. }), "batches do not nest");
                    op.encode_op(out);
                }
            }
        }
    }
}

/// The body size of a record of these operations: the LSN plus each
/// operation's type and fields.
pub fn body_len(rec: &Record<'_>) -> usize {
    let mut out = Vec::new();
    rec.encode_op(&mut out);
    LSN_FIELD + out.len()
}

/// Where each record of a run of whole records starts, following the
/// length prefixes without checking them: for buffers the writer built, or
/// as a hint. Stops where no whole prefix is left.
pub fn record_starts(buf: &[u8]) -> impl Iterator<Item = usize> + '_ {
    let mut at = 0usize;
    std::iter::from_fn(move || {
        let prefix = buf.get(at..at.checked_add(RECORD_PREFIX)?)?;
        let start = at;
        at = at.saturating_add(RECORD_PREFIX + u32::from_le_bytes(prefix[..LEN_FIELD].try_into().unwrap()) as usize);
        Some(start)
    })
}

/// Fills in the CRC of every record in `buf`, a run of whole records
/// written by `encode_unsealed`; returns where the last record starts.
pub fn seal_all(buf: &mut [u8]) -> Option<usize> {
    let (mut at, mut last) = (0, None);
    while at < buf.len() {
        let len = u32::from_le_bytes(buf[at..at + LEN_FIELD].try_into().unwrap()) as usize;
        let end = at + RECORD_PREFIX + len;
        let prefix = sealed_prefix(&buf[at..end]);
        buf[at..at + RECORD_PREFIX].copy_from_slice(&prefix);
        last = Some(at);
        at = end;
    }
    last
}

/// The sealed prefix (length and CRC of the body) of one whole record,
/// sealed or not; the WAL thread seals records this way as it frames them,
/// without writing into the writers' buffers.
pub fn sealed_prefix(record: &[u8]) -> [u8; RECORD_PREFIX] {
    let mut prefix = [0u8; RECORD_PREFIX];
    prefix[..LEN_FIELD].copy_from_slice(&record[..LEN_FIELD]);
    prefix[LEN_FIELD..].copy_from_slice(&body_crc(&record[RECORD_PREFIX..]).to_le_bytes());
    prefix
}

/// CRC-32 of a record body. `crc32fast::hash` detects the CPU's features
/// on every call (a tenth of the cost of a 300-byte record); a hasher made
/// once and cloned detects them once.
fn body_crc(body: &[u8]) -> u32 {
    static HASHER: std::sync::OnceLock<crc32fast::Hasher> = std::sync::OnceLock::new();
    let mut h = HASHER.get_or_init(crc32fast::Hasher::new).clone();
    h.update(body);
    h.finalize()
}

/// A sealed record's 8-byte prefix (length and CRC) as one number: what a
/// snapshot keeps of the record its resume position follows.
pub fn prefix_word(record: &[u8]) -> u64 {
    u64::from_le_bytes(record[..RECORD_PREFIX].try_into().unwrap())
}

/// A decoded record borrowing its bytes from the segment image, so replay
/// allocates nothing per record (multi-key records hold a Vec of slices).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordView<'a> {
    Set { key: &'a [u8], value: &'a [u8], expires_at: u64 },
    SetInt { key: &'a [u8], value: i64, expires_at: u64 },
    Delete { key: &'a [u8] },
    MSet { pairs: Vec<(&'a [u8], &'a [u8])>, expires_at: u64 },
    MDel { keys: Vec<&'a [u8]> },
    Expire { key: &'a [u8], expires_at: u64 },
    Lock { key: &'a [u8], owner: &'a [u8], expires_at: u64, token: u64 },
    Clear,
    Batch { ops: Vec<RecordView<'a>> },
    Coll(CollOp<&'a [u8]>),
}


#[cfg(any(test, feature = "test-util"))]
impl RecordView<'_> {
    pub fn to_owned_record(&self) -> OwnedRecord {
        match self {
            RecordView::Set { key, value, expires_at } => OwnedRecord::Set { key: key.to_vec(), value: value.to_vec(), expires_at: *expires_at },
            RecordView::SetInt { key, value, expires_at } => OwnedRecord::SetInt { key: key.to_vec(), value: *value, expires_at: *expires_at },
            RecordView::Delete { key } => OwnedRecord::Delete { key: key.to_vec() },
            RecordView::MSet { pairs, expires_at } => OwnedRecord::MSet {
                pairs: pairs.iter().map(|(k, v)| (k.to_vec(), v.to_vec())).collect(),
                expires_at: *expires_at,
            },
            RecordView::MDel { keys } => OwnedRecord::MDel { keys: keys.iter().map(|k| k.to_vec()).collect() },
            RecordView::Expire { key, expires_at } => OwnedRecord::Expire { key: key.to_vec(), expires_at: *expires_at },
            RecordView::Lock { key, owner, expires_at, token } => {
                OwnedRecord::Lock { key: key.to_vec(), owner: owner.to_vec(), expires_at: *expires_at, token: *token }
            }
            RecordView::Clear => OwnedRecord::Clear,
            RecordView::Batch { ops } => OwnedRecord::Batch { ops: ops.iter().map(|o| o.to_owned_record()).collect() },
            RecordView::Coll(op) => OwnedRecord::Coll(op.to_owned_op()),
        }
    }
}

/// Reads fields from a record body, failing on any short read.
struct Cursor<'a> {
    b: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.b.len() < n {
            return Err(Error::Corruption("record body ends inside a field".into()));
        }
        let (head, rest) = self.b.split_at(n);
        self.b = rest;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.take(size_of::<u32>())?.try_into().unwrap()))
    }
    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.take(size_of::<u64>())?.try_into().unwrap()))
    }
    fn bytes(&mut self) -> Result<&'a [u8]> {
        let n = self.u32()? as usize;
        self.take(n)
    }
    /// A key: 1 to 65,535 bytes, as the engine accepts (a record that
    /// claims otherwise is damage, never an entry).
    fn key(&mut self) -> Result<&'a [u8]> {
        let k = self.bytes()?;
        if !is_valid_key(k) {
            return Err(Error::Corruption(format!("record key of {} bytes (keys are 1 to 65535)", k.len())));
        }
        Ok(k)
    }
}

impl<'a> Fields<'a> for Cursor<'a> {
    fn u8(&mut self) -> Result<u8> {
        Cursor::u8(self)
    }
    fn u32(&mut self) -> Result<u32> {
        Cursor::u32(self)
    }
    fn u64(&mut self) -> Result<u64> {
        Cursor::u64(self)
    }
    fn bytes(&mut self) -> Result<&'a [u8]> {
        Cursor::bytes(self)
    }
    fn key(&mut self) -> Result<&'a [u8]> {
        Cursor::key(self)
    }
}

/// Keys are 1 to 65,535 bytes in records and snapshots alike.
pub fn is_valid_key(k: &[u8]) -> bool {
    (1..=u16::MAX as usize).contains(&k.len())
}

/// Decodes a record body (after the length and CRC were checked).
pub fn decode_view(body: &[u8]) -> Result<(u64, RecordView<'_>)> {
    let mut c = Cursor { b: body };
    let lsn = c.u64()?;
    let rec = decode_op(&mut c, false)?;
    if !c.b.is_empty() {
        return Err(Error::Corruption("record body has trailing bytes".into()));
    }
    Ok((lsn, rec))
}

/// Decodes `type | fields`; inside a batch (`nested`) another batch is damage.
fn decode_op<'a>(c: &mut Cursor<'a>, nested: bool) -> Result<RecordView<'a>> {
    let rec = match c.u8()? {
        TYPE_SET => {
            let expires_at = c.u64()?;
            RecordView::Set { expires_at, key: c.key()?, value: c.bytes()? }
        }
        TYPE_SET_INT => {
            let expires_at = c.u64()?;
            RecordView::SetInt { expires_at, key: c.key()?, value: c.u64()? as i64 }
        }
        TYPE_DELETE => RecordView::Delete { key: c.key()? },
        TYPE_MSET => {
            let expires_at = c.u64()?;
            let n = c.u32()? as usize;
            let mut pairs = Vec::with_capacity(n.min(1 << 16));
            for _ in 0..n {
                pairs.push((c.key()?, c.bytes()?));
            }
            RecordView::MSet { pairs, expires_at }
        }
        TYPE_MDEL => {
            let n = c.u32()? as usize;
            let mut keys = Vec::with_capacity(n.min(1 << 16));
            for _ in 0..n {
                keys.push(c.key()?);
            }
            RecordView::MDel { keys }
        }
        TYPE_EXPIRE => {
            let expires_at = c.u64()?;
            RecordView::Expire { expires_at, key: c.key()? }
        }
        // A batch never holds a lock grant: recovery reads fencing tokens
        // only from top-level records.
        TYPE_LOCK if !nested => {
            let expires_at = c.u64()?;
            let token = c.u64()?;
            RecordView::Lock { expires_at, token, key: c.key()?, owner: c.bytes()? }
        }
        TYPE_CLEAR => RecordView::Clear,
        TYPE_BATCH if !nested => {
            let n = c.u32()? as usize;
            let mut ops = Vec::with_capacity(n.min(1 << 16));
            for _ in 0..n {
                ops.push(decode_op(c, true)?);
            }
            RecordView::Batch { ops }
        }
        t if coll_record::is_coll_type(t) => RecordView::Coll(coll_record::decode(t, c)?),
        t => return Err(Error::Corruption(format!("unknown record type {t}"))),
    };
    Ok(rec)
}

/// Decodes a record body into an owned record.
#[cfg(any(test, feature = "test-util"))]
pub fn decode_body(body: &[u8]) -> Result<(u64, OwnedRecord)> {
    decode_view(body).map(|(lsn, v)| (lsn, v.to_owned_record()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded_body_len(rec: &Record<'_>) -> usize {
        let mut out = Vec::new();
        rec.encode(1, &mut out);
        let len = u32::from_le_bytes(out[..LEN_FIELD].try_into().unwrap()) as usize;
        assert_eq!(out.len(), RECORD_PREFIX + len, "the length field counts the whole body");
        len
    }

    /// The sizes computed without encoding (the engine's refusal of an
    /// oversized mset/mdel, recovery's token bound) equal what is encoded.
    #[test]
    fn computed_sizes_equal_encoded_sizes() {
        let keys: Vec<Vec<u8>> = (0..40).map(|i| vec![b'k'; 1 + i * 7]).collect();
        let values: Vec<Vec<u8>> = (0..40).map(|i| vec![b'v'; i * 13]).collect();
        for n in [0, 1, 2, 17, 40] {
            let k: Vec<&[u8]> = keys[..n].iter().map(|k| &k[..]).collect();
            let v: Vec<&[u8]> = values[..n].iter().map(|v| &v[..]).collect();
            let mset = Record::MSet { keys: &k, values: &v, expires_at: 9 };
            assert_eq!(mset_body_len(&k, &v), encoded_body_len(&mset), "mset of {n}");
            assert_eq!(body_len(&mset), encoded_body_len(&mset));
            let mdel = Record::MDel { keys: &k };
            assert_eq!(mdel_body_len(&k), encoded_body_len(&mdel), "mdel of {n}");
            let batch = [Record::Set { key: b"a", value: b"b", expires_at: 0 }, Record::Delete { key: b"c" }];
            assert_eq!(body_len(&Record::Batch { ops: &batch }), encoded_body_len(&Record::Batch { ops: &batch }));
        }
        let lock = Record::Lock { key: b"k", owner: b"o", expires_at: 1, token: 2 };
        assert_eq!(MIN_LOCK_RECORD as usize, RECORD_PREFIX + encoded_body_len(&lock));
    }
}
