'use strict';

// Data directories: reopen, the directory lock (BUSY), recovery modes
// (CORRUPTION), sync() and snapshot() as Promises run off the JS thread.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { open } = require('..');
const { tempDir, sleep, throwsCode } = require('./helpers/util');

test('data written to a directory is there after reopening', async () => {
  const dir = path.join(tempDir(), 'db');
  const db = open({ dir, sync: 'interval', syncIntervalMs: 10 });
  assert.equal(db.dir, dir);
  db.set('k', 'v');
  db.set('bin', Buffer.from([0, 1, 0, 2]));
  db.set('ttl', 'x', { ttlMs: 60_000 });
  db.set('gone', 'x');
  db.delete('gone');
  db.incrBig('counter', 2n ** 60n);
  db.mset([['m1', '1'], ['m2', '2']]);
  const token = db.lock('lock', 'owner', 60_000);
  await db.sync();
  db.close();

  const again = open({ dir });
  try {
    assert.equal(again.getString('k'), 'v');
    assert.deepEqual(again.get('bin'), Buffer.from([0, 1, 0, 2]));
    assert.ok(again.ttl('ttl') > 50_000, 'the expiry is kept');
    assert.equal(again.get('gone'), undefined);
    assert.equal(again.incrBig('counter', 0n), 2n ** 60n);
    assert.deepEqual(again.mget(['m1', 'm2']).map(String), ['1', '2']);
    assert.equal(again.lock('lock', 'other', 1000), null, 'the lock survives');
    assert.equal(again.unlock('lock', 'owner'), true);
    assert.ok(again.lock('lock', 'other', 1000) > token, 'tokens keep growing across restarts');
    const stats = again.stats();
    assert.ok(stats.recoveryWalRecords > 0, 'the WAL was replayed');
  } finally {
    again.close();
  }
});

test('two handles on one directory: the second gets BUSY', () => {
  const dir = path.join(tempDir(), 'db');
  const first = open({ dir });
  try {
    throwsCode(assert, () => open({ dir }), 'BUSY', /^open: data directory .*already open/);
  } finally {
    first.close();
  }
  // Closing releases the directory.
  open({ dir }).close();
});

test('every sync mode writes durably enough to reopen', async () => {
  for (const sync of ['always', 'interval', 'none']) {
    const dir = path.join(tempDir(), sync);
    const db = open({ dir, sync });
    db.set('mode', sync);
    if (sync === 'always') assert.ok(db.stats().durableLsn >= db.stats().lastLsn, 'durable on return');
    db.close(); // close flushes and fsyncs in every mode
    const again = open({ dir });
    assert.equal(again.getString('mode'), sync);
    again.close();
  }
});

test('sync() resolves once writes are durable; it runs off the JS thread', async () => {
  const dir = path.join(tempDir(), 'db');
  const db = open({ dir, sync: 'none' });
  try {
    for (let i = 0; i < 100; i++) db.set(`k${i}`, 'v');
    const pending = db.sync();
    assert.ok(pending instanceof Promise);
    await pending;
    const stats = db.stats();
    assert.equal(stats.durableLsn, stats.lastLsn);
    assert.ok(stats.fsyncs >= 1);
    // Many at once are fine (they are queued past koffi's async limit).
    await Promise.all(Array.from({ length: 300 }, () => db.sync()));
  } finally {
    db.close();
  }
});

test('snapshot() writes a snapshot that recovery loads', async () => {
  const dir = path.join(tempDir(), 'db');
  const db = open({ dir, snapshotKeep: 2, snapshotIntervalSecs: 0, snapshotOps: 0 });
  for (let i = 0; i < 1000; i++) db.set(`key:${i}`, `value:${i}`);
  await db.snapshot();
  assert.equal(db.stats().snapshotsTaken, 1);
  db.set('after', 'snapshot');
  db.close();
  const again = open({ dir });
  try {
    const stats = again.stats();
    assert.equal(stats.recoverySnapshotLoaded, true);
    assert.equal(stats.recoverySnapshotEntries, 1000);
    assert.equal(again.count(), 1001);
    assert.equal(again.getString('key:999'), 'value:999');
    assert.equal(again.getString('after'), 'snapshot');
  } finally {
    again.close();
  }
});

test('snapshot() of an in-memory handle rejects with INVALID_ARGUMENT', async () => {
  const db = open();
  try {
    await db.sync(); // a no-op in memory
    await assert.rejects(db.snapshot(), (e) => {
      assert.equal(e.code, 'INVALID_ARGUMENT');
      assert.match(e.message, /^snapshot: invalid argument: this handle is in-memory/);
      return true;
    });
  } finally {
    db.close();
  }
});

