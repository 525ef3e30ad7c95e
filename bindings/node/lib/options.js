'use strict';

/** Translates the options object of open() into a dbkv_options. */

const { fromStatus, invalid, jsNames, OK } = require('./errors');

const SYNC_MODES = { none: 0, interval: 1, always: 2 };
const RECOVERY_MODES = { pointInTime: 0, absolute: 1, skipCorrupted: 2 };
const U32_MAX = 0xffffffff;

/** option name -> [api setter, largest value the C parameter holds] */
const NUMERIC = {
  shards: ['setShards', U32_MAX],
  maxValueBytes: ['setMaxValueBytes', Number.MAX_SAFE_INTEGER],
  syncIntervalMs: ['setSyncIntervalMs', Number.MAX_SAFE_INTEGER],
  walSegmentBytes: ['setWalSegmentBytes', Number.MAX_SAFE_INTEGER],
  snapshotIntervalSecs: ['setSnapshotIntervalSecs', Number.MAX_SAFE_INTEGER],
  snapshotOps: ['setSnapshotOps', Number.MAX_SAFE_INTEGER],
  snapshotKeep: ['setSnapshotKeep', U32_MAX],
};
const LOG_LEVELS = ['error', 'warn', 'info', 'debug'];
const KNOWN = new Set(['dir', 'sync', 'recoveryMode', 'libraryPath', 'onLog', 'logLevel', ...Object.keys(NUMERIC)]);

/**
 * Checks the options in JS (unknown names, types, enum strings), so that a
 * typo fails loudly instead of being ignored; ranges are left to the C
 * setters, whose messages name the limit.
 * @param {object | undefined} options
 */
function validate(options) {
  if (options === undefined || options === null) return {};
  if (typeof options !== 'object' || Array.isArray(options)) {
    throw invalid('open', 'options must be an object');
  }
  for (const name of Object.keys(options)) {
    if (!KNOWN.has(name)) throw invalid('open', `unknown option ${JSON.stringify(name)}`);
  }
  const { dir, sync, recoveryMode, onLog, logLevel } = options;
  if (onLog !== undefined && typeof onLog !== 'function') {
    throw new TypeError('open: option onLog must be a function (level, message) => void');
  }
  if (logLevel !== undefined && !LOG_LEVELS.includes(logLevel)) {
    throw invalid('open', `option logLevel must be one of ${LOG_LEVELS.map((l) => `'${l}'`).join(', ')}, got ${JSON.stringify(logLevel)}`);
  }
  if (dir !== undefined) {
    if (typeof dir !== 'string' || dir === '' || dir.includes('\0')) {
      throw invalid('open', 'option dir must be a non-empty path string');
    }
  }
  if (sync !== undefined && !Object.hasOwn(SYNC_MODES, sync)) {
    throw invalid('open', `option sync must be 'interval', 'always' or 'none', got ${JSON.stringify(sync)}`);
  }
  if (recoveryMode !== undefined && !Object.hasOwn(RECOVERY_MODES, recoveryMode)) {
    throw invalid(
      'open',
      `option recoveryMode must be 'pointInTime', 'absolute' or 'skipCorrupted', got ${JSON.stringify(recoveryMode)}`,
    );
  }
  for (const [name, [, max]] of Object.entries(NUMERIC)) {
    const v = options[name];
    if (v === undefined) continue;
    // koffi would silently wrap a negative or oversized number into the
    // unsigned C parameter, so it is refused here.
    if (!Number.isSafeInteger(v) || v < 0 || v > max) {
      throw invalid('open', `option ${name} must be an integer from 0 to ${max}, got ${String(v)}`);
    }
  }
  return options;
}

/**
 * Creates a dbkv_options from validated options; the caller frees it.
 * @returns {bigint} the options pointer
 */
function build(api, options) {
  const out = new BigUint64Array(1);
  let rc = api.optionsNew(out);
  if (rc !== OK) throw fromStatus(rc, 'open', api.lastError());
  const opts = out[0];
  try {
    const apply = (name, setter, value) => {
      rc = api[setter](opts, value);
      if (rc === OK) return;
      // "snapshotKeep must be 1 to 1000" reads as "option snapshotKeep must
      // be ..."; a message about something else keeps the option's name.
      const detail = jsNames(api.lastError() || '');
      throw fromStatus(rc, 'open', detail.startsWith(`${name} `) ? `option ${detail}` : `option ${name}: ${detail}`);
    };
    if (options.dir !== undefined) apply('dir', 'setDataDir', options.dir);
    if (options.sync !== undefined) apply('sync', 'setSyncMode', SYNC_MODES[options.sync]);
    if (options.recoveryMode !== undefined) {
      apply('recoveryMode', 'setRecoveryMode', RECOVERY_MODES[options.recoveryMode]);
    }
    for (const [name, [setter]] of Object.entries(NUMERIC)) {
      if (options[name] !== undefined) apply(name, setter, options[name]);
    }
  } catch (e) {
    api.optionsFree(opts);
    throw e;
  }
  return opts;
}

module.exports = { validate, build, SYNC_MODES, RECOVERY_MODES };
