//! Applies list and sorted-set operations to a shard. This is the only
//! implementation: a live write builds the operation, logs it and applies
//! it here; replay applies the logged operation here. The two cannot
//! disagree, so recovery rebuilds collections exactly.
//!
//! Validation (types, ranges, scores) happens before an operation is built;
//! applying never looks at the clock and never fails.

#![forbid(unsafe_code)]

use super::entry::Kind;
use super::shard::ShardData;
use crate::persistence::coll_record::CollOp;

/// What applying an operation produced, for the live caller.
#[derive(Debug, Default)]
pub struct Applied {
    /// Elements popped, in pop order.
    pub popped: Vec<Box<[u8]>>,
    /// Elements or members removed, or members added (ZAdd).
    pub count: usize,
    /// The collection's length afterwards.
    pub len: usize,
}

/// Applies `op` to its key in `s` (the shard that holds the key).
pub fn apply<B: AsRef<[u8]>>(s: &mut ShardData, op: &CollOp<B>) -> Applied {
    let key = op.key();
    let mut out = Applied::default();
    match op {
        CollOp::Push { left, elems, .. } => {
            ensure(s, key, Kind::List);
            let l = s.list_mut(key).expect("ensured");
            for e in elems {
                l.push(*left, e.as_ref());
            }
            out.len = l.len();
        }
        CollOp::Pop { left, count, .. } => {
            if let Some(l) = s.list_mut(key) {
                for _ in 0..*count {
                    match l.pop(*left) {
                        Some(v) => out.popped.push(v),
                        None => break,
                    }
                }
                out.len = l.len();
            }
        }
        CollOp::LSet { index, value, .. } => {
            if let Some(l) = s.list_mut(key) {
                if (*index as usize) < l.len() {
                    l.set(*index as usize, value.as_ref());
                }
                out.len = l.len();
            }
        }
        CollOp::LTrim { start, end, .. } => {
            if let Some(l) = s.list_mut(key) {
                l.trim(*start as usize, *end as usize);
                out.len = l.len();
            }
        }
        CollOp::LRem { count, value, .. } => {
            if let Some(l) = s.list_mut(key) {
                out.count = l.remove(*count, value.as_ref());
                out.len = l.len();
            }
        }
        CollOp::ZAdd { pairs, .. } => {
            ensure(s, key, Kind::ZSet);
            let z = s.zset_mut(key).expect("ensured");
            for (score, m) in pairs {
                out.count += z.insert(m.as_ref(), f64::from_bits(*score)) as usize;
            }
            out.len = z.len();
        }
        CollOp::ZRem { members, .. } => {
            if let Some(z) = s.zset_mut(key) {
                out.count = members.iter().filter(|m| z.remove(m.as_ref()).is_some()).count();
                out.len = z.len();
            }
        }
        CollOp::ZRemRange { start, end, .. } => {
            if let Some(z) = s.zset_mut(key) {
                out.count = z.remove_range(*start as usize, *end as usize);
                out.len = z.len();
            }
        }
    }
    if out.len == 0 && matches!(s.entry_kind(key), Some(Kind::List | Kind::ZSet)) {
        // As in Redis, an emptied collection is no key at all.
        s.remove_any(key);
    }
    out
}

/// Makes `key` hold a collection of `kind`, creating an empty one (no
/// expiry) if it holds none; anything else at the key is replaced (a live
/// write never gets here with another type, and replay mirrors it).
fn ensure(s: &mut ShardData, key: &[u8], kind: Kind) {
    let holds = s.entry_kind(key) == Some(kind);
    if !holds {
        s.put_empty_collection(key, kind, 0);
    }
}
