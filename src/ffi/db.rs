//! `dbkv`: the database handle and its key-value operations.

use std::ffi::c_int;

use super::*;
use crate::engine::{CasOutcome, Engine, LockOutcome, OpKind, OwnerOutcome, Stats};

/// An open database. Thread-safe: any number of threads may call any
/// function on one handle at once, except `dbkv_close`, which must be the
/// last call on the handle.
pub struct dbkv {
    pub(crate) engine: Engine,
}

/// Runtime figures of a handle, filled by `dbkv_stats`. Set `size` to
/// `sizeof(dbkv_statistics)` before the call: fields past `size` are left
/// untouched, so a program built against an older, shorter struct keeps
/// working with a newer library, and new fields are only ever appended.
#[repr(C)]
#[derive(Default)]
pub struct dbkv_statistics {
    /// In: `sizeof(dbkv_statistics)` as the caller knows it.
    pub size: u64,
    /// Live keys.
    pub keys: u64,
    /// WAL records logged by this handle since open (counted when queued).
    pub wal_records: u64,
    /// WAL bytes written to segment files since open (counted when the
    /// WAL thread writes them, so it can lag `wal_records`).
    pub wal_bytes: u64,
    /// fsync/fdatasync calls made by this handle since open.
    pub fsyncs: u64,
    /// Every record with an LSN up to this one is durable.
    pub durable_lsn: u64,
    /// The LSN of the newest record.
    pub last_lsn: u64,
    /// Snapshots taken by this handle, and the duration of the last one.
    pub snapshots_taken: u64,
    pub last_snapshot_duration_us: u64,
    /// 1 if the handle has stopped accepting writes after an I/O failure.
    pub failed: u64,
    /// Recovery in `dbkv_open`: 1 if a snapshot was loaded, and its entries.
    pub recovery_snapshot_loaded: u64,
    pub recovery_snapshot_entries: u64,
    /// WAL records replayed on top of the snapshot.
    pub recovery_wal_records: u64,
    /// Damaged records skipped or cut off, and the WAL bytes dropped with them.
    pub recovery_corrupt_records: u64,
    pub recovery_bytes_dropped: u64,
    pub recovery_duration_us: u64,
    /// Operations since open, by kind: reads (get, exists, ttl, each key of
    /// mget), writes (set, setnx, cas, each key of mset), deletes (delete,
    /// each key of mdel), incr/decr, expire/persist, lock/unlock/extend,
    /// transactions (fenced writes and `dbkv serve`'s other commands),
    /// scans started.
    pub ops_read: u64,
    pub ops_write: u64,
    pub ops_delete: u64,
    pub ops_incr: u64,
    pub ops_expire: u64,
    pub ops_lock: u64,
    pub ops_txn: u64,
    pub ops_scan: u64,
    /// WAL segment files on disk, and segments started since open.
    pub wal_segments: u64,
    pub wal_rotations: u64,
    /// WAL fsync latency since open, in microseconds: total, median, 99th
    /// percentile and maximum. Percentiles come from a log2 histogram: each
    /// is its bucket's upper bound (at most twice the true value, never
    /// above the maximum).
    pub fsync_total_us: u64,
    pub fsync_p50_us: u64,
    pub fsync_p99_us: u64,
    pub fsync_max_us: u64,
    /// Snapshots that failed (each is retried at the next trigger), the
    /// size of the last snapshot written and when it completed (unix ms).
    pub snapshot_failures: u64,
    pub last_snapshot_bytes: u64,
    pub last_snapshot_unix_ms: u64,
    /// Expired keys removed by the background sweep.
    pub expired_reclaimed: u64,
    /// Writes that waited because the WAL queue was full (32 MiB), and the
    /// total time they waited, in microseconds.
    pub backpressure_waits: u64,
    pub backpressure_wait_us: u64,
}

