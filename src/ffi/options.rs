//! `dbkv_options`: the builder passed to `dbkv_open`.

use std::ffi::{c_char, c_int, CStr, OsStr};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use super::{guard, out, DBKV_OK};
use crate::engine::{Options, RecoveryMode, SyncMode};
use crate::error::Error;

/// `sync_mode`: fsync only on segment rotation, snapshot and close.
pub const DBKV_SYNC_NONE: c_int = 0;
/// `sync_mode` (default): fsync every `sync_interval_ms`; a write returns once queued.
pub const DBKV_SYNC_INTERVAL: c_int = 1;
/// `sync_mode`: a write returns once its record is fsynced; concurrent writers share fsyncs.
pub const DBKV_SYNC_ALWAYS: c_int = 2;
/// `recovery_mode` (default): replay up to the first damaged record, truncate the WAL there.
pub const DBKV_RECOVERY_POINT_IN_TIME: c_int = 0;
/// `recovery_mode`: any damage makes `dbkv_open` fail with `DBKV_ERR_CORRUPTION`; nothing is modified.
pub const DBKV_RECOVERY_ABSOLUTE: c_int = 1;
/// `recovery_mode`: replay every record with a good checksum, skipping damaged ones.
pub const DBKV_RECOVERY_SKIP_CORRUPTED: c_int = 2;

/// Options for `dbkv_open`. Create with `dbkv_options_new`, free with
/// `dbkv_options_free`. Not thread-safe: use one options object from one
/// thread at a time. A setter that rejects a value leaves the options as
/// they were.
pub struct dbkv_options {
    pub(crate) opts: Options,
}

/// Runs a setter on a checked options pointer.
fn with_opts(opts: *mut dbkv_options, set: impl FnOnce(&mut Options) -> Result<(), Error>) -> c_int {
    guard(|| {
        // SAFETY: checked for NULL; the caller passes a live options object.
        let o = unsafe { out(opts, "options") }?;
        set(&mut o.opts)?;
        Ok(DBKV_OK)
    })
}

/// Creates an options object with every default (in-memory, 256 shards,
/// 64 MiB max value, `DBKV_SYNC_INTERVAL` every 100 ms, 64 MiB WAL segments,
/// snapshots every 300 s or 4,000,000 logged writes, keep 3 snapshots,
/// `DBKV_RECOVERY_POINT_IN_TIME`).
///
/// @param[out] out  receives the new object; free it with `dbkv_options_free`.
/// @return `DBKV_OK`, `DBKV_ERR_INVALID_ARGUMENT` (out is NULL), `DBKV_ERR_INTERNAL`.
#[no_mangle]
pub unsafe extern "C" fn dbkv_options_new(out_opts: *mut *mut dbkv_options) -> c_int {
    guard(|| {
        let slot = out(out_opts, "out")?;
        *slot = Box::into_raw(Box::new(dbkv_options { opts: Options::default() }));
        Ok(DBKV_OK)
    })
}

/// Frees an options object. NULL is a no-op. A handle opened with these
/// options keeps its own copy, so options may be freed right after `dbkv_open`.
#[no_mangle]
pub unsafe extern "C" fn dbkv_options_free(opts: *mut dbkv_options) {
    if !opts.is_null() {
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(Box::from_raw(opts))));
    }
}

/// Sets the data directory (created if missing; its parent must exist).
/// NULL means in-memory only (the default): nothing is written to disk.
///
/// @param path  a NUL-terminated path; copied.
/// @return `DBKV_OK`, `DBKV_ERR_INVALID_ARGUMENT` (opts is NULL or path is empty).
#[no_mangle]
pub unsafe extern "C" fn dbkv_options_set_data_dir(opts: *mut dbkv_options, path: *const c_char) -> c_int {
    with_opts(opts, |o| {
        if path.is_null() {
            o.data_dir = None;
            return Ok(());
        }
        let bytes = CStr::from_ptr(path).to_bytes();
        if bytes.is_empty() {
            return Err(Error::InvalidArgument("data_dir is an empty string (pass NULL for in-memory)".into()));
        }
        o.data_dir = Some(PathBuf::from(OsStr::from_bytes(bytes)));
        Ok(())
    })
}

