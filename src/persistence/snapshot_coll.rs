//! How lists, sorted sets and locks are stored in snapshot entries.
//!
//! A collection is written as a run of entries for its key: the first
//! (`KIND_LIST` or `KIND_ZSET`) creates it, each next (`*_MORE`) adds to
//! it, and each holds at most `CHUNK_ELEMS` elements, so no entry grows
//! with the collection. Chunk layout: `count: u32`, then per element
//! `len: u32 | bytes` (lists) or `score: f64 bits u64 | len: u32 | member`
//! (sorted sets), all little-endian. A lock's value is its owner followed
//! by its fencing token (u64 LE).

#![forbid(unsafe_code)]

use crate::error::{Error, Result};

pub const KIND_LOCK: u8 = 2;
pub const KIND_LIST: u8 = 3;
pub const KIND_LIST_MORE: u8 = 4;
pub const KIND_ZSET: u8 = 5;
pub const KIND_ZSET_MORE: u8 = 6;

/// Elements per snapshot entry of a collection.
pub const CHUNK_ELEMS: usize = 1024;

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_le_bytes());
    out.extend_from_slice(b);
}

pub fn encode_list_chunk<'a>(elems: impl ExactSizeIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut out = (elems.len() as u32).to_le_bytes().to_vec();
    for e in elems {
        put_bytes(&mut out, e);
    }
    out
}

pub fn encode_zset_chunk<'a>(pairs: impl ExactSizeIterator<Item = (&'a [u8], f64)>) -> Vec<u8> {
    let mut out = (pairs.len() as u32).to_le_bytes().to_vec();
    for (m, s) in pairs {
        out.extend_from_slice(&s.to_bits().to_le_bytes());
        put_bytes(&mut out, m);
    }
    out
}

pub fn lock_value(owner: &[u8], token: u64) -> Vec<u8> {
    let mut v = owner.to_vec();
    v.extend_from_slice(&token.to_le_bytes());
    v
}

/// Splits a lock value into owner and token.
pub fn split_lock(value: &[u8]) -> Option<(&[u8], u64)> {
    let at = value.len().checked_sub(8)?;
    Some((&value[..at], u64::from_le_bytes(value[at..].try_into().unwrap())))
}

struct Reader<'a> {
    b: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.b.len() < n {
            return Err(Error::Corruption("collection chunk ends inside an element".into()));
        }
        let (h, t) = self.b.split_at(n);
        self.b = t;
        Ok(h)
    }
    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().unwrap()))
    }
    fn bytes(&mut self) -> Result<&'a [u8]> {
        let n = self.u32()? as usize;
        self.take(n)
    }
}

pub fn decode_list_chunk(v: &[u8]) -> Result<Vec<&[u8]>> {
    let mut r = Reader { b: v };
    let n = r.u32()? as usize;
    let mut out = Vec::with_capacity(n.min(CHUNK_ELEMS));
    for _ in 0..n {
        out.push(r.bytes()?);
    }
    if !r.b.is_empty() {
        return Err(Error::Corruption("list chunk has trailing bytes".into()));
    }
    Ok(out)
}

pub fn decode_zset_chunk(v: &[u8]) -> Result<Vec<(f64, &[u8])>> {
    let mut r = Reader { b: v };
    let n = r.u32()? as usize;
    let mut out = Vec::with_capacity(n.min(CHUNK_ELEMS));
    for _ in 0..n {
        let score = f64::from_bits(u64::from_le_bytes(r.take(8)?.try_into().unwrap()));
        if score.is_nan() {
            return Err(Error::Corruption("sorted-set score is NaN".into()));
        }
        out.push((score, r.bytes()?));
    }
    if !r.b.is_empty() {
        return Err(Error::Corruption("sorted-set chunk has trailing bytes".into()));
    }
    Ok(out)
}

/// Checks an entry of one of these kinds.
pub fn check(kind: u8, value: &[u8]) -> Result<()> {
    match kind {
        KIND_LOCK if value.len() >= 8 => Ok(()),
        KIND_LIST | KIND_LIST_MORE => decode_list_chunk(value).map(drop),
        KIND_ZSET | KIND_ZSET_MORE => decode_zset_chunk(value).map(drop),
        _ => Err(Error::Corruption(format!("entry kind {kind} with a {}-byte value", value.len()))),
    }
}
