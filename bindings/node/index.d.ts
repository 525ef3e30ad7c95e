/// <reference types="node" />
// Types of the dbkv Node binding (index.js / index.mjs). Keep in step with lib/db.js.

/** A key, a value, a lock owner or a prefix: strings are encoded as UTF-8. */
export type Bytes = string | Uint8Array;

export type SyncMode = 'interval' | 'always' | 'none';
export type RecoveryMode = 'pointInTime' | 'absolute' | 'skipCorrupted';

export type LogLevel = 'error' | 'warn' | 'info' | 'debug';

export interface OpenOptions {
  /** Data directory (created if missing; its parent must exist). Omit for an in-memory database. */
  dir?: string;
  /** Durability mode (default 'interval'); ignored in memory. */
  sync?: SyncMode;
  /** fsync interval of 'interval' mode, 1 to 60,000 ms (default 100). */
  syncIntervalMs?: number;
  /** A power of two from 1 to 65,536 (default 256). */
  shards?: number;
  /** Largest value accepted, in bytes (default 64 MiB, at most 1 GiB). */
  maxValueBytes?: number;
  /** WAL segment size, 4096 bytes to 1 TiB (default 64 MiB). */
  walSegmentBytes?: number;
  /** Snapshot every this many seconds if anything was written (default 300; 0 = never by time). */
  snapshotIntervalSecs?: number;
  /** Snapshot once this many WAL records were written (default 4,000,000; 0 = never by count). */
  snapshotOps?: number;
  /** Snapshots kept on disk, 1 to 1000 (default 3). */
  snapshotKeep?: number;
  /** What recovery does with a damaged WAL (default 'pointInTime'). */
  recoveryMode?: RecoveryMode;
  /**
   * Receives libdbkv's log messages on the JS thread: the recovery summary
   * of open() (delivered before open() returns), damage found and what was
   * done with it ('warn'), snapshots written or failed, the failed state
   * ('error'), WAL rotation and retention ('debug'). Messages from dbkv's
   * background threads are queued and delivered from the event loop within
   * about 100 ms, and the rest at close(). Omit to log nothing.
   */
  onLog?: (level: LogLevel, message: string) => void;
  /** The least severe level delivered to onLog (default 'info'). */
  logLevel?: LogLevel;
  /**
   * The libdbkv to load. Authoritative: if it cannot be loaded, open()
   * throws LIBRARY_NOT_FOUND rather than trying anything else. Without it:
   * env DBKV_LIB (also authoritative), then the packaged prebuild
   * prebuilds/<platform>-<arch>/libdbkv.so, then the repository's
   * target/release/libdbkv.so (only when the package runs from the dbkv
   * repository), then libdbkv.so.0 / libdbkv.so from the system loader.
   */
  libraryPath?: string;
}

export interface TtlOptions {
  /** Time to live in milliseconds; 0 or omitted = no expiry. */
  ttlMs?: number;
}

/** The handle's figures (dbkv_statistics). */
export interface Stats {
  keys: number;
  walRecords: number;
  walBytes: number;
  fsyncs: number;
  durableLsn: number;
  lastLsn: number;
  snapshotsTaken: number;
  lastSnapshotDurationUs: number;
  /** The handle stopped accepting writes after an I/O failure. */
  failed: boolean;
  recoverySnapshotLoaded: boolean;
  recoverySnapshotEntries: number;
  recoveryWalRecords: number;
  recoveryCorruptRecords: number;
  recoveryBytesDropped: number;
  recoveryDurationUs: number;
  /** Operations since open by kind: get/exists/ttl and each mget key; set/setnx/cas and each mset key; delete and each mdel key; incr/decr; expire/persist; lock/unlock/extendLock; fenced writes; scans started. */
  opsRead: number;
  opsWrite: number;
  opsDelete: number;
  opsIncr: number;
  opsExpire: number;
  opsLock: number;
  opsTxn: number;
  opsScan: number;
  /** WAL segment files on disk, and segments started since open. */
  walSegments: number;
  walRotations: number;
  /** fsync latency since open in µs: total, median, 99th percentile (log2-bucket upper bounds) and maximum. */
  fsyncTotalUs: number;
  fsyncP50Us: number;
  fsyncP99Us: number;
  fsyncMaxUs: number;
  /** Failed snapshots, the size of the last one and when it completed (unix ms; 0 = none since open). */
  snapshotFailures: number;
  lastSnapshotBytes: number;
  lastSnapshotUnixMs: number;
  /** Expired keys removed by the background sweep. */
  expiredReclaimed: number;
  /** Writes that waited for a full WAL queue, and their total wait in µs. */
  backpressureWaits: number;
  backpressureWaitUs: number;
}

export type DbkvErrorCode =
  | 'INVALID_ARGUMENT'
  | 'TOO_LARGE'
  | 'NOT_INTEGER'
  | 'OVERFLOW'
  | 'BUFFER_TOO_SMALL'
  | 'IO'
  | 'CORRUPTION'
  | 'BUSY'
  | 'FAILED'
  | 'INTERNAL'
  | 'WRONG_TYPE'
  | 'CLOSED'
  | 'UNSAFE_INTEGER'
  | 'LIBRARY_NOT_FOUND'
  | 'UNKNOWN';