impl dbkv_statistics {
    fn from_engine(s: &Stats) -> dbkv_statistics {
        dbkv_statistics {
            size: std::mem::size_of::<dbkv_statistics>() as u64,
            keys: s.keys,
            wal_records: s.wal_records,
            wal_bytes: s.wal_bytes,
            fsyncs: s.fsyncs,
            durable_lsn: s.durable_lsn,
            last_lsn: s.last_lsn,
            snapshots_taken: s.snapshots_taken,
            last_snapshot_duration_us: s.last_snapshot_duration_us,
            failed: s.failed as u64,
            recovery_snapshot_loaded: s.recovery_snapshot_loaded as u64,
            recovery_snapshot_entries: s.recovery_snapshot_entries,
            recovery_wal_records: s.recovery_wal_records,
            recovery_corrupt_records: s.recovery_corrupt_records,
            recovery_bytes_dropped: s.recovery_bytes_dropped,
            recovery_duration_us: s.recovery_duration_us,
            ops_read: s.ops[OpKind::Read as usize],
            ops_write: s.ops[OpKind::Write as usize],
            ops_delete: s.ops[OpKind::Delete as usize],
            ops_incr: s.ops[OpKind::Incr as usize],
            ops_expire: s.ops[OpKind::Expire as usize],
            ops_lock: s.ops[OpKind::Lock as usize],
            ops_txn: s.ops[OpKind::Txn as usize],
            ops_scan: s.ops[OpKind::Scan as usize],
            wal_segments: s.wal_segments,
            wal_rotations: s.wal_rotations,
            fsync_total_us: s.fsync_total_us,
            fsync_p50_us: s.fsync_p50_us,
            fsync_p99_us: s.fsync_p99_us,
            fsync_max_us: s.fsync_max_us,
            snapshot_failures: s.snapshot_failures,
            last_snapshot_bytes: s.last_snapshot_bytes,
            last_snapshot_unix_ms: s.last_snapshot_unix_ms,
            expired_reclaimed: s.expired_reclaimed,
            backpressure_waits: s.backpressure_waits,
            backpressure_wait_us: s.backpressure_wait_us,
        }
    }
}

/// Borrows the engine of a handle.
///
/// # Safety
/// A non-NULL `db` is a live handle from `dbkv_open`, not closed during `'a`.
pub(super) unsafe fn engine<'a>(db: *const dbkv) -> Result<&'a Engine, Error> {
    // SAFETY: in_ref checks NULL; the caller vouches for a non-NULL db.
    Ok(&unsafe { in_ref(db, "db") }?.engine)
}

/// Borrows a key argument.
///
/// # Safety
/// As for `bytes`.
pub(super) unsafe fn key<'a>(k: *const u8, len: usize) -> Result<&'a [u8], Error> {
    // SAFETY: the caller's contract is `bytes`'s.
    unsafe { bytes(k, len, "key") }
}

/// Builds the arrays of key (and value) slices of a multi-key call.
///
/// # Safety
/// With `n` > 0, non-NULL `ptrs` and `lens` point to `n` elements each,
/// and each non-NULL `ptrs[i]` to `lens[i]` bytes, all valid for `'a`.
unsafe fn slices<'a>(ptrs: *const *const u8, lens: *const usize, n: usize, what: &str) -> Result<Vec<&'a [u8]>, Error> {
    if n == 0 {
        return Ok(Vec::new());
    }
    // SAFETY: the caller vouches that non-NULL arrays hold n elements.
    let (ptrs, lens) = unsafe { (bytes_array(ptrs, n, what)?, bytes_array(lens, n, what)?) };
    // SAFETY: the caller vouches that each non-NULL ptrs[i] covers lens[i] bytes.
    ptrs.iter().zip(lens).map(|(&p, &l)| unsafe { bytes(p, l, what) }).collect()
}

/// Borrows an array of `n` elements; NULL is refused.
///
/// # Safety
/// A non-NULL `p` points to `n` valid, aligned `T`s, not mutated for `'a`.
unsafe fn bytes_array<'a, T>(p: *const T, n: usize, what: &str) -> Result<&'a [T], Error> {
    if p.is_null() {
        return Err(Error::InvalidArgument(format!("{what} array is NULL")));
    }
    // SAFETY: p is non-NULL; the caller vouches for n elements.
    Ok(unsafe { std::slice::from_raw_parts(p, n) })
}

