// Compiled with `tsc --noEmit` (npm run typecheck, and by test/typecheck.test.js):
// uses every method with the types a caller would, so a wrong or missing
// declaration in index.d.ts fails the build. The @ts-expect-error lines
// check that misuse is rejected too.
import { open, version, DbkvError, DB, ERROR_CODES, type OpenOptions, type Stats, type LogLevel } from 'dbkv';

const options: OpenOptions = { dir: '/tmp/x', sync: 'always', shards: 16, recoveryMode: 'absolute' };
void options;
const logged: OpenOptions = { onLog: (level: LogLevel, message: string) => void `${level} ${message}`, logLevel: 'debug' };
void logged;
const db: DB = open();
const v: string = version();

db.set('k', 'v');
db.set(Buffer.from('k'), new Uint8Array([1, 2]), { ttlMs: 10 });
const got: Buffer | undefined = db.get('k');
const gotLen: number | undefined = db.getInto('k', new Uint8Array(64));
const text: string | undefined = db.getString('k');
const deleted: boolean = db.delete('k');
const present: boolean = db.exists('k');
const n: number = db.incr('c') + db.decr('c', 2);
const big: bigint = db.incrBig('c', 10n) + db.decrBig('c');
const stored: boolean = db.setNX('k', 'v', { ttlMs: 5 });
const swapped: boolean = db.cas('k', 'v', 'w');
const expired: boolean = db.expire('k', 100) && db.persist('k');
const left: number | undefined = db.ttl('k');
db.mset([['a', '1'], [Buffer.from('b'), new Uint8Array(2)]], { ttlMs: 1 });
db.mset({ a: '1', b: Buffer.from('2') });
const values: (Buffer | undefined)[] = db.mget(['a', Buffer.from('b')]);
const removed: number = db.mdel(['a', 'b']);
const fence: bigint | null = db.lock('l', 'me', 1000);
const released: boolean = db.unlock('l', 'me') || db.extendLock('l', 'me', 10);
const fenced: boolean = db.setFenced('l', fence ?? 0n, 'res', 'v', { ttlMs: 10 }) && db.setFenced(Buffer.from('l'), 7, 'res', new Uint8Array(1));
const fencedDelete: boolean | null = db.deleteFenced('l', 1n, 'res');
for (const [key, value] of db.scan('p')) {
  const k: Buffer = key;
  const val: Buffer = value;
  void k, val;
}
const it = db.scan();
it.return();
const count: number = db.count();
const stats: Stats = db.stats();
const failed: boolean = stats.failed;
const done: Promise<void> = db.sync().then(() => db.snapshot());
void [got, gotLen, text, deleted, present, n, big, stored, swapped, expired, left, values, removed, fence, released, fenced, fencedDelete, count, failed, done, v];

try {
  db.get('k');
} catch (e) {
  if (e instanceof DbkvError) {
    const code: string = e.code;
    const exact: bigint | undefined = e.value;
    void code, exact;
  }
}
const codeOfBusy: string | undefined = ERROR_CODES['-8'];
void codeOfBusy;

db.close();
db[Symbol.dispose]();

// @ts-expect-error: numbers are not keys
db.set(1, 'v');
// @ts-expect-error: sync modes are strings from a fixed set
open({ sync: 'sometimes' });
// @ts-expect-error: log levels are strings from a fixed set
open({ logLevel: 'verbose' });
// @ts-expect-error: incrBig takes a bigint
db.incrBig('c', 1);
// @ts-expect-error: a fencing token is a bigint or a number, not a string
db.setFenced('l', '1', 'res', 'v');
// @ts-expect-error: deleteFenced may return null (stale token)
const notNull: boolean = db.deleteFenced('l', 1n, 'res');
void notNull;
// @ts-expect-error: get returns Buffer | undefined, not string
const wrong: string = db.get('k');
void wrong;
