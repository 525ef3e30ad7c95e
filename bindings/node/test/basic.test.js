'use strict';

// The key-value methods against an in-memory handle: strings and bytes,
// binary and large values, setNX, cas, the multi-key calls, scan, count, stats.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const { open, DB } = require('..');
const { fresh } = require('./helpers/util');

test('set / get / getString / exists / delete round-trip', (t) => {
  const db = fresh(t);
  assert.ok(db instanceof DB);
  assert.equal(db.dir, undefined);
  assert.equal(db.get('k'), undefined);
  assert.equal(db.getString('k'), undefined);
  assert.equal(db.exists('k'), false);
  db.set('k', 'v1');
  assert.deepEqual(db.get('k'), Buffer.from('v1'));
  assert.equal(db.getString('k'), 'v1');
  assert.equal(db.exists('k'), true);
  db.set('k', 'v2'); // replaces
  assert.equal(db.getString('k'), 'v2');
  assert.equal(db.delete('k'), true);
  assert.equal(db.delete('k'), false);
  assert.equal(db.get('k'), undefined);
  assert.equal(db.exists('k'), false);
});

test('string keys are UTF-8: a string and its bytes name the same key', (t) => {
  const db = fresh(t);
  const keys = ['clé', '键', 'emoji 🔑', 'Ωmega\u0000zero', 'a'.repeat(6000) + 'é']; // the last one is past the fast path
  for (const [i, key] of keys.entries()) {
    db.set(key, `v${i}`);
    assert.equal(db.getString(Buffer.from(key, 'utf8')), `v${i}`, key.slice(0, 20));
    assert.equal(db.getString(new Uint8Array(Buffer.from(key, 'utf8'))), `v${i}`);
  }
  // Distinct code points stay distinct keys (no normalisation, no truncation at NUL).
  db.set('Ωmega', 'other');
  assert.equal(db.getString('Ωmega\u0000zero'), 'v3');
  assert.equal(db.count(), keys.length + 1);
});

test('non-ASCII values round-trip through getString and get', (t) => {
  const db = fresh(t);
  const text = 'naïve café — 日本語 — 🚀';
  db.set('t', text);
  assert.equal(db.getString('t'), text);
  assert.deepEqual(db.get('t'), Buffer.from(text, 'utf8'));
});

test('binary keys and values with zero bytes are stored exactly', (t) => {
  const db = fresh(t);
  const key = Buffer.from([0, 0xff, 0, 1, 0]);
  const value = Buffer.from([0, 0, 0, 0xde, 0xad, 0, 0xbe, 0xef, 0]);
  db.set(key, value);
  assert.deepEqual(db.get(key), value);
  assert.equal(db.get(Buffer.from([0, 0xff, 0, 1])), undefined); // a prefix is another key
  // A Uint8Array view into a larger buffer passes only its own bytes.
  const backing = new Uint8Array([9, 9, 1, 2, 3, 9, 9]);
  db.set(backing.subarray(2, 5), backing.subarray(1, 6));
  assert.deepEqual(db.get(Buffer.from([1, 2, 3])), Buffer.from([9, 1, 2, 3, 9]));
});

test('an empty value is a present value', (t) => {
  const db = fresh(t);
  db.set('e', '');
  assert.deepEqual(db.get('e'), Buffer.alloc(0));
  assert.equal(db.getString('e'), '');
  assert.equal(db.exists('e'), true);
  db.set('e2', Buffer.alloc(0));
  assert.equal(db.get('e2').length, 0);
});

test('get returns an independent copy', (t) => {
  const db = fresh(t);
  db.set('a', 'alpha');
  db.set('b', 'bravo');
  const a = db.get('a');
  const b = db.get('b'); // reuses the scratch buffer a was read through
  assert.equal(a.toString(), 'alpha');
  assert.equal(b.toString(), 'bravo');
  a.fill(0);
  assert.equal(db.getString('a'), 'alpha');
});

test('large values (MBs) round-trip, growing past the scratch buffer', (t) => {
  const db = fresh(t);
  const sizes = [16 * 1024 + 1, 200 * 1024, (1 << 20) + 7, 8 * 1024 * 1024];
  for (const size of sizes) {
    const value = Buffer.alloc(size);
    for (let i = 0; i < size; i += 4093) value[i] = (i / 4093) & 0xff;
    value[size - 1] = 0x5a;
    db.set(`big:${size}`, value);
    const got = db.get(`big:${size}`);
    assert.equal(got.length, size);
    assert.ok(got.equals(value), `value of ${size} bytes differs`);
  }
  // A small value after the big ones still comes back exactly sized.
  db.set('small', 'xyz');
  assert.deepEqual(db.get('small'), Buffer.from('xyz'));
  const str = 'ü'.repeat(1 << 20); // 2 MiB of UTF-8 from a string
  db.set('bigstr', str);
  assert.equal(db.getString('bigstr'), str);
});

test('setNX stores only when absent', (t) => {
  const db = fresh(t);
  assert.equal(db.setNX('k', 'first'), true);
  assert.equal(db.setNX('k', 'second'), false);
  assert.equal(db.getString('k'), 'first');
});

