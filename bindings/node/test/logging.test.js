'use strict';

// onLog: libdbkv's messages delivered on the JS thread (a damaged open
// logs what it cut before open() returns; background snapshots arrive
// from the event loop), logLevel, bad options; the metrics of stats().

const { test } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { isMainThread } = require('node:worker_threads');
const { open } = require('..');
const { tempDir, sleep, throwsCode } = require('./helpers/util');

/** Writes 100 keys and flips a byte near the end of the newest WAL segment. */
function damagedDir() {
  const dir = path.join(tempDir(), 'db');
  const db = open({ dir });
  for (let i = 0; i < 100; i++) db.set(`key${i}`, 'value-value-value');
  db.close();
  const seg = fs.readdirSync(dir).filter((n) => /^wal-.*\.log$/.test(n)).sort().pop();
  const file = path.join(dir, seg);
  const bytes = fs.readFileSync(file);
  bytes[bytes.length - 10] ^= 0x40;
  fs.writeFileSync(file, bytes);
  return { dir, seg };
}

function collector() {
  const got = [];
  const onLog = (level, message) => {
    assert.ok(isMainThread, 'onLog runs on the JS thread');
    got.push({ level, message });
  };
  const find = (level, ...parts) => got.find((m) => m.level === level && parts.every((p) => m.message.includes(p)));
  return { got, onLog, find };
}

test('a damaged open logs what it cut, before open() returns', () => {
  const { dir, seg } = damagedDir();
  const c = collector();
  throwsCode(assert, () => open({ dir, recoveryMode: 'absolute', onLog: c.onLog }), 'CORRUPTION', /recoveryMode: 'pointInTime' to cut/);
  assert.ok(c.find('error', 'recovery failed', seg), JSON.stringify(c.got));

  const db = open({ dir, onLog: c.onLog });
  try {
    assert.ok(c.find('warn', seg, 'at offset', 'cut the last'), JSON.stringify(c.got));
    assert.ok(c.find('info', 'recovered', 'damaged record'), JSON.stringify(c.got));
  } finally {
    db.close();
  }
});

test('messages from background threads arrive through the event loop', async () => {
  const c = collector();
  const db = open({ dir: path.join(tempDir(), 'db'), onLog: c.onLog, logLevel: 'debug', walSegmentBytes: 4096 });
  try {
    for (let i = 0; i < 200; i++) db.set(`k${i}`, 'x'.repeat(100));
    await db.snapshot(); // written on dbkv's snapshot thread
    for (let i = 0; i < 50 && !c.find('info', 'snapshot written'); i++) await sleep(20);
    assert.ok(c.find('info', 'snapshot written'), JSON.stringify(c.got));
  } finally {
    db.close();
  }
  // Rotation is logged at debug, from whichever thread wrote the WAL.
  assert.ok(c.find('debug', 'is full'), JSON.stringify(c.got.map((m) => m.level)));
});

test('logLevel filters, and bad logging options are refused', () => {
  const c = collector();
  const db = open({ dir: path.join(tempDir(), 'db'), onLog: c.onLog, logLevel: 'warn' });
  db.close();
  assert.deepEqual(c.got, []);
  assert.throws(() => open({ onLog: 'console.log' }), TypeError);
  throwsCode(assert, () => open({ onLog: c.onLog, logLevel: 'verbose' }), 'INVALID_ARGUMENT', /logLevel must be one of/);
});

test('an onLog that throws does not stop delivery', async () => {
  const { dir } = damagedDir();
  const seen = [];
  const warnings = [];
  const onWarning = (w) => warnings.push(w.message);
  process.on('warning', onWarning);
  try {
    const db = open({
      dir,
      onLog: (level, message) => {
        seen.push(level);
        throw new Error('boom');
      },
    });
    db.close();
    await sleep(10); // warnings are emitted on a later tick
  } finally {
    process.off('warning', onWarning);
  }
  assert.ok(seen.length >= 2, `delivered ${seen}`);
  assert.ok(warnings.some((w) => w.includes('onLog threw: boom')), JSON.stringify(warnings));
});

test('stats() reports operations by kind, fsync latency and snapshots', async () => {
  const db = open({ dir: path.join(tempDir(), 'db'), sync: 'always' });
  try {
    db.set('a', '1');
    db.set('b', '2');
    db.exists('a');
    db.incr('n');
    db.delete('a');
    const before = Date.now() - 1000;
    await db.snapshot();
    const st = db.stats();
    assert.equal(st.opsWrite, 2);
    assert.equal(st.opsRead, 1);
    assert.equal(st.opsIncr, 1);
    assert.equal(st.opsDelete, 1);
    assert.ok(st.fsyncs >= 4);
    assert.ok(st.fsyncMaxUs >= st.fsyncP99Us && st.fsyncP99Us >= st.fsyncP50Us, JSON.stringify(st));
    assert.ok(st.lastSnapshotBytes > 0 && st.lastSnapshotUnixMs >= before, JSON.stringify(st));
    assert.ok(st.walSegments >= 1);
    assert.equal(st.backpressureWaits, 0);
  } finally {
    db.close();
  }
});