/** Every failure: `code` says which, `message` is the library's detailed text. */
export class DbkvError extends Error {
  readonly name: 'DbkvError';
  readonly code: DbkvErrorCode;
  /** The C status code, when the error came from libdbkv. */
  readonly status?: number;
  /** For 'UNSAFE_INTEGER': the exact counter value (the change was applied). */
  readonly value?: bigint;
}

/** A prefix scan: iterate it with for...of; break (or return()) frees it early. */
export interface ScanIterator extends IterableIterator<[Buffer, Buffer]> {
  next(): IteratorResult<[Buffer, Buffer], undefined>;
  return(value?: unknown): IteratorResult<[Buffer, Buffer], undefined>;
  [Symbol.iterator](): ScanIterator;
  [Symbol.dispose](): void;
}

export class DB {
  private constructor();
  /** The data directory, or undefined in memory. */
  readonly dir: string | undefined;
  /** True once close() was called. */
  readonly closed: boolean;

  set(key: Bytes, value: Bytes, opts?: TtlOptions): void;
  /** A copy of the value, or undefined if the key is missing or expired. */
  get(key: Bytes): Buffer | undefined;
  /**
   * Copies the value into target when it fits, allocating nothing; returns
   * its length in bytes, or undefined if missing. A length above
   * target.length means nothing was copied (retry with a larger target).
   * Throws TypeError if target is not a Uint8Array.
   */
  getInto(key: Bytes, target: Uint8Array): number | undefined;
  /** The value decoded as UTF-8, or undefined if missing. */
  getString(key: Bytes): string | undefined;
  /** Whether the key existed. */
  delete(key: Bytes): boolean;
  exists(key: Bytes): boolean;

  /** Adds delta (default 1); throws 'UNSAFE_INTEGER' (after applying it) beyond Number.MAX_SAFE_INTEGER. */
  incr(key: Bytes, delta?: number): number;
  decr(key: Bytes, delta?: number): number;
  /** incr over the full signed 64-bit range. */
  incrBig(key: Bytes, delta?: bigint): bigint;
  decrBig(key: Bytes, delta?: bigint): bigint;

  /** True if stored, false if the key already existed. */
  setNX(key: Bytes, value: Bytes, opts?: TtlOptions): boolean;
  /** True if swapped; false if the current value differs or the key is missing. */
  cas(key: Bytes, expected: Bytes, value: Bytes, opts?: TtlOptions): boolean;
  /** Sets the TTL of an existing key (0 removes it); false if missing. */
  expire(key: Bytes, ttlMs: number): boolean;
  /** Removes the TTL; false if missing. */
  persist(key: Bytes): boolean;
  /** Ms left, -1 for no expiry, undefined if missing. */
  ttl(key: Bytes): number | undefined;

  /** Stores all pairs atomically with one TTL. */
  mset(pairs: ReadonlyArray<readonly [Bytes, Bytes]> | Readonly<Record<string, Bytes>>, opts?: TtlOptions): void;
  /** Values at one point in time, undefined where missing. */
  mget(keys: ReadonlyArray<Bytes>): (Buffer | undefined)[];
  /** Deletes atomically; returns how many existed. */
  mdel(keys: ReadonlyArray<Bytes>): number;

  /** The fencing token, or null if another owner holds the lock. ttlMs must be > 0. */
  lock(key: Bytes, owner: Bytes, ttlMs: number): bigint | null;
  /** True if released; false if missing/expired or held by another owner. */
  unlock(key: Bytes, owner: Bytes): boolean;
  /** True if extended; false if missing/expired or held by another owner. */
  extendLock(key: Bytes, owner: Bytes, ttlMs: number): boolean;
  /**
   * set() only while `lockKey` is held with `token` (from lock()): true if
   * written, false if the token is stale (nothing written).
   */
  setFenced(lockKey: Bytes, token: bigint | number, key: Bytes, value: Bytes, opts?: TtlOptions): boolean;
  /**
   * delete() only while `lockKey` is held with `token`: true if deleted, false
   * if the key was missing, null if the token is stale (nothing changed).
   */
  deleteFenced(lockKey: Bytes, token: bigint | number, key: Bytes): boolean | null;

  /** Live keys starting with prefix (all keys if omitted), in no particular order. */
  scan(prefix?: Bytes): ScanIterator;
  count(): number;
  stats(): Stats;

  /** Resolves once every earlier write is durable (runs off the JS thread). */
  sync(): Promise<void>;
  /** Takes a snapshot; needs a data directory (runs off the JS thread). */
  snapshot(): Promise<void>;

  /** Idempotent. Throws 'IO' or 'FAILED' if the final flush failed. */
  close(): void;
  [Symbol.dispose](): void;
}

/** Opens a database: in memory without `dir`. */
export function open(options?: OpenOptions): DB;
/** The libdbkv version string, e.g. "0.1.0". `libraryPath` as in OpenOptions. */
export function version(options?: { libraryPath?: string }): string;
/** The path libdbkv was loaded from (a file path, or libdbkv.so.0 / libdbkv.so from the system loader). */
export function libraryFile(options?: { libraryPath?: string }): string;
/** C status code -> DbkvError code. */
export const ERROR_CODES: Readonly<Record<string, DbkvErrorCode>>;
