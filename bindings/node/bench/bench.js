'use strict';

/**
 * npm run bench [-- --keys N --runs R]
 *
 * Single-threaded set and get throughput of dbkv (in memory) and lmdb-js
 * (noSync, binary encoding) on the same workload, in the same process:
 * N (default 1,000,000) 53-byte string keys with 200-byte Buffer values.
 * Each run starts from an empty store: the set phase inserts every key,
 * the get phase reads every key back. Keys go in key order in both phases,
 * which is lmdb's best case (appends to its B-tree, sequential pages).
 * lmdb puts are not awaited one by one; the set phase ends when the last
 * put's promise resolves (everything committed). The table reports the
 * median of the runs.
 */

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { performance } = require('node:perf_hooks');
const dbkv = require('..');

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
}

const KEYS = arg('keys', 1_000_000);
const RUNS = arg('runs', 3);
const VALUE_BYTES = 200;
const TARGETS = { get: 1_000_000, set: 700_000, ratio: 3 };

// 53 bytes: 13 of prefix, 40 of zero-padded decimal.
const keys = Array.from({ length: KEYS }, (_, i) => `user:session:${String(i).padStart(40, '0')}`);
if (Buffer.byteLength(keys[0]) !== 53) throw new Error('keys must be 53 bytes');
// A pool of distinct random values, so no engine sees one repeated buffer.
const values = Array.from({ length: 1024 }, () => {
  const b = Buffer.allocUnsafe(VALUE_BYTES);
  for (let i = 0; i < VALUE_BYTES; i++) b[i] = (Math.random() * 256) | 0;
  return b;
});

const opsPerSec = (n, ms) => (n * 1000) / ms;

function benchDbkv(n) {
  const db = dbkv.open();
  try {
    let t = performance.now();
    for (let i = 0; i < n; i++) db.set(keys[i], values[i & 1023]);
    const set = opsPerSec(n, performance.now() - t);
    let bytes = 0;
    t = performance.now();
    for (let i = 0; i < n; i++) bytes += db.get(keys[i]).length;
    const get = opsPerSec(n, performance.now() - t);
    if (bytes !== n * VALUE_BYTES) throw new Error(`dbkv read ${bytes} bytes`);
    return { set, get };
  } finally {
    db.close();
  }
}

async function benchLmdb(lmdb, n) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dbkv-bench-lmdb-'));
  const db = lmdb.open({ path: dir, noSync: true, encoding: 'binary' });
  try {
    let t = performance.now();
    let last;
    for (let i = 0; i < n; i++) last = db.put(keys[i], values[i & 1023]);
    await last;
    const set = opsPerSec(n, performance.now() - t);
    let bytes = 0;
    t = performance.now();
    for (let i = 0; i < n; i++) bytes += db.get(keys[i]).length;
    const get = opsPerSec(n, performance.now() - t);
    if (bytes !== n * VALUE_BYTES) throw new Error(`lmdb read ${bytes} bytes`);
    return { set, get };
  } finally {
    await db.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const fmt = (x) => Math.round(x).toLocaleString('en-US').padStart(12);

async function main() {
  let lmdb = null;
  try {
    lmdb = require('lmdb');
  } catch (e) {
    console.error(`lmdb is not installed (npm ci installs it as a devDependency): ${e.message}`);
  }
  console.log(`dbkv ${dbkv.version()} (${dbkv.libraryFile()}), node ${process.version}, ${os.cpus().length} CPUs`);
  console.log(`${KEYS.toLocaleString('en-US')} keys of 53 bytes, ${VALUE_BYTES}-byte Buffer values, ${RUNS} runs, single thread\n`);

  // JIT warm-up on a small key set, not measured.
  benchDbkv(Math.min(KEYS, 50_000));
  if (lmdb) await benchLmdb(lmdb, Math.min(KEYS, 50_000));

  const runs = { dbkv: [], lmdb: [] };
  for (let r = 0; r < RUNS; r++) {
    runs.dbkv.push(benchDbkv(KEYS));
    if (global.gc) global.gc();
    if (lmdb) runs.lmdb.push(await benchLmdb(lmdb, KEYS));
    if (global.gc) global.gc();
    const d = runs.dbkv[r];
    const l = runs.lmdb[r];
    console.log(
      `run ${r + 1}: dbkv set ${fmt(d.set)} get ${fmt(d.get)}` +
        (l ? ` | lmdb set ${fmt(l.set)} get ${fmt(l.get)}` : ''),
    );
  }

  const m = (list, k) => median(list.map((x) => x[k]));
  const d = { set: m(runs.dbkv, 'set'), get: m(runs.dbkv, 'get') };
  console.log(`\nmedian of ${RUNS} runs, ops/s:`);
  console.log(`| engine        |          set |          get |`);
  console.log(`|---------------|--------------|--------------|`);
  console.log(`| dbkv (koffi)  | ${fmt(d.set)} | ${fmt(d.get)} |`);
  let ok = d.set >= TARGETS.set && d.get >= TARGETS.get;
  if (lmdb) {
    const l = { set: m(runs.lmdb, 'set'), get: m(runs.lmdb, 'get') };
    const rs = d.set / l.set;
    const rg = d.get / l.get;
    console.log(`| lmdb-js       | ${fmt(l.set)} | ${fmt(l.get)} |`);
    console.log(`| dbkv / lmdb   | ${(rs.toFixed(2) + 'x').padStart(12)} | ${(rg.toFixed(2) + 'x').padStart(12)} |`);
    ok = ok && rs >= TARGETS.ratio && rg >= TARGETS.ratio;
  }
  console.log(
    `\ntargets: get >= ${TARGETS.get.toLocaleString('en-US')}/s, set >= ${TARGETS.set.toLocaleString('en-US')}/s, ` +
      `both >= ${TARGETS.ratio}x lmdb-js: ${ok ? 'met' : 'NOT met'}`,
  );
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
