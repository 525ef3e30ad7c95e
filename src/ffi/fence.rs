//! Fenced writes: the C face of `Engine::set_fenced` / `delete_fenced`.
//! The token check runs inside the engine, under the same shard locks as
//! the write, so no grant of the lock can slip in between check and write;
//! a client-side "check, then write" could not give that.

use std::ffi::c_int;

use super::db::{engine, key};
use super::*;
use crate::engine::FenceOutcome;

fn fence_status(o: FenceOutcome) -> c_int {
    match o {
        FenceOutcome::Done => DBKV_OK,
        FenceOutcome::NotFound => DBKV_NOT_FOUND,
        FenceOutcome::Stale => DBKV_STALE_TOKEN,
    }
}

/// Stores `val` under `key`, replacing any previous value, TTL and type (as
/// `dbkv_set`), only if the lock `lock_key` is held, now, with the fencing
/// token `token` that `dbkv_lock` returned. A holder that paused past its
/// lease while another owner took the lock holds an older token, and is
/// refused here instead of overwriting the newer holder's work. The check
/// and the write are one atomic step, logged as one WAL record. The lock
/// itself (owner, TTL, token) is left as it is, unless `key` is `lock_key`:
/// the lock entry is then overwritten by a plain value without a token, so
/// every later fenced write against it is refused.
/// Durable as `dbkv_set` is (before return under `DBKV_SYNC_ALWAYS`);
/// unlike a lock grant it is not forced to disk in every mode.
///
/// @param lock_key, lk_len  the lock's key: 1 to 65,535 bytes.
/// @param token  the fencing token of the grant the caller holds. Tokens
///   start at 1, so 0 is always stale.
/// @param key, klen  the key to write: 1 to 65,535 bytes.
/// @param val, vlen  the value: 0 to `max_value_bytes` bytes (val may be NULL when vlen is 0).
/// @param ttl_ms  time to live of `key` in milliseconds; 0 = no expiry.
/// @return `DBKV_OK` (written), `DBKV_STALE_TOKEN` (the lock is missing,
///   expired, released or held with another token; nothing written),
///   `DBKV_ERR_INVALID_ARGUMENT`, `DBKV_ERR_TOO_LARGE`, `DBKV_ERR_FAILED`,
///   `DBKV_ERR_INTERNAL`. Arguments are checked before the token, so a bad
///   argument is an error even with a stale token. Never
///   `DBKV_ERR_WRONG_TYPE`: a list or sorted set at `key` is replaced.
///   Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn dbkv_set_fenced(
    db: *const dbkv,
    lock_key: *const u8,
    lk_len: usize,
    token: u64,
    key: *const u8,
    klen: usize,
    val: *const u8,
    vlen: usize,
    ttl_ms: u64,
) -> c_int {
    guard(|| {
        let e = arg!(engine(db))?;
        let (lk, k) = (arg!(bytes(lock_key, lk_len, "lock_key"))?, arg!(self::key(key, klen))?);
        Ok(fence_status(e.set_fenced(lk, token, k, arg!(bytes(val, vlen, "val"))?, ttl_ms)?))
    })
}

/// Deletes `key` (of any type, as `dbkv_delete`) only if the lock
/// `lock_key` is held, now, with the fencing token `token`; otherwise as
/// `dbkv_set_fenced`. Deleting `lock_key` itself releases the lock.
///
/// @param lock_key, lk_len  the lock's key: 1 to 65,535 bytes.
/// @param token  the fencing token of the grant the caller holds.
/// @param key, klen  the key to delete: 1 to 65,535 bytes.
/// @return `DBKV_OK` (deleted), `DBKV_NOT_FOUND` (the token is current but
///   `key` does not exist), `DBKV_STALE_TOKEN` (nothing changed),
///   `DBKV_ERR_INVALID_ARGUMENT`, `DBKV_ERR_TOO_LARGE` (a key),
///   `DBKV_ERR_FAILED`, `DBKV_ERR_INTERNAL`. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn dbkv_delete_fenced(
    db: *const dbkv,
    lock_key: *const u8,
    lk_len: usize,
    token: u64,
    key: *const u8,
    klen: usize,
) -> c_int {
    guard(|| {
        let e = arg!(engine(db))?;
        let (lk, k) = (arg!(bytes(lock_key, lk_len, "lock_key"))?, arg!(self::key(key, klen))?);
        Ok(fence_status(e.delete_fenced(lk, token, k)?))
    })
}
