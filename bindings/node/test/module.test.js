'use strict';

// Packaging: require and import both work and share one instance; the
// library is found in the documented order, and a failure names every
// place that was looked at.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { execFileSync, spawnSync } = require('node:child_process');
const dbkv = require('..');
const { tempDir } = require('./helpers/util');

const PKG = path.resolve(__dirname, '..');
const REPO_LIB = path.resolve(PKG, '..', '..', 'target', 'release', 'libdbkv.so');

/** Runs a script in a child node with the given environment; returns its stdout/stderr/status. */
function run(script, { cwd = PKG, env = {} } = {}) {
  const base = { ...process.env };
  delete base.DBKV_LIB;
  delete base.LD_LIBRARY_PATH;
  return spawnSync(process.execPath, ['-e', script], { cwd, env: { ...base, ...env }, encoding: 'utf8' });
}

test('require and import give the same module', async () => {
  const esm = await import('dbkv');
  assert.equal(esm.open, dbkv.open);
  assert.equal(esm.DbkvError, dbkv.DbkvError);
  assert.equal(esm.default, dbkv);
  const db = esm.open();
  db.set('k', 'v');
  assert.equal(db.getString('k'), 'v');
  db.close();
});

test('an ES module consumer can use the package by name', () => {
  const out = execFileSync(
    process.execPath,
    ['--input-type=module', '-e', "import { open, version } from 'dbkv'; const db = open(); db.set('a', 'b'); console.log(version(), db.getString('a')); db.close();"],
    { cwd: PKG, encoding: 'utf8' },
  );
  assert.match(out, /^\d+\.\d+\.\d+ b\n$/);
});

test('version() and libraryFile(): the repository build by default', () => {
  const r = run("const d = require('.'); console.log(d.libraryFile()); console.log(d.version());");
  assert.equal(r.status, 0, r.stderr);
  const [file, version] = r.stdout.trim().split('\n');
  assert.equal(file, REPO_LIB);
  assert.match(version, /^0\.\d+\.\d+/);
});

test('libraryPath wins over DBKV_LIB, which wins over the repository build', () => {
  const dir = tempDir();
  const copyA = path.join(dir, 'a.so');
  const copyB = path.join(dir, 'b.so');
  fs.copyFileSync(REPO_LIB, copyA);
  fs.copyFileSync(REPO_LIB, copyB);
  const script = (opts) =>
    `const d = require('.'); const db = d.open(${opts}); db.close(); console.log(d.libraryFile(${opts}));`;
  let r = run(script(''), { env: { DBKV_LIB: copyB } });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), copyB);
  r = run(script(JSON.stringify({ libraryPath: copyA })), { env: { DBKV_LIB: copyB } });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), copyA);
});

test('an explicit path that fails is reported, not silently replaced', () => {
  const missing = path.join(tempDir(), 'nope.so');
  let r = run("require('.').open()", { env: { DBKV_LIB: missing } });
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /DbkvError: cannot load libdbkv; looked in:/);
  assert.match(r.stderr, new RegExp(`${missing.replace(/[.]/g, '\\.')} \\(DBKV_LIB\\): no such file`));
  assert.doesNotMatch(r.stderr, /repository build/);
  const notALib = path.join(tempDir(), 'text.so');
  fs.writeFileSync(notALib, 'not an ELF file');
  r = run(`try { require('.').open({ libraryPath: ${JSON.stringify(notALib)} }) } catch (e) { console.log(e.code); console.log(e.message) }`);
  assert.match(r.stdout, /^LIBRARY_NOT_FOUND\n/);
  assert.match(r.stdout, /text\.so \(libraryPath option\): /);
});

test('outside the repository: system loader path, then an error naming every place', () => {
  // A copy of the package two levels deep in a temp dir without a
  // Cargo.toml, so it is not "running from the repository". (The whole
  // order is in library-lookup.test.js.)
  const root = tempDir();
  const pkg = path.join(root, 'a', 'b', 'node');
  fs.mkdirSync(pkg, { recursive: true });
  for (const f of ['index.js', 'package.json']) fs.copyFileSync(path.join(PKG, f), path.join(pkg, f));
  fs.cpSync(path.join(PKG, 'lib'), path.join(pkg, 'lib'), { recursive: true });
  fs.symlinkSync(path.join(PKG, 'node_modules'), path.join(pkg, 'node_modules'));

  let r = run("try { require('.').open(); console.log('loaded ' + require('.').libraryFile()) } catch (e) { console.log(e.code); console.log(e.message) }", { cwd: pkg });
  if (r.stdout.startsWith('loaded ')) {
    // libdbkv is installed on this machine: the missing prebuild and
    // repository build must have been skipped for a system name.
    assert.match(r.stdout, /^loaded libdbkv\.so(\.0)?\n$/);
  } else {
    assert.match(r.stdout, /^LIBRARY_NOT_FOUND\n/);
    const expected = [
      `${path.join(pkg, 'prebuilds', `${process.platform}-${process.arch}`, 'libdbkv.so')} (packaged prebuild): no such file`,
      `${path.join(root, 'a', 'target', 'release', 'libdbkv.so')} (repository build): not running from the repository`,
      'libdbkv.so.0 (system loader)',
      'libdbkv.so (system loader)',
    ];
    let at = 0;
    for (const place of expected) {
      const i = r.stdout.indexOf(place, at);
      assert.ok(i > at, `"${place}" missing or out of order in:\n${r.stdout}`);
      at = i;
    }
    assert.match(r.stdout, /make lib/);
  }

  // The system loader finds libdbkv.so.0 (make lib creates that soname link).
  const libDir = path.dirname(REPO_LIB);
  r = run("const d = require('.'); const db = d.open(); db.set('k', 'v'); console.log(d.libraryFile(), db.getString('k')); db.close();", {
    cwd: pkg,
    env: { LD_LIBRARY_PATH: libDir },
  });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), 'libdbkv.so.0 v');
});

test('a handle dropped without close() is closed when collected', () => {
  // The directory lock is released by the finalizer, so a new handle can open it.
  const dir = path.join(tempDir(), 'db');
  const r = spawnSync(
    process.execPath,
    [
      '--expose-gc',
      '-e',
      `const { open } = require('.');
       (() => { const db = open({ dir: ${JSON.stringify(dir)} }); db.set('k', 'v'); })();
       let tries = 0;
       (function attempt() {
         globalThis.gc();
         try { const db = open({ dir: ${JSON.stringify(dir)} }); console.log(db.getString('k')); db.close(); }
         catch (e) { if (e.code !== 'BUSY' || ++tries > 50) throw e; setTimeout(attempt, 10); }
       })();`,
    ],
    { cwd: PKG, encoding: 'utf8' },
  );
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), 'v');
});
