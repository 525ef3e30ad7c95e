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
 * median of the runs, and the ratios both as the ratio of the medians and
 * as the median of each run's ratio (on a busy machine the second is the
 * steadier: both engines of a run see the same load).
 *
 * The "getInto" row reads every key into one reused Buffer (db.getInto),
 * which creates no Buffer per call. The "floor" row is the same workload as one koffi call per operation on
 * keys encoded beforehand, with no result Buffer: the engine plus the FFI
 * call and nothing else, which no binding through koffi can beat. The
 * "koffi call" line is the cost of one call to a C function that does
 * nothing (memcpy of 0 bytes), with three number arguments.
 */

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { performance } = require('node:perf_hooks');
const koffi = require('koffi');
const dbkv = require('..');
const native = require('../lib/native');

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
}

const KEYS = arg('keys', 1_000_000);
const RUNS = arg('runs', 3);
const VALUE_BYTES = 200;
// Issue 13: get >= 3x and set >= 2x lmdb-js in the same run.
const TARGETS = { get: 1_000_000, set: 700_000, getRatio: 3, setRatio: 2 };

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
    const target = Buffer.allocUnsafe(4096);
    bytes = 0;
    t = performance.now();
    for (let i = 0; i < n; i++) bytes += db.getInto(keys[i], target);
    const getInto = opsPerSec(n, performance.now() - t);
    if (bytes !== n * VALUE_BYTES) throw new Error(`dbkv getInto read ${bytes} bytes`);
    return { set, get, getInto };
  } finally {
    db.close();
  }
}

/** The floor: see the comment at the top. */
function benchFloor(n) {
  const api = native.load();
  const out = new BigUint64Array(1);
  if (api.optionsNew(out) !== 0) throw new Error('dbkv_options_new failed');
  const opts = out[0];
  const rc = api.open(opts, out);
  api.optionsFree(opts);
  if (rc !== 0) throw new Error(`dbkv_open: ${api.lastError()}`);
  const db = out[0];
  const h = Number(db);
  const addr = (b) => Number(koffi.address(b));
  const keyBytes = Buffer.allocUnsafeSlow(n * 53);
  for (let i = 0; i < n; i++) keyBytes.write(keys[i], i * 53);
  const valBytes = Buffer.allocUnsafeSlow(1024 * VALUE_BYTES);
  values.forEach((v, i) => v.copy(valBytes, i * VALUE_BYTES));
  const dst = Buffer.allocUnsafeSlow(4096);
  const len = new BigUint64Array(new ArrayBuffer(8));
  const [k, v, d, l] = [keyBytes, valBytes, dst, len].map(addr);
  try {
    let t = performance.now();
    for (let i = 0; i < n; i++) {
      if (api.setFast(h, k + i * 53, 53, v + (i & 1023) * VALUE_BYTES, VALUE_BYTES, 0) !== 0) throw new Error('set');
    }
    const set = opsPerSec(n, performance.now() - t);
    t = performance.now();
    for (let i = 0; i < n; i++) {
      if (api.getIntoFast(h, k + i * 53, 53, d, 4096, l) !== 0) throw new Error('get');
    }
    const get = opsPerSec(n, performance.now() - t);
    return { set, get };
  } finally {
    api.close(db);
    // The C calls saw only addresses: keep the buffers alive until here.
    keyBytes[0] = valBytes[0] + dst[0] + Number(len[0]);
  }
}

