'use strict';

/**
 * The database handle. Every method is one synchronous C call except sync()
 * and snapshot(), which run on koffi's worker threads and return Promises.
 *
 * Conventions, as in the C ABI: normal outcomes (a missing key, a held
 * lock, a CAS mismatch) are return values; failures throw a DbkvError whose
 * message is the library's own dbkv_last_error(), read right after the
 * failing call on the same thread.
 */

const errors = require('./errors');
const { DbkvError, fromStatus, closedError, invalid, OK, NOT_FOUND, EXISTS, LOCKED, NOT_OWNER, MISMATCH, STALE_TOKEN } = errors;
const { Slot, Packer, bound, describe, address } = require('./bytes');
const { copyOut } = require('./native');
const { ScanIterator, closeAll } = require('./scan');

/** Scratch for keys, values and the third argument (CAS's expected value, a lock owner, a fenced write's lock key). */
const KEY = new Slot(16 * 1024);
const VAL = new Slot(64 * 1024);
const AUX = new Slot(16 * 1024);
const PACK = new Packer();

/**
 * get() reads into this buffer, then copies exactly the value's bytes into
 * the Buffer it returns. It grows on DBKV_ERR_BUFFER_TOO_SMALL up to
 * SCRATCH_MAX; a larger value is read straight into a Buffer of its own
 * size, which is then returned as is (no second copy, no huge scratch kept).
 */
const SCRATCH_MAX = 1 << 20;
let scratch = Buffer.allocUnsafeSlow(16 * 1024);
let scratchAddr = address(scratch);
/**
 * scratch[0, n) for the n of the last get(), kept so that a run of values
 * of one size copies out with no allocation but the result's. Reset when
 * scratch grows (comparing .buffer instead costs a runtime call per get).
 */
let scratchView = scratch.subarray(0, 0);

/** The first n bytes of scratch, as a view. */
function scratchPrefix(n) {
  if (scratchView.length !== n) scratchView = scratch.subarray(0, n);
  return scratchView;
}

/** Out parameters, reused by every call (each is read right after its call). */
const OUT_U64 = new BigUint64Array(1);
const OUT_I64 = new BigInt64Array(1);
const OUT_PTR = new BigUint64Array(1);
/**
 * get()'s size_t out parameter, read as two 32-bit halves to skip a BigInt.
 * Passed by address, so it sits on an explicit ArrayBuffer: a small typed
 * array created on its own may live inside the V8 heap, where GC moves it.
 */
const LEN = new BigUint64Array(new ArrayBuffer(8));
const LEN32 = new Uint32Array(LEN.buffer);
const LEN_ADDR = address(LEN);
/** Whether get() can use getIntoFast (every pointer a number); true on 64-bit Linux. */
const LEN_FAST = typeof LEN_ADDR === 'number';
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
const LO = LITTLE_ENDIAN ? 0 : 1;
const HI = 1 - LO;
const lenOut = () => LEN32[LO] + LEN32[HI] * 4294967296;

const ERR_BUFFER_TOO_SMALL = errors.ERR_BUFFER_TOO_SMALL;
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const MIN_SAFE = -MAX_SAFE;
const I64_MIN = -(2n ** 63n);
const I64_MAX = 2n ** 63n - 1n;
const U64_MAX = 2n ** 64n - 1n;
const STATS_FIELDS = [
  'size',
  'keys',
  'walRecords',
  'walBytes',
  'fsyncs',
  'durableLsn',
  'lastLsn',
  'snapshotsTaken',
  'lastSnapshotDurationUs',
  'failed',
  'recoverySnapshotLoaded',
  'recoverySnapshotEntries',
  'recoveryWalRecords',
  'recoveryCorruptRecords',
  'recoveryBytesDropped',
  'recoveryDurationUs',
  'opsRead',
  'opsWrite',
  'opsDelete',
  'opsIncr',
  'opsExpire',
  'opsLock',
  'opsTxn',
  'opsScan',
  'walSegments',
  'walRotations',
  'fsyncTotalUs',
  'fsyncP50Us',
  'fsyncP99Us',
  'fsyncMaxUs',
  'snapshotFailures',
  'lastSnapshotBytes',
  'lastSnapshotUnixMs',
  'expiredReclaimed',
  'backpressureWaits',
  'backpressureWaitUs',
];

