'use strict';

/**
 * The iterator returned by db.scan(): an iterable iterator over
 * [key, value] Buffers that owns one dbkv_iter.
 *
 * The C iterator is freed as soon as the scan ends (the last next()), on
 * return() (which for...of calls on break, return and throw), on
 * Symbol.dispose, when its handle is closed, and, as a last resort for an
 * iterator dropped half-way, by a FinalizationRegistry when it is
 * garbage-collected.
 */

const { fromStatus, closedError, OK, NOT_FOUND } = require('./errors');
const { copyOut } = require('./native');

/** Out parameters of dbkv_iter_next, shared: each result is copied before the next call. */
const KEY_PTR = new BigUint64Array(1);
const KEY_LEN = new BigUint64Array(1);
const VAL_PTR = new BigUint64Array(1);
const VAL_LEN = new BigUint64Array(1);

/**
 * The C side of one scan: the handle's list of live scans and the finalizer
 * hold this, never the iterator itself, so a dropped iterator can still be
 * garbage-collected.
 */
class ScanState {
  constructor(api, it, live) {
    this.api = api;
    this.it = it;
    this.live = live;
    /** Set when close() of the handle ended the scan. */
    this.closed = false;
    live.add(this);
  }

  free() {
    if (this.it === 0n) return;
    const it = this.it;
    this.it = 0n;
    this.live.delete(this);
    this.api.iterFree(it);
  }
}

/** Frees iterators that were dropped without being finished. */
const orphans = new FinalizationRegistry((state) => state.free());

class ScanIterator {
  /**
   * @param {object} api  the library's functions
   * @param {bigint} it   the dbkv_iter, owned from now on
   * @param {Set<ScanState>} live  the handle's live scans, freed by close()
   */
  constructor(api, it, live) {
    this._state = new ScanState(api, it, live);
    orphans.register(this, this._state, this);
  }

  /** Frees the C iterator (idempotent). */
  _free() {
    if (this._state.it === 0n) return;
    orphans.unregister(this);
    this._state.free();
  }

  /** @returns {IteratorResult<[Buffer, Buffer]>} */
  next() {
    const s = this._state;
    if (s.it === 0n) {
      // A scan that ended stays ended; one cut short by close() says so.
      if (s.closed) throw closedError('scan');
      return { done: true, value: undefined };
    }
    const rc = s.api.iterNext(s.it, KEY_PTR, KEY_LEN, VAL_PTR, VAL_LEN);
    if (rc === OK) {
      const key = copyOut(KEY_PTR[0], Number(KEY_LEN[0]));
      const value = copyOut(VAL_PTR[0], Number(VAL_LEN[0]));
      return { done: false, value: [key, value] };
    }
    this._free();
    if (rc === NOT_FOUND) return { done: true, value: undefined };
    throw fromStatus(rc, 'scan', s.api.lastError());
  }

  /** Ends the scan early and frees the C iterator. */
  return(value) {
    this._free();
    return { done: true, value };
  }

  [Symbol.iterator]() {
    return this;
  }

  [Symbol.dispose]() {
    this._free();
  }
}

/** Called by close(): frees every scan still open on the handle. */
function closeAll(live) {
  for (const state of [...live]) {
    state.closed = true;
    state.free();
  }
}

module.exports = { ScanIterator, closeAll };