fn found(yes: bool) -> c_int {
    if yes {
        DBKV_OK
    } else {
        DBKV_NOT_FOUND
    }
}

/// Opens a database. With a data directory, takes its lock and recovers
/// its contents (snapshot + WAL replay) before returning.
///
/// @param opts  options, or NULL for defaults (in-memory). Copied; may be freed after.
/// @param[out] out  receives the handle; close it with `dbkv_close`.
/// @return `DBKV_OK`; `DBKV_ERR_INVALID_ARGUMENT` (out is NULL, or the
///   options are inconsistent); `DBKV_ERR_BUSY` (the data directory is open
///   in this or another process); `DBKV_ERR_CORRUPTION` (damaged files under
///   `DBKV_RECOVERY_ABSOLUTE`, or no usable snapshot); `DBKV_ERR_IO`;
///   `DBKV_ERR_INTERNAL`. On failure `*out` is untouched and nothing is held.
#[no_mangle]
pub unsafe extern "C" fn dbkv_open(opts: *const dbkv_options, out_db: *mut *mut dbkv) -> c_int {
    guard(|| {
        let slot = arg!(out(out_db, "out"))?;
        let options = arg!(opt_ref(opts)).map(|o| o.opts.clone()).unwrap_or_default();
        let engine = Engine::open(options)?;
        *slot = Box::into_raw(Box::new(dbkv { engine }));
        Ok(DBKV_OK)
    })
}

/// Closes a handle: drains the WAL queue, fsyncs it, stops background
/// threads, releases the data directory and frees the handle. The handle
/// is freed whatever the status. Iterators still open keep the in-memory
/// data alive until freed, but no longer see later writes.
///
/// @return `DBKV_OK`; `DBKV_ERR_INVALID_ARGUMENT` (db is NULL);
///   `DBKV_ERR_FAILED` or `DBKV_ERR_IO` (the final flush failed: writes
///   acknowledged since the last successful sync may not be durable).
#[no_mangle]
pub unsafe extern "C" fn dbkv_close(db: *mut dbkv) -> c_int {
    guard(|| {
        if db.is_null() {
            return Err(Error::InvalidArgument("db is NULL".into()));
        }
        // SAFETY: per dbkv.h, a non-NULL db came from dbkv_open and this is
        // the last call on it, so the box is reclaimed exactly once.
        let db = unsafe { Box::from_raw(db) };
        db.engine.close()?;
        Ok(DBKV_OK)
    })
}

/// Stores `val` under `key`, replacing any previous value and TTL.
///
/// @param key, klen  the key: 1 to 65,535 bytes.
/// @param val, vlen  the value: 0 to `max_value_bytes` bytes (val may be NULL when vlen is 0).
/// @param ttl_ms  time to live in milliseconds; 0 = no expiry.
/// @return `DBKV_OK`, `DBKV_ERR_INVALID_ARGUMENT`, `DBKV_ERR_TOO_LARGE`,
///   `DBKV_ERR_FAILED`, `DBKV_ERR_INTERNAL`. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn dbkv_set(db: *const dbkv, key: *const u8, klen: usize, val: *const u8, vlen: usize, ttl_ms: u64) -> c_int {
    guard(|| {
        arg!(engine(db))?.set(arg!(self::key(key, klen))?, arg!(bytes(val, vlen, "val"))?, ttl_ms)?;
        Ok(DBKV_OK)
    })
}

/// Gets a copy of the value of `key`. Counters read as base-10 ASCII.
///
/// @param[out] val  receives a buffer owned by the caller, to free with
///   `dbkv_free`; never NULL on success, even for an empty value.
/// @param[out] vlen  receives the value's length.
/// @return `DBKV_OK`, `DBKV_NOT_FOUND`, `DBKV_ERR_INVALID_ARGUMENT`,
///   `DBKV_ERR_TOO_LARGE` (key), `DBKV_ERR_FAILED`, `DBKV_ERR_INTERNAL`. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn dbkv_get(db: *const dbkv, key: *const u8, klen: usize, val: *mut *mut u8, vlen: *mut usize) -> c_int {
    guard(|| {
        let (e, k) = (arg!(engine(db))?, arg!(self::key(key, klen))?);
        let (val, vlen) = (arg!(out(val, "val"))?, arg!(out(vlen, "vlen"))?);
        match e.read(k, |b| malloc_copy(b).map(|p| (p, b.len())))? {
            None => Ok(DBKV_NOT_FOUND),
            Some(copied) => {
                (*val, *vlen) = copied?;
                Ok(DBKV_OK)
            }
        }
    })
}