/**
 * koffi queues at most max_async_calls (256) async calls per process and
 * throws past that, so sync()/snapshot() calls beyond this many in flight
 * wait here instead of failing.
 */
const ASYNC_LIMIT = 64;
let asyncInFlight = 0;
const asyncQueue = [];

function runAsync(start) {
  if (asyncInFlight < ASYNC_LIMIT) {
    asyncInFlight++;
    start();
  } else {
    asyncQueue.push(start);
  }
}

function asyncDone() {
  const next = asyncQueue.shift();
  if (next) next();
  else asyncInFlight--;
}

/** @returns {number} a TTL in ms (0 = none) from an options bag. */
function ttlOption(opts, op) {
  if (opts === undefined || opts === null) return 0;
  if (typeof opts !== 'object') throw invalid(op, `options must be an object like { ttlMs }, got ${describe(opts)}`);
  const ttl = opts.ttlMs;
  if (ttl === undefined) return 0;
  return ttlValue(ttl, op, 'ttlMs');
}

function ttlValue(ttl, op, what) {
  // koffi would wrap a negative number into the uint64_t parameter.
  if (!Number.isSafeInteger(ttl) || ttl < 0) {
    throw invalid(op, `${what} must be a non-negative integer number of milliseconds, got ${String(ttl)}`);
  }
  return ttl;
}

function deltaNumber(delta, op) {
  if (!Number.isSafeInteger(delta)) {
    throw invalid(op, `delta must be a safe integer number (use ${op}Big for bigint), got ${String(delta)}`);
  }
  return delta;
}

function deltaBig(delta, op) {
  // koffi wraps a bigint outside int64_t silently, so the range is checked here.
  if (typeof delta !== 'bigint' || delta < I64_MIN || delta > I64_MAX) {
    throw invalid(op, `delta must be a bigint in the signed 64-bit range, got ${String(delta)}`);
  }
  return delta;
}

/** A fencing token as lock() returns it (bigint), or as a safe integer number. */
function tokenValue(token, op) {
  // koffi would wrap a negative or oversized value into the uint64_t
  // parameter, turning a bad token into some other, possibly current, one.
  if (typeof token === 'bigint' ? token >= 0n && token <= U64_MAX : Number.isSafeInteger(token) && token >= 0) {
    return token;
  }
  const got = typeof token === 'number' || typeof token === 'bigint' ? String(token) : describe(token);
  throw invalid(op, `token must be a fencing token from lock(): a bigint (or a safe integer number) from 0 to 2^64-1, got ${got}`);
}

class DB {
  /** @type {object} */ #api;
  /** @type {bigint} the dbkv pointer; 0n once closed */ #db;
  /**
   * @type {number} the same pointer as a number, for setFast and
   * getIntoFast; -1 if it does not fit one exactly (never on x86-64 or
   * arm64 Linux, whose user addresses are below 2^47); 0 once closed. set()
   * and get() test this one for closed: comparing a bigint costs ~10 ns.
   */
  #h;
  /** @type {string | undefined} */ #dir;
  /** sync()/snapshot() calls still running on a worker thread with this handle. */
  #pending = 0;
  /** Set by close() while #pending > 0: the last async call closes the handle. */
  #closeWhenIdle = 0n;
  /** The C state of every open scan on this handle, freed by close(). */
  #scans = new Set();
  /** Shared with the finalizer: the pointer to close if the handle is dropped. */
  #owner;

  /** @internal use open() */
  constructor(api, ptr, dir, owner) {
    this.#api = api;
    this.#db = ptr;
    this.#h = ptr <= MAX_SAFE ? Number(ptr) : -1;
    this.#dir = dir;
    this.#owner = owner;
  }

