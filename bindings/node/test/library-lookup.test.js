'use strict';

// The order lib/native.js finds libdbkv in (libraryPath, DBKV_LIB, the
// packaged prebuild, the repository build only from the repository, the
// system loader) and the LIBRARY_NOT_FOUND text. Each case runs a child
// node on a copy of the package laid out in a temp dir as
// <root>/bindings/node, with or without prebuilds/, <root>/Cargo.toml and
// <root>/target/release/libdbkv.so.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { tempDir } = require('./helpers/util');

const PKG = path.resolve(__dirname, '..');
const REPO_LIB = path.resolve(PKG, '..', '..', 'target', 'release', 'libdbkv.so');
const PLATFORM = `${process.platform}-${process.arch}`;

/**
 * A package copy at <root>/bindings/node.
 * @param {{ prebuild?: boolean | string, cargo?: string, repoBuild?: boolean }} layout
 *   prebuild: true copies the real library, a string writes that text instead;
 *   cargo: the Cargo.toml text at <root>; repoBuild: <root>/target/release/libdbkv.so.
 */
function packageCopy({ prebuild = false, cargo, repoBuild = false } = {}) {
  const root = tempDir('dbkv-lookup-');
  const pkg = path.join(root, 'bindings', 'node');
  fs.mkdirSync(pkg, { recursive: true });
  for (const f of ['index.js', 'index.mjs', 'package.json']) fs.copyFileSync(path.join(PKG, f), path.join(pkg, f));
  fs.cpSync(path.join(PKG, 'lib'), path.join(pkg, 'lib'), { recursive: true });
  fs.symlinkSync(path.join(PKG, 'node_modules'), path.join(pkg, 'node_modules'));
  const files = {
    root,
    pkg,
    prebuild: path.join(pkg, 'prebuilds', PLATFORM, 'libdbkv.so'),
    repoBuild: path.join(root, 'target', 'release', 'libdbkv.so'),
  };
  if (prebuild) {
    fs.mkdirSync(path.dirname(files.prebuild), { recursive: true });
    if (typeof prebuild === 'string') fs.writeFileSync(files.prebuild, prebuild);
    else fs.copyFileSync(REPO_LIB, files.prebuild);
  }
  if (cargo !== undefined) fs.writeFileSync(path.join(root, 'Cargo.toml'), cargo);
  if (repoBuild) {
    fs.mkdirSync(path.dirname(files.repoBuild), { recursive: true });
    fs.copyFileSync(REPO_LIB, files.repoBuild);
  }
  return files;
}

const DBKV_CARGO = '[workspace]\nmembers = ["cli"]\n\n[package]\nname = "dbkv"\nversion = "0.1.0"\n';

/**
 * Runs `require('.')` in `cwd` with no DBKV_LIB / LD_LIBRARY_PATH unless
 * given: prints "loaded <file>" after a set/get, or the error's code and message.
 */
