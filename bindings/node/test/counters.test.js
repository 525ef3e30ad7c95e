'use strict';

// incr/decr as numbers, the bigint variants over the whole int64 range,
// and the errors around them.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const { fresh, throwsCode } = require('./helpers/util');

const I64_MAX = 2n ** 63n - 1n;
const I64_MIN = -(2n ** 63n);

test('incr and decr count from a missing key as 0', (t) => {
  const db = fresh(t);
  assert.equal(db.incr('c'), 1);
  assert.equal(db.incr('c', 41), 42);
  assert.equal(db.decr('c'), 41);
  assert.equal(db.decr('c', 50), -9);
  assert.equal(db.incr('c', -1), -10);
  assert.equal(db.decr('d', 5), -5);
  assert.equal(db.getString('c'), '-10', 'counters read as base-10 ASCII');
  db.set('s', '123');
  assert.equal(db.incr('s', 0), 123);
});

test('an existing key keeps its TTL through incr', (t) => {
  const db = fresh(t);
  db.set('c', '1', { ttlMs: 60_000 });
  db.incr('c');
  assert.ok(db.ttl('c') > 0);
});

test('counters past 2^53: UNSAFE_INTEGER for numbers, exact with bigint', (t) => {
  const db = fresh(t);
  const start = BigInt(Number.MAX_SAFE_INTEGER) - 5n;
  db.set('c', start.toString());
  assert.equal(db.incr('c', 5), Number.MAX_SAFE_INTEGER); // still safe
  assert.throws(
    () => db.incr('c'),
    (e) => {
      assert.equal(e.code, 'UNSAFE_INTEGER');
      assert.equal(e.value, 2n ** 53n);
      assert.match(e.message, /incr: .*9007199254740992.*incrBig/);
      return true;
    },
  );
  // The increment was applied before the error: incrBig sees it.
  assert.equal(db.incrBig('c', 0n), 2n ** 53n);
  assert.equal(db.incrBig('c', 10n ** 15n), 2n ** 53n + 10n ** 15n);
  assert.equal(db.decrBig('c', 2n ** 53n + 10n ** 15n), 0n);
  assert.equal(db.decrBig('c', I64_MAX), -I64_MAX);
  assert.throws(() => db.decr('c', 0), (e) => e.code === 'UNSAFE_INTEGER' && e.value === -I64_MAX);
  assert.equal(db.incrBig('c'), -I64_MAX + 1n);
  assert.equal(db.decrBig('c'), -I64_MAX);
  assert.equal(db.getString('c'), (-I64_MAX).toString());
});

test('the int64 limits are reachable and overflow is refused without change', (t) => {
  const db = fresh(t);
  assert.equal(db.incrBig('max', I64_MAX), I64_MAX);
  throwsCode(assert, () => db.incrBig('max', 1n), 'OVERFLOW', /incrBig: .*overflow/);
  throwsCode(assert, () => db.incr('max', 1), 'OVERFLOW', /incr: /);
  assert.equal(db.getString('max'), I64_MAX.toString(), 'nothing changed');
  assert.equal(db.decrBig('min', 2n ** 63n - 1n), -I64_MAX);
  assert.equal(db.decrBig('min', 1n), I64_MIN);
  throwsCode(assert, () => db.decrBig('min', 1n), 'OVERFLOW');
  throwsCode(assert, () => db.incrBig('min', -1n), 'OVERFLOW');
  assert.equal(db.incrBig('min', I64_MAX), -1n);
});

test('NOT_INTEGER for values that are not base-10 int64', (t) => {
  const db = fresh(t);
  for (const bad of ['abc', '', '1.5', '+1', '01', ' 1', '9223372036854775808', Buffer.from([0x31, 0])]) {
    db.set('v', bad);
    throwsCode(assert, () => db.incr('v'), 'NOT_INTEGER', /incr: key "v": value is not a base-10 signed 64-bit integer/);
    throwsCode(assert, () => db.decrBig('v'), 'NOT_INTEGER');
    assert.deepEqual(db.get('v'), Buffer.from(bad), 'unchanged');
  }
});

test('deltas are checked before the call', (t) => {
  const db = fresh(t);
  for (const bad of [1.5, NaN, Infinity, 2 ** 53, '1', 1n, null]) {
    throwsCode(assert, () => db.incr('c', bad), 'INVALID_ARGUMENT', /incr: delta must be a safe integer/);
  }
  for (const bad of [1, 2n ** 63n, -(2n ** 63n) - 1n, '1']) {
    throwsCode(assert, () => db.incrBig('c', bad), 'INVALID_ARGUMENT', /incrBig: delta must be a bigint/);
  }
  assert.equal(db.exists('c'), false, 'no rejected call wrote anything');
});
