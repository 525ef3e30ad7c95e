'use strict';

// Locks with fencing tokens: normal outcomes are return values.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const { fresh, sleep, throwsCode } = require('./helpers/util');

test('lock, refuse a second owner, unlock', (t) => {
  const db = fresh(t);
  const fence = db.lock('lock:a', 'worker-1', 10_000);
  assert.equal(typeof fence, 'bigint');
  assert.ok(fence > 0n);
  assert.equal(db.lock('lock:a', 'worker-2', 10_000), null, 'held by another owner');
  assert.equal(db.getString('lock:a'), 'worker-1', 'the lock value is its owner');
  assert.equal(db.unlock('lock:a', 'worker-2'), false, 'not the owner: nothing changes');
  assert.equal(db.exists('lock:a'), true);
  assert.equal(db.unlock('lock:a', 'worker-1'), true);
  assert.equal(db.unlock('lock:a', 'worker-1'), false, 'already released');
  const next = db.lock('lock:a', 'worker-2', 10_000);
  assert.ok(next > fence, 'tokens only grow');
});

test('relocking as the owner refreshes it with a new token', (t) => {
  const db = fresh(t);
  const t1 = db.lock('l', Buffer.from([1, 0, 2]), 1000);
  const t2 = db.lock('l', Buffer.from([1, 0, 2]), 60_000);
  assert.ok(t2 > t1);
  assert.ok(db.ttl('l') > 1000);
  assert.equal(db.lock('l', Buffer.from([1, 0]), 1000), null, 'owners compare byte for byte');
});

test('extendLock only for the owner; an expired lock is free', async (t) => {
  const db = fresh(t);
  assert.equal(db.extendLock('l', 'me', 1000), false, 'missing');
  db.lock('l', 'me', 300);
  assert.equal(db.extendLock('l', 'you', 10_000), false, 'not the owner');
  assert.equal(db.extendLock('l', 'me', 10_000), true);
  assert.ok(db.ttl('l') > 5000);
  assert.equal(db.extendLock('l', 'me', 100), true);
  await sleep(250);
  assert.equal(db.unlock('l', 'me'), false, 'expired');
  const token = db.lock('l', 'you', 1000);
  assert.notEqual(token, null, 'an expired lock can be taken by someone else');
});

test('tokens grow across keys', (t) => {
  const db = fresh(t);
  let last = 0n;
  for (let i = 0; i < 20; i++) {
    const token = db.lock(`l${i % 3}`, `o${i}`, 10_000) ?? db.lock(`x${i}`, 'o', 10_000);
    assert.ok(token > last);
    last = token;
  }
});

test('a lock needs a TTL and an owner', (t) => {
  const db = fresh(t);
  throwsCode(assert, () => db.lock('l', 'me', 0), 'INVALID_ARGUMENT', /^lock: lock ttlMs must be > 0/);
  throwsCode(assert, () => db.lock('l', '', 1000), 'INVALID_ARGUMENT', /lock: /);
  throwsCode(assert, () => db.extendLock('l', 'me', 0), 'INVALID_ARGUMENT');
  throwsCode(assert, () => db.lock('l', 'me', -5), 'INVALID_ARGUMENT', /ttlMs must be/);
  throwsCode(assert, () => db.lock('l', 42, 1000), 'INVALID_ARGUMENT', /owner must be a string/);
  assert.equal(db.exists('l'), false);
});
