'use strict';

/**
 * Status codes of the C ABI (include/dbkv.h) and the error type the binding
 * throws. Positive codes are normal outcomes and never become exceptions;
 * negative codes become a DbkvError whose `code` is the name below.
 */

const OK = 0;
const NOT_FOUND = 1;
const EXISTS = 2;
const LOCKED = 3;
const NOT_OWNER = 4;
const MISMATCH = 5;
const STALE_TOKEN = 6;
const ERR_BUFFER_TOO_SMALL = -5;
const ERR_INVALID_ARGUMENT = -1;

/** C status (negative) -> DbkvError code. */
const CODES = new Map([
  [-1, 'INVALID_ARGUMENT'],
  [-2, 'TOO_LARGE'],
  [-3, 'NOT_INTEGER'],
  [-4, 'OVERFLOW'],
  [-5, 'BUFFER_TOO_SMALL'],
  [-6, 'IO'],
  [-7, 'CORRUPTION'],
  [-8, 'BUSY'],
  [-9, 'FAILED'],
  [-10, 'INTERNAL'],
  [-11, 'WRONG_TYPE'],
]);

/**
 * The one error type of the binding.
 *
 * `code` is one of: the C errors above ('INVALID_ARGUMENT', 'TOO_LARGE',
 * 'NOT_INTEGER', 'OVERFLOW', 'IO', 'CORRUPTION', 'BUSY', 'FAILED',
 * 'INTERNAL', 'WRONG_TYPE'), or a binding-side condition: 'CLOSED' (the
 * handle was closed), 'UNSAFE_INTEGER' (incr/decr result beyond
 * Number.MAX_SAFE_INTEGER; `value` holds the exact bigint),
 * 'LIBRARY_NOT_FOUND' (libdbkv could not be loaded), 'UNKNOWN' (a status
 * this binding does not know).
 * `status` is the C status code when the error came from the library.
 */
class DbkvError extends Error {
  /**
   * @param {string} code
   * @param {string} message
   * @param {{status?: number, value?: bigint, cause?: unknown}} [extra]
   */
  constructor(code, message, extra) {
    super(message, extra && extra.cause !== undefined ? { cause: extra.cause } : undefined);
    this.name = 'DbkvError';
    this.code = code;
    if (extra && extra.status !== undefined) this.status = extra.status;
    if (extra && extra.value !== undefined) this.value = extra.value;
  }
}

/**
 * Builds the error for a failing C call.
 * @param {number} status  negative C status
 * @param {string} op      the binding method, named first in the message
 * @param {string} detail  dbkv_last_error() (or dbkv_strerror() when empty)
 */
/**
 * The library's messages name options and parameters as the C API does
 * (snake_case setters, upper-case recovery modes); a JS caller sets them
 * under other names, so each is rewritten to the name open() and the
 * methods take.
 */
const JS_NAMES = [
  [/\bmax_value_bytes\b/g, 'maxValueBytes'],
  [/\bsync_interval_ms\b/g, 'syncIntervalMs'],
  [/\bwal_segment_bytes\b/g, 'walSegmentBytes'],
  [/\bsnapshot_keep\b/g, 'snapshotKeep'],
  [/\bsnapshot_interval_secs\b/g, 'snapshotIntervalSecs'],
  [/\bsnapshot_ops\b/g, 'snapshotOps'],
  [/\bttl_ms\b/g, 'ttlMs'],
  [/\brecovery_mode=POINT_IN_TIME\b/g, "recoveryMode: 'pointInTime'"],
  [/\bRecovery mode ABSOLUTE\b/g, "recoveryMode 'absolute'"],
  [/\bor SKIP_CORRUPTED\b/g, "or recoveryMode: 'skipCorrupted'"],
];

/** A library message with the C names of options replaced by the JS ones. */
function jsNames(text) {
  return JS_NAMES.reduce((t, [from, to]) => t.replace(from, to), text);
}

function fromStatus(status, op, detail) {
  const code = CODES.get(status) || 'UNKNOWN';
  return new DbkvError(code, `${op}: ${detail ? jsNames(detail) : `status ${status}`}`, { status });
}

function closedError(op) {
  return new DbkvError('CLOSED', `${op}: the database handle is closed`);
}

function invalid(op, what) {
  // Caught in JS before any C call, so there is no C status to report.
  return new DbkvError('INVALID_ARGUMENT', `${op}: ${what}`);
}

module.exports = {
  DbkvError,
  fromStatus,
  jsNames,
  closedError,
  invalid,
  CODES,
  OK,
  NOT_FOUND,
  EXISTS,
  LOCKED,
  NOT_OWNER,
  MISMATCH,
  STALE_TOKEN,
  ERR_BUFFER_TOO_SMALL,
  ERR_INVALID_ARGUMENT,
};