/// Copies the value of `key` into the caller's buffer, with no allocation.
///
/// @param buf, cap  the destination (buf may be NULL when cap is 0).
/// @param[out] len  on `DBKV_OK` the value's length; on
///   `DBKV_ERR_BUFFER_TOO_SMALL` the size needed (nothing is copied).
/// @return `DBKV_OK`, `DBKV_NOT_FOUND`, `DBKV_ERR_BUFFER_TOO_SMALL`,
///   `DBKV_ERR_INVALID_ARGUMENT`, `DBKV_ERR_TOO_LARGE` (key), `DBKV_ERR_FAILED`,
///   `DBKV_ERR_INTERNAL`. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn dbkv_get_into(db: *const dbkv, key: *const u8, klen: usize, buf: *mut u8, cap: usize, len: *mut usize) -> c_int {
    guard(|| {
        let (e, k, len) = (arg!(engine(db))?, arg!(self::key(key, klen))?, arg!(out(len, "len"))?);
        if buf.is_null() && cap > 0 {
            return Err(Error::InvalidArgument("buf is NULL with cap > 0".into()));
        }
        let copied = e.read(k, |v| {
            if v.len() <= cap {
                // SAFETY: buf is non-NULL when cap > 0 (checked above) and, by
                // dbkv.h's contract, has room for cap >= v.len() bytes; a
                // value cannot overlap the caller's buffer.
                unsafe { std::ptr::copy_nonoverlapping(v.as_ptr(), buf, v.len()) };
            }
            v.len()
        })?;
        match copied {
            None => Ok(DBKV_NOT_FOUND),
            Some(n) => {
                *len = n;
                if n > cap {
                    return Err(Error::BufferTooSmall(n));
                }
                Ok(DBKV_OK)
            }
        }
    })
}

/// Deletes `key`.
/// @return `DBKV_OK`, `DBKV_NOT_FOUND`, `DBKV_ERR_INVALID_ARGUMENT`,
///   `DBKV_ERR_TOO_LARGE` (key), `DBKV_ERR_FAILED`, `DBKV_ERR_INTERNAL`. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn dbkv_delete(db: *const dbkv, key: *const u8, klen: usize) -> c_int {
    guard(|| Ok(found(arg!(engine(db))?.delete(arg!(self::key(key, klen))?)?)))
}

/// Tells whether `key` exists (and has not expired).
/// @return `DBKV_OK` (exists), `DBKV_NOT_FOUND`, `DBKV_ERR_INVALID_ARGUMENT`,
///   `DBKV_ERR_TOO_LARGE` (key), `DBKV_ERR_FAILED`, `DBKV_ERR_INTERNAL`. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn dbkv_exists(db: *const dbkv, key: *const u8, klen: usize) -> c_int {
    guard(|| Ok(found(arg!(engine(db))?.exists(arg!(self::key(key, klen))?)?)))
}

/// Adds `delta` to the counter at `key` and returns the new value. A
/// missing key counts as 0 and is created without TTL; an existing key
/// keeps its TTL. The stored value must be a base-10 signed 64-bit integer
/// in ASCII (no '+', no leading zeros), as `dbkv_get` of a counter returns.
///
/// @param[out] out  the new value (may be NULL if not wanted).
/// @return `DBKV_OK`, `DBKV_ERR_NOT_INTEGER`, `DBKV_ERR_OVERFLOW` (nothing
///   changed; never wraps or saturates), `DBKV_ERR_INVALID_ARGUMENT`,
///   `DBKV_ERR_TOO_LARGE` (key), `DBKV_ERR_FAILED`, `DBKV_ERR_INTERNAL`. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn dbkv_incr(db: *const dbkv, key: *const u8, klen: usize, delta: i64, out_value: *mut i64) -> c_int {
    guard(|| {
        let k = arg!(self::key(key, klen))?;
        match arg!(engine(db))?.incr(k, delta) {
            Ok(v) => Ok(write_counter(arg!(opt_out(out_value)), v)),
            Err(e) => counter_error(k, e),
        }
    })
}

