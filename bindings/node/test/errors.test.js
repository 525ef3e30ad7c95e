'use strict';

// Every error path: the code, and a message that carries the library's detail.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { open, DbkvError, ERROR_CODES } = require('..');
const { fresh, tempDir, throwsCode } = require('./helpers/util');

test('INVALID_ARGUMENT from the library carries dbkv_last_error', (t) => {
  const db = fresh(t);
  throwsCode(assert, () => db.set('', 'v'), 'INVALID_ARGUMENT', /^set: key is empty/);
  throwsCode(assert, () => db.get(Buffer.alloc(0)), 'INVALID_ARGUMENT', /^get: .*key is empty/);
  throwsCode(assert, () => db.getString(''), 'INVALID_ARGUMENT', /^getString: /);
  throwsCode(assert, () => db.delete(''), 'INVALID_ARGUMENT', /^delete: /);
  throwsCode(assert, () => db.exists(''), 'INVALID_ARGUMENT', /^exists: /);
  throwsCode(assert, () => db.mget(['ok', '']), 'INVALID_ARGUMENT', /^mget: /);
  throwsCode(assert, () => db.mset([['', 'v']]), 'INVALID_ARGUMENT', /^mset: /);
  throwsCode(assert, () => db.mdel(['']), 'INVALID_ARGUMENT', /^mdel: /);
  try {
    db.set('', 'v');
  } catch (e) {
    assert.equal(e.status, -1, 'the C status is kept');
  }
});

test('INVALID_ARGUMENT for wrong JS types, before any C call', (t) => {
  const db = fresh(t);
  for (const bad of [undefined, null, 42, {}, [], new ArrayBuffer(1), true]) {
    throwsCode(assert, () => db.set(bad, 'v'), 'INVALID_ARGUMENT', /^set: key must be a string, Buffer or Uint8Array/);
    throwsCode(assert, () => db.get(bad), 'INVALID_ARGUMENT', /^get: key must be/);
    throwsCode(assert, () => db.set('k', bad), 'INVALID_ARGUMENT', /^set: value must be/);
  }
  throwsCode(assert, () => db.set('k', 'v', { ttlMs: -1 }), 'INVALID_ARGUMENT', /ttlMs must be a non-negative integer/);
  throwsCode(assert, () => db.set('k', 'v', { ttlMs: 1.5 }), 'INVALID_ARGUMENT');
  throwsCode(assert, () => db.set('k', 'v', 100), 'INVALID_ARGUMENT', /options must be an object like \{ ttlMs \}/);
  throwsCode(assert, () => db.expire('k', -1), 'INVALID_ARGUMENT');
  throwsCode(assert, () => db.cas('k', 5, 'v'), 'INVALID_ARGUMENT', /expected must be/);
  throwsCode(assert, () => db.mget('abc'), 'INVALID_ARGUMENT', /keys must be an array/);
  throwsCode(assert, () => db.mget(['a', 7]), 'INVALID_ARGUMENT', /keys\[1\] must be/);
  throwsCode(assert, () => db.mdel(null), 'INVALID_ARGUMENT');
  throwsCode(assert, () => db.mset('ab'), 'INVALID_ARGUMENT', /pairs must be an array/);
  throwsCode(assert, () => db.mset([['a']]), 'INVALID_ARGUMENT', /pairs\[0\] must be a \[key, value\]/);
  throwsCode(assert, () => db.mset([['a', 1]]), 'INVALID_ARGUMENT', /pairs\[0\]\[1\] \(value\)/);
  throwsCode(assert, () => db.scan(5), 'INVALID_ARGUMENT', /prefix must be/);
  assert.equal(db.count(), 0, 'no rejected call wrote anything');
});

test('TOO_LARGE for keys over 65,535 bytes and values over maxValueBytes', (t) => {
  const db = fresh(t, { maxValueBytes: 1024 });
  const longKey = 'k'.repeat(65536);
  db.set('k'.repeat(65535), 'fits');
  throwsCode(assert, () => db.set(longKey, 'v'), 'TOO_LARGE', /^set: key is 65536 bytes/);
  throwsCode(assert, () => db.get(longKey), 'TOO_LARGE', /^get: /);
  throwsCode(assert, () => db.set('é'.repeat(32768), 'v'), 'TOO_LARGE', /key is 65536 bytes/); // 2 bytes a char
  throwsCode(assert, () => db.set('k', Buffer.alloc(1025)), 'TOO_LARGE', /^set: value is 1025 bytes, maxValueBytes is 1024/);
  throwsCode(assert, () => db.setNX('k2', Buffer.alloc(2000)), 'TOO_LARGE', /^setNX: /);
  throwsCode(assert, () => db.mset([['a', 'ok'], ['b', Buffer.alloc(1025)]]), 'TOO_LARGE', /^mset: /);
  assert.equal(db.get('a'), undefined, 'mset checks everything before writing');
  throwsCode(assert, () => db.cas('k', 'x', Buffer.alloc(4096)), 'TOO_LARGE', /^cas: /);
});

test('NOT_INTEGER and OVERFLOW', (t) => {
  const db = fresh(t);
  db.set('json', '{"a":1}');
  throwsCode(assert, () => db.incr('json'), 'NOT_INTEGER', /^incr: key "json": value is not a base-10 signed 64-bit integer$/);
  db.set('max', '9223372036854775807');
  throwsCode(assert, () => db.incrBig('max'), 'OVERFLOW', /^incrBig: key "max": increment or decrement would overflow/);
});

