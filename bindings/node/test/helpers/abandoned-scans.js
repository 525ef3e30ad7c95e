'use strict';

// Run by scan_memory.test.js in a child process WITHOUT --expose-gc: starts
// scans, reads one entry of each and drops them, letting the event loop
// turn, as an application would. Whatever a dropped scan holds in C memory
// is invisible to V8, so only a cheap abandoned scan keeps RSS bounded.
// Prints {before, peak, after, scans} as JSON; stops early once RSS passes
// the limit, so a regression fails fast instead of exhausting the machine.

const { open } = require('../..');

const SCANS = Number(process.argv[2] || 20_000);
const LIMIT = Number(process.argv[3] || 512 * 1024 * 1024);
const KEYS = 20_000;

async function main() {
  // 16 shards of 1,250 keys with 200-byte values: copying one shard per
  // scan would cost about 400 KB.
  const db = open({ shards: 16 });
  const value = Buffer.alloc(200, 7);
  for (let i = 0; i < KEYS; i++) db.set(`task:${i}`, value);
  const turn = () => new Promise((resolve) => setImmediate(resolve));
  const abandon = () => {
    const it = db.scan('task:');
    if (it.next().done) throw new Error('scan returned nothing');
  };
  for (let i = 0; i < 200; i++) abandon();
  await turn();
  const before = process.memoryUsage.rss();
  let peak = before;
  let scans = 0;
  while (scans < SCANS) {
    abandon();
    scans++;
    if (scans % 100 === 0) {
      await turn();
      peak = Math.max(peak, process.memoryUsage.rss());
      if (peak - before > LIMIT) break;
    }
  }
  const after = process.memoryUsage.rss();
  process.stdout.write(JSON.stringify({ before, peak, after, scans }));
  // The dropped scans are freed by close() even if never collected.
  db.close();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
