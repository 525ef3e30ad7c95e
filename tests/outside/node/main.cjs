'use strict';

// Outside-user check (tests/outside/run.sh): `require('dbkv')` from a
// project that installed the npm tarball, with no DBKV_LIB and no
// LD_LIBRARY_PATH; the round trip itself is in roundtrip.cjs.
//
//   usage: node main.cjs DATA_DIR

require('./roundtrip.cjs')(require('dbkv'), 'node-cjs', process.argv[2]);