/// Subtracts `delta` from the counter at `key`; otherwise as `dbkv_incr`.
#[no_mangle]
pub unsafe extern "C" fn dbkv_decr(db: *const dbkv, key: *const u8, klen: usize, delta: i64, out_value: *mut i64) -> c_int {
    guard(|| {
        let k = arg!(self::key(key, klen))?;
        match arg!(engine(db))?.decr(k, delta) {
            Ok(v) => Ok(write_counter(arg!(opt_out(out_value)), v)),
            Err(e) => counter_error(k, e),
        }
    })
}

fn write_counter(out_value: Option<&mut i64>, v: i64) -> c_int {
    if let Some(o) = out_value {
        *o = v;
    }
    DBKV_OK
}

/// Counter errors name their key, so that concurrent failures can be told
/// apart by their messages.
fn counter_error(key: &[u8], e: Error) -> Result<c_int, Error> {
    match e {
        Error::NotInteger | Error::Overflow => {
            let shown: String = key.iter().take(64).flat_map(|b| std::ascii::escape_default(*b)).map(char::from).collect();
            let more = if key.len() > 64 { "..." } else { "" };
            set_last_error(format!("key \"{shown}{more}\": {e}"));
            Ok(status_of(&e))
        }
        other => Err(other),
    }
}

/// Stores `val` under `key` only if the key does not exist.
/// @return `DBKV_OK` (stored), `DBKV_EXISTS` (nothing written),
///   `DBKV_ERR_INVALID_ARGUMENT`, `DBKV_ERR_TOO_LARGE`, `DBKV_ERR_FAILED`,
///   `DBKV_ERR_INTERNAL`. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn dbkv_setnx(db: *const dbkv, key: *const u8, klen: usize, val: *const u8, vlen: usize, ttl_ms: u64) -> c_int {
    guard(|| {
        let stored = arg!(engine(db))?.setnx(arg!(self::key(key, klen))?, arg!(bytes(val, vlen, "val"))?, ttl_ms)?;
        Ok(if stored { DBKV_OK } else { DBKV_EXISTS })
    })
}

/// Compare-and-swap: replaces the value (and TTL) of `key` with `new_val`
/// only if the current value equals `expected` byte for byte.
/// @return `DBKV_OK` (swapped), `DBKV_MISMATCH`, `DBKV_NOT_FOUND`,
///   `DBKV_ERR_INVALID_ARGUMENT`, `DBKV_ERR_TOO_LARGE`, `DBKV_ERR_FAILED`,
///   `DBKV_ERR_INTERNAL`. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn dbkv_cas(
    db: *const dbkv,
    key: *const u8,
    klen: usize,
    expected: *const u8,
    elen: usize,
    new_val: *const u8,
    nlen: usize,
    ttl_ms: u64,
) -> c_int {
    guard(|| {
        let outcome = arg!(engine(db))?.cas(arg!(self::key(key, klen))?, arg!(bytes(expected, elen, "expected"))?, arg!(bytes(new_val, nlen, "new_val"))?, ttl_ms)?;
        Ok(match outcome {
            CasOutcome::Swapped => DBKV_OK,
            CasOutcome::Mismatch => DBKV_MISMATCH,
            CasOutcome::NotFound => DBKV_NOT_FOUND,
        })
    })
}

/// Sets the TTL of an existing key to `ttl_ms` from now; 0 removes the
/// expiry (as `dbkv_persist`), consistent with `ttl_ms` everywhere else.
/// @return `DBKV_OK`, `DBKV_NOT_FOUND`, `DBKV_ERR_INVALID_ARGUMENT`,
///   `DBKV_ERR_TOO_LARGE` (key), `DBKV_ERR_FAILED`, `DBKV_ERR_INTERNAL`. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn dbkv_expire(db: *const dbkv, key: *const u8, klen: usize, ttl_ms: u64) -> c_int {
    guard(|| Ok(found(arg!(engine(db))?.expire(arg!(self::key(key, klen))?, ttl_ms)?)))
}

