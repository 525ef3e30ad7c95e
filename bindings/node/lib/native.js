'use strict';

/**
 * Finds and loads libdbkv with koffi and declares every C function once.
 *
 * Search order (the first that loads wins):
 *   1. the `libraryPath` option of open() (and of version() / libraryFile());
 *   2. the DBKV_LIB environment variable;
 *   3. the packaged prebuild, <package>/prebuilds/<platform>-<arch>/libdbkv.so
 *      (put in the npm tarball by scripts/prebuild.js at `npm pack`);
 *   4. the repository build, <package>/../../target/release/libdbkv.so, only
 *      when the package runs from the dbkv repository: <package>/../../Cargo.toml
 *      exists and its [package] is named "dbkv" (an installed copy under
 *      node_modules never picks up some unrelated ../../target);
 *   5. the system loader: libdbkv.so.0, then libdbkv.so (LD_LIBRARY_PATH,
 *      the ldconfig cache after `make install`, ...).
 * An explicit choice (1 or 2) is authoritative: if it fails we report it
 * rather than silently loading some other build. Otherwise 3 to 5 are tried
 * in turn and the LIBRARY_NOT_FOUND error lists every place with why it
 * failed (no such file, not running from the repository, dlopen's message).
 */

const fs = require('node:fs');
const path = require('node:path');
const koffi = require('koffi');
const { DbkvError } = require('./errors');

const PACKAGE_DIR = path.resolve(__dirname, '..');
const PLATFORM = `${process.platform}-${process.arch}`;
const PREBUILD = path.join(PACKAGE_DIR, 'prebuilds', PLATFORM, 'libdbkv.so');
const REPO_ROOT = path.resolve(PACKAGE_DIR, '..', '..');
const REPO_BUILD = path.join(REPO_ROOT, 'target', 'release', 'libdbkv.so');
const SYSTEM_NAMES = ['libdbkv.so.0', 'libdbkv.so'];
/** The C ABI major version this binding was written against (DBKV_VERSION_MAJOR). */
const ABI_MAJOR = 0;

/** path -> api, so each library is loaded and declared once per process. */
const loaded = new Map();
let configured = false;

/**
 * koffi runs async calls (sync(), snapshot()) on its own stack, 128 KiB by
 * default; Rust I/O code can use more than that, and an overflow kills the
 * process. The setting can only change before koffi loads its first
 * library, so if the host application already loaded one we keep its
 * configuration.
 */
function configureKoffi() {
  if (configured) return;
  configured = true;
  const want = 1 << 20;
  try {
    const cfg = koffi.config();
    if (cfg.async_stack_size < want) koffi.config({ ...cfg, async_stack_size: want });
  } catch {
    // Another module loaded a library through koffi first: keep its settings.
  }
}

/**
 * Whether this package runs from the dbkv repository (bindings/node of a
 * checkout): `root`/Cargo.toml exists and its [package] section is named
 * "dbkv". Returns null if so, else why not.
 * @param {string} root
 * @returns {string | null}
 */
function notRepository(root) {
  const manifest = path.join(root, 'Cargo.toml');
  let text;
  try {
    text = fs.readFileSync(manifest, 'utf8');
  } catch {
    return `not running from the repository (no ${manifest})`;
  }
  let section = '';
  for (const line of text.split(/\r?\n/)) {
    const header = /^\s*\[([^\]]*)\]\s*(#.*)?$/.exec(line);
    if (header) {
      section = header[1].trim();
      continue;
    }
    const name = /^\s*name\s*=\s*"([^"]*)"/.exec(line);
    if (section === 'package' && name) {
      return name[1] === 'dbkv'
        ? null
        : `not running from the repository (${manifest} is package "${name[1]}", not "dbkv")`;
    }
  }
  return `not running from the repository (${manifest} names no [package] "dbkv")`;
}

