'use strict';

// A scan that is started and then dropped must cost little: its C memory
// is invisible to V8, so nothing prompts a collection on its account.
// 20,000 dropped scans over 16 shards of 1,250 entries each used to hold
// one shard copy apiece (about 400 KB each, gigabytes in all); with chunks
// that start at a few entries they hold a few KB each.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { execFileSync } = require('node:child_process');

const WORKER = path.join(__dirname, 'helpers', 'abandoned-scans.js');
const LIMIT = 256 * 1024 * 1024;

test('RSS stays bounded over 20,000 abandoned scans while the event loop turns', { timeout: 180_000 }, () => {
  const out = execFileSync(process.execPath, [WORKER, '20000', String(LIMIT)], { encoding: 'utf8' });
  const { before, peak, scans } = JSON.parse(out);
  const grew = peak - before;
  assert.equal(scans, 20_000, `stopped after ${scans} scans: RSS grew by ${(grew / 2 ** 20).toFixed(0)} MiB`);
  assert.ok(grew < LIMIT, `RSS grew by ${(grew / 2 ** 20).toFixed(1)} MiB`);
});
