'use strict';

// Run by memory.test.js with --expose-gc: a mix of get/set/mget/scan calls,
// printing the RSS after a warm-up and after a million more calls. Memory
// the C side hands out (mget values, scan iterators) would show up here as
// growth if the binding failed to free it. The key set is fixed, so the
// engine's own memory does not grow.

const { open } = require('../..');

const CALLS = Number(process.argv[2] || 1_000_000);
const WARMUP = Number(process.argv[3] || CALLS / 2);
// A control run of the test sets this to make the binding skip dbkv_free,
// proving the measurement notices a leak.
if (process.env.DBKV_TEST_LEAK_MGET) require('../../lib/native').load().free = () => {};
const KEYS = 400;
const GROUPS = 40; // 10 keys per scanned prefix
const db = open();
const keys = [];
for (let i = 0; i < KEYS; i++) keys.push(`group:${i % GROUPS}:key:${i}`);
const values = [Buffer.alloc(200, 1), Buffer.alloc(3000, 2), 'a string value, UTF-8: é'];
for (let i = 0; i < KEYS; i++) db.set(keys[i], values[i % 3]);

let sink = 0;
function calls(n, offset) {
  for (let c = 0; c < n; c++) {
    const i = (c + offset) % KEYS;
    switch (c & 3) {
      case 0:
        db.set(keys[i], values[c % 3]);
        break;
      case 1:
        sink += db.get(keys[i]).length;
        break;
      case 2:
        for (const v of db.mget([keys[i], keys[(i + 1) % KEYS], 'missing', keys[(i + 7) % KEYS]])) sink += v ? v.length : 0;
        break;
      default:
        // about 10 entries per scan; every fourth scan is left by break
        for (const [k, v] of db.scan(`group:${i % GROUPS}:`)) {
          sink += k.length + v.length;
          if (c % 16 === 3) break;
        }
    }
  }
}

function rss() {
  globalThis.gc();
  globalThis.gc();
  return process.memoryUsage().rss;
}

calls(WARMUP, 0);
const before = rss();
calls(CALLS, WARMUP);
const after = rss();
db.close();
process.stdout.write(JSON.stringify({ before, after, calls: CALLS, sink }) + '\n');