test('open: bad options are refused with the option named', () => {
  throwsCode(assert, () => open({ shards: 3 }), 'INVALID_ARGUMENT', /^open: option shards must be a power of two/);
  throwsCode(assert, () => open({ snapshotKeep: 0 }), 'INVALID_ARGUMENT', /^open: option snapshotKeep must be 1 to 1000, got 0$/);
  throwsCode(assert, () => open({ syncIntervalMs: 0 }), 'INVALID_ARGUMENT', /option syncIntervalMs/);
  throwsCode(assert, () => open({ walSegmentBytes: 100 }), 'INVALID_ARGUMENT', /option walSegmentBytes/);
  throwsCode(assert, () => open({ maxValueBytes: 2 ** 31 }), 'INVALID_ARGUMENT', /exceeds the hard cap/);
  throwsCode(assert, () => open({ shards: -1 }), 'INVALID_ARGUMENT', /option shards must be an integer from 0 to 4294967295/);
  throwsCode(assert, () => open({ shards: 2 ** 32 }), 'INVALID_ARGUMENT', /option shards must be an integer/);
  throwsCode(assert, () => open({ sync: 'sometimes' }), 'INVALID_ARGUMENT', /option sync must be 'interval', 'always' or 'none'/);
  throwsCode(assert, () => open({ recoveryMode: 'best' }), 'INVALID_ARGUMENT', /option recoveryMode must be/);
  throwsCode(assert, () => open({ dir: '' }), 'INVALID_ARGUMENT', /option dir must be a non-empty path/);
  throwsCode(assert, () => open({ syncMode: 'always' }), 'INVALID_ARGUMENT', /unknown option "syncMode"/);
  throwsCode(assert, () => open('dir'), 'INVALID_ARGUMENT', /options must be an object/);
});

test('IO: a data directory under a regular file', () => {
  const file = path.join(tempDir(), 'file');
  fs.writeFileSync(file, 'not a directory');
  throwsCode(assert, () => open({ dir: path.join(file, 'db') }), 'IO', /^open: cannot create data directory .*a component of .* is a file, not a directory/);
});

test('IO: a data directory that is a file', () => {
  const file = path.join(tempDir(), 'file');
  fs.writeFileSync(file, 'not a directory');
  throwsCode(assert, () => open({ dir: file }), 'IO', /^open: data directory .* is not a directory/);
});

test('ERROR_CODES maps every C status to its code', () => {
  assert.deepEqual(ERROR_CODES, {
    '-1': 'INVALID_ARGUMENT',
    '-2': 'TOO_LARGE',
    '-3': 'NOT_INTEGER',
    '-4': 'OVERFLOW',
    '-5': 'BUFFER_TOO_SMALL',
    '-6': 'IO',
    '-7': 'CORRUPTION',
    '-8': 'BUSY',
    '-9': 'FAILED',
    '-10': 'INTERNAL',
    '-11': 'WRONG_TYPE',
  });
  const { fromStatus } = require('../lib/errors');
  for (const [status, code] of Object.entries(ERROR_CODES)) {
    const e = fromStatus(Number(status), 'op', 'detail');
    assert.ok(e instanceof DbkvError);
    assert.equal(e.code, code);
    assert.equal(e.status, Number(status));
    assert.equal(e.message, 'op: detail');
  }
  assert.equal(fromStatus(-99, 'op', '').code, 'UNKNOWN');
});

test('every method throws CLOSED after close(); close() is idempotent', async () => {
  const db = open();
  db.set('k', 'v');
  const scan = db.scan(); // open across close(): close ends it
  assert.equal(db.closed, false);
  db.close();
  assert.equal(db.closed, true);
  db.close();
  db[Symbol.dispose]();
  const calls = {
    set: () => db.set('k', 'v'),
    get: () => db.get('k'),
    getString: () => db.getString('k'),
    delete: () => db.delete('k'),
    exists: () => db.exists('k'),
    incr: () => db.incr('k'),
    decr: () => db.decr('k'),
    incrBig: () => db.incrBig('k'),
    decrBig: () => db.decrBig('k'),
    setNX: () => db.setNX('k', 'v'),
    cas: () => db.cas('k', 'v', 'w'),
    expire: () => db.expire('k', 1),
    persist: () => db.persist('k'),
    ttl: () => db.ttl('k'),
    mset: () => db.mset([['k', 'v']]),
    mget: () => db.mget(['k']),
    mdel: () => db.mdel(['k']),
    lock: () => db.lock('k', 'o', 1),
    unlock: () => db.unlock('k', 'o'),
    extendLock: () => db.extendLock('k', 'o', 1),
    setFenced: () => db.setFenced('l', 1n, 'k', 'v'),
    deleteFenced: () => db.deleteFenced('l', 1n, 'k'),
    scan: () => db.scan(),
    count: () => db.count(),
    stats: () => db.stats(),
  };
  for (const [name, call] of Object.entries(calls)) {
    throwsCode(assert, call, 'CLOSED', new RegExp(`^${name}: the database handle is closed$`));
  }
  throwsCode(assert, () => scan.next(), 'CLOSED', /^scan: /);
  await assert.rejects(db.sync(), { code: 'CLOSED', message: 'sync: the database handle is closed' });
  await assert.rejects(db.snapshot(), { code: 'CLOSED' });
});