  /** Stops log delivery once the C handle is closed (delivering the rest). */
  #stopLogs() {
    if (this.#owner.logs) this.#owner.logs.stop();
    this.#owner.logs = null;
  }

  /** The data directory, or undefined for an in-memory handle. */
  get dir() {
    return this.#dir;
  }

  /** True once close() was called. */
  get closed() {
    return this.#db === 0n;
  }

  #fail(rc, op) {
    return fromStatus(rc, op, this.#api.lastError() || this.#api.strerror(rc));
  }

  /**
   * Stores value under key, replacing any value and TTL.
   * @param {string | Uint8Array} key
   * @param {string | Uint8Array} value
   * @param {{ ttlMs?: number }} [opts]
   */
  set(key, value, opts) {
    const h = this.#h;
    if (h === 0) throw closedError('set');
    const ttl = opts === undefined ? 0 : ttlOption(opts, 'set');
    const k = KEY.bytes(key, 'set', 'key');
    const v = VAL.bytes(value, 'set', 'value');
    const rc =
      typeof k === 'number' && typeof v === 'number' && h > 0
        ? this.#api.setFast(h, k, KEY.len, v, VAL.len, ttl)
        : this.#api.set(this.#db, k, KEY.len, v, VAL.len, ttl);
    if (rc !== OK) throw this.#fail(rc, 'set');
  }

