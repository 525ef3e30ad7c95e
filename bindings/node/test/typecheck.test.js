'use strict';

// index.d.ts must type the whole API: tsc --noEmit on test/types-check.ts
// (which imports the package by name, through package.json "exports").

const { test } = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

test('tsc --noEmit accepts the typed example', { timeout: 120_000 }, () => {
  const pkg = path.resolve(__dirname, '..');
  const tsc = require.resolve('typescript/bin/tsc', { paths: [pkg] });
  const r = spawnSync(process.execPath, [tsc, '--noEmit', '-p', path.join(__dirname, 'tsconfig.json')], { cwd: pkg, encoding: 'utf8' });
  assert.equal(r.status, 0, `tsc failed:\n${r.stdout}${r.stderr}`);
});