test('cas swaps only on an exact match; a missing key is false', (t) => {
  const db = fresh(t);
  assert.equal(db.cas('k', 'x', 'y'), false, 'missing key');
  assert.equal(db.exists('k'), false);
  db.set('k', Buffer.from([1, 0, 2]));
  assert.equal(db.cas('k', Buffer.from([1, 0]), 'y'), false, 'prefix is a mismatch');
  assert.deepEqual(db.get('k'), Buffer.from([1, 0, 2]));
  assert.equal(db.cas('k', Buffer.from([1, 0, 2]), 'swapped'), true);
  assert.equal(db.getString('k'), 'swapped');
  assert.equal(db.cas('k', 'swapped', ''), true);
  assert.equal(db.cas('k', '', 'again'), true, 'empty expected value matches an empty value');
});

test('mset (array and object) / mget / mdel', (t) => {
  const db = fresh(t);
  db.mset([
    ['a', 'A'],
    [Buffer.from('b'), Buffer.from([0, 1])],
    ['é', ''],
    ['a', 'A2'], // later duplicates win
  ]);
  db.mset({ c: 'C', d: Buffer.from('D') });
  assert.deepEqual(db.mget(['a', 'b', 'é', 'c', 'd', 'missing']), [
    Buffer.from('A2'),
    Buffer.from([0, 1]),
    Buffer.alloc(0),
    Buffer.from('C'),
    Buffer.from('D'),
    undefined,
  ]);
  assert.deepEqual(db.mget([]), []);
  assert.equal(db.mdel(['a', 'missing', Buffer.from('b')]), 2);
  assert.equal(db.mdel([]), 0);
  assert.deepEqual(db.mget(['a', 'b', 'c']), [undefined, undefined, Buffer.from('C')]);
  db.mset([]); // nothing to do, no error
});

test('multi-key calls handle big batches and big values', (t) => {
  const db = fresh(t);
  const n = 20000; // past the reused pointer arrays (4096) and the reused arena (1 MiB)
  const pairs = [];
  for (let i = 0; i < n; i++) pairs.push([`key:${i}:${'x'.repeat(40)}`, `value ${i}`]);
  db.mset(pairs);
  assert.equal(db.count(), n);
  const got = db.mget(pairs.map(([k]) => k));
  assert.equal(got.length, n);
  for (let i = 0; i < n; i += 997) assert.equal(got[i].toString(), `value ${i}`);
  const big = Buffer.alloc(3 << 20, 0xab);
  db.mset([['big1', big], ['big2', big]]);
  const [b1, b2] = db.mget(['big1', 'big2']);
  assert.ok(b1.equals(big) && b2.equals(big));
  assert.equal(db.mdel(pairs.map(([k]) => k)), n);
  assert.equal(db.count(), 2);
});

test('scan yields [key, value] Buffers for a prefix, or every key', (t) => {
  const db = fresh(t);
  db.mset([
    ['user:1', 'ann'],
    ['user:2', Buffer.from([0, 2])],
    ['user:é', ''],
    ['order:1', 'x'],
  ]);
  const users = new Map();
  for (const [k, v] of db.scan('user:')) {
    assert.ok(Buffer.isBuffer(k) && Buffer.isBuffer(v));
    users.set(k.toString(), v);
  }
  assert.deepEqual(
    [...users.keys()].sort(),
    ['user:1', 'user:2', 'user:é'],
  );
  assert.deepEqual(users.get('user:2'), Buffer.from([0, 2]));
  assert.equal(users.get('user:é').length, 0);
  assert.equal([...db.scan()].length, 4);
  assert.equal([...db.scan(Buffer.from('order:'))].length, 1);
  assert.equal([...db.scan('none:')].length, 0);
});

test('scan stops on break and return(); a finished scan stays finished', (t) => {
  const db = fresh(t);
  for (let i = 0; i < 100; i++) db.set(`k${i}`, `${i}`);
  let seen = 0;
  for (const entry of db.scan('k')) {
    assert.equal(entry.length, 2);
    if (++seen === 3) break;
  }
  assert.equal(seen, 3);
  const it = db.scan('k');
  assert.equal(it[Symbol.iterator](), it);
  assert.equal(it.next().done, false);
  assert.deepEqual(it.return(), { done: true, value: undefined });
  assert.deepEqual(it.next(), { done: true, value: undefined });
  const all = db.scan('k');
  assert.equal([...all].length, 100);
  assert.equal(all.next().done, true);
  const disposed = db.scan('k');
  disposed[Symbol.dispose]();
  assert.equal(disposed.next().done, true);
});

test('count and stats', (t) => {
  const db = fresh(t);
  assert.equal(db.count(), 0);
  db.mset([['a', '1'], ['b', '2'], ['c', '3']]);
  db.delete('b');
  assert.equal(db.count(), 2);
  const stats = db.stats();
  assert.equal(stats.keys, 2);
  assert.equal(stats.failed, false);
  assert.equal(stats.recoverySnapshotLoaded, false);
  assert.equal(stats.walRecords, 0, 'nothing is logged in memory');
  for (const [name, value] of Object.entries(stats)) {
    assert.ok(typeof value === 'number' || typeof value === 'boolean', name);
  }
  assert.equal(Object.keys(stats).length, 35);
});

test('options are applied: shards, maxValueBytes', (t) => {
  const db = fresh(t, { shards: 1, maxValueBytes: 10 });
  db.set('k', '0123456789');
  assert.throws(() => db.set('k', '01234567890'), { code: 'TOO_LARGE' });
  assert.equal(db.getString('k'), '0123456789');
  for (let i = 0; i < 50; i++) db.set(`s${i}`, 'v');
  assert.equal(db.count(), 51);
});

test('handles are independent', () => {
  const a = open();
  const b = open();
  try {
    a.set('k', 'a');
    assert.equal(b.get('k'), undefined);
  } finally {
    a.close();
    b.close();
  }
});
