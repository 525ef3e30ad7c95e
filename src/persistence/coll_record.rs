//! WAL operations on lists and sorted sets. Each names one key and what
//! happened to it, sized by the command that did it (never the whole
//! collection), and is exact given the key's state before it: replay
//! applies each operation once, to a key whose state is exact up to the
//! record before (recovery's per-shard covered LSNs guarantee that), with
//! the same code the live write ran (`engine::collections::apply`).
//!
//! Byte layout is specified in docs/FORMAT.md and pinned by golden tests.

#![forbid(unsafe_code)]

use crate::error::{Error, Result};

pub const TYPE_LIST_PUSH: u8 = 10;
pub const TYPE_LIST_POP: u8 = 11;
pub const TYPE_LIST_SET: u8 = 12;
pub const TYPE_LIST_TRIM: u8 = 13;
pub const TYPE_LIST_REM: u8 = 14;
pub const TYPE_ZADD: u8 = 15;
pub const TYPE_ZREM: u8 = 16;
pub const TYPE_ZREM_RANGE: u8 = 17;

/// One collection operation over byte strings `B` (borrowed when encoding
/// or replaying, owned in tests). Scores are f64 bit patterns, so equality
/// is exact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CollOp<B> {
    /// Elements pushed one by one at the head (`left`) or tail; creates the
    /// list if the key is absent.
    Push { key: B, left: bool, elems: Vec<B> },
    /// `count` elements popped from the head or tail; an emptied list is deleted.
    Pop { key: B, left: bool, count: u32 },
    /// The element at `index` replaced.
    LSet { key: B, index: u64, value: B },
    /// Only the elements at `start..end` kept; an emptied list is deleted.
    LTrim { key: B, start: u64, end: u64 },
    /// LREM's effect: up to |count| elements equal to `value` removed.
    LRem { key: B, count: i64, value: B },
    /// Members set to these scores; creates the sorted set if absent.
    ZAdd { key: B, pairs: Vec<(u64, B)> },
    /// Members removed; an emptied set is deleted.
    ZRem { key: B, members: Vec<B> },
    /// The members of ascending ranks `start..end` removed.
    ZRemRange { key: B, start: u64, end: u64 },
}

impl<B: AsRef<[u8]>> CollOp<B> {
    pub fn key(&self) -> &[u8] {
        match self {
            CollOp::Push { key, .. }
            | CollOp::Pop { key, .. }
            | CollOp::LSet { key, .. }
            | CollOp::LTrim { key, .. }
            | CollOp::LRem { key, .. }
            | CollOp::ZAdd { key, .. }
            | CollOp::ZRem { key, .. }
            | CollOp::ZRemRange { key, .. } => key.as_ref(),
        }
    }

