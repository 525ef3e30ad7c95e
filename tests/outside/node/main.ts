
// Outside-user check (tests/outside/run.sh): TypeScript (tsc, strict) importing 'dbkv' from a
// project that installed the npm tarball, with no DBKV_LIB and no
// LD_LIBRARY_PATH. Writes a value, one with a TTL, a counter and a lock
// into DATA_DIR, closes, reopens and checks they came back. Prints
// "ok node-ts" and exits 0, or names the mismatch and exits 1.
//
//   usage: tsc (strict) main.ts, then node main.js DATA_DIR

import { open, version, libraryFile, type DB } from 'dbkv';

const dir = process.argv[2];
if (!dir) {
  console.error('usage: node main.js DATA_DIR');
  process.exit(2);
}
let failures = 0;
function check(what: string, ok: boolean): void {
  if (!ok) {
    console.error(`node-ts: mismatch: ${what}`);
    failures++;
  }
}

let db: DB = open({ dir });
db.set('greeting', 'hello from node-ts');
db.set('session', 'user-7', { ttlMs: 3_600_000 });
db.incr('counter');
check('counter == 42 after incr 1, 41', db.incr('counter', 41) === 42);
const fence: bigint | null = db.lock('lock:job', 'worker-a', 60_000);
check(`lock granted with a bigint token (got ${fence})`, typeof fence === 'bigint' && fence > 0n);
db.close();

db = open({ dir });
let v: string | undefined = db.getString('greeting');
check(`greeting came back (got ${v})`, v === 'hello from node-ts');
v = db.getString('session');
check(`session came back (got ${v})`, v === 'user-7');
const ttl: number | undefined = db.ttl('session');
check(`session TTL in (0, 1 h] (got ${ttl})`, ttl !== undefined && ttl > 0 && ttl <= 3_600_000);
v = db.getString('counter');
check(`counter came back as 42 (got ${v})`, v === '42');
check('counter == 43', db.incr('counter') === 43);
v = db.getString('lock:job');
check(`lock:job held by worker-a (got ${v})`, v === 'worker-a');
check('worker-b refused', db.lock('lock:job', 'worker-b', 1000) === null);
const fence2: bigint | null = db.lock('lock:job', 'worker-a', 1000);
check(`fencing token grew across the restart (${fence} then ${fence2})`, fence !== null && fence2 !== null && fence2 > fence);
check('unlock', db.unlock('lock:job', 'worker-a') === true);
check(`3 keys left (got ${db.count()})`, db.count() === 3);
db.close();

if (failures !== 0) {
  console.error(`node-ts: ${failures} check(s) failed`);
  process.exit(1);
}
console.log(`ok node-ts (libdbkv ${version()} from ${libraryFile()})`);