  /**
   * Reads into the scratch buffer (growing it, or reading a large value
   * straight into its own Buffer) and returns the buffer holding the value,
   * with its length in `LEN`; undefined if the key is missing.
   */
  #read(key, op) {
    const h = this.#h;
    if (h === 0) throw closedError(op);
    const k = KEY.bytes(key, op, 'key');
    const klen = KEY.len;
    const fast = typeof k === 'number' && h > 0 && LEN_FAST;
    let buf = scratch;
    let bufAddr = scratchAddr;
    for (;;) {
      const rc =
        fast && typeof bufAddr === 'number'
          ? this.#api.getIntoFast(h, k, klen, bufAddr, buf.length, LEN_ADDR)
          : this.#api.getInto(this.#db, k, klen, bufAddr, buf.length, LEN_ADDR);
      if (rc === OK) return buf;
      if (rc === NOT_FOUND) return undefined;
      if (rc !== ERR_BUFFER_TOO_SMALL) throw this.#fail(rc, op);
      // *len holds the size needed; the value may change again before the
      // retry, hence the loop.
      const need = lenOut();
      if (need <= SCRATCH_MAX) {
        scratch = Buffer.allocUnsafeSlow(Math.min(SCRATCH_MAX, Math.max(need, scratch.length * 2)));
        scratchAddr = address(scratch);
        scratchView = scratch.subarray(0, 0);
        buf = scratch;
        bufAddr = scratchAddr;
      } else {
        // Over 1 MiB: a buffer of its own (not pooled), passed as itself.
        buf = Buffer.allocUnsafeSlow(need);
        bufAddr = buf;
      }
    }
  }

  /**
   * @param {string | Uint8Array} key
   * @returns {Buffer | undefined} a copy of the value, or undefined if missing
   */
  get(key) {
    const buf = this.#read(key, 'get');
    if (buf === undefined) return undefined;
    const n = lenOut();
    if (buf !== scratch) return n === buf.length ? buf : buf.subarray(0, n);
    if (n === 0) return Buffer.alloc(0);
    // A copy by V8 (TypedArray#set), not a second native call.
    const out = Buffer.allocUnsafe(n);
    out.set(scratchPrefix(n));
    return out;
  }

  /**
   * Copies the value of key into `target` when it fits, with no allocation:
   * a loop that reads many values through one reused buffer creates no
   * Buffer per call (get() must, and on a large data set those fresh
   * Buffers cost more than the lookup's FFI call). Returns the value's
   * length in bytes, or undefined if the key is missing. A length greater
   * than target.length means the value did not fit and nothing was copied:
   * retry with a target of at least that size.
   * @param {string | Uint8Array} key
   * @param {Uint8Array} target
   * @returns {number | undefined}
   */
  getInto(key, target) {
    if (!(target instanceof Uint8Array)) {
      throw new TypeError(`getInto: target must be a Buffer or Uint8Array, got ${describe(target)}`);
    }
    // Read as get() reads, through the all-number call (getIntoFast), then
    // copy into target: a copy into memory the caller keeps reusing is
    // cheap, and the call keeps every argument a plain number.
    const buf = this.#read(key, 'getInto');
    if (buf === undefined) return undefined;
    const n = lenOut();
    if (n <= target.length) target.set(buf === scratch ? scratchPrefix(n) : buf.subarray(0, n));
    return n;
  }

  /**
   * @param {string | Uint8Array} key
   * @returns {string | undefined} the value decoded as UTF-8, or undefined if missing
   */
  getString(key) {
    const buf = this.#read(key, 'getString');
    if (buf === undefined) return undefined;
    return buf.toString('utf8', 0, lenOut());
  }

  /** @returns {boolean} whether the key existed */
  delete(key) {
    const db = this.#db;
    if (db === 0n) throw closedError('delete');
    const k = KEY.bytes(key, 'delete', 'key');
    const rc = this.#api.del(db, k, KEY.len);
    if (rc === OK) return true;
    if (rc === NOT_FOUND) return false;
    throw this.#fail(rc, 'delete');
  }

  /** @returns {boolean} whether the key exists (and has not expired) */
  exists(key) {
    const db = this.#db;
    if (db === 0n) throw closedError('exists');
    const k = KEY.bytes(key, 'exists', 'key');
    const rc = this.#api.exists(db, k, KEY.len);
    if (rc === OK) return true;
    if (rc === NOT_FOUND) return false;
    throw this.#fail(rc, 'exists');
  }

  /** Runs dbkv_incr/dbkv_decr and returns the new value as a bigint. */
  #add(fn, op, key, delta) {
    const db = this.#db;
    if (db === 0n) throw closedError(op);
    const k = KEY.bytes(key, op, 'key');
    const rc = this.#api[fn](db, k, KEY.len, delta, OUT_I64);
    if (rc !== OK) throw this.#fail(rc, op);
    return OUT_I64[0];
  }

  /** Checks that a counter fits a JS number; the write has happened either way. */
  #safe(v, op) {
    if (v > MAX_SAFE || v < MIN_SAFE) {
      throw new DbkvError(
        'UNSAFE_INTEGER',
        `${op}: the counter is now ${v}, beyond Number.MAX_SAFE_INTEGER; the change was applied, ` +
          `use ${op}Big to read and change it exactly`,
        { value: v },
      );
    }
    return Number(v);
  }

  /**
   * Adds delta (default 1) to the counter at key (missing = 0) and returns
   * the new value. Throws UNSAFE_INTEGER, after the change was applied, if
   * the result is beyond Number.MAX_SAFE_INTEGER (err.value has it exactly).
   * @returns {number}
   */
  incr(key, delta = 1) {
    return this.#safe(this.#add('incr', 'incr', key, deltaNumber(delta, 'incr')), 'incr');
  }

  /** Subtracts delta (default 1); otherwise as incr(). @returns {number} */
  decr(key, delta = 1) {
    return this.#safe(this.#add('decr', 'decr', key, deltaNumber(delta, 'decr')), 'decr');
  }

  /** incr() over the whole signed 64-bit range. @returns {bigint} */
  incrBig(key, delta = 1n) {
    return this.#add('incr', 'incrBig', key, deltaBig(delta, 'incrBig'));
  }

  /** decr() over the whole signed 64-bit range. @returns {bigint} */
  decrBig(key, delta = 1n) {
    return this.#add('decr', 'decrBig', key, deltaBig(delta, 'decrBig'));
  }

  /**
   * Stores value only if key does not exist.
   * @returns {boolean} true if stored, false if the key existed
   */
  setNX(key, value, opts) {
    const db = this.#db;
    if (db === 0n) throw closedError('setNX');
    const ttl = opts === undefined ? 0 : ttlOption(opts, 'setNX');
    const k = KEY.bytes(key, 'setNX', 'key');
    const v = VAL.bytes(value, 'setNX', 'value');
    const rc = this.#api.setnx(db, k, KEY.len, v, VAL.len, ttl);
    if (rc === OK) return true;
    if (rc === EXISTS) return false;
    throw this.#fail(rc, 'setNX');
  }

  /**
   * Compare-and-swap: replaces the value (and TTL) only if the current value
   * equals `expected` byte for byte.
   * @returns {boolean} true if swapped; false on a mismatch or a missing key
   */
  cas(key, expected, value, opts) {
    const db = this.#db;
    if (db === 0n) throw closedError('cas');
    const ttl = opts === undefined ? 0 : ttlOption(opts, 'cas');
    const k = KEY.bytes(key, 'cas', 'key');
    const e = AUX.bytes(expected, 'cas', 'expected');
    const v = VAL.bytes(value, 'cas', 'value');
    const rc = this.#api.cas(db, k, KEY.len, e, AUX.len, v, VAL.len, ttl);
    if (rc === OK) return true;
    if (rc === MISMATCH || rc === NOT_FOUND) return false;
    throw this.#fail(rc, 'cas');
  }

  /**
   * Sets the TTL of an existing key to ttlMs from now; 0 removes it.
   * @returns {boolean} false if the key is missing
   */
  expire(key, ttlMs) {
    const db = this.#db;
    if (db === 0n) throw closedError('expire');
    const ttl = ttlValue(ttlMs, 'expire', 'ttlMs');
    const k = KEY.bytes(key, 'expire', 'key');
    const rc = this.#api.expire(db, k, KEY.len, ttl);
    if (rc === OK) return true;
    if (rc === NOT_FOUND) return false;
    throw this.#fail(rc, 'expire');
  }

  /** Removes the TTL of an existing key. @returns {boolean} false if the key is missing */
  persist(key) {
    const db = this.#db;
    if (db === 0n) throw closedError('persist');
    const k = KEY.bytes(key, 'persist', 'key');
    const rc = this.#api.persist(db, k, KEY.len);
    if (rc === OK) return true;
    if (rc === NOT_FOUND) return false;
    throw this.#fail(rc, 'persist');
  }

  /**
   * @returns {number | undefined} ms left (at least 1), -1 if the key has no
   *   expiry, undefined if it is missing
   */
  ttl(key) {
    const db = this.#db;
    if (db === 0n) throw closedError('ttl');
    const k = KEY.bytes(key, 'ttl', 'key');
    const rc = this.#api.ttl(db, k, KEY.len, OUT_I64);
    if (rc === OK) return Number(OUT_I64[0]);
    if (rc === NOT_FOUND) return undefined;
    throw this.#fail(rc, 'ttl');
  }

  /**
   * Packs the keys of a multi-key call; returns [keyPtrs, keyLens].
   * @param {ReadonlyArray<string | Uint8Array>} keys
   */
  #packKeys(keys, op) {
    if (!Array.isArray(keys)) throw invalid(op, `keys must be an array, got ${describe(keys)}`);
    const n = keys.length;
    let total = 0;
    for (let i = 0; i < n; i++) total += bound(keys[i], op, `keys[${i}]`);
    const arrays = PACK.arrays(n);
    PACK.begin(total);
    for (let i = 0; i < n; i++) PACK.put(keys[i], arrays[0], arrays[1], i);
    return arrays;
  }

  /** Drops a one-off arena after its call (see Packer.end). */
  #unpack() {
    PACK.end(PACK.buf);
  }

  /**
   * Stores every pair atomically, all with the same TTL. Later duplicates win.
   * @param {ReadonlyArray<readonly [string | Uint8Array, string | Uint8Array]> | Record<string, string | Uint8Array>} pairs
   * @param {{ ttlMs?: number }} [opts]
   */
  mset(pairs, opts) {
    const db = this.#db;
    if (db === 0n) throw closedError('mset');
    const ttl = ttlOption(opts, 'mset');
    let list = pairs;
    if (!Array.isArray(pairs)) {
      if (pairs === null || typeof pairs !== 'object' || pairs instanceof Uint8Array) {
        throw invalid('mset', `pairs must be an array of [key, value] or an object, got ${describe(pairs)}`);
      }
      list = Object.entries(pairs);
    }
    const n = list.length;
    let total = 0;
    for (let i = 0; i < n; i++) {
      const pair = list[i];
      if (!Array.isArray(pair) || pair.length !== 2) {
        throw invalid('mset', `pairs[${i}] must be a [key, value] array`);
      }
      total += bound(pair[0], 'mset', `pairs[${i}][0] (key)`) + bound(pair[1], 'mset', `pairs[${i}][1] (value)`);
    }
    const [kp, kl, vp, vl] = PACK.arrays(n);
    const arena = PACK.begin(total);
    for (let i = 0; i < n; i++) {
      PACK.put(list[i][0], kp, kl, i);
      PACK.put(list[i][1], vp, vl, i);
    }
    const rc = this.#api.mset(db, kp, kl, vp, vl, n, ttl);
    PACK.end(arena);
    if (rc !== OK) throw this.#fail(rc, 'mset');
  }

  /**
   * Reads every key at one point in time.
   * @returns {(Buffer | undefined)[]} one entry per key, undefined where missing
   */
  mget(keys) {
    const db = this.#db;
    if (db === 0n) throw closedError('mget');
    const [kp, kl, vp, vl] = this.#packKeys(keys, 'mget');
    const n = keys.length;
    const rc = this.#api.mget(db, kp, kl, n, vp, vl);
    this.#unpack();
    if (rc !== OK) throw this.#fail(rc, 'mget');
    // Every non-NULL pointer is a malloc'd copy we own: free them all, even
    // if copying one of them throws.
    const out = new Array(n);
    let i = 0;
    try {
      for (; i < n; i++) {
        const p = vp[i];
        if (p === 0n) {
          out[i] = undefined;
          continue;
        }
        out[i] = copyOut(p, Number(vl[i]));
        this.#api.free(p);
        vp[i] = 0n;
      }
    } finally {
      for (; i < n; i++) if (vp[i] !== 0n) this.#api.free(vp[i]);
    }
    return out;
  }

  /** Deletes every key atomically. @returns {number} how many existed */
  mdel(keys) {
    const db = this.#db;
    if (db === 0n) throw closedError('mdel');
    const [kp, kl] = this.#packKeys(keys, 'mdel');
    const rc = this.#api.mdel(db, kp, kl, keys.length, OUT_U64);
    this.#unpack();
    if (rc !== OK) throw this.#fail(rc, 'mdel');
    return Number(OUT_U64[0]);
  }

  /**
   * Takes the lock `key` for `owner` for ttlMs (> 0). Taking it again as the
   * same owner refreshes the TTL and issues a new token.
   * @returns {bigint | null} the fencing token, or null if another owner holds it
   */
  lock(key, owner, ttlMs) {
    const db = this.#db;
    if (db === 0n) throw closedError('lock');
    const ttl = ttlValue(ttlMs, 'lock', 'ttlMs');
    const k = KEY.bytes(key, 'lock', 'key');
    const o = AUX.bytes(owner, 'lock', 'owner');
    const rc = this.#api.lock(db, k, KEY.len, o, AUX.len, ttl, OUT_U64);
    if (rc === OK) return OUT_U64[0];
    if (rc === LOCKED) return null;
    throw this.#fail(rc, 'lock');
  }

  /** The owner-checked calls share their outcomes. */
  #ownerOutcome(rc, op) {
    if (rc === OK) return true;
    // Not held (missing or expired) and held by someone else are both
    // "you do not hold this lock": a normal outcome, not an exception.
    if (rc === NOT_FOUND || rc === NOT_OWNER) return false;
    throw this.#fail(rc, op);
  }

  /**
   * Releases the lock if `owner` holds it.
   * @returns {boolean} true if released; false if the lock is missing
   *   (or expired) or held by another owner (nothing changed)
   */
  unlock(key, owner) {
    const db = this.#db;
    if (db === 0n) throw closedError('unlock');
    const k = KEY.bytes(key, 'unlock', 'key');
    const o = AUX.bytes(owner, 'unlock', 'owner');
    return this.#ownerOutcome(this.#api.unlock(db, k, KEY.len, o, AUX.len), 'unlock');
  }

  /**
   * Sets the lock's expiry to now + ttlMs (> 0) if `owner` holds it.
   * @returns {boolean} as unlock()
   */
  extendLock(key, owner, ttlMs) {
    const db = this.#db;
    if (db === 0n) throw closedError('extendLock');
    const ttl = ttlValue(ttlMs, 'extendLock', 'ttlMs');
    const k = KEY.bytes(key, 'extendLock', 'key');
    const o = AUX.bytes(owner, 'extendLock', 'owner');
    return this.#ownerOutcome(this.#api.extendLock(db, k, KEY.len, o, AUX.len, ttl), 'extendLock');
  }

  /**
   * Stores value under key, as set() does, only if the lock `lockKey` is
   * held right now with `token` (what lock() returned). The check and the
   * write are one atomic step inside dbkv, so a holder that paused past its
   * lease, while someone else took the lock, cannot overwrite their work.
   * @param {string | Uint8Array} lockKey
   * @param {bigint | number} token
   * @param {string | Uint8Array} key
   * @param {string | Uint8Array} value
   * @param {{ ttlMs?: number }} [opts]
   * @returns {boolean} true if written; false if the token is stale (the lock
   *   expired, was released or was granted again): nothing was written
   */
  setFenced(lockKey, token, key, value, opts) {
    const db = this.#db;
    if (db === 0n) throw closedError('setFenced');
    const tok = tokenValue(token, 'setFenced');
    const ttl = opts === undefined ? 0 : ttlOption(opts, 'setFenced');
    const l = AUX.bytes(lockKey, 'setFenced', 'lockKey');
    const k = KEY.bytes(key, 'setFenced', 'key');
    const v = VAL.bytes(value, 'setFenced', 'value');
    const rc = this.#api.setFenced(db, l, AUX.len, tok, k, KEY.len, v, VAL.len, ttl);
    if (rc === OK) return true;
    if (rc === STALE_TOKEN) return false;
    throw this.#fail(rc, 'setFenced');
  }

  /**
   * Deletes key only if the lock `lockKey` is held right now with `token`.
   * @returns {boolean | null} true if deleted; false if the token is current
   *   but the key did not exist; null, like lock()'s null, if the lock is not
   *   held with that token (nothing changed)
   */
  deleteFenced(lockKey, token, key) {
    const db = this.#db;
    if (db === 0n) throw closedError('deleteFenced');
    const tok = tokenValue(token, 'deleteFenced');
    const l = AUX.bytes(lockKey, 'deleteFenced', 'lockKey');
    const k = KEY.bytes(key, 'deleteFenced', 'key');
    const rc = this.#api.deleteFenced(db, l, AUX.len, tok, k, KEY.len);
    if (rc === OK) return true;
    if (rc === NOT_FOUND) return false;
    if (rc === STALE_TOKEN) return null;
    throw this.#fail(rc, 'deleteFenced');
  }

  /**
   * Iterates the live keys starting with prefix (every key if omitted), in
   * no particular order, as [key, value] Buffers.
   * @param {string | Uint8Array} [prefix]
   * @returns {ScanIterator}
   */
  scan(prefix) {
    const db = this.#db;
    if (db === 0n) throw closedError('scan');
    let p = null;
    let plen = 0;
    if (prefix !== undefined && prefix !== null) {
      p = KEY.bytes(prefix, 'scan', 'prefix');
      plen = KEY.len;
    }
    const rc = this.#api.scan(db, p, plen, OUT_PTR);
    if (rc !== OK) throw this.#fail(rc, 'scan');
    return new ScanIterator(this.#api, OUT_PTR[0], this.#scans);
  }

  /** @returns {number} the number of live keys */
  count() {
    const db = this.#db;
    if (db === 0n) throw closedError('count');
    const rc = this.#api.count(db, OUT_U64);
    if (rc !== OK) throw this.#fail(rc, 'count');
    return Number(OUT_U64[0]);
  }

  /** The handle's figures (see dbkv_statistics in dbkv.h), as numbers and booleans. */
  stats() {
    const db = this.#db;
    if (db === 0n) throw closedError('stats');
    const raw = new BigUint64Array(STATS_FIELDS.length);
    raw[0] = BigInt(raw.byteLength); // in: sizeof(dbkv_statistics) as we know it
    const rc = this.#api.stats(db, raw);
    if (rc !== OK) throw this.#fail(rc, 'stats');
    const out = {};
    for (let i = 1; i < STATS_FIELDS.length; i++) out[STATS_FIELDS[i]] = Number(raw[i]);
    out.failed = out.failed !== 0;
    out.recoverySnapshotLoaded = out.recoverySnapshotLoaded !== 0;
    return out;
  }

  /**
   * Runs a C call on a koffi worker thread. The handle stays open until
   * every such call has returned (close() waits for them).
   */
  #async(name) {
    const db = this.#db;
    if (db === 0n) return Promise.reject(closedError(name));
    const api = this.#api;
    this.#pending++;
    this.#owner.pending = this.#pending; // the thread-exit hook skips busy handles
    return new Promise((resolve, reject) => {
      runAsync(() => {
        const done = (err, rc) => {
          asyncDone();
          this.#pending--;
          this.#owner.pending = this.#pending;
          if (this.#pending === 0 && this.#closeWhenIdle !== 0n) this.#finishClose();
          if (err) reject(new DbkvError('INTERNAL', `${name}: ${err.message}`, { cause: err }));
          else if (rc !== OK) reject(this.#asyncError(rc, name));
          else resolve();
        };
        try {
          api[name].async(db, done);
        } catch (e) {
          done(e, 0);
        }
      });
    });
  }

  /**
   * dbkv_last_error() is per thread and the call ran on a worker, so the
   * detail is not readable here; say what we know instead.
   */
  #asyncError(rc, name) {
    let detail = this.#api.strerror(rc);
    if (name === 'snapshot' && rc === errors.ERR_INVALID_ARGUMENT && this.#dir === undefined) {
      detail += ': this handle is in-memory (open it with a dir to take snapshots)';
    } else {
      detail += ' (the call ran on a worker thread, so the detailed message of dbkv_last_error is not available)';
    }
    return fromStatus(rc, name, detail);
  }

  /** Resolves once every write made before the call is durable (fsynced). */
  sync() {
    return this.#async('sync');
  }

  /** Takes a snapshot now; resolves once it is durable. Needs a data directory. */
  snapshot() {
    return this.#async('snapshot');
  }

  /**
   * Closes the handle: flushes and fsyncs the WAL, releases the data
   * directory, ends open scans. Idempotent. Throws IO or FAILED if the final
   * flush failed (the handle is closed anyway). If sync()/snapshot() calls
   * are still running, the C handle is closed when the last one returns and
   * a flush failure then is reported with process.emitWarning.
   */
  close() {
    const db = this.#db;
    if (db === 0n) return;
    this.#db = 0n;
    this.#h = 0;
    this.#owner.db = 0n; // the finalizer has nothing left to do
    if (this.#owner.release) this.#owner.release();
    closeAll(this.#scans);
    if (this.#pending > 0) {
      this.#closeWhenIdle = db;
      return;
    }
    const rc = this.#api.close(db);
    this.#stopLogs();
    if (rc !== OK) throw this.#fail(rc, 'close');
  }

  #finishClose() {
    const db = this.#closeWhenIdle;
    this.#closeWhenIdle = 0n;
    const rc = this.#api.close(db);
    this.#stopLogs();
    if (rc !== OK) process.emitWarning(this.#fail(rc, 'close'));
  }

  [Symbol.dispose]() {
    this.close();
  }
}

module.exports = { DB, STATS_FIELDS };
