'use strict';

// TTLs: keys really disappear, and every method that takes or reads a TTL.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const { fresh, sleep } = require('./helpers/util');

test('a key set with ttlMs expires', async (t) => {
  const db = fresh(t);
  // TTLs of a few hundred ms: short enough to wait out, long enough that a
  // loaded machine does not expire them between two consecutive calls.
  db.set('short', 'v', { ttlMs: 300 });
  db.set('long', 'v', { ttlMs: 60_000 });
  db.set('none', 'v');
  db.set('zero', 'v', { ttlMs: 0 }); // 0 = no expiry
  const left = db.ttl('short');
  assert.ok(left > 0 && left <= 300, `ttl ${left}`);
  assert.equal(db.getString('short'), 'v');
  await sleep(450);
  assert.equal(db.get('short'), undefined);
  assert.equal(db.getString('short'), undefined);
  assert.equal(db.exists('short'), false);
  assert.equal(db.ttl('short'), undefined);
  assert.deepEqual(db.mget(['short', 'long']), [undefined, Buffer.from('v')]);
  assert.equal([...db.scan('short')].length, 0);
  assert.equal(db.count(), 3);
  assert.equal(db.ttl('none'), -1);
  assert.equal(db.ttl('zero'), -1);
  const longLeft = db.ttl('long');
  assert.ok(longLeft > 59_000 && longLeft <= 60_000, `ttl ${longLeft}`);
});

test('expire, persist and ttl', async (t) => {
  const db = fresh(t);
  assert.equal(db.expire('missing', 100), false);
  assert.equal(db.persist('missing'), false);
  assert.equal(db.ttl('missing'), undefined);
  db.set('k', 'v');
  assert.equal(db.expire('k', 10_000), true);
  assert.ok(db.ttl('k') > 9_000);
  assert.equal(db.persist('k'), true);
  assert.equal(db.ttl('k'), -1);
  assert.equal(db.expire('k', 10_000), true);
  assert.equal(db.expire('k', 0), true); // 0 removes the expiry, as in C
  assert.equal(db.ttl('k'), -1);
  assert.equal(db.expire('k', 40), true);
  await sleep(120);
  assert.equal(db.get('k'), undefined);
});

test('set without ttlMs clears an earlier TTL', (t) => {
  const db = fresh(t);
  db.set('k', 'v', { ttlMs: 10_000 });
  db.set('k', 'v2');
  assert.equal(db.ttl('k'), -1);
  db.set('k', 'v3', {});
  assert.equal(db.ttl('k'), -1);
});

test('mset, setNX and cas take ttlMs', async (t) => {
  const db = fresh(t);
  db.mset([['a', '1'], ['b', '2']], { ttlMs: 300 });
  assert.equal(db.setNX('n', 'v', { ttlMs: 300 }), true);
  db.set('c', 'old');
  assert.equal(db.cas('c', 'old', 'new', { ttlMs: 300 }), true);
  for (const k of ['a', 'b', 'n', 'c']) assert.ok(db.ttl(k) > 0, k);
  await sleep(450);
  assert.deepEqual(db.mget(['a', 'b', 'n', 'c']), [undefined, undefined, undefined, undefined]);
  // Expired keys are absent for setNX and cas as well.
  assert.equal(db.setNX('n', 'again'), true);
  assert.equal(db.cas('c', 'new', 'x'), false);
});
