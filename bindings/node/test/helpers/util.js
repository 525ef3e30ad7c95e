'use strict';

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { DbkvError, open } = require('../..');

/** Opens a handle that the test closes when it ends (pass or fail). */
function fresh(t, options) {
  const db = open(options);
  t.after(() => db.close());
  return db;
}

/** Directories tempDir made, removed by one exit listener (one per
 * directory would trip MaxListenersExceededWarning past ten). */
const made = new Set();
process.once('exit', () => {
  for (const dir of made) fs.rmSync(dir, { recursive: true, force: true });
});

/** A fresh temporary directory, removed when the process exits. */
function tempDir(prefix = 'dbkv-node-') {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  made.add(dir);
  return dir;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * assert.throws for a DbkvError with this code whose message names the
 * method and matches `message` (the library's detail) when given.
 */
function throwsCode(assert, fn, code, message) {
  assert.throws(fn, (e) => {
    assert.ok(e instanceof DbkvError, `expected a DbkvError, got ${e && e.stack}`);
    assert.ok(e instanceof Error);
    assert.equal(e.name, 'DbkvError');
    assert.equal(e.code, code, e.message);
    if (message) assert.match(e.message, message);
    return true;
  });
}

module.exports = { fresh, tempDir, sleep, throwsCode };
