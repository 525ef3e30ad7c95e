'use strict';

// Nothing the C side allocates may leak: a million get/set/mget/scan calls
// must leave the RSS flat (after a warm-up, with some slack for the
// allocator), and a deliberately leaking run must not.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { execFileSync } = require('node:child_process');

const WORKER = path.join(__dirname, 'helpers', 'rss-worker.js');
// Mixing value sizes and scans moves the allocator's high-water mark by
// 10-40 MB before it settles; the leaks this guards against (an unfreed
// mget value or scan iterator) cost hundreds of MB per million calls.
const SLACK = 48 * 1024 * 1024;

function measure(args, env = {}) {
  const out = execFileSync(process.execPath, ['--expose-gc', WORKER, ...args], {
    env: { ...process.env, ...env },
    encoding: 'utf8',
  });
  return JSON.parse(out);
}

test('RSS stays flat over a million get/set/mget/scan calls', { timeout: 180_000 }, () => {
  const { before, after, calls } = measure(['1000000', '500000']);
  assert.equal(calls, 1_000_000);
  const grew = after - before;
  assert.ok(grew < SLACK, `RSS grew by ${(grew / 2 ** 20).toFixed(1)} MiB (${before} -> ${after})`);
});

test('control: the same measurement catches mget values that are not freed', { timeout: 120_000 }, () => {
  const { before, after } = measure(['200000', '100000'], { DBKV_TEST_LEAK_MGET: '1' });
  const grew = after - before;
  assert.ok(grew > SLACK, `a leaking run grew by only ${(grew / 2 ** 20).toFixed(1)} MiB`);
});