/**
 * Lists where to look, in order, each with how it was chosen. A place with
 * `skip` is not tried; `skip` says why (it goes into the error).
 * @param {string | undefined} libraryPath
 * @returns {{ explicit: boolean, places: { how: string, file: string, skip?: string }[] }}
 */
function candidates(libraryPath) {
  if (libraryPath !== undefined) {
    if (typeof libraryPath !== 'string' || libraryPath === '') {
      throw new DbkvError('INVALID_ARGUMENT', 'open: option libraryPath must be a non-empty string');
    }
    return { explicit: true, places: [{ how: 'libraryPath option', file: path.resolve(libraryPath) }] };
  }
  const env = process.env.DBKV_LIB;
  if (env) return { explicit: true, places: [{ how: 'DBKV_LIB', file: path.resolve(env) }] };
  const repo = { how: 'repository build', file: REPO_BUILD };
  const why = notRepository(REPO_ROOT);
  if (why !== null) repo.skip = why;
  return {
    explicit: false,
    places: [
      { how: 'packaged prebuild', file: PREBUILD },
      repo,
      ...SYSTEM_NAMES.map((name) => ({ how: 'system loader', file: name })),
    ],
  };
}

/**
 * Loads libdbkv (see the search order above) and returns its functions.
 * @param {string | undefined} libraryPath
 */
function load(libraryPath) {
  const { explicit, places } = candidates(libraryPath);
  const failures = [];
  for (const { how, file, skip } of places) {
    if (skip !== undefined) {
      failures.push(`  - ${file} (${how}): ${skip}`);
      continue;
    }
    const hit = loaded.get(file);
    if (hit) return hit;
    // Skip a missing file with a short reason instead of koffi's dlopen text.
    if (path.isAbsolute(file) && !fs.existsSync(file)) {
      failures.push(`  - ${file} (${how}): no such file`);
      continue;
    }
    let lib;
    try {
      configureKoffi();
      lib = koffi.load(file);
    } catch (e) {
      failures.push(`  - ${file} (${how}): ${e.message}`);
      continue;
    }
    const api = declare(lib, file);
    loaded.set(file, api);
    return api;
  }
  const hint = explicit
    ? 'hint: fix the path, or drop the libraryPath option / DBKV_LIB variable to search the default places'
    : `hint: a package installed from its npm tarball carries prebuilds/${PLATFORM}/libdbkv.so (pack one on this ` +
      'platform with `make node-package`); otherwise install libdbkv where the system loader finds it (`make install`, ' +
      'then ldconfig or LD_LIBRARY_PATH), set DBKV_LIB to a libdbkv.so or pass { libraryPath }; in the repository, ' +
      'run `make lib` at its root';
  throw new DbkvError('LIBRARY_NOT_FOUND', `cannot load libdbkv; looked in:\n${failures.join('\n')}\n${hint}`);
}

let typesDeclared = false;

/** koffi type names are process-wide, so the opaque types are declared once. */
function declareTypes() {
  if (typesDeclared) return;
  koffi.opaque('dbkv');
  koffi.opaque('dbkv_iter');
  koffi.opaque('dbkv_options');
  typesDeclared = true;
}

/**
 * Declares the C functions. Byte arguments are declared `void *`, which
 * koffi fills from a Buffer or typed array (the address of its bytes) or
 * from a number or bigint address. The hot paths pass plain-number
 * addresses of the binding's own scratch buffers, which koffi converts
 * faster than a Buffer; every out parameter is a reused typed array or
 * scratch buffer, so a call allocates nothing. Handles (dbkv *, dbkv_iter *)
 * come back from C as bigint pointers.
 */
