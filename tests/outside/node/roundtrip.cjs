'use strict';

// The outside-user round trip shared by main.cjs (require) and main.mjs
// (import): each loads dbkv its own way and passes it here. Writes a
// value, one with a TTL, a counter and a lock into `dir`, closes, reopens
// and checks they came back. Prints "ok <label> (libdbkv ...)" and
// returns, or names each mismatch and exits 1. (main.ts keeps its own
// copy: compiling it with tsc --strict is what checks the types.)

/**
 * @param {typeof import('dbkv')} dbkv  the loaded package
 * @param {string} label  "node-cjs" or "node-esm"
 * @param {string | undefined} dir  the data directory
 */
function roundtrip({ open, version, libraryFile }, label, dir) {
  if (!dir) {
    console.error(`usage: node main.${label === 'node-cjs' ? 'cjs' : 'mjs'} DATA_DIR`);
    process.exit(2);
  }
  let failures = 0;
  function check(what, ok) {
    if (!ok) {
      console.error(`${label}: mismatch: ${what}`);
      failures++;
    }
  }

  let db = open({ dir });
  db.set('greeting', `hello from ${label}`);
  db.set('session', 'user-7', { ttlMs: 3_600_000 });
  db.incr('counter');
  check('counter == 42 after incr 1, 41', db.incr('counter', 41) === 42);
  const fence = db.lock('lock:job', 'worker-a', 60_000);
  check(`lock granted with a bigint token (got ${fence})`, typeof fence === 'bigint' && fence > 0n);
  db.close();

  db = open({ dir });
  let v = db.getString('greeting');
  check(`greeting came back (got ${v})`, v === `hello from ${label}`);
  v = db.getString('session');
  check(`session came back (got ${v})`, v === 'user-7');
  const ttl = db.ttl('session');
  check(`session TTL in (0, 1 h] (got ${ttl})`, ttl !== undefined && ttl > 0 && ttl <= 3_600_000);
  v = db.getString('counter');
  check(`counter came back as 42 (got ${v})`, v === '42');
  check('counter == 43', db.incr('counter') === 43);
  v = db.getString('lock:job');
  check(`lock:job held by worker-a (got ${v})`, v === 'worker-a');
  check('worker-b refused', db.lock('lock:job', 'worker-b', 1000) === null);
  const fence2 = db.lock('lock:job', 'worker-a', 1000);
  check(`fencing token grew across the restart (${fence} then ${fence2})`, fence2 !== null && fence2 > fence);
  check('unlock', db.unlock('lock:job', 'worker-a') === true);
  check(`3 keys left (got ${db.count()})`, db.count() === 3);
  db.close();

  if (failures !== 0) {
    console.error(`${label}: ${failures} check(s) failed`);
    process.exit(1);
  }
  console.log(`ok ${label} (libdbkv ${version()} from ${libraryFile()})`);
}

module.exports = roundtrip;