/** ns per call of a koffi call to a C function that does nothing. */
function benchCall(n) {
  const memcpy = koffi.load(null).func('void memcpy(uintptr_t dst, uintptr_t src, size_t n)');
  const b = Buffer.allocUnsafeSlow(64);
  const a = Number(koffi.address(b));
  const t = performance.now();
  for (let i = 0; i < n; i++) memcpy(a, a, 0);
  const ns = ((performance.now() - t) * 1e6) / n;
  b[0] = 0;
  return ns;
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
  benchFloor(Math.min(KEYS, 50_000));
  benchCall(100_000);
  if (lmdb) await benchLmdb(lmdb, Math.min(KEYS, 50_000));

  const runs = { dbkv: [], lmdb: [], floor: [], call: [] };
  for (let r = 0; r < RUNS; r++) {
    runs.dbkv.push(benchDbkv(KEYS));
    if (global.gc) global.gc();
    runs.floor.push(benchFloor(KEYS));
    runs.call.push(benchCall(KEYS));
    if (global.gc) global.gc();
    if (lmdb) runs.lmdb.push(await benchLmdb(lmdb, KEYS));
    if (global.gc) global.gc();
    const d = runs.dbkv[r];
    const f = runs.floor[r];
    const l = runs.lmdb[r];
    console.log(
      `run ${r + 1}: dbkv set ${fmt(d.set)} get ${fmt(d.get)} | floor set ${fmt(f.set)} get ${fmt(f.get)}` +
        (l ? ` | lmdb set ${fmt(l.set)} get ${fmt(l.get)} | dbkv/lmdb ${(d.set / l.set).toFixed(2)}x ${(d.get / l.get).toFixed(2)}x` : ''),
    );
  }

  const m = (list, k) => median(list.map((x) => x[k]));
  const d = { set: m(runs.dbkv, 'set'), get: m(runs.dbkv, 'get') };
  console.log(`\nmedian of ${RUNS} runs, ops/s:`);
  console.log(`| engine        |          set |          get |`);
  console.log(`|---------------|--------------|--------------|`);
  const f = { set: m(runs.floor, 'set'), get: m(runs.floor, 'get') };
  const x = (r) => (r.toFixed(2) + 'x').padStart(12);
  console.log(`| dbkv (koffi)  | ${fmt(d.set)} | ${fmt(d.get)} |`);
  console.log(`| getInto       |              | ${fmt(m(runs.dbkv, 'getInto'))} |`);
  console.log(`| floor         | ${fmt(f.set)} | ${fmt(f.get)} |`);
  let ok = d.set >= TARGETS.set && d.get >= TARGETS.get;
  if (lmdb) {
    const l = { set: m(runs.lmdb, 'set'), get: m(runs.lmdb, 'get') };
    const rs = d.set / l.set;
    const rg = d.get / l.get;
    const perRun = (list, k) => median(list.map((x, i) => x[k] / runs.lmdb[i][k]));
    console.log(`| lmdb-js       | ${fmt(l.set)} | ${fmt(l.get)} |`);
    console.log(`| dbkv / lmdb   | ${x(rs)} | ${x(rg)} |`);
    console.log(`|  per-run med. | ${x(perRun(runs.dbkv, 'set'))} | ${x(perRun(runs.dbkv, 'get'))} |`);
    const gi = perRun(runs.dbkv.map((r) => ({ get: r.getInto })), 'get');
    console.log(`| getInto/lmdb  |              | ${x(m(runs.dbkv, 'getInto') / l.get)} |`);
    console.log(`|  per-run med. |              | ${x(gi)} |`);
    console.log(`| floor / lmdb  | ${x(f.set / l.set)} | ${x(f.get / l.get)} |`);
    console.log(`|  per-run med. | ${x(perRun(runs.floor, 'set'))} | ${x(perRun(runs.floor, 'get'))} |`);
    ok = ok && rs >= TARGETS.setRatio && rg >= TARGETS.getRatio;
  }
  console.log(`\nkoffi call (no-op C function, 3 number arguments): ${median(runs.call).toFixed(0)} ns (median)`);
  console.log(
    `\ntargets: get >= ${TARGETS.get.toLocaleString('en-US')}/s, set >= ${TARGETS.set.toLocaleString('en-US')}/s, ` +
      `get >= ${TARGETS.getRatio}x and set >= ${TARGETS.setRatio}x lmdb-js: ${ok ? 'met' : 'NOT met'}`,
  );
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