function declare(lib, file) {
  declareTypes();
  const f = (proto) => lib.func(proto);
  const api = {
    file,
    version: f('const char *dbkv_version(void)'),
    strerror: f('const char *dbkv_strerror(int status)'),
    lastError: f('const char *dbkv_last_error(void)'),
    free: f('void dbkv_free(void *ptr)'),

    optionsNew: f('int dbkv_options_new(void *out)'),
    optionsFree: f('void dbkv_options_free(dbkv_options *opts)'),
    setDataDir: f('int dbkv_options_set_data_dir(dbkv_options *opts, const char *path)'),
    setShards: f('int dbkv_options_set_shards(dbkv_options *opts, uint32_t shards)'),
    setMaxValueBytes: f('int dbkv_options_set_max_value_bytes(dbkv_options *opts, uint64_t bytes)'),
    setSyncMode: f('int dbkv_options_set_sync_mode(dbkv_options *opts, int mode)'),
    setSyncIntervalMs: f('int dbkv_options_set_sync_interval_ms(dbkv_options *opts, uint64_t ms)'),
    setWalSegmentBytes: f('int dbkv_options_set_wal_segment_bytes(dbkv_options *opts, uint64_t bytes)'),
    setSnapshotIntervalSecs: f('int dbkv_options_set_snapshot_interval_secs(dbkv_options *opts, uint64_t secs)'),
    setSnapshotOps: f('int dbkv_options_set_snapshot_ops(dbkv_options *opts, uint64_t ops)'),
    setSnapshotKeep: f('int dbkv_options_set_snapshot_keep(dbkv_options *opts, uint32_t keep)'),
    setRecoveryMode: f('int dbkv_options_set_recovery_mode(dbkv_options *opts, int mode)'),
    setLogBuffer: f('int dbkv_options_set_log_buffer(dbkv_options *opts, void *buf)'),
    setLogLevel: f('int dbkv_options_set_log_level(dbkv_options *opts, int level)'),
    logBufferNew: f('int dbkv_log_buffer_new(size_t capacity, void *out)'),
    logBufferFree: f('void dbkv_log_buffer_free(void *buf)'),
    logBufferPop: f('int dbkv_log_buffer_pop(void *buf, uint32_t timeout_ms, int *level, void *msg)'),
    /** A NUL-terminated C string at `ptr`, as a JS string. */
    decodeCString: (ptr) => koffi.decode(ptr, 'char', -1),

    open: f('int dbkv_open(dbkv_options *opts, void *out)'),
    close: f('int dbkv_close(void *db)'),
    set: f('int dbkv_set(void *db, void *key, size_t klen, void *val, size_t vlen, uint64_t ttl_ms)'),
    getInto: f('int dbkv_get_into(void *db, void *key, size_t klen, void *buf, size_t cap, void *len)'),
    // The same two functions with every pointer declared uintptr_t, for the
    // hot path where each pointer is a plain-number address (the handle,
    // the scratch buffers, the length slot): koffi converts a number to an
    // integer parameter faster than to a `void *` one (measured: ~25 ns
    // less per pointer argument, koffi 3.3). set() and get() use these
    // when every pointer is such a number, and the `void *` forms otherwise.
    setFast: f('int dbkv_set(uintptr_t db, uintptr_t key, size_t klen, uintptr_t val, size_t vlen, uint64_t ttl_ms)'),
    getIntoFast: f('int dbkv_get_into(uintptr_t db, uintptr_t key, size_t klen, uintptr_t buf, size_t cap, uintptr_t len)'),
    del: f('int dbkv_delete(void *db, void *key, size_t klen)'),
    exists: f('int dbkv_exists(void *db, void *key, size_t klen)'),
    incr: f('int dbkv_incr(void *db, void *key, size_t klen, int64_t delta, int64_t *out)'),
    decr: f('int dbkv_decr(void *db, void *key, size_t klen, int64_t delta, int64_t *out)'),
    setnx: f('int dbkv_setnx(void *db, void *key, size_t klen, void *val, size_t vlen, uint64_t ttl_ms)'),
    cas: f('int dbkv_cas(void *db, void *key, size_t klen, void *expected, size_t elen, void *nval, size_t nlen, uint64_t ttl_ms)'),
    expire: f('int dbkv_expire(void *db, void *key, size_t klen, uint64_t ttl_ms)'),
    persist: f('int dbkv_persist(void *db, void *key, size_t klen)'),
    ttl: f('int dbkv_ttl(void *db, void *key, size_t klen, int64_t *ms)'),
    // The pointer arrays of the multi-key calls are BigUint64Arrays of
    // addresses, hence void * rather than uint8_t **.
    mset: f('int dbkv_mset(void *db, void *keys, size_t *klens, void *vals, size_t *vlens, size_t n, uint64_t ttl_ms)'),
    mget: f('int dbkv_mget(void *db, void *keys, size_t *klens, size_t n, void *vals, size_t *vlens)'),
    mdel: f('int dbkv_mdel(void *db, void *keys, size_t *klens, size_t n, size_t *deleted)'),
    lock: f('int dbkv_lock(void *db, void *key, size_t klen, void *owner, size_t olen, uint64_t ttl_ms, uint64_t *fence)'),
    unlock: f('int dbkv_unlock(void *db, void *key, size_t klen, void *owner, size_t olen)'),
    extendLock: f('int dbkv_extend_lock(void *db, void *key, size_t klen, void *owner, size_t olen, uint64_t ttl_ms)'),
    setFenced: f(
      'int dbkv_set_fenced(void *db, void *lock_key, size_t lk_len, uint64_t token, void *key, size_t klen, void *val, size_t vlen, uint64_t ttl_ms)',
    ),
    deleteFenced: f('int dbkv_delete_fenced(void *db, void *lock_key, size_t lk_len, uint64_t token, void *key, size_t klen)'),
    count: f('int dbkv_count(void *db, uint64_t *out)'),
    sync: f('int dbkv_sync(void *db)'),
    snapshot: f('int dbkv_snapshot(void *db)'),
    // dbkv_statistics is passed as a BigUint64Array of its uint64 fields.
    stats: f('int dbkv_stats(void *db, void *out)'),
    scan: f('int dbkv_scan(void *db, void *prefix, size_t plen, void *out)'),
    iterNext: f('int dbkv_iter_next(dbkv_iter *it, void *key, size_t *klen, void *val, size_t *vlen)'),
    iterFree: f('void dbkv_iter_free(dbkv_iter *it)'),
  };
  const version = api.version();
  const major = Number(version.split('.')[0]);
  if (major !== ABI_MAJOR) {
    throw new DbkvError(
      'LIBRARY_NOT_FOUND',
      `${file} is libdbkv ${version}; this binding needs major version ${ABI_MAJOR}`,
    );
  }
  return api;
}

