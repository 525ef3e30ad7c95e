'use strict';

/**
 * Turns keys and values (string or Uint8Array) into bytes for the C calls
 * without allocating on the hot path: strings are UTF-8 encoded into reused
 * scratch buffers, Buffers and Uint8Arrays are passed through untouched.
 *
 * Everything here is module state shared by all handles. That is safe
 * because JS runs one call at a time on a thread (a worker thread loads its
 * own copy of this module), and each scratch buffer is only read by the one
 * synchronous C call it was filled for.
 */

const koffi = require('koffi');
const { invalid } = require('./errors');

/** UTF-8 never needs more than 3 bytes per UTF-16 code unit. */
const UTF8_MAX = 3;

/**
 * Byte arrays up to this size are copied into a Slot's scratch buffer;
 * larger ones are passed as themselves, where the extra copy would cost
 * more than koffi's conversion of the array saves.
 */
const COPY_MAX = 4096;

const UTF8 = new TextEncoder();

/**
 * The address of a buffer that never moves (allocUnsafeSlow of more than a
 * few bytes, or a view of an explicit ArrayBuffer), as a number when
 * it fits (koffi converts numbers faster than bigints), else a bigint.
 */
function address(buf) {
  const a = koffi.address(buf);
  return a <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(a) : a;
}

function describe(x) {
  if (x === null) return 'null';
  if (typeof x === 'object') return (x.constructor && x.constructor.name) || 'object';
  return typeof x;
}

/** One argument position (key, value, ...) with its own scratch buffer. */
class Slot {
  /** @param {number} size scratch bytes; longer strings get a one-off Buffer */
  constructor(size) {
    // allocUnsafeSlow: a buffer of its own outside the V8 heap, so its
    // address never changes and can be passed to C as a plain number.
    this.buf = Buffer.allocUnsafeSlow(size);
    this.addr = address(this.buf);
    this.maxChars = Math.floor(size / UTF8_MAX);
    /** Byte arrays up to this size are copied into the scratch buffer. */
    this.maxCopy = Math.min(size, COPY_MAX);
    /** Byte length of the last argument returned by bytes(). */
    this.len = 0;
  }

  /**
   * Returns something koffi can pass as `void *` and sets `len`: the
   * scratch buffer's address (a number where addresses fit one) for a
   * string or a byte array of up to COPY_MAX bytes, else a one-off Buffer
   * or the array itself. A small array is copied (a few ns for hundreds of
   * bytes, done by V8 without a native call) because passing its address
   * as a number is cheaper than koffi's conversion of a typed array.
   * @param {string | Uint8Array} x
   * @param {string} op    the method, for the error message
   * @param {string} what  the argument, for the error message
   */
  bytes(x, op, what) {
    if (typeof x === 'string') {
      if (x.length <= this.maxChars) {
        // encodeInto is measurably cheaper than Buffer#write (same bytes,
        // lone surrogates become U+FFFD in both).
        this.len = UTF8.encodeInto(x, this.buf).written;
        return this.addr;
      }
      const b = Buffer.from(x, 'utf8');
      this.len = b.length;
      return b;
    }
    if (x instanceof Uint8Array) {
      const n = x.length;
      this.len = n;
      if (n <= this.maxCopy) {
        this.buf.set(x);
        return this.addr;
      }
      return x;
    }
    throw invalid(op, `${what} must be a string, Buffer or Uint8Array, got ${describe(x)}`);
  }
}

/**
 * Lays out the keys (and values) of a multi-key call in one contiguous
 * buffer and fills arrays of their addresses and lengths, which is what the
 * `const uint8_t *const *` parameters want. The buffer is allocated outside
 * the V8 heap (allocUnsafeSlow), so its address is stable; it is reused up
 * to KEEP_BYTES, larger batches get a buffer of their own for that call.
 */
const KEEP_BYTES = 1 << 20;
const KEEP_ITEMS = 4096;

class Packer {
  constructor() {
    this.kept = Buffer.allocUnsafeSlow(64 * 1024);
    this.keptBase = koffi.address(this.kept);
    this.buf = this.kept;
    this.base = this.keptBase;
    this.off = 0;
    this.cap = 0;
    this.keptPtrs = [];
    this.ensureItems(256);
  }

  ensureItems(n) {
    if (n <= this.cap) return;
    if (n <= KEEP_ITEMS) {
      const cap = Math.max(n, this.cap * 2);
      this.keptPtrs = [0, 1, 2, 3].map(() => new BigUint64Array(cap));
      this.cap = cap;
    }
  }

  /**
   * Returns four arrays of at least n entries: key pointers, key lengths,
   * value pointers, value lengths.
   */
  arrays(n) {
    this.ensureItems(n);
    if (n <= this.cap) return this.keptPtrs;
    return [0, 1, 2, 3].map(() => new BigUint64Array(n));
  }

  /** Makes room for `bound` bytes and rewinds. */
  begin(bound) {
    if (bound <= this.kept.length) {
      this.buf = this.kept;
      this.base = this.keptBase;
    } else if (bound <= KEEP_BYTES) {
      this.kept = Buffer.allocUnsafeSlow(Math.min(KEEP_BYTES, Math.max(bound, this.kept.length * 2)));
      this.keptBase = koffi.address(this.kept);
      this.buf = this.kept;
      this.base = this.keptBase;
    } else {
      this.buf = Buffer.allocUnsafeSlow(bound);
      this.base = koffi.address(this.buf);
    }
    this.off = 0;
    return this.buf;
  }

  /**
   * Called after the C call with the buffer begin() returned: referencing it
   * there keeps a one-off buffer alive through the call (the C side only
   * sees its address), and dropping it here frees it early.
   */
  end(buf) {
    if (buf !== this.kept) {
      this.buf = this.kept;
      this.base = this.keptBase;
    }
  }

  /**
   * Appends x; stores its address and length at index i of ptrs/lens.
   * Checked by bound() first, so x is a string or a Uint8Array here.
   */
  put(x, ptrs, lens, i) {
    const at = this.off;
    const n = typeof x === 'string' ? this.buf.write(x, at) : (this.buf.set(x, at), x.length);
    ptrs[i] = this.base + BigInt(at);
    lens[i] = BigInt(n);
    this.off = at + n;
  }
}

/**
 * Upper bound of the bytes x packs to; throws for anything but a string or a Uint8Array.
 * @returns {number}
 */
function bound(x, op, what) {
  if (typeof x === 'string') return x.length * UTF8_MAX;
  if (x instanceof Uint8Array) return x.length;
  throw invalid(op, `${what} must be a string, Buffer or Uint8Array, got ${describe(x)}`);
}

module.exports = { Slot, Packer, bound, describe, address };
