'use strict';

/**
 * `npm run pack [-- DEST]` (and `make node-package` at the repository
 * root): `npm pack` into DEST (default ../../target/node, where make puts
 * build outputs) and prints the tarball's absolute path as the last line
 * of stdout. npm pack runs the `prepack` script, scripts/prebuild.js, which
 * copies the library built by `make lib` into prebuilds/<platform>-<arch>/.
 */

const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const PKG = path.resolve(__dirname, '..');
const dest = path.resolve(process.argv[2] || path.join(PKG, '..', '..', 'target', 'node'));
fs.mkdirSync(dest, { recursive: true });

const npm = process.env.npm_execpath
  ? [process.execPath, [process.env.npm_execpath]]
  : ['npm', []];
const r = spawnSync(npm[0], [...npm[1], 'pack', '--json', '--pack-destination', dest], {
  cwd: PKG,
  encoding: 'utf8',
  stdio: ['ignore', 'pipe', 'inherit'],
});
if (r.error || r.status !== 0) {
  console.error(`pack: npm pack failed (${r.error ? r.error.message : `exit status ${r.status}`})`);
  process.exit(1);
}
let info;
try {
  [info] = JSON.parse(r.stdout);
} catch {
  console.error(`pack: unexpected npm pack output:\n${r.stdout}`);
  process.exit(1);
}
const want = `prebuilds/${process.platform}-${process.arch}/libdbkv.so`;
if (!info.files.some((f) => f.path === want)) {
  console.error(`pack: ${info.filename} does not contain ${want}`);
  process.exit(1);
}
console.log(path.join(dest, info.filename));
