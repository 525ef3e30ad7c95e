//! The C ABI. Every export runs inside `guard`, which catches panics and
//! turns errors into status codes plus a per-thread message; pointers are
//! checked by the helpers below before they are dereferenced, and outputs
//! are written only once the call has succeeded.

#![allow(non_camel_case_types)]
#![allow(clippy::missing_safety_doc)]

/// Borrows an export's pointer argument through one of the checked helpers
/// below (`bytes`, `out`, `in_ref`, `opt_out`, `opt_ref`, and `db`'s
/// `engine`, `key`, `slices`): `arg!(out(p, "p"))?`. The helpers are
/// `unsafe fn`s because they trust a non-NULL pointer; this is the one
/// place an export vouches for its arguments.
macro_rules! arg {
    ($($helper:ident)::+ ($($a:expr),* $(,)?)) => {{
        // SAFETY: the caller of this extern fn guarantees, per dbkv.h's
        // Arguments convention, that each non-NULL pointer argument is valid
        // for its length (or its type) for the duration of the call; NULL
        // is checked by the helper.
        unsafe { $($helper)::+($($a),*) }
    }};
}

mod db;
mod fence;
mod iter;
mod log_buffer;
mod options;

pub use db::*;
pub use fence::*;
pub use iter::*;
pub use log_buffer::*;
pub use options::*;

use std::cell::RefCell;
use std::ffi::{c_char, c_int, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::error::Error;

/// Success.
pub const DBKV_OK: c_int = 0;
/// The key does not exist (or has expired); also the end of a scan.
pub const DBKV_NOT_FOUND: c_int = 1;
/// `dbkv_setnx`: the key already exists; nothing was written.
pub const DBKV_EXISTS: c_int = 2;
/// `dbkv_lock`: another owner holds the lock.
pub const DBKV_LOCKED: c_int = 3;
/// `dbkv_unlock`/`dbkv_extend_lock`: the lock is held by another owner; nothing changed.
pub const DBKV_NOT_OWNER: c_int = 4;
/// `dbkv_cas`: the current value differs from the expected one; nothing changed.
pub const DBKV_MISMATCH: c_int = 5;
/// `dbkv_set_fenced`/`dbkv_delete_fenced`: the lock is not held with that fencing token (it expired, was released, or was granted again with a newer token); nothing was written.
pub const DBKV_STALE_TOKEN: c_int = 6;
/// A NULL pointer, an empty key, an invalid option value or a bad combination of arguments.
pub const DBKV_ERR_INVALID_ARGUMENT: c_int = -1;
/// A key over 65,535 bytes or a value over `max_value_bytes`.
pub const DBKV_ERR_TOO_LARGE: c_int = -2;
/// `dbkv_incr`/`dbkv_decr` on a value that is not a base-10 signed 64-bit integer.
pub const DBKV_ERR_NOT_INTEGER: c_int = -3;
/// `dbkv_incr`/`dbkv_decr` would leave the signed 64-bit range; nothing changed.
pub const DBKV_ERR_OVERFLOW: c_int = -4;
/// `dbkv_get_into`: the buffer is too small; `*len` holds the size needed.
pub const DBKV_ERR_BUFFER_TOO_SMALL: c_int = -5;
/// An operating-system I/O error (the message names the file and the OS error).
pub const DBKV_ERR_IO: c_int = -6;
/// A data file failed its checksum or is malformed (the message names the file and offset).
pub const DBKV_ERR_CORRUPTION: c_int = -7;
/// The data directory is held by another open handle, in this process or another.
pub const DBKV_ERR_BUSY: c_int = -8;
/// A WAL write or fsync failed; the handle serves nothing more (writes and reads alike; dbkv_stats and dbkv_close still work). Reopen to recover the durable state.
pub const DBKV_ERR_FAILED: c_int = -9;
/// A bug inside dbkv was caught at the boundary (a Rust panic); the handle stays usable.
pub const DBKV_ERR_INTERNAL: c_int = -10;
/// The key holds a list or sorted set (written through `dbkv serve`), which this function does not read or modify (`dbkv_set`, `dbkv_mset`, `dbkv_delete`, `dbkv_set_fenced` and `dbkv_delete_fenced` replace or remove a key of any type, as Redis's SET and DEL do); nothing changed.
pub const DBKV_ERR_WRONG_TYPE: c_int = -11;

/// The longest key accepted, in bytes.
pub const DBKV_MAX_KEY_BYTES: usize = 65_535;
/// The hard cap on `max_value_bytes` (1 GiB).
pub const DBKV_MAX_VALUE_BYTES_CAP: u64 = 1 << 30;

pub const DBKV_VERSION_MAJOR: c_int = 0;
pub const DBKV_VERSION_MINOR: c_int = 1;
pub const DBKV_VERSION_PATCH: c_int = 0;

pub(crate) fn status_of(e: &Error) -> c_int {
    match e {
        Error::InvalidArgument(_) => DBKV_ERR_INVALID_ARGUMENT,
        Error::TooLarge(_) => DBKV_ERR_TOO_LARGE,
        Error::NotInteger => DBKV_ERR_NOT_INTEGER,
        Error::Overflow => DBKV_ERR_OVERFLOW,
        Error::WrongType => DBKV_ERR_WRONG_TYPE,
        Error::BufferTooSmall(_) => DBKV_ERR_BUFFER_TOO_SMALL,
        Error::Io(_) => DBKV_ERR_IO,
        Error::Corruption(_) => DBKV_ERR_CORRUPTION,
        Error::Busy(_) => DBKV_ERR_BUSY,
        Error::Failed(_) => DBKV_ERR_FAILED,
        Error::Internal(_) => DBKV_ERR_INTERNAL,
    }
}

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

pub(crate) fn set_last_error(msg: String) {
    let c = CString::new(msg.replace('\0', "\\0")).unwrap_or_default();
    LAST_ERROR.with(|slot| *slot.borrow_mut() = c);
}

/// The panic boundary every export runs in: a panic becomes
/// `DBKV_ERR_INTERNAL`, an error its status code, and either leaves a
/// message for `dbkv_last_error`.
pub(crate) fn guard(f: impl FnOnce() -> Result<c_int, Error>) -> c_int {
    let outcome = catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|panic| {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        Err(Error::Internal(format!("panic caught at the C boundary: {what}")))
    });
    match outcome {
        Ok(status) => status,
        Err(e) => {
            let status = status_of(&e);
            // The status names the kind; the message says the rest.
            set_last_error(e.detail());
            status
        }
    }
}

