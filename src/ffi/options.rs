//! `dbkv_options`: the builder passed to `dbkv_open`.

use std::ffi::{c_char, c_int, c_void, CStr, CString, OsStr};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use super::{guard, out, DBKV_OK};
use crate::engine::{LogLevel, Options, RecoveryMode, SyncMode};
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

/// Log level: the handle stopped accepting writes, a snapshot or recovery failed.
pub const DBKV_LOG_ERROR: c_int = 1;
/// Log level: damage found in the data directory and what recovery did with it.
pub const DBKV_LOG_WARN: c_int = 2;
/// Log level (default minimum): recovery summaries, snapshots written.
pub const DBKV_LOG_INFO: c_int = 3;
/// Log level: WAL segment rotation and file retention.
pub const DBKV_LOG_DEBUG: c_int = 4;

/// A log callback: receives the `userdata` given to
/// `dbkv_options_set_logger`, a `DBKV_LOG_*` level and a NUL-terminated
/// message that is valid only during the call.
pub type dbkv_log_fn = Option<unsafe extern "C" fn(userdata: *mut c_void, level: c_int, msg: *const c_char)>;

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
        let slot = arg!(out(out_opts, "out"))?;
        *slot = Box::into_raw(Box::new(dbkv_options { opts: Options::default() }));
        Ok(DBKV_OK)
    })
}

/// Frees an options object. NULL is a no-op. A handle opened with these
/// options keeps its own copy, so options may be freed right after `dbkv_open`.
#[no_mangle]
pub unsafe extern "C" fn dbkv_options_free(opts: *mut dbkv_options) {
    if !opts.is_null() {
        // SAFETY: per dbkv.h, a non-NULL opts came from dbkv_options_new
        // and is not used again, so the box is reclaimed exactly once.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(unsafe { Box::from_raw(opts) })));
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
        // SAFETY: path is non-NULL (checked above) and, per dbkv.h, a
        // NUL-terminated string valid for the duration of the call.
        let bytes = unsafe { CStr::from_ptr(path) }.to_bytes();
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

/// The C callback and its userdata, called from whichever thread logs.
struct CLogger {
    cb: unsafe extern "C" fn(*mut c_void, c_int, *const c_char),
    userdata: *mut c_void,
}

// SAFETY: the header tells the caller that the callback runs on dbkv's
// threads as well as the caller's, possibly concurrently, and must be
// thread-safe; dbkv only passes `userdata` back, never dereferences it.
unsafe impl Send for CLogger {}
// SAFETY: as for Send; CLogger has no interior state.
unsafe impl Sync for CLogger {}

impl CLogger {
    fn call(&self, level: LogLevel, msg: &str) {
        let text = CString::new(msg.replace('\0', "\\0")).unwrap_or_default();
        // SAFETY: `cb` is the caller's function, given a valid
        // NUL-terminated string that outlives the call, and its own userdata.
        unsafe { (self.cb)(self.userdata, level as c_int, text.as_ptr()) }
    }
}

/// Sets a function that receives the library's log messages: the recovery
/// summary of `dbkv_open`, every piece of damage found and what was done
/// with it (`DBKV_LOG_WARN`), snapshots written or failed, entering the
/// failed state with the OS error (`DBKV_LOG_ERROR`), WAL segment rotation
/// and retention (`DBKV_LOG_DEBUG`). No logger (the default, or `cb` NULL)
/// means dbkv says nothing.
///
/// Thread-safety: the callback is called from the thread calling
/// `dbkv_open` and from dbkv's background threads (WAL writer, snapshot),
/// possibly at the same time, until `dbkv_close` returns; it must be
/// thread-safe and return normally (no longjmp, no C++ exception). dbkv
/// holds no shard lock while calling it, so it may call dbkv functions on
/// the handle (not `dbkv_close`).
///
/// @param cb  the callback, or NULL to log nothing.
/// @param userdata  passed to every call as is; dbkv never reads it. It must
///   stay valid until every handle opened with these options is closed.
/// @return `DBKV_OK`, `DBKV_ERR_INVALID_ARGUMENT` (opts is NULL).
#[no_mangle]
pub unsafe extern "C" fn dbkv_options_set_logger(opts: *mut dbkv_options, cb: dbkv_log_fn, userdata: *mut c_void) -> c_int {
    with_opts(opts, |o| {
        o.logger = cb.map(|cb| {
            let logger = CLogger { cb, userdata };
            std::sync::Arc::new(move |level: LogLevel, msg: &str| logger.call(level, msg)) as crate::engine::LogFn
        });
        Ok(())
    })
}

/// Sets the least severe level the logger receives: `DBKV_LOG_ERROR`,
/// `DBKV_LOG_WARN`, `DBKV_LOG_INFO` (default) or `DBKV_LOG_DEBUG`.
/// @return `DBKV_OK`, `DBKV_ERR_INVALID_ARGUMENT` (any other value).
#[no_mangle]
pub unsafe extern "C" fn dbkv_options_set_log_level(opts: *mut dbkv_options, level: c_int) -> c_int {
    with_opts(opts, |o| {
        o.log_level = LogLevel::from_int(level as i64).ok_or_else(|| {
            Error::InvalidArgument(format!("log level {level} is not one of DBKV_LOG_ERROR (1), DBKV_LOG_WARN (2), DBKV_LOG_INFO (3), DBKV_LOG_DEBUG (4)"))
        })?;
        Ok(())
    })
}