/// Removes the TTL of an existing key.
/// @return `DBKV_OK`, `DBKV_NOT_FOUND`, `DBKV_ERR_INVALID_ARGUMENT`,
///   `DBKV_ERR_TOO_LARGE` (key), `DBKV_ERR_FAILED`, `DBKV_ERR_INTERNAL`. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn dbkv_persist(db: *const dbkv, key: *const u8, klen: usize) -> c_int {
    guard(|| Ok(found(arg!(engine(db))?.persist(arg!(self::key(key, klen))?)?)))
}

/// Reads the time to live of `key`.
/// @param[out] ms  milliseconds remaining (at least 1), or -1 if the key has no expiry.
/// @return `DBKV_OK`, `DBKV_NOT_FOUND`, `DBKV_ERR_INVALID_ARGUMENT`,
///   `DBKV_ERR_TOO_LARGE` (key), `DBKV_ERR_FAILED`, `DBKV_ERR_INTERNAL`. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn dbkv_ttl(db: *const dbkv, key: *const u8, klen: usize, ms: *mut i64) -> c_int {
    guard(|| {
        let (e, k, ms) = (arg!(engine(db))?, arg!(self::key(key, klen))?, arg!(out(ms, "ms"))?);
        match e.ttl(k)? {
            None => Ok(DBKV_NOT_FOUND),
            Some(t) => {
                *ms = t;
                Ok(DBKV_OK)
            }
        }
    })
}

/// Stores `n` pairs atomically, all with the same TTL: no reader sees some
/// of them without the others. Later duplicates of a key win. All keys and
/// values are checked before anything is written.
/// @param keys, key_lens, vals, val_lens  arrays of `n` entries (may be NULL when n is 0).
/// @return `DBKV_OK`, `DBKV_ERR_INVALID_ARGUMENT`, `DBKV_ERR_TOO_LARGE`,
///   `DBKV_ERR_FAILED`, `DBKV_ERR_INTERNAL`. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn dbkv_mset(
    db: *const dbkv,
    keys: *const *const u8,
    key_lens: *const usize,
    vals: *const *const u8,
    val_lens: *const usize,
    n: usize,
    ttl_ms: u64,
) -> c_int {
    guard(|| {
        let e = arg!(engine(db))?;
        let k = arg!(slices(keys, key_lens, n, "keys"))?;
        let v = arg!(slices(vals, val_lens, n, "vals"))?;
        e.mset(&k, &v, ttl_ms)?;
        Ok(DBKV_OK)
    })
}

/// Gets `n` values at one point in time.
/// @param[out] vals_out  array of `n` pointers: each receives a buffer to
///   free with `dbkv_free`, or NULL for a missing key (an empty value is a
///   non-NULL pointer with length 0).
/// @param[out] val_lens_out  array of `n` lengths (0 for missing keys).
/// @return `DBKV_OK`, `DBKV_ERR_INVALID_ARGUMENT`, `DBKV_ERR_TOO_LARGE`
///   (key), `DBKV_ERR_FAILED`, `DBKV_ERR_INTERNAL`. On failure nothing is allocated or written. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn dbkv_mget(
    db: *const dbkv,
    keys: *const *const u8,
    key_lens: *const usize,
    n: usize,
    vals_out: *mut *mut u8,
    val_lens_out: *mut usize,
) -> c_int {
    guard(|| {
        let e = arg!(engine(db))?;
        let k = arg!(slices(keys, key_lens, n, "keys"))?;
        if n > 0 && (vals_out.is_null() || val_lens_out.is_null()) {
            return Err(Error::InvalidArgument("vals_out or val_lens_out is NULL".into()));
        }
        let values = e.mget(&k)?;
        let mut copies: Vec<(*mut u8, usize)> = Vec::with_capacity(n);
        for v in &values {
            let copy = match v {
                None => Ok((std::ptr::null_mut(), 0)),
                Some(b) => malloc_copy(b).map(|p| (p, b.len())),
            };
            match copy {
                Ok(c) => copies.push(c),
                Err(err) => {
                    // SAFETY: each p is NULL or a malloc_copy buffer not yet
                    // handed out, freed once here.
                    copies.iter().for_each(|(p, _)| unsafe { libc::free(*p as *mut _) });
                    return Err(err);
                }
            }
        }
        for (i, (p, l)) in copies.into_iter().enumerate() {
            // SAFETY: both arrays are non-NULL when n > 0 (checked above) and,
            // by dbkv.h's contract, hold n elements; i < values.len() == n.
            unsafe {
                *vals_out.add(i) = p;
                *val_lens_out.add(i) = l;
            }
        }
        Ok(DBKV_OK)
    })
}

