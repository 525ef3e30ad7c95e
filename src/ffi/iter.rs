//! `dbkv_iter`: prefix scans.

use std::ffi::c_int;

use super::*;
use crate::engine::ScanIter;

/// A scan in progress. Not thread-safe: use one iterator from one thread at
/// a time (different iterators may run in parallel). Free with `dbkv_iter_free`.
pub struct dbkv_iter {
    it: ScanIter,
    current: Option<(Vec<u8>, Vec<u8>)>,
}

/// Starts a scan over the live keys that begin with `prefix`, in no
/// particular order. Every key present and unchanged for the whole scan is
/// returned exactly once; keys written during the scan may or may not be.
/// Writers are blocked at most while one shard is copied.
///
/// @param prefix, plen  the prefix; plen 0 (prefix may be NULL) scans every key.
/// @param[out] out  receives the iterator; free it with `dbkv_iter_free`.
/// @return `DBKV_OK`, `DBKV_ERR_INVALID_ARGUMENT`, `DBKV_ERR_FAILED`,
///   `DBKV_ERR_INTERNAL`. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn dbkv_scan(db: *const dbkv, prefix: *const u8, plen: usize, out_iter: *mut *mut dbkv_iter) -> c_int {
    guard(|| {
        let db = arg!(in_ref(db, "db"))?;
        let prefix = arg!(bytes(prefix, plen, "prefix"))?;
        db.engine.check_usable()?;
        let slot = arg!(out(out_iter, "out"))?;
        *slot = Box::into_raw(Box::new(dbkv_iter { it: db.engine.scan(prefix), current: None }));
        Ok(DBKV_OK)
    })
}

/// Advances the scan. The key and value pointers stay valid until the next
/// call on this iterator or `dbkv_iter_free`; they are owned by the iterator.
///
/// @param[out] key, klen  the key (required).
/// @param[out] val, vlen  the value (both may be NULL if not wanted).
/// @return `DBKV_OK`, `DBKV_NOT_FOUND` (the scan is over),
///   `DBKV_ERR_INVALID_ARGUMENT`, `DBKV_ERR_FAILED` (the handle failed
///   during the scan, which is incomplete), `DBKV_ERR_INTERNAL`.
#[no_mangle]
pub unsafe extern "C" fn dbkv_iter_next(
    it: *mut dbkv_iter,
    key: *mut *const u8,
    klen: *mut usize,
    val: *mut *const u8,
    vlen: *mut usize,
) -> c_int {
    guard(|| {
        let it = arg!(out(it, "iter"))?;
        let (key, klen) = (arg!(out(key, "key"))?, arg!(out(klen, "klen"))?);
        if val.is_null() != vlen.is_null() {
            return Err(Error::InvalidArgument("val and vlen must both be NULL or both be set".into()));
        }
        it.current = it.it.next();
        if it.current.is_none() && it.it.failed() {
            return Err(Error::Failed("a WAL write or fsync failed during the scan; reopen the directory to recover".into()));
        }
        let Some((k, v)) = &it.current else { return Ok(DBKV_NOT_FOUND) };
        (*key, *klen) = (k.as_ptr(), k.len());
        if let (Some(val), Some(vlen)) = (arg!(opt_out(val)), arg!(opt_out(vlen))) {
            (*val, *vlen) = (v.as_ptr(), v.len());
        }
        Ok(DBKV_OK)
    })
}

/// Frees an iterator. NULL is a no-op.
#[no_mangle]
pub unsafe extern "C" fn dbkv_iter_free(it: *mut dbkv_iter) {
    if !it.is_null() {
        // SAFETY: per dbkv.h, a non-NULL it came from dbkv_scan and is not
        // used again, so the box is reclaimed exactly once.
        let _ = std::panic::catch_unwind(|| drop(unsafe { Box::from_raw(it) }));
    }
}