function which(cwd, { env = {}, options = '' } = {}) {
  const base = { ...process.env };
  delete base.DBKV_LIB;
  delete base.LD_LIBRARY_PATH;
  const script = `const d = require('.');
    try {
      const db = d.open(${options}); db.set('k', 'v'); if (db.getString('k') !== 'v') throw new Error('bad value'); db.close();
      console.log('loaded ' + d.libraryFile(${options}));
    } catch (e) { console.log(e.code); console.log(e.message); }`;
  const r = spawnSync(process.execPath, ['-e', script], { cwd, env: { ...base, ...env }, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.trim();
}

/** Whether libdbkv is on this machine's default loader path (then "nothing loads" cannot be tested). */
function systemHasLibdbkv() {
  const r = spawnSync('ldconfig', ['-p'], { encoding: 'utf8' });
  return r.status === 0 && /libdbkv\.so/.test(r.stdout);
}

/** Asserts each string occurs in `text`, in this order. */
function inOrder(text, parts) {
  let at = -1;
  for (const part of parts) {
    const i = text.indexOf(part, at + 1);
    assert.ok(i > at, `"${part}" missing or out of order in:\n${text}`);
    at = i;
  }
}

test('the packaged prebuild loads with no environment', () => {
  const { pkg, prebuild } = packageCopy({ prebuild: true });
  assert.equal(which(pkg), `loaded ${prebuild}`);
});

test('the prebuild wins over the repository build', () => {
  const { pkg, prebuild } = packageCopy({ prebuild: true, cargo: DBKV_CARGO, repoBuild: true });
  assert.equal(which(pkg), `loaded ${prebuild}`);
});

test('from the repository (Cargo.toml of package dbkv), without a prebuild: the repository build', () => {
  const { pkg, repoBuild } = packageCopy({ cargo: DBKV_CARGO, repoBuild: true });
  assert.equal(which(pkg), `loaded ${repoBuild}`);
});

test('a ../../target/release/libdbkv.so that is not in the dbkv repository is never loaded', () => {
  const libDir = path.dirname(REPO_LIB);
  // No Cargo.toml at all.
  let files = packageCopy({ repoBuild: true });
  // Through the system loader instead (make lib's libdbkv.so.0 link).
  assert.equal(which(files.pkg, { env: { LD_LIBRARY_PATH: libDir } }), 'loaded libdbkv.so.0');
  if (!systemHasLibdbkv()) {
    const out = which(files.pkg);
    assert.match(out, /^LIBRARY_NOT_FOUND\n/);
    inOrder(out, [
      `${files.repoBuild} (repository build): not running from the repository (no ${path.join(files.root, 'Cargo.toml')})`,
    ]);
  }
  // A Cargo.toml of some other package, with a dbkv dependency.
  files = packageCopy({ repoBuild: true, cargo: '[package]\nname = "myapp"\n\n[dependencies]\ndbkv = "0.1"\n' });
  assert.equal(which(files.pkg, { env: { LD_LIBRARY_PATH: libDir } }), 'loaded libdbkv.so.0');
  if (!systemHasLibdbkv()) {
    assert.match(which(files.pkg), /\(repository build\): not running from the repository \(.*Cargo\.toml is package "myapp", not "dbkv"\)/);
  }
  // A workspace manifest with no [package].
  files = packageCopy({ repoBuild: true, cargo: '[workspace]\nmembers = ["dbkv"]\nname = "dbkv"\n' });
  if (!systemHasLibdbkv()) {
    assert.match(which(files.pkg), /\(repository build\): not running from the repository \(.*Cargo\.toml names no \[package\] "dbkv"\)/);
  }
});

test('nothing loads: every place, in order, with why it failed, and a hint', { skip: systemHasLibdbkv() && 'libdbkv is installed system-wide' }, () => {
  const { pkg, prebuild, repoBuild, root } = packageCopy();
  const out = which(pkg);
  assert.match(out, /^LIBRARY_NOT_FOUND\ncannot load libdbkv; looked in:\n/);
  inOrder(out, [
    `  - ${prebuild} (packaged prebuild): no such file`,
    `  - ${repoBuild} (repository build): not running from the repository (no ${path.join(root, 'Cargo.toml')})`,
    '  - libdbkv.so.0 (system loader): ',
    '  - libdbkv.so (system loader): ',
    `hint: a package installed from its npm tarball carries prebuilds/${PLATFORM}/libdbkv.so`,
    'make install',
    'DBKV_LIB',
    'make lib',
  ]);
  // dlopen's own message for the system names.
  assert.match(out, /libdbkv\.so\.0 \(system loader\): .*cannot open shared object file/);

  // From the repository but before `make lib`: no such file.
  const repo = packageCopy({ cargo: DBKV_CARGO });
  assert.ok(which(repo.pkg).includes(`  - ${repo.repoBuild} (repository build): no such file`));
});

test('a prebuild that does not load is reported with dlopen\'s message, and the search goes on', () => {
  const { pkg, repoBuild } = packageCopy({ prebuild: 'not an ELF file', cargo: DBKV_CARGO, repoBuild: true });
  const libDir = path.dirname(REPO_LIB);
  // Falls through to the repository build...
  assert.equal(which(pkg), `loaded ${repoBuild}`);
  // ...and when nothing else loads either, the prebuild's failure is in the error.
  const bare = packageCopy({ prebuild: 'not an ELF file' });
  assert.equal(which(bare.pkg, { env: { LD_LIBRARY_PATH: libDir } }), 'loaded libdbkv.so.0');
  if (!systemHasLibdbkv()) {
    const out = which(bare.pkg);
    assert.match(out, /^LIBRARY_NOT_FOUND\n/);
    assert.ok(out.includes(`  - ${bare.prebuild} (packaged prebuild): `), out);
    assert.match(out, /\(packaged prebuild\): .*(invalid ELF header|file too short)/);
  }
});

test('DBKV_LIB and libraryPath are authoritative over the prebuild', () => {
  const { pkg, prebuild } = packageCopy({ prebuild: true });
  const other = path.join(tempDir(), 'other.so');
  fs.copyFileSync(REPO_LIB, other);
  assert.equal(which(pkg, { env: { DBKV_LIB: other } }), `loaded ${other}`);
  assert.equal(which(pkg, { env: { DBKV_LIB: prebuild }, options: JSON.stringify({ libraryPath: other }) }), `loaded ${other}`);

  // A missing DBKV_LIB does not fall through to the (working) prebuild.
  const missing = path.join(tempDir(), 'missing.so');
  let out = which(pkg, { env: { DBKV_LIB: missing } });
  assert.equal(
    out,
    `LIBRARY_NOT_FOUND\ncannot load libdbkv; looked in:\n  - ${missing} (DBKV_LIB): no such file\n` +
      'hint: fix the path, or drop the libraryPath option / DBKV_LIB variable to search the default places',
  );
  // Nor does a missing libraryPath, even with a good DBKV_LIB.
  out = which(pkg, { env: { DBKV_LIB: other }, options: JSON.stringify({ libraryPath: missing }) });
  assert.match(out, /^LIBRARY_NOT_FOUND\n/);
  assert.ok(out.includes(`  - ${missing} (libraryPath option): no such file`), out);
  assert.doesNotMatch(out, /packaged prebuild|DBKV_LIB\)/);
});

test('an ES module import finds the prebuild too', () => {
  const { pkg, prebuild } = packageCopy({ prebuild: true });
  const base = { ...process.env };
  delete base.DBKV_LIB;
  delete base.LD_LIBRARY_PATH;
  const r = spawnSync(
    process.execPath,
    ['--input-type=module', '-e', "import { open, libraryFile } from './index.mjs'; open().close(); console.log(libraryFile());"],
    { cwd: pkg, env: base, encoding: 'utf8' },
  );
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), prebuild);
});
