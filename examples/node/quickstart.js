// dbkv quick start for Node.js, the same steps as examples/c/quickstart.c:
// a task result with a TTL, a chord counter, a lock with a fencing token,
// all in a data directory that survives restarts.
//
//   make test-node                      (builds libdbkv.so, tests the binding, runs this)
//   node examples/node/quickstart.js [data-dir]

'use strict';

const path = require('node:path');
const { open, version } = require('../../bindings/node');

const dir = process.argv[2] || path.join(__dirname, '..', '..', 'target', 'node-quickstart-data');

async function main() {
  const db = open({ dir, sync: 'interval' });
  try {
    console.log(`dbkv ${version()}, data in ${dir}`);

    // A task result that expires in an hour.
    db.set('result:task-42', '{"status":"SUCCESS"}', { ttlMs: 3600 * 1000 });
    console.log(`result:task-42 = ${db.getString('result:task-42')}`);
    console.log(`expires in ${db.ttl('result:task-42')} ms`);

    // A chord counter: each finished part increments it.
    let parts = 0;
    for (let i = 0; i < 3; i++) parts = db.incr('chord:7:done');
    console.log(`chord:7:done = ${parts} (counts across runs: the data directory keeps it)`);

    // A lock with a fencing token; a second owner is refused (null, not an exception).
    const fence = db.lock('lock:report', 'worker-a', 30_000);
    console.log(`worker-a holds lock:report with fencing token ${fence}`);
    const refused = db.lock('lock:report', 'worker-b', 30_000);
    console.log(`worker-b tries: ${refused === null ? 'locked by another owner' : `got token ${refused}`}`);
    db.unlock('lock:report', 'worker-a');

    // Errors name the problem.
    try {
      db.incr('result:task-42');
    } catch (e) {
      console.log(`incr on a JSON value: ${e.code}: ${e.message}`);
    }

    await db.sync();
  } finally {
    db.close();
  }
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
