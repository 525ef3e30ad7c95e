//! `dbkv_log_buffer`: a bounded queue that collects log messages for
//! programs that cannot take a callback on an arbitrary thread (a Node.js
//! event loop, a Go program that must not re-enter Go from dbkv's
//! threads). dbkv's threads push; the program pops when it likes.

use std::collections::VecDeque;
use std::ffi::{c_char, c_int};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::options::dbkv_options;
use super::{guard, in_ref, malloc_copy, opt_ref, out, DBKV_NOT_FOUND, DBKV_OK};
use crate::engine::{LogFn, LogLevel};
use crate::error::Error;

#[derive(Default)]
struct Queue {
    messages: VecDeque<(LogLevel, String)>,
    /// Messages dropped because the queue was full, not yet reported.
    dropped: u64,
}

struct Shared {
    queue: Mutex<Queue>,
    ready: Condvar,
    capacity: usize,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Never blocks the logging thread: a full queue drops the oldest
    /// message and counts it.
    fn push(&self, level: LogLevel, msg: &str) {
        let mut q = self.lock();
        if q.messages.len() >= self.capacity {
            q.messages.pop_front();
            q.dropped += 1;
        }
        q.messages.push_back((level, msg.to_owned()));
        drop(q);
        self.ready.notify_one();
    }

    /// The next message, waiting up to `timeout` for one. Drops are
    /// reported first, as one warning.
    fn pop(&self, timeout: Duration) -> Option<(LogLevel, String)> {
        let deadline = Instant::now() + timeout;
        let mut q = self.lock();
        loop {
            if q.dropped > 0 {
                let n = std::mem::take(&mut q.dropped);
                let text = format!("{n} log message(s) dropped: the log buffer holds {} (pop more often or make it larger)", self.capacity);
                return Some((LogLevel::Warn, text));
            }
            if let Some(m) = q.messages.pop_front() {
                return Some(m);
            }
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            q = self.ready.wait_timeout(q, deadline - now).unwrap_or_else(|p| p.into_inner()).0;
        }
    }
}

/// A bounded queue of log messages. Create with `dbkv_log_buffer_new`,
/// attach with `dbkv_options_set_log_buffer`, read with
/// `dbkv_log_buffer_pop`, free with `dbkv_log_buffer_free`. Thread-safe.
pub struct dbkv_log_buffer {
    shared: Arc<Shared>,
}

/// Creates a log buffer holding at most `capacity` messages (1 to
/// 1,000,000). When it is full the oldest message is dropped, and the next
/// pop reports how many were (as a `DBKV_LOG_WARN` message).
///
/// @param[out] out_buf  receives the buffer; free it with `dbkv_log_buffer_free`.
/// @return `DBKV_OK`, `DBKV_ERR_INVALID_ARGUMENT` (out_buf NULL, capacity out of range).
#[no_mangle]
pub unsafe extern "C" fn dbkv_log_buffer_new(capacity: usize, out_buf: *mut *mut dbkv_log_buffer) -> c_int {
    guard(|| {
        if !(1..=1_000_000).contains(&capacity) {
            return Err(Error::InvalidArgument(format!("log buffer capacity must be 1 to 1000000, got {capacity}")));
        }
        let slot = arg!(out(out_buf, "out_buf"))?;
        let shared = Arc::new(Shared { queue: Mutex::new(Queue::default()), ready: Condvar::new(), capacity });
        *slot = Box::into_raw(Box::new(dbkv_log_buffer { shared }));
        Ok(DBKV_OK)
    })
}

/// Frees a log buffer. NULL is a no-op. Handles opened with options that
/// name it keep logging into their own reference, which nobody reads.
#[no_mangle]
pub unsafe extern "C" fn dbkv_log_buffer_free(buf: *mut dbkv_log_buffer) {
    if !buf.is_null() {
        // SAFETY: per dbkv.h, a non-NULL buf came from dbkv_log_buffer_new
        // and is not used again, so the box is reclaimed exactly once.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(unsafe { Box::from_raw(buf) })));
    }
}

/// Makes handles opened with `opts` log into `buf` (replacing any logger
/// set with `dbkv_options_set_logger`); the minimum level is still set by
/// `dbkv_options_set_log_level`. NULL `buf` switches logging off.
/// @return `DBKV_OK`, `DBKV_ERR_INVALID_ARGUMENT` (opts NULL).
#[no_mangle]
pub unsafe extern "C" fn dbkv_options_set_log_buffer(opts: *mut dbkv_options, buf: *const dbkv_log_buffer) -> c_int {
    guard(|| {
        let o = arg!(out(opts, "options"))?;
        o.opts.logger = match arg!(opt_ref(buf)) {
            None => None,
            Some(b) => {
                let shared = b.shared.clone();
                Some(Arc::new(move |level: LogLevel, msg: &str| shared.push(level, msg)) as LogFn)
            }
        };
        Ok(DBKV_OK)
    })
}

/// Takes the oldest message, waiting up to `timeout_ms` for one (0: do not
/// wait). Safe to call from any thread, concurrently with logging.
///
/// @param[out] out_level  receives its `DBKV_LOG_*` level.
/// @param[out] out_msg  receives the NUL-terminated message; free it with `dbkv_free`.
/// @return `DBKV_OK`; `DBKV_NOT_FOUND` (no message within the timeout;
///   outputs untouched); `DBKV_ERR_INVALID_ARGUMENT` (a NULL pointer).
#[no_mangle]
pub unsafe extern "C" fn dbkv_log_buffer_pop(buf: *const dbkv_log_buffer, timeout_ms: u32, out_level: *mut c_int, out_msg: *mut *mut c_char) -> c_int {
    guard(|| {
        let b = arg!(in_ref(buf, "buf"))?;
        let level = arg!(out(out_level, "out_level"))?;
        let msg = arg!(out(out_msg, "out_msg"))?;
        let Some((lv, text)) = b.shared.pop(Duration::from_millis(timeout_ms as u64)) else {
            return Ok(DBKV_NOT_FOUND);
        };
        let mut bytes = text.replace('\0', "\\0").into_bytes();
        bytes.push(0);
        *msg = malloc_copy(&bytes)? as *mut c_char;
        *level = lv as c_int;
        Ok(DBKV_OK)
    })
}
