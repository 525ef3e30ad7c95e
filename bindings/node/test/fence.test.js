'use strict';

// Fenced writes: setFenced/deleteFenced change a key only while the lock is
// held with exactly the caller's fencing token. A stale token is a normal
// outcome (false / null), not an exception.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { open } = require('..');
const { fresh, tempDir, sleep, throwsCode } = require('./helpers/util');

test('a holder that paused past its lease is refused', async (t) => {
  const db = fresh(t);
  // No write by A inside its 50 ms lease: on a loaded machine the next call
  // could already be past it (the other tests write with current tokens).
  const tokenA = db.lock('lock:job', 'A', 50);

  await sleep(150); // A is paused; its lease runs out
  assert.equal(db.setFenced('lock:job', tokenA, 'job:result', 'A-late'), false, 'expired lease');

  const tokenB = db.lock('lock:job', 'B', 60_000);
  assert.ok(tokenB > tokenA);
  assert.equal(db.setFenced('lock:job', tokenB, 'job:result', 'B'), true);

  // A wakes up and writes with its old token: refused, B's value stays.
  assert.equal(db.setFenced('lock:job', tokenA, 'job:result', 'A'), false);
  assert.equal(db.deleteFenced('lock:job', tokenA, 'job:result'), null);
  assert.equal(db.getString('job:result'), 'B');
  assert.equal(db.getString('lock:job'), 'B');
});

test('setFenced writes like set() with the current token only', (t) => {
  const db = fresh(t);
  const t1 = db.lock('lock', 'a', 60_000);
  assert.equal(db.setFenced('lock', t1, 'res', 'v1'), true);
  assert.equal(db.ttl('res'), -1);
  assert.equal(db.setFenced(Buffer.from('lock'), t1, Buffer.from('res'), Buffer.from([0, 1]), { ttlMs: 30_000 }), true);
  assert.deepEqual(db.get('res'), Buffer.from([0, 1]));
  assert.ok(db.ttl('res') > 0 && db.ttl('res') <= 30_000, 'the TTL is replaced, as set() does');
  assert.equal(db.getString('lock'), 'a', 'the lock is left alone');

  const t2 = db.lock('lock', 'a', 60_000);
  assert.ok(t2 > t1, 'relocking issues a new token');
  assert.equal(db.setFenced('lock', t1, 'res', 'old'), false);
  assert.equal(db.setFenced('lock', t2 + 1n, 'res', 'x'), false, 'only the exact token');
  assert.equal(db.setFenced('lock', 0n, 'res', 'x'), false, 'tokens start at 1');
  assert.equal(db.setFenced('other', t2, 'res', 'x'), false, 'a token is bound to its lock');
  assert.deepEqual(db.get('res'), Buffer.from([0, 1]));
  // A token as a number works too (e.g. after a round trip through JSON).
  assert.equal(db.setFenced('lock', Number(t2), 'res', 'v2'), true);
  assert.equal(db.getString('res'), 'v2');

  assert.equal(db.unlock('lock', 'a'), true);
  assert.equal(db.setFenced('lock', t2, 'res', 'x'), false, 'stale after unlock');
  assert.equal(db.getString('res'), 'v2');
});

test('deleteFenced: true deleted, false missing, null stale', (t) => {
  const db = fresh(t);
  const t1 = db.lock('lock', 'a', 60_000);
  db.set('res', 'v');
  assert.equal(db.deleteFenced('lock', t1, 'res'), true);
  assert.equal(db.exists('res'), false);
  assert.equal(db.deleteFenced('lock', t1, 'res'), false);

  const t2 = db.lock('lock', 'a', 60_000);
  db.set('res', 'v');
  assert.equal(db.deleteFenced('lock', t1, 'res'), null);
  assert.equal(db.deleteFenced('lock', t1, 'missing'), null, 'stale wins over missing');
  assert.equal(db.getString('res'), 'v');

  assert.equal(db.deleteFenced('lock', t2, 'lock'), true, 'deleting the lock key releases the lock');
  assert.notEqual(db.lock('lock', 'b', 1000), null);
});

test('bad arguments throw before any write', (t) => {
  const db = fresh(t, { maxValueBytes: 8 });
  const token = db.lock('lock', 'a', 60_000);
  db.setFenced('lock', token, 'res', 'keep');
  for (const bad of [undefined, null, '1', 1.5, -1, 2 ** 53, -1n, 2n ** 64n, {}]) {
    throwsCode(assert, () => db.setFenced('lock', bad, 'res', 'x'), 'INVALID_ARGUMENT', /^setFenced: token must be a fencing token/);
    throwsCode(assert, () => db.deleteFenced('lock', bad, 'res'), 'INVALID_ARGUMENT', /^deleteFenced: token must be/);
  }
  throwsCode(assert, () => db.setFenced(42, token, 'res', 'x'), 'INVALID_ARGUMENT', /^setFenced: lockKey must be a string/);
  throwsCode(assert, () => db.setFenced('lock', token, 42, 'x'), 'INVALID_ARGUMENT', /^setFenced: key must be/);
  throwsCode(assert, () => db.setFenced('lock', token, 'res', 42), 'INVALID_ARGUMENT', /^setFenced: value must be/);
  throwsCode(assert, () => db.setFenced('lock', token, 'res', 'x', { ttlMs: -1 }), 'INVALID_ARGUMENT', /ttlMs must be/);
  throwsCode(assert, () => db.deleteFenced(null, token, 'res'), 'INVALID_ARGUMENT', /^deleteFenced: lockKey must be/);
  // From the library, with its message; checked before the token.
  throwsCode(assert, () => db.setFenced('', token, 'res', 'x'), 'INVALID_ARGUMENT', /^setFenced: key is empty/);
  throwsCode(assert, () => db.deleteFenced('lock', token, ''), 'INVALID_ARGUMENT', /^deleteFenced: .*key is empty/);
  throwsCode(assert, () => db.setFenced('lock', token, 'res', 'x'.repeat(9)), 'TOO_LARGE', /^setFenced: value is 9 bytes/);
  throwsCode(assert, () => db.setFenced('lock', token + 1n, 'res', 'x'.repeat(9)), 'TOO_LARGE');
  throwsCode(assert, () => db.setFenced('k'.repeat(65536), token, 'res', 'x'), 'TOO_LARGE', /key is 65536 bytes/);
  assert.equal(db.getString('res'), 'keep');
  assert.equal(db.count(), 2);
  assert.equal(db.setFenced('lock', token, 'res', 'after'), true, 'the token is still good');
});

test('fenced writes and their tokens survive a reopen', async () => {
  const dir = path.join(tempDir(), 'db');
  let db = open({ dir, sync: 'always' });
  const t1 = db.lock('lock', 'a', 3_600_000);
  assert.equal(db.setFenced('lock', t1, 'res', 'v1'), true);
  assert.equal(db.setFenced('lock', t1 + 1n, 'never', 'x'), false);
  db.close();

  db = open({ dir });
  try {
    assert.equal(db.getString('res'), 'v1');
    assert.equal(db.exists('never'), false, 'a refused write logs nothing');
    assert.equal(db.setFenced('lock', t1, 'res', 'v2'), true, 'the token came back with the lock');
    const t2 = db.lock('lock', 'a', 3_600_000);
    await db.snapshot();
    db.close();

    db = open({ dir });
    assert.equal(db.getString('res'), 'v2');
    assert.equal(db.setFenced('lock', t1, 'res', 'stale'), false);
    assert.equal(db.setFenced('lock', t2, 'res', 'v3'), true);
  } finally {
    db.close();
  }
});