    /// Appends `type | fields`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let put_bytes = |out: &mut Vec<u8>, b: &[u8]| {
            out.extend_from_slice(&(b.len() as u32).to_le_bytes());
            out.extend_from_slice(b);
        };
        let head = |out: &mut Vec<u8>, t: u8, key: &B| {
            out.push(t);
            put_bytes(out, key.as_ref());
        };
        match self {
            CollOp::Push { key, left, elems } => {
                head(out, TYPE_LIST_PUSH, key);
                out.push(*left as u8);
                out.extend_from_slice(&(elems.len() as u32).to_le_bytes());
                for e in elems {
                    put_bytes(out, e.as_ref());
                }
            }
            CollOp::Pop { key, left, count } => {
                head(out, TYPE_LIST_POP, key);
                out.push(*left as u8);
                out.extend_from_slice(&count.to_le_bytes());
            }
            CollOp::LSet { key, index, value } => {
                head(out, TYPE_LIST_SET, key);
                out.extend_from_slice(&index.to_le_bytes());
                put_bytes(out, value.as_ref());
            }
            CollOp::LTrim { key, start, end } | CollOp::ZRemRange { key, start, end } => {
                let t = if matches!(self, CollOp::LTrim { .. }) { TYPE_LIST_TRIM } else { TYPE_ZREM_RANGE };
                head(out, t, key);
                out.extend_from_slice(&start.to_le_bytes());
                out.extend_from_slice(&end.to_le_bytes());
            }
            CollOp::LRem { key, count, value } => {
                head(out, TYPE_LIST_REM, key);
                out.extend_from_slice(&count.to_le_bytes());
                put_bytes(out, value.as_ref());
            }
            CollOp::ZAdd { key, pairs } => {
                head(out, TYPE_ZADD, key);
                out.extend_from_slice(&(pairs.len() as u32).to_le_bytes());
                for (score, m) in pairs {
                    out.extend_from_slice(&score.to_le_bytes());
                    put_bytes(out, m.as_ref());
                }
            }
            CollOp::ZRem { key, members } => {
                head(out, TYPE_ZREM, key);
                out.extend_from_slice(&(members.len() as u32).to_le_bytes());
                for m in members {
                    put_bytes(out, m.as_ref());
                }
            }
        }
    }

    #[cfg(any(test, feature = "test-util"))]
    pub fn to_owned_op(&self) -> CollOp<Vec<u8>> {
        let o = |b: &B| b.as_ref().to_vec();
        match self {
            CollOp::Push { key, left, elems } => CollOp::Push { key: o(key), left: *left, elems: elems.iter().map(o).collect() },
            CollOp::Pop { key, left, count } => CollOp::Pop { key: o(key), left: *left, count: *count },
            CollOp::LSet { key, index, value } => CollOp::LSet { key: o(key), index: *index, value: o(value) },
            CollOp::LTrim { key, start, end } => CollOp::LTrim { key: o(key), start: *start, end: *end },
            CollOp::LRem { key, count, value } => CollOp::LRem { key: o(key), count: *count, value: o(value) },
            CollOp::ZAdd { key, pairs } => CollOp::ZAdd { key: o(key), pairs: pairs.iter().map(|(s, m)| (*s, o(m))).collect() },
            CollOp::ZRem { key, members } => CollOp::ZRem { key: o(key), members: members.iter().map(o).collect() },
            CollOp::ZRemRange { key, start, end } => CollOp::ZRemRange { key: o(key), start: *start, end: *end },
        }
    }
}

/// Reads the fields of a collection operation whose type byte was `t`;
/// the cursor primitives come from the record decoder.
pub trait Fields<'a> {
    fn u8(&mut self) -> Result<u8>;
    fn u32(&mut self) -> Result<u32>;
    fn u64(&mut self) -> Result<u64>;
    fn bytes(&mut self) -> Result<&'a [u8]>;
    fn key(&mut self) -> Result<&'a [u8]>;
}

pub fn is_coll_type(t: u8) -> bool {
    (TYPE_LIST_PUSH..=TYPE_ZREM_RANGE).contains(&t)
}

pub fn decode<'a>(t: u8, c: &mut dyn Fields<'a>) -> Result<CollOp<&'a [u8]>> {
    let key = c.key()?;
    let flag = |c: &mut dyn Fields<'a>| match c.u8()? {
        0 => Ok(false),
        1 => Ok(true),
        b => Err(Error::Corruption(format!("list end flag {b} (0 or 1)"))),
    };
    Ok(match t {
        TYPE_LIST_PUSH => {
            let left = flag(c)?;
            let n = c.u32()? as usize;
            let mut elems = Vec::with_capacity(n.min(1 << 16));
            for _ in 0..n {
                elems.push(c.bytes()?);
            }
            CollOp::Push { key, left, elems }
        }
        TYPE_LIST_POP => CollOp::Pop { key, left: flag(c)?, count: c.u32()? },
        TYPE_LIST_SET => CollOp::LSet { key, index: c.u64()?, value: c.bytes()? },
        TYPE_LIST_TRIM => CollOp::LTrim { key, start: c.u64()?, end: c.u64()? },
        TYPE_LIST_REM => CollOp::LRem { key, count: c.u64()? as i64, value: c.bytes()? },
        TYPE_ZADD => {
            let n = c.u32()? as usize;
            let mut pairs = Vec::with_capacity(n.min(1 << 16));
            for _ in 0..n {
                let score = c.u64()?;
                if f64::from_bits(score).is_nan() {
                    return Err(Error::Corruption("sorted-set score is NaN".into()));
                }
                pairs.push((score, c.bytes()?));
            }
            CollOp::ZAdd { key, pairs }
        }
        TYPE_ZREM => {
            let n = c.u32()? as usize;
            let mut members = Vec::with_capacity(n.min(1 << 16));
            for _ in 0..n {
                members.push(c.bytes()?);
            }
            CollOp::ZRem { key, members }
        }
        TYPE_ZREM_RANGE => CollOp::ZRemRange { key, start: c.u64()?, end: c.u64()? },
        _ => return Err(Error::Corruption(format!("unknown collection record type {t}"))),
    })
}
