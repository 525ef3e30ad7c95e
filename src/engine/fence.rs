//! Fenced writes: a write that checks, atomically with itself, that a lock
//! is still held with the fencing token the writer was granted. A holder
//! that paused past its lease and lost the lock to a newer token is
//! refused, which is what makes a fencing token useful (the storage, not
//! the client, rejects stale tokens). The check and the write run in one
//! transaction under both keys' shard locks and log one record.

#![forbid(unsafe_code)]

use super::{check_key, Engine, Scope, Txn};
use crate::error::Result;

/// Result of a fenced write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FenceOutcome {
    /// The token is current and the write was applied.
    Done,
    /// The token is current but there was nothing to delete.
    NotFound,
    /// The lock is not held with that token (expired, released, or granted
    /// again); nothing was written.
    Stale,
}

impl Txn<'_> {
    /// True if `lock_key` is a live lock granted with exactly `token`.
    pub fn fence_holds(&self, lock_key: &[u8], token: u64) -> Result<bool> {
        Ok(self.lock_token(lock_key)? == Some(token))
    }
}

impl Engine {
    /// Stores `value` at `key` (TTL in ms, 0 = none) if `lock_key` is held
    /// with `token`.
    pub fn set_fenced(&self, lock_key: &[u8], token: u64, key: &[u8], value: &[u8], ttl_ms: u64) -> Result<FenceOutcome> {
        check_key(lock_key)?;
        self.check_value(value)?;
        let expires_at = if ttl_ms == 0 { 0 } else { self.expiry(ttl_ms)? };
        self.transact(Scope::Keys(&[lock_key, key]), |t| {
            if !t.fence_holds(lock_key, token)? {
                return Ok(FenceOutcome::Stale);
            }
            t.put(key, value, expires_at)?;
            Ok(FenceOutcome::Done)
        })?
    }

    /// Deletes `key` if `lock_key` is held with `token`.
    pub fn delete_fenced(&self, lock_key: &[u8], token: u64, key: &[u8]) -> Result<FenceOutcome> {
        check_key(lock_key)?;
        self.transact(Scope::Keys(&[lock_key, key]), |t| {
            if !t.fence_holds(lock_key, token)? {
                return Ok(FenceOutcome::Stale);
            }
            Ok(if t.delete(key)? { FenceOutcome::Done } else { FenceOutcome::NotFound })
        })?
    }
}
