'use strict';

/**
 * Delivers libdbkv's log messages to an onLog(level, message) function on
 * the JS thread. dbkv logs from its own threads too (WAL writer, snapshot),
 * and a koffi callback called there would block that thread until the
 * event loop ran it: a synchronous call waiting on the WAL thread (close(),
 * a set in 'always' mode) would then deadlock. So the library queues
 * messages in a dbkv_log_buffer and this module pops them from the event
 * loop: right after open(), every 100 ms while the handle is open (an
 * unref'd timer, so it never keeps the process alive), and at close().
 */

const { OK, NOT_FOUND } = require('./errors');

/** onLog level name -> DBKV_LOG_* value, and back. */
const LEVELS = { error: 1, warn: 2, info: 3, debug: 4 };
const NAMES = ['', 'error', 'warn', 'info', 'debug'];
const CAPACITY = 4096;
const POLL_MS = 100;

class LogPump {
  #api;
  #onLog;
  #buf;
  #timer = null;

  /**
   * @param {object} api  the loaded native API
   * @param {(level: string, message: string) => void} onLog
   */
  constructor(api, onLog) {
    this.#api = api;
    this.#onLog = onLog;
    const out = new BigUint64Array(1);
    const rc = api.logBufferNew(CAPACITY, out);
    if (rc !== OK) throw new Error(`dbkv_log_buffer_new failed with status ${rc}`);
    this.#buf = out[0];
  }

  /** Makes handles opened with `copts` log into this pump's buffer. */
  attach(copts, level) {
    let rc = this.#api.setLogBuffer(copts, this.#buf);
    if (rc === OK) rc = this.#api.setLogLevel(copts, LEVELS[level]);
    return rc;
  }

  /** Delivers what is queued, then polls while the handle is open. */
  start() {
    this.drain();
    this.#timer = setInterval(() => this.drain(), POLL_MS);
    this.#timer.unref();
  }

  /** Delivers every queued message, in order. */
  drain() {
    if (this.#buf === 0n) return;
    const level = new Int32Array(1);
    const msg = new BigUint64Array(1);
    while (this.#api.logBufferPop(this.#buf, 0, level, msg) !== NOT_FOUND) {
      const text = this.#api.decodeCString(msg[0]);
      this.#api.free(msg[0]);
      try {
        this.#onLog(NAMES[level[0]] || 'info', text);
      } catch (e) {
        // A throwing onLog must not lose later messages or crash the timer.
        process.emitWarning(`dbkv: onLog threw: ${e && e.message}`);
      }
    }
  }

  /** After the handle is closed: delivers the rest and frees the buffer. */
  stop() {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
    this.drain();
    if (this.#buf !== 0n) this.#api.logBufferFree(this.#buf);
    this.#buf = 0n;
  }
}

module.exports = { LogPump, LEVELS, NAMES, CAPACITY };
