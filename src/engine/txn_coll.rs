//! List and sorted-set operations inside a transaction. Each validates,
//! then builds the operation it will log and applies it with the same
//! function replay uses (`collections::apply`). Operations that would
//! change nothing are not logged.

#![forbid(unsafe_code)]

use super::collections::{self, Applied};
use super::entry::Value;
use super::list::List;
use super::txn::Txn;
use super::zset::ZSet;
use crate::error::{Error, Result};
use crate::persistence::coll_record::CollOp;

/// Elements per logged operation when a whole collection is written (RENAME,
/// COPY): records stay bounded by this, not by the collection.
const CHUNK: usize = 1024;

impl Txn<'_> {
    /// The live list at `key`; `Error::WrongType` if it holds another kind.
    pub fn list(&self, key: &[u8]) -> Result<Option<&List>> {
        match self.get(key)?.map(|f| f.value) {
            None => Ok(None),
            Some(Value::List(l)) => Ok(Some(l)),
            Some(_) => Err(Error::WrongType),
        }
    }

    /// The live sorted set at `key`; `Error::WrongType` if it holds another kind.
    pub fn zset(&self, key: &[u8]) -> Result<Option<&ZSet>> {
        match self.get(key)?.map(|f| f.value) {
            None => Ok(None),
            Some(Value::ZSet(z)) => Ok(Some(z)),
            Some(_) => Err(Error::WrongType),
        }
    }

    /// Logs and applies `op`. An expired entry at the key is removed first
    /// (logged), so that replay, which never reads the clock, creates the
    /// same fresh collection.
    fn coll(&mut self, op: CollOp<Vec<u8>>) -> Result<Applied> {
        let mut encoded = Vec::new();
        op.encode(&mut encoded);
        self.reserve_bytes(encoded.len())?;
        let key = op.key().to_vec();
        if self.get(&key)?.is_none() && self.holds_expired(&key)? {
            self.remove_logged(&key)?;
        }
        let applied = collections::apply(self.shard_mut_checked(&key)?, &op);
        self.push_coll(op);
        Ok(applied)
    }

    /// Pushes `elems` one by one at the head (`left`) or tail, creating the
    /// list; the new length.
    pub fn list_push(&mut self, key: &[u8], left: bool, elems: &[&[u8]]) -> Result<usize> {
        self.list(key)?;
        for e in elems {
            self.engine().check_value(e)?;
        }
        if elems.is_empty() {
            return Ok(self.list(key)?.map_or(0, List::len));
        }
        let op = CollOp::Push { key: key.to_vec(), left, elems: elems.iter().map(|e| e.to_vec()).collect() };
        Ok(self.coll(op)?.len)
    }

    /// Pops up to `count` elements from the head (`left`) or tail.
    pub fn list_pop(&mut self, key: &[u8], left: bool, count: usize) -> Result<Vec<Box<[u8]>>> {
        let n = self.list(key)?.map_or(0, |l| l.len().min(count));
        if n == 0 {
            return Ok(Vec::new());
        }
        Ok(self.coll(CollOp::Pop { key: key.to_vec(), left, count: n as u32 })?.popped)
    }

    /// Replaces the element at `index`, which must be below the length.
    pub fn list_set(&mut self, key: &[u8], index: usize, value: &[u8]) -> Result<()> {
        self.engine().check_value(value)?;
        let len = self.list(key)?.map_or(0, List::len);
        if index >= len {
            return Err(Error::InvalidArgument(format!("index {index} is outside the list of {len}")));
        }
        self.coll(CollOp::LSet { key: key.to_vec(), index: index as u64, value: value.to_vec() })?;
        Ok(())
    }

    /// Keeps the elements at `start..end` (clamped); deletes an emptied list.
    pub fn list_trim(&mut self, key: &[u8], start: usize, end: usize) -> Result<()> {
        let len = self.list(key)?.map_or(0, List::len);
        if len == 0 || (start == 0 && end >= len) {
            return Ok(());
        }
        self.coll(CollOp::LTrim { key: key.to_vec(), start: start as u64, end: end.min(len) as u64 })?;
        Ok(())
    }

    /// LREM: removes up to |count| elements equal to `value` (0 = all).
    pub fn list_remove(&mut self, key: &[u8], count: i64, value: &[u8]) -> Result<usize> {
        let present = self.list(key)?.is_some_and(|l| l.iter_from(0).any(|e| e == value));
        if !present {
            return Ok(0);
        }
        Ok(self.coll(CollOp::LRem { key: key.to_vec(), count, value: value.to_vec() })?.count)
    }

    /// Sets each member's score, creating the set; how many members are new.
    /// Pairs that change nothing are not logged.
    pub fn zadd(&mut self, key: &[u8], pairs: &[(f64, &[u8])]) -> Result<usize> {
        let current = self.zset(key)?;
        // A member given twice takes its last score, as in Redis.
        let mut last: std::collections::HashMap<&[u8], f64> = std::collections::HashMap::new();
        for &(score, m) in pairs {
            if score.is_nan() {
                return Err(Error::InvalidArgument("a sorted-set score is not a number (NaN)".into()));
            }
            self.engine().check_value(m)?;
            last.insert(m, score);
        }
        let mut changed = Vec::new();
        for &(_, m) in pairs {
            if let Some(score) = last.remove(m) {
                if current.and_then(|z| z.score(m)) != Some(score) {
                    changed.push((score.to_bits(), m.to_vec()));
                }
            }
        }
        if changed.is_empty() {
            return Ok(0);
        }
        Ok(self.coll(CollOp::ZAdd { key: key.to_vec(), pairs: changed })?.count)
    }

    /// Removes members; how many were present.
    pub fn zrem(&mut self, key: &[u8], members: &[&[u8]]) -> Result<usize> {
        let Some(z) = self.zset(key)? else { return Ok(0) };
        let mut present: Vec<Vec<u8>> = members.iter().filter(|m| z.score(m).is_some()).map(|m| m.to_vec()).collect();
        present.sort_unstable();
        present.dedup();
        if present.is_empty() {
            return Ok(0);
        }
        Ok(self.coll(CollOp::ZRem { key: key.to_vec(), members: present })?.count)
    }

    /// Removes the members of ascending ranks `start..end`; how many.
    pub fn zrem_range(&mut self, key: &[u8], start: usize, end: usize) -> Result<usize> {
        let len = self.zset(key)?.map_or(0, ZSet::len);
        let end = end.min(len);
        if start >= end {
            return Ok(0);
        }
        Ok(self.coll(CollOp::ZRemRange { key: key.to_vec(), start: start as u64, end: end as u64 })?.count)
    }

    /// Stores any value at `key` (replacing what is there) with an absolute
    /// expiry: RENAME and COPY. A collection is written in bounded chunks.
    pub fn put_value(&mut self, key: &[u8], value: Value<'_>, expires_at: u64) -> Result<()> {
        match value {
            Value::Bytes(b) => return self.put(key, b, expires_at),
            Value::Int(n) => return self.put_int(key, n, expires_at),
            Value::List(_) | Value::ZSet(_) => {}
        }
        if self.get(key)?.is_some() || self.holds_expired(key)? {
            self.remove_logged(key)?;
        }
        match value {
            Value::List(l) => {
                let items: Vec<&[u8]> = l.iter_from(0).collect();
                for chunk in items.chunks(CHUNK) {
                    self.coll(CollOp::Push { key: key.to_vec(), left: false, elems: chunk.iter().map(|e| e.to_vec()).collect() })?;
                }
            }
            Value::ZSet(z) => {
                let items: Vec<(f64, &[u8])> = z.iter().map(|(m, s)| (s, m)).collect();
                for chunk in items.chunks(CHUNK) {
                    let pairs = chunk.iter().map(|(s, m)| (s.to_bits(), m.to_vec())).collect();
                    self.coll(CollOp::ZAdd { key: key.to_vec(), pairs })?;
                }
            }
            _ => unreachable!("strings returned above"),
        }
        if expires_at != 0 {
            self.set_expiry(key, expires_at)?;
        }
        Ok(())
    }
}