test('close() during sync()/snapshot() waits for them before closing the C handle', async () => {
  const dir = path.join(tempDir(), 'db');
  const db = open({ dir });
  for (let i = 0; i < 5000; i++) db.set(`k${i}`, 'x'.repeat(100));
  const snap = db.snapshot();
  const sync = db.sync();
  db.close(); // must not free the handle under the running calls
  throwsCode(assert, () => db.get('k1'), 'CLOSED');
  await Promise.all([snap, sync]);
  // The deferred close released the directory.
  const again = open({ dir });
  assert.equal(again.count(), 5000);
  again.close();
});

test('CORRUPTION: a damaged WAL refuses to open under absolute recovery', () => {
  const dir = path.join(tempDir(), 'db');
  const db = open({ dir, sync: 'always' });
  for (let i = 0; i < 50; i++) db.set(`k${i}`, 'v'.repeat(50));
  db.close();
  const wal = fs.readdirSync(dir).filter((n) => n.startsWith('wal-')).sort();
  assert.ok(wal.length > 0, `WAL files in ${fs.readdirSync(dir)}`);
  const file = path.join(dir, wal[0]);
  const bytes = fs.readFileSync(file);
  bytes[Math.floor(bytes.length / 2)] ^= 0xff; // a flipped byte mid-log
  fs.writeFileSync(file, bytes);

  throwsCode(assert, () => open({ dir, recoveryMode: 'absolute' }), 'CORRUPTION', /^open: .*recoveryMode 'absolute' refuses to open/);
  // absolute modified nothing; pointInTime keeps what precedes the damage.
  const pit = open({ dir, recoveryMode: 'pointInTime' });
  try {
    const stats = pit.stats();
    assert.ok(stats.recoveryCorruptRecords >= 1 || stats.recoveryBytesDropped > 0);
    assert.ok(pit.count() < 50);
    assert.equal(pit.getString('k0'), 'v'.repeat(50));
  } finally {
    pit.close();
  }
});

// Salvage resumes at the next 32 KiB block of the segment, so the rest of
// the damaged block is lost and every later block is replayed.
test('skipCorrupted replays the good records after a damaged block', () => {
  const dir = path.join(tempDir(), 'db');
  const db = open({ dir, sync: 'none' });
  for (let i = 0; i < 2000; i++) db.set(`k${i}`, 'v'.repeat(50));
  db.close();
  const file = path.join(dir, fs.readdirSync(dir).filter((n) => n.startsWith('wal-')).sort()[0]);
  const bytes = fs.readFileSync(file);
  bytes[Math.floor(bytes.length / 2)] ^= 0xff;
  fs.writeFileSync(file, bytes);
  const skip = open({ dir, recoveryMode: 'skipCorrupted' });
  try {
    assert.ok(skip.count() >= 1500 && skip.count() < 2000, `count ${skip.count()}`);
    assert.equal(skip.getString('k1999'), 'v'.repeat(50));
  } finally {
    skip.close();
  }
});

test('walSegmentBytes reaches the engine: small segments rotate', async () => {
  const dir = path.join(tempDir(), 'db');
  const db = open({ dir, walSegmentBytes: 4096, snapshotOps: 0, snapshotIntervalSecs: 0, sync: 'none' });
  try {
    // The WAL rotates between group-commit batches, so sync() every ~5 KB
    // of records to cut the writes into batches.
    for (let i = 0; i < 1000; i++) {
      db.set(`key:${i}`, 'v'.repeat(100));
      if (i % 40 === 39) await db.sync();
    }
  } finally {
    db.close();
  }
  const segments = fs.readdirSync(dir).filter((n) => n.startsWith('wal-'));
  assert.ok(segments.length >= 10, `${segments.length} segments`);
  const again = open({ dir });
  try {
    assert.equal(again.count(), 1000);
  } finally {
    again.close();
  }
});

test('snapshotOps reaches the engine: a snapshot after that many writes', async () => {
  const dir = path.join(tempDir(), 'db');
  const db = open({ dir, snapshotOps: 200, snapshotIntervalSecs: 0, sync: 'none' });
  try {
    for (let i = 0; i < 1000; i++) db.set(`key:${i}`, 'v');
    // Snapshots by count run in the background: wait for one.
    for (let i = 0; i < 300 && db.stats().snapshotsTaken === 0; i++) await sleep(10);
    assert.ok(db.stats().snapshotsTaken >= 1);
  } finally {
    db.close();
  }
});
