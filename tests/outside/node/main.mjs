// Outside-user check (tests/outside/run.sh): `import ... from 'dbkv'` from a
// project that installed the npm tarball, with no DBKV_LIB and no
// LD_LIBRARY_PATH; the round trip itself is in roundtrip.cjs.
//
//   usage: node main.mjs DATA_DIR

import { open, version, libraryFile } from 'dbkv';
import roundtrip from './roundtrip.cjs';

roundtrip({ open, version, libraryFile }, 'node-esm', process.argv[2]);
