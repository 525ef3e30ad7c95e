'use strict';

// A worker that ends without close() must not leave its data directory
// BUSY: its handles are closed when the worker ends, so a pool that
// recycles workers can reopen the same directory.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { Worker } = require('node:worker_threads');
const { open } = require('..');
const { tempDir } = require('./helpers/util');

const script = `
const { workerData } = require('node:worker_threads');
const { open } = require(${JSON.stringify(path.join(__dirname, '..'))});
const db = open({ dir: workerData.dir });
db.set('round' + workerData.round, 'done');
// no close(): the worker just ends
`;

function runWorker(dir, round) {
  return new Promise((resolve, reject) => {
    const w = new Worker(script, { eval: true, workerData: { dir, round } });
    w.once('error', reject);
    w.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`worker exited ${code}`))));
  });
}

test('workers that end without close() release their directory', async () => {
  const dir = path.join(tempDir(), 'db');
  for (let round = 0; round < 3; round++) await runWorker(dir, round);
  const db = open({ dir }); // BUSY if a worker's handle were still open
  try {
    for (let round = 0; round < 3; round++) assert.equal(db.getString(`round${round}`), 'done');
  } finally {
    db.close();
  }
});