fn null(what: &str) -> Error {
    Error::InvalidArgument(format!("{what} is NULL"))
}

/// Borrows `len` bytes at `p`. NULL is allowed only with length 0.
///
/// # Safety
/// A non-NULL `p` points to `len` initialised bytes that stay valid and
/// unmodified for `'a`.
pub(crate) unsafe fn bytes<'a>(p: *const u8, len: usize, what: &str) -> Result<&'a [u8], Error> {
    if p.is_null() {
        return if len == 0 { Ok(&[]) } else { Err(null(what)) };
    }
    if len > isize::MAX as usize {
        return Err(Error::TooLarge(format!("{what} length {len} is not a valid size")));
    }
    // SAFETY: p is non-NULL and len fits in isize (checked above); the
    // caller vouches that p covers len bytes for 'a.
    Ok(unsafe { std::slice::from_raw_parts(p, len) })
}

/// Borrows a non-NULL pointer as a mutable reference.
///
/// # Safety
/// A non-NULL `p` points to a valid, aligned `T` that nothing else
/// accesses for `'a`.
pub(crate) unsafe fn out<'a, T>(p: *mut T, what: &str) -> Result<&'a mut T, Error> {
    // SAFETY: as_mut checks NULL; the caller vouches for the rest.
    unsafe { opt_out(p) }.ok_or_else(|| null(what))
}

/// Borrows a non-NULL pointer as a shared reference.
///
/// # Safety
/// A non-NULL `p` points to a valid, aligned `T` that nothing mutates for `'a`.
pub(crate) unsafe fn in_ref<'a, T>(p: *const T, what: &str) -> Result<&'a T, Error> {
    // SAFETY: as_ref checks NULL; the caller vouches for the rest.
    unsafe { opt_ref(p) }.ok_or_else(|| null(what))
}