/**
 * Copies C memory into Buffers. libc's memcpy, reached through the process
 * itself (dlopen(NULL)), does it in one cheap call. koffi.view would avoid
 * the extra call but creates an external ArrayBuffer whose bookkeeping is
 * only released once the event loop turns, so a long synchronous loop of
 * scans or mgets piles up hundreds of MB; koffi.decode is the fallback for
 * a platform where memcpy cannot be found this way.
 */
let memcpy = null;
configureKoffi(); // loading the process below counts as koffi's first load
try {
  // Declared as returning void: the returned pointer is not wanted, and
  // ignoring a returned register is sound in every C ABI koffi supports.
  memcpy = koffi.load(null).func('void memcpy(void *dst, void *src, size_t n)');
} catch {
  memcpy = null;
}
const U8 = koffi.types.uint8_t;

/**
 * Copies `len` bytes at a C pointer into a new Buffer.
 * @param {bigint} ptr
 * @param {number} len
 */
function copyOut(ptr, len) {
  if (len === 0) return Buffer.alloc(0);
  if (memcpy !== null) {
    const out = Buffer.allocUnsafe(len);
    memcpy(out, ptr, len);
    return out;
  }
  const bytes = koffi.decode(ptr, U8, len);
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
}

module.exports = { load, copyOut, candidates, notRepository, PREBUILD, REPO_BUILD, SYSTEM_NAMES, ABI_MAJOR };
