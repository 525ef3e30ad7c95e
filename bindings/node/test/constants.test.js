'use strict';

// The numbers the binding copies from include/dbkv.h, checked against the
// header itself, so that changing the header without the binding fails
// here. DBKV_HEADER names another header to check against (to try a
// mutation on a scratch copy). Needs no library.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const errors = require('../lib/errors');
const { SYNC_MODES, RECOVERY_MODES } = require('../lib/options');
const { LEVELS, NAMES, CAPACITY } = require('../lib/log');
const { STATS_FIELDS } = require('../lib/db');
const { ABI_MAJOR } = require('../lib/native');
const pkg = require('../package.json');

const HEADER = process.env.DBKV_HEADER || path.join(__dirname, '..', '..', '..', 'include', 'dbkv.h');
const DTS = fs.readFileSync(path.join(__dirname, '..', 'index.d.ts'), 'utf8');

/** #define DBKV_NAME value, the dbkv_statistics fields, and each function's comment. */
function parseHeader(file) {
  const src = fs.readFileSync(file, 'utf8');
  const defines = new Map();
  for (const [, name, value] of src.matchAll(/^#define (DBKV_\w+)[ \t]+(.+?)\s*$/gm)) defines.set(name, value);
  // An integer, a negative one, parentheses and <<: all that dbkv.h uses.
  const evaluate = (s) => {
    s = (defines.get(s) ?? s).trim();
    if (s.startsWith('(') && s.endsWith(')')) return evaluate(s.slice(1, -1));
    if (s.includes('<<')) return s.split('<<').map(evaluate).reduce((a, b) => a * 2 ** b);
    if (!/^-?\d+$/.test(s)) throw new Error(`${file}: cannot evaluate ${JSON.stringify(s)}`);
    return Number(s);
  };
  const body = /struct dbkv_statistics \{([\s\S]*?)\n\}/.exec(src);
  if (!body) throw new Error(`${file}: no struct dbkv_statistics`);
  const stats = [];
  const odd = [];
  for (let line of body[1].replace(/\/\*[\s\S]*?\*\//g, '').split('\n')) {
    if ((line = line.trim()) === '') continue;
    const m = /^uint64_t (\w+)(?:\[(\w+)\])?;$/.exec(line);
    if (!m) odd.push(line);
    else if (m[2] === undefined) stats.push(m[1]);
    else for (let i = 0; i < evaluate(m[2]); i++) stats.push(`${m[1]}[${i}]`);
  }
  const docs = new Map();
  for (const [, doc, fn] of src.matchAll(/\/\*\*((?:[^*]|\*(?!\/))*)\*\/\s*[\w ]+?\**(dbkv_\w+)\(/g)) {
    docs.set(fn, doc.replace(/\*/g, ' ').replace(/\s+/g, ' ').trim());
  }
  const names = (prefix) => [...defines.keys()].filter((n) => n.startsWith(prefix));
  return { defines, evaluate, names, stats, odd, docs };
}

const h = parseHeader(HEADER);
const camel = (s) => s.toLowerCase().replace(/_([a-z0-9])/g, (_, c) => c.toUpperCase());
const num = String.raw`(\d[\d,]*)\s*(bytes|ms|KiB|MiB|GiB|TiB)?`;
const UNITS = { bytes: 1, ms: 1, KiB: 2 ** 10, MiB: 2 ** 20, GiB: 2 ** 30, TiB: 2 ** 40 };
const number = (digits, unit) => Number(digits.replace(/,/g, '')) * (UNITS[unit] || 1);

/** The first "N to M" of a function's comment in dbkv.h: numbers and text (undefined if optional and none). */
function docRange(fn, optional = false) {
  const m = new RegExp(`${num}\\s+to\\s+${num}`).exec(h.docs.get(fn) || '');
  if (!m && optional) return undefined;
  assert.ok(m, `dbkv.h: the comment of ${fn} gives no range (N to M)`);
  return { lo: number(m[1], m[2]), hi: number(m[3], m[4]), text: m[0].trim() };
}

/** Compares copied constants with the header, and fails for a header name (of `names`, or starting with a prefix) not copied. */
function checkGroup(names, copies) {
  for (const [name, got] of Object.entries(copies)) {
    assert.ok(h.defines.has(name), `${name}: the binding has ${got} but dbkv.h does not define it`);
    assert.notEqual(got, undefined, `${name} = ${h.defines.get(name)} in dbkv.h has no counterpart in the binding`);
    assert.equal(got, h.evaluate(name), `${name}: dbkv.h says ${h.evaluate(name)}, the binding says ${got}`);
  }
  for (const name of typeof names === 'string' ? h.names(names) : names) {
    assert.ok(name in copies, `${name} = ${h.defines.get(name)} in dbkv.h has no counterpart in the binding`);
  }
}

test('status codes (lib/errors.js) are the header\'s', () => {
  const other = /^DBKV_(ERR|SYNC|RECOVERY|LOG|VERSION|MAX)_/;
  const outcomes = h.names('DBKV_').filter((n) => !other.test(n)); // DBKV_OK, DBKV_NOT_FOUND, ...
  checkGroup(outcomes, Object.fromEntries(outcomes.map((n) => [n, errors[n.slice('DBKV_'.length)]])));
  checkGroup('DBKV_ERR_', {
    ...Object.fromEntries([...errors.CODES].map(([v, code]) => [`DBKV_ERR_${code}`, v])),
    DBKV_ERR_BUFFER_TOO_SMALL: errors.ERR_BUFFER_TOO_SMALL,
    DBKV_ERR_INVALID_ARGUMENT: errors.ERR_INVALID_ARGUMENT,
  });
  for (const [, code] of errors.CODES) {
    assert.match(DTS, new RegExp(`\\| '${code}'`), `index.d.ts: DbkvErrorCode lacks '${code}' (DBKV_ERR_${code})`);
  }
});

test('sync and recovery modes (lib/options.js) and log levels (lib/log.js) are the header\'s', () => {
  const copies = (prefix, map) =>
    Object.fromEntries(Object.entries(map).map(([k, v]) => [prefix + k.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase(), v]));
  checkGroup('DBKV_SYNC_', copies('DBKV_SYNC_', SYNC_MODES));
  checkGroup('DBKV_RECOVERY_', copies('DBKV_RECOVERY_', RECOVERY_MODES));
  checkGroup('DBKV_LOG_', copies('DBKV_LOG_', LEVELS));
  for (const [level, v] of Object.entries(LEVELS)) assert.equal(NAMES[v], level, `lib/log.js: NAMES[${v}] is ${NAMES[v]}, LEVELS.${level} is ${v}`);
  const { lo, hi } = docRange('dbkv_log_buffer_new');
  assert.ok(CAPACITY >= lo && CAPACITY <= hi, `lib/log.js CAPACITY ${CAPACITY}: dbkv.h (dbkv_log_buffer_new) allows ${lo} to ${hi}`);
});

test('the version is the header\'s', () => {
  const [major, minor, patch] = ['MAJOR', 'MINOR', 'PATCH'].map((p) => h.evaluate(`DBKV_VERSION_${p}`));
  assert.equal(ABI_MAJOR, major, `DBKV_VERSION_MAJOR: dbkv.h says ${major}, lib/native.js ABI_MAJOR says ${ABI_MAJOR}`);
  assert.equal(pkg.version, `${major}.${minor}.${patch}`, `DBKV_VERSION_*: dbkv.h says ${major}.${minor}.${patch}, package.json says ${pkg.version}`);
});

test('STATS_FIELDS (lib/db.js) is dbkv_statistics, field by field', () => {
  assert.deepEqual(h.odd, [], `dbkv_statistics in dbkv.h has members that are not uint64_t, which stats() cannot read`);
  const want = h.stats.map(camel);
  for (let i = 0; i < Math.max(want.length, STATS_FIELDS.length); i++) {
    assert.equal(STATS_FIELDS[i], want[i], `dbkv_statistics field ${i}: dbkv.h has ${h.stats[i]} (${want[i]}), STATS_FIELDS has ${STATS_FIELDS[i]}`);
  }
  const stats = /interface Stats \{([\s\S]*?)\n\}/.exec(DTS)[1];
  for (const f of STATS_FIELDS.slice(1)) assert.match(stats, new RegExp(`\\b${f}: `), `index.d.ts: Stats lacks ${f}`);
});

test('option ranges and defaults documented in index.d.ts are the header\'s', () => {
  const options = {
    syncIntervalMs: 'sync_interval_ms', shards: 'shards', maxValueBytes: 'max_value_bytes', walSegmentBytes: 'wal_segment_bytes',
    snapshotIntervalSecs: 'snapshot_interval_secs', snapshotOps: 'snapshot_ops', snapshotKeep: 'snapshot_keep',
  };
  for (const [opt, c] of Object.entries(options)) {
    const fn = `dbkv_options_set_${c}`;
    const doc = new RegExp(`/\\*\\*(.*)\\*/\\s*${opt}\\?:`).exec(DTS);
    assert.ok(doc, `index.d.ts: no one-line comment above ${opt}`);
    const dflt = new RegExp(`default ${num}`).exec(h.docs.get(fn));
    assert.ok(dflt, `dbkv.h: the comment of ${fn} gives no default`);
    const want = [dflt[0].trim(), docRange(fn, true)?.text].filter(Boolean);
    for (const w of want) assert.ok(doc[1].includes(w), `${fn}: index.d.ts says of ${opt} "${doc[1].trim()}", dbkv.h says "${w}"`);
  }
  const cap = h.evaluate('DBKV_MAX_VALUE_BYTES_CAP');
  const unit = ['TiB', 'GiB', 'MiB', 'KiB'].find((u) => cap % UNITS[u] === 0);
  const line = /\/\*\*(.*)\*\/\s*maxValueBytes\?:/.exec(DTS)[1];
  assert.ok(line.includes(`at most ${cap / UNITS[unit]} ${unit}`), `DBKV_MAX_VALUE_BYTES_CAP: dbkv.h says ${cap / UNITS[unit]} ${unit}, index.d.ts says of maxValueBytes "${line.trim()}"`);
});