/// Sets the number of shards: a power of two from 1 to 65,536 (default 256).
/// @return `DBKV_OK`, `DBKV_ERR_INVALID_ARGUMENT`.
#[no_mangle]
pub unsafe extern "C" fn dbkv_options_set_shards(opts: *mut dbkv_options, shards: u32) -> c_int {
    with_opts(opts, |o| o.set_shards(shards))
}

/// Sets the largest value accepted, in bytes (default 64 MiB, at most 1 GiB).
/// @return `DBKV_OK`, `DBKV_ERR_INVALID_ARGUMENT`.
#[no_mangle]
pub unsafe extern "C" fn dbkv_options_set_max_value_bytes(opts: *mut dbkv_options, bytes: u64) -> c_int {
    with_opts(opts, |o| o.set_max_value_bytes(bytes))
}

/// Sets the durability mode: `DBKV_SYNC_NONE`, `DBKV_SYNC_INTERVAL` (default)
/// or `DBKV_SYNC_ALWAYS`. Ignored for in-memory handles.
/// @return `DBKV_OK`, `DBKV_ERR_INVALID_ARGUMENT` (any other value).
#[no_mangle]
pub unsafe extern "C" fn dbkv_options_set_sync_mode(opts: *mut dbkv_options, mode: c_int) -> c_int {
    with_opts(opts, |o| {
        o.sync_mode = SyncMode::from_int(mode as i64)?;
        Ok(())
    })
}

/// Sets the fsync interval of `DBKV_SYNC_INTERVAL`, 1 to 60,000 ms (default 100).
/// @return `DBKV_OK`, `DBKV_ERR_INVALID_ARGUMENT`.
#[no_mangle]
pub unsafe extern "C" fn dbkv_options_set_sync_interval_ms(opts: *mut dbkv_options, ms: u64) -> c_int {
    with_opts(opts, |o| o.set_sync_interval_ms(ms))
}

/// Sets the size at which the WAL moves to a new segment file, 4096 bytes
/// to 1 TiB (default 64 MiB).
/// @return `DBKV_OK`, `DBKV_ERR_INVALID_ARGUMENT`.
#[no_mangle]
pub unsafe extern "C" fn dbkv_options_set_wal_segment_bytes(opts: *mut dbkv_options, bytes: u64) -> c_int {
    with_opts(opts, |o| o.set_wal_segment_bytes(bytes))
}

/// Takes a snapshot every `secs` seconds when anything was written since the
/// last one (default 300; 0 = never by time).
/// @return `DBKV_OK`, `DBKV_ERR_INVALID_ARGUMENT` (opts is NULL).
#[no_mangle]
pub unsafe extern "C" fn dbkv_options_set_snapshot_interval_secs(opts: *mut dbkv_options, secs: u64) -> c_int {
    with_opts(opts, |o| {
        o.snapshot_interval_secs = secs;
        Ok(())
    })
}

/// Takes a snapshot once `ops` WAL records were written since the last one
/// and the WAL written since then is at least as large as that snapshot, so
/// snapshot work stays proportional to WAL written (default 4,000,000;
/// 0 = never by count).
/// @return `DBKV_OK`, `DBKV_ERR_INVALID_ARGUMENT` (opts is NULL).
#[no_mangle]
pub unsafe extern "C" fn dbkv_options_set_snapshot_ops(opts: *mut dbkv_options, ops: u64) -> c_int {
    with_opts(opts, |o| {
        o.snapshot_ops = ops;
        Ok(())
    })
}

/// Sets how many snapshots are kept on disk, 1 to 1000 (default 3).
/// @return `DBKV_OK`, `DBKV_ERR_INVALID_ARGUMENT`.
#[no_mangle]
pub unsafe extern "C" fn dbkv_options_set_snapshot_keep(opts: *mut dbkv_options, keep: u32) -> c_int {
    with_opts(opts, |o| o.set_snapshot_keep(keep))
}

/// Sets what recovery does with a damaged WAL: `DBKV_RECOVERY_POINT_IN_TIME`
/// (default), `DBKV_RECOVERY_ABSOLUTE` or `DBKV_RECOVERY_SKIP_CORRUPTED`.
/// @return `DBKV_OK`, `DBKV_ERR_INVALID_ARGUMENT` (any other value).
#[no_mangle]
pub unsafe extern "C" fn dbkv_options_set_recovery_mode(opts: *mut dbkv_options, mode: c_int) -> c_int {
    with_opts(opts, |o| {
        o.recovery_mode = RecoveryMode::from_int(mode as i64)?;
        Ok(())
    })
}
