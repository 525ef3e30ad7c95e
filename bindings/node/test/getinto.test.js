'use strict';

// getInto: the value copied into a caller's buffer, nothing allocated.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const { fresh } = require('./helpers/util');

test('getInto copies a value that fits and reports its length', (t) => {
  const db = fresh(t);
  db.set('k', 'hello');
  const target = Buffer.alloc(16, 0xff);
  assert.equal(db.getInto('k', target), 5);
  assert.equal(target.toString('utf8', 0, 5), 'hello');
  assert.equal(target[5], 0xff, 'bytes past the value are left alone');
  // A Uint8Array view writes into its own window only.
  const backing = new Uint8Array(32).fill(7);
  const view = backing.subarray(8, 24);
  assert.equal(db.getInto('k', view), 5);
  assert.deepEqual([...backing.subarray(0, 8)], Array(8).fill(7));
  assert.equal(Buffer.from(backing.subarray(8, 13)).toString(), 'hello');
  // Binary keys name the same value as their string.
  assert.equal(db.getInto(Buffer.from('k'), target), 5);
});

test('getInto: a missing key is undefined, an empty value is 0', (t) => {
  const db = fresh(t);
  assert.equal(db.getInto('missing', Buffer.alloc(8)), undefined);
  db.set('empty', Buffer.alloc(0));
  assert.equal(db.getInto('empty', Buffer.alloc(8)), 0);
  assert.equal(db.getInto('empty', Buffer.alloc(0)), 0);
});

test('getInto: a value that does not fit reports its length and copies nothing', (t) => {
  const db = fresh(t);
  const big = Buffer.alloc(100_000, 'x');
  db.set('big', big);
  const small = Buffer.alloc(10, 0);
  assert.equal(db.getInto('big', small), big.length);
  assert.ok(small.equals(Buffer.alloc(10, 0)), 'nothing was copied');
  const fits = Buffer.alloc(big.length);
  assert.equal(db.getInto('big', fits), big.length);
  assert.ok(fits.equals(big));
});

test('getInto: TypeError for a target that is not a Uint8Array; closed handle', (t) => {
  const db = fresh(t);
  db.set('k', 'v');
  for (const bad of [undefined, null, 'buf', 16, [1, 2], new ArrayBuffer(8), new Uint16Array(4)]) {
    assert.throws(() => db.getInto('k', bad), TypeError);
  }
  assert.throws(() => db.getInto(42, Buffer.alloc(8)), { code: 'INVALID_ARGUMENT' });
  db.close();
  assert.throws(() => db.getInto('k', Buffer.alloc(8)), { code: 'CLOSED' });
});
