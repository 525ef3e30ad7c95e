'use strict';

/**
 * `prepack`: copies the library built at the repository root
 * (../../target/release/libdbkv.so, from `make lib`) into
 * prebuilds/<platform>-<arch>/libdbkv.so, so the tarball `npm pack` makes
 * carries it and an installed package needs no DBKV_LIB or system install.
 * The copy is stripped like `make install`'s. lib/native.js looks there before anything but an explicit choice.
 *
 * prebuilds/ is a build output (listed in .gitignore, never committed).
 * `postpack` runs this with --clean, which removes it again: in the
 * repository lib/native.js would otherwise prefer that copy to a newer
 * `make lib` build of target/release/libdbkv.so.
 * Only the current platform's build is copied; a tarball for several
 * platforms would need this run on each of them into one prebuilds/.
 */

const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const PKG = path.resolve(__dirname, '..');
const SRC = path.resolve(PKG, '..', '..', 'target', 'release', 'libdbkv.so');
const DEST_DIR = path.join(PKG, 'prebuilds', `${process.platform}-${process.arch}`);
const DEST = path.join(DEST_DIR, 'libdbkv.so');

function fail(message) {
  console.error(`prebuild: ${message}`);
  process.exit(1);
}

if (process.argv[2] === '--clean') {
  fs.rmSync(path.join(PKG, 'prebuilds'), { recursive: true, force: true });
  process.exit(0);
}
if (process.platform !== 'linux') {
  fail(`only Linux builds (libdbkv.so) are packaged; this is ${process.platform}`);
}
let stat;
try {
  stat = fs.statSync(SRC);
} catch {
  fail(`${SRC} is not built: run \`make lib\` at the repository root first`);
}
if (!stat.isFile()) fail(`${SRC} is not a file: run \`make lib\` at the repository root first`);

fs.mkdirSync(DEST_DIR, { recursive: true });
// Copy to a temporary name and rename, so an interrupted copy never leaves
// a truncated library where native.js would load it.
const tmp = `${DEST}.tmp-${process.pid}`;
fs.copyFileSync(SRC, tmp);
fs.chmodSync(tmp, 0o755);
// Stripped as `make install` strips it: the release build keeps debug info
// (about 9 MB against 1 MB). Without binutils the copy stays unstripped.
const strip = spawnSync('strip', ['--strip-unneeded', tmp], { encoding: 'utf8' });
if (strip.error || strip.status !== 0) {
  console.error(`prebuild: could not strip (${strip.error ? strip.error.message : strip.stderr.trim()}); packaging it unstripped`);
}
fs.renameSync(tmp, DEST);
console.error(`prebuild: ${path.relative(PKG, DEST)} <- ${SRC} (${stat.size} bytes)`);