/// Deletes `n` keys atomically.
/// @param[out] deleted  how many of the keys existed (may be NULL).
/// @return `DBKV_OK`, `DBKV_ERR_INVALID_ARGUMENT`, `DBKV_ERR_TOO_LARGE`
///   (key), `DBKV_ERR_FAILED`, `DBKV_ERR_INTERNAL`. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn dbkv_mdel(db: *const dbkv, keys: *const *const u8, key_lens: *const usize, n: usize, deleted: *mut usize) -> c_int {
    guard(|| {
        let e = arg!(engine(db))?;
        let k = arg!(slices(keys, key_lens, n, "keys"))?;
        let count = e.mdel(&k)?;
        if let Some(d) = arg!(opt_out(deleted)) {
            *d = count;
        }
        Ok(DBKV_OK)
    })
}

/// Takes the lock `key` for `owner` for `ttl_ms`. The lock lives in the
/// keyspace: its value is the owner. If `owner` already holds it, the TTL
/// is refreshed and a new token issued. With a data directory the grant is
/// durable before this returns, in every sync mode.
///
/// @param owner, olen  the owner identity, 1 byte or more.
/// @param ttl_ms  must be > 0: a lock without expiry would outlive a crashed owner.
/// @param[out] fence  the fencing token: strictly greater than every token
///   this data directory handed out before, across restarts (may be NULL).
/// @return `DBKV_OK`, `DBKV_LOCKED` (another owner holds it),
///   `DBKV_ERR_INVALID_ARGUMENT`, `DBKV_ERR_TOO_LARGE`, `DBKV_ERR_FAILED`,
///   `DBKV_ERR_INTERNAL`. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn dbkv_lock(
    db: *const dbkv,
    key: *const u8,
    klen: usize,
    owner: *const u8,
    olen: usize,
    ttl_ms: u64,
    fence: *mut u64,
) -> c_int {
    guard(|| match arg!(engine(db))?.lock(arg!(self::key(key, klen))?, arg!(bytes(owner, olen, "owner"))?, ttl_ms)? {
        LockOutcome::Locked => Ok(DBKV_LOCKED),
        LockOutcome::Granted(token) => {
            if let Some(f) = arg!(opt_out(fence)) {
                *f = token;
            }
            Ok(DBKV_OK)
        }
    })
}

fn owner_status(o: OwnerOutcome) -> c_int {
    match o {
        OwnerOutcome::Done => DBKV_OK,
        OwnerOutcome::NotFound => DBKV_NOT_FOUND,
        OwnerOutcome::NotOwner => DBKV_NOT_OWNER,
    }
}

/// Releases the lock `key` if `owner` holds it (durable before return with a data directory).
/// @return `DBKV_OK`, `DBKV_NOT_FOUND`, `DBKV_NOT_OWNER` (nothing changed),
///   `DBKV_ERR_INVALID_ARGUMENT`, `DBKV_ERR_TOO_LARGE`, `DBKV_ERR_FAILED`, `DBKV_ERR_INTERNAL`. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn dbkv_unlock(db: *const dbkv, key: *const u8, klen: usize, owner: *const u8, olen: usize) -> c_int {
    guard(|| Ok(owner_status(arg!(engine(db))?.unlock(arg!(self::key(key, klen))?, arg!(bytes(owner, olen, "owner"))?)?)))
}

