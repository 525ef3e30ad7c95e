'use strict';

/**
 * dbkv for Node.js: the C library libdbkv called through koffi.
 *
 *   const { open } = require('dbkv');
 *   const db = open();                     // in-memory
 *   db.set('greeting', 'hello', { ttlMs: 60_000 });
 *   db.getString('greeting');              // 'hello'
 *   db.close();
 *
 * See README.md for the whole API and index.d.ts for its types.
 */

const native = require('./lib/native');
const { validate, build } = require('./lib/options');
const { DB } = require('./lib/db');
const { LogPump } = require('./lib/log');
const { DbkvError, fromStatus, CODES, OK } = require('./lib/errors');

/**
 * Closes handles that were dropped without close(), so the data directory
 * lock and the memory are not held until the process exits. close() is
 * still the way to see a final flush error.
 */
const dropped = new FinalizationRegistry((owner) => closeOwner(owner));

/** Closes the C handle an owner holds (once) and stops its log delivery. */
function closeOwner(owner) {
  if (owner.db === 0n) return;
  const db = owner.db;
  owner.db = 0n;
  live.delete(owner);
  owner.api.close(db);
  if (owner.logs) owner.logs.stop();
}

/**
 * Handles still open in this thread, closed when the thread ends: a worker
 * that ends without close() would otherwise keep its data directory BUSY
 * (and its memory and engine threads) for the rest of the process. The
 * process's 'exit' event fires at a worker's normal end and at the main
 * thread's; it does not fire for worker.terminate(), so close handles
 * before terminating a worker. A handle with sync()/snapshot() calls still
 * running is left alone (closing it would free what they use).
 */
const live = new Set();
let exitHooked = false;

function closeLive() {
  for (const owner of [...live]) {
    if (!owner.pending) closeOwner(owner);
  }
}

/**
 * Opens a database: in-memory without options (or without `dir`), durable
 * in `dir` otherwise (created if missing; its parent must exist).
 * @param {import('./index').OpenOptions} [options]
 * @returns {DB}
 */
function open(options) {
  const opts = validate(options);
  const api = native.load(opts.libraryPath);
  const copts = build(api, opts);
  const out = new BigUint64Array(1);
  let rc;
  let logs = null;
  try {
    if (opts.onLog !== undefined) {
      logs = new LogPump(api, opts.onLog);
      rc = logs.attach(copts, opts.logLevel || 'info');
      if (rc !== OK) throw fromStatus(rc, 'open: option onLog', api.lastError());
    }
    rc = api.open(copts, out);
  } catch (e) {
    if (logs) logs.stop();
    throw e;
  } finally {
    // dbkv_open copies the options, so they can go right away.
    api.optionsFree(copts);
  }
  if (rc !== OK) {
    const err = fromStatus(rc, 'open', api.lastError() || api.strerror(rc));
    // What recovery logged before it failed still reaches onLog.
    if (logs) logs.stop();
    throw err;
  }
  if (logs) logs.start();
  const owner = { api, db: out[0], logs, pending: 0, release: null };
  owner.release = () => live.delete(owner);
  live.add(owner);
  if (!exitHooked) {
    process.once('exit', closeLive);
    exitHooked = true;
  }
  const db = new DB(api, out[0], opts.dir, owner);
  dropped.register(db, owner);
  return db;
}

/**
 * The version of the libdbkv that open() would load with these options.
 * @param {{ libraryPath?: string }} [options]
 * @returns {string}
 */
function version(options) {
  return native.load(options && options.libraryPath).version();
}

/** The file libdbkv was loaded from (after open() or version()). */
function libraryFile(options) {
  return native.load(options && options.libraryPath).file;
}

module.exports = {
  open,
  version,
  libraryFile,
  DbkvError,
  DB,
  /** The C error names, by status code: used for DbkvError.code. */
  ERROR_CODES: Object.freeze(Object.fromEntries(CODES)),
};