/// Borrows an optional output: NULL (not wanted) gives `None`.
///
/// # Safety
/// As for `out`.
pub(crate) unsafe fn opt_out<'a, T>(p: *mut T) -> Option<&'a mut T> {
    // SAFETY: as_mut checks NULL; the caller vouches that a non-NULL p is
    // valid, aligned and unaliased for 'a.
    unsafe { p.as_mut() }
}

/// Borrows an optional input: NULL gives `None`.
///
/// # Safety
/// As for `in_ref`.
pub(crate) unsafe fn opt_ref<'a, T>(p: *const T) -> Option<&'a T> {
    // SAFETY: as_ref checks NULL; the caller vouches that a non-NULL p is
    // valid and aligned, and not mutated for 'a.
    unsafe { p.as_ref() }
}

/// Copies `src` into a fresh C-allocated buffer (never NULL, even for 0 bytes).
pub(crate) fn malloc_copy(src: &[u8]) -> Result<*mut u8, Error> {
    // SAFETY: malloc of at least one byte; the copy stays inside it.
    unsafe {
        let p = libc::malloc(src.len().max(1)) as *mut u8;
        if p.is_null() {
            return Err(Error::Internal(format!("out of memory allocating {} bytes", src.len())));
        }
        std::ptr::copy_nonoverlapping(src.as_ptr(), p, src.len());
        Ok(p)
    }
}

/// Returns a static, human-readable description of a status code. Never
/// NULL; unknown codes give "unknown status". Thread-safe.
#[no_mangle]
pub extern "C" fn dbkv_strerror(status: c_int) -> *const c_char {
    let s: &'static [u8] = match status {
        DBKV_OK => b"ok\0",
        DBKV_NOT_FOUND => b"not found\0",
        DBKV_EXISTS => b"key exists\0",
        DBKV_LOCKED => b"locked by another owner\0",
        DBKV_NOT_OWNER => b"lock held by another owner\0",
        DBKV_MISMATCH => b"value does not match the expected value\0",
        DBKV_STALE_TOKEN => b"stale fencing token\0",
        DBKV_ERR_INVALID_ARGUMENT => b"invalid argument\0",
        DBKV_ERR_TOO_LARGE => b"key or value too large\0",
        DBKV_ERR_NOT_INTEGER => b"value is not an integer\0",
        DBKV_ERR_OVERFLOW => b"integer overflow\0",
        DBKV_ERR_BUFFER_TOO_SMALL => b"buffer too small\0",
        DBKV_ERR_IO => b"I/O error\0",
        DBKV_ERR_CORRUPTION => b"data corruption\0",
        DBKV_ERR_BUSY => b"data directory is in use\0",
        DBKV_ERR_FAILED => b"engine failed after an I/O error and accepts no writes\0",
        DBKV_ERR_INTERNAL => b"internal error\0",
        DBKV_ERR_WRONG_TYPE => b"wrong type: the key holds a list or sorted set\0",
        _ => b"unknown status\0",
    };
    s.as_ptr() as *const c_char
}

/// Returns a detailed message for the last call on this thread that failed
/// with a negative status (it names the problem: the argument, the file and
/// offset, the OS error). Returns "" if no call on this thread has failed.
/// The text is owned by dbkv and stays valid until the next failing dbkv
/// call on the same thread; copy it to keep it. Outcomes (positive codes)
/// leave it unchanged. Never NULL.
#[no_mangle]
pub extern "C" fn dbkv_last_error() -> *const c_char {
    LAST_ERROR.with(|slot| slot.borrow().as_ptr())
}

/// Returns the library version as a static string, e.g. "0.1.0". Compare
/// with `DBKV_VERSION_*` to detect a header/library mismatch. Never NULL.
#[no_mangle]
pub extern "C" fn dbkv_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr() as *const c_char
}

/// Frees a buffer that dbkv handed out (`dbkv_get`, `dbkv_mget`). NULL is a
/// no-op. dbkv allocates these with the C allocator, so `free()` works too.
#[no_mangle]
pub unsafe extern "C" fn dbkv_free(ptr: *mut std::ffi::c_void) {
    // SAFETY: per dbkv.h, ptr is NULL (a no-op for free) or a buffer dbkv
    // handed out, allocated with malloc, and not freed yet.
    unsafe { libc::free(ptr) }
}