/// Sets the expiry of the lock `key` held by `owner` to now + `ttl_ms`
/// (`ttl_ms` > 0; durable before return with a data directory).
/// @return `DBKV_OK`, `DBKV_NOT_FOUND`, `DBKV_NOT_OWNER` (nothing changed),
///   `DBKV_ERR_INVALID_ARGUMENT`, `DBKV_ERR_TOO_LARGE`, `DBKV_ERR_FAILED`, `DBKV_ERR_INTERNAL`. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn dbkv_extend_lock(db: *const dbkv, key: *const u8, klen: usize, owner: *const u8, olen: usize, ttl_ms: u64) -> c_int {
    guard(|| Ok(owner_status(arg!(engine(db))?.extend_lock(arg!(self::key(key, klen))?, arg!(bytes(owner, olen, "owner"))?, ttl_ms)?)))
}

/// Counts live keys (expired keys are never counted).
/// @return `DBKV_OK`, `DBKV_ERR_INVALID_ARGUMENT`, `DBKV_ERR_FAILED`, `DBKV_ERR_INTERNAL`. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn dbkv_count(db: *const dbkv, out_count: *mut u64) -> c_int {
    guard(|| {
        let (e, o) = (arg!(engine(db))?, arg!(out(out_count, "out"))?);
        e.check_usable()?;
        *o = e.count();
        Ok(DBKV_OK)
    })
}

/// Returns once every write made before the call is durable (fsynced), in
/// any sync mode. A no-op for in-memory handles.
/// @return `DBKV_OK`, `DBKV_ERR_INVALID_ARGUMENT`, `DBKV_ERR_FAILED`, `DBKV_ERR_INTERNAL`. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn dbkv_sync(db: *const dbkv) -> c_int {
    guard(|| {
        arg!(engine(db))?.sync()?;
        Ok(DBKV_OK)
    })
}

/// Takes a snapshot now and returns once it is durable. Writers keep
/// running meanwhile; each shard is blocked only while it is copied.
/// @return `DBKV_OK`, `DBKV_ERR_INVALID_ARGUMENT` (NULL, or an in-memory
///   handle), `DBKV_ERR_IO`, `DBKV_ERR_FAILED`, `DBKV_ERR_INTERNAL`. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn dbkv_snapshot(db: *const dbkv) -> c_int {
    guard(|| {
        arg!(engine(db))?.snapshot()?;
        Ok(DBKV_OK)
    })
}

/// Fills `*out` with the handle's figures; set `out->size` first.
/// @return `DBKV_OK`, `DBKV_ERR_INVALID_ARGUMENT` (NULL, or `out->size`
///   smaller than 16, i.e. not even `size` and `keys`), `DBKV_ERR_INTERNAL`. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn dbkv_stats(db: *const dbkv, out_stats: *mut dbkv_statistics) -> c_int {
    guard(|| {
        let e = arg!(engine(db))?;
        if out_stats.is_null() {
            return Err(null("out"));
        }
        // The caller's struct may be shorter than ours (an older header), so
        // no reference to a whole `dbkv_statistics` is ever formed over it:
        // only its leading `size` field is read, through a raw pointer.
        // SAFETY: out_stats is non-NULL and, by the API contract, points to
        // at least the `size` field (8 bytes); read_unaligned makes no
        // alignment assumption about the caller's memory.
        let caller_size = unsafe { (out_stats as *const u64).read_unaligned() };
        if caller_size < 16 {
            return Err(Error::InvalidArgument(format!("stats size {caller_size} is smaller than 16: set out->size = sizeof(dbkv_statistics)")));
        }
        let full = dbkv_statistics::from_engine(&e.stats());
        let n = caller_size.min(std::mem::size_of::<dbkv_statistics>() as u64) as usize;
        // SAFETY: the caller declared `caller_size` (>= n) writable bytes at
        // out_stats; bytes 8..n are copied from a local struct (which cannot
        // overlap the caller's memory), leaving the caller's `size` as is.
        unsafe { std::ptr::copy_nonoverlapping((&full as *const dbkv_statistics as *const u8).add(8), (out_stats as *mut u8).add(8), n - 8) };
        Ok(DBKV_OK)
    })
}
