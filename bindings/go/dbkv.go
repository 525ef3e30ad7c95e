package dbkv

/*
// The library's flags come from pkgconfig.go (or from CGO_CFLAGS and
// CGO_LDFLAGS with the dbkv_nopkgconfig build tag).

// Every helper below only reads the Go memory it is given for the duration
// of the call (keys, values, output slots, the message buffer) and never
// calls back into Go. Saying so lets the compiler keep the per-call output
// variables and message buffer on the goroutine's stack instead of
// allocating them on the heap on every call.
#cgo noescape gokv_open
#cgo nocallback gokv_open
#cgo noescape gokv_close
#cgo nocallback gokv_close
#cgo noescape gokv_set
#cgo nocallback gokv_set
#cgo noescape gokv_get_into
#cgo nocallback gokv_get_into
#cgo noescape gokv_delete
#cgo nocallback gokv_delete
#cgo noescape gokv_exists
#cgo nocallback gokv_exists
#cgo noescape gokv_incr
#cgo nocallback gokv_incr
#cgo noescape gokv_decr
#cgo nocallback gokv_decr
#cgo noescape gokv_setnx
#cgo nocallback gokv_setnx
#cgo noescape gokv_cas
#cgo nocallback gokv_cas
#cgo noescape gokv_expire
#cgo nocallback gokv_expire
#cgo noescape gokv_persist
#cgo nocallback gokv_persist
#cgo noescape gokv_ttl
#cgo nocallback gokv_ttl
#cgo noescape gokv_mset
#cgo nocallback gokv_mset
#cgo noescape gokv_mget
#cgo nocallback gokv_mget
#cgo noescape gokv_free_all
#cgo nocallback gokv_free_all
#cgo noescape gokv_mdel
#cgo nocallback gokv_mdel
#cgo noescape gokv_lock
#cgo nocallback gokv_lock
#cgo noescape gokv_unlock
#cgo nocallback gokv_unlock
#cgo noescape gokv_extend_lock
#cgo nocallback gokv_extend_lock
#cgo noescape gokv_set_fenced
#cgo nocallback gokv_set_fenced
#cgo noescape gokv_delete_fenced
#cgo nocallback gokv_delete_fenced
#cgo noescape gokv_count
#cgo nocallback gokv_count
#cgo noescape gokv_sync
#cgo nocallback gokv_sync
#cgo noescape gokv_snapshot
#cgo nocallback gokv_snapshot
#cgo noescape gokv_stats
#cgo nocallback gokv_stats
#cgo noescape gokv_scan
#cgo nocallback gokv_scan
#cgo noescape gokv_iter_next
#cgo nocallback gokv_iter_next

#include <stdlib.h>
#include <string.h>
#include <dbkv.h>

// The handle crosses cgo as an integer. cgo checks every pointer argument
// to a type it cannot see into (dbkv is opaque) against the Go heap on each
// call (runtime.cgoCheckPointer); an integer skips that check, a few ns a
// call (BenchmarkCheckPointer). The value is always a handle dbkv_open
// returned, C memory the Go collector never sees.
typedef uintptr_t gokv_db;

static const dbkv *gokv_handle(gokv_db db) {
	return (const dbkv *)db;
}

// The detailed message of a failed call. dbkv_last_error is per OS thread,
// and a goroutine may run on another thread by its next cgo call, so each
// helper copies the message here before returning, in the same cgo call as
// the failure. The buffer belongs to the Go caller and lives on its stack.
// Go zeroes it on every call, failing or not, so it is kept small: text
// holds every message dbkv gives except long ones (file paths), which go
// to a malloc'd copy in overflow that Go frees. overflow is a uintptr_t,
// not a char *, so that the struct holds no pointer and cgo skips its
// per-call pointer check on it.
typedef struct {
	char text[120];
	uintptr_t overflow;
} gokv_msg;

static int gokv_fail(int rc, gokv_msg *m) {
	if (rc < 0) {
		const char *e = dbkv_last_error();
		size_t n = strlen(e);
		if (n < sizeof m->text) {
			memcpy(m->text, e, n + 1);
			return rc;
		}
		char *copy = malloc(n + 1);
		if (copy != NULL) {
			memcpy(copy, e, n + 1);
			m->overflow = (uintptr_t)copy;
		} else {
			memcpy(m->text, e, sizeof m->text - 1);
			m->text[sizeof m->text - 1] = '\0';
		}
	}
	return rc;
}

// Takes back the overflow copy of a message: the C side converts the
// integer to a pointer, where that is well defined.
static char *gokv_overflow(uintptr_t p) {
	return (char *)p;
}

// Open's arguments, applied to one dbkv_options inside one cgo call, so a
// rejected setter's message is read on the thread that produced it.
typedef struct {
	const char *data_dir;
	int sync_mode;
	uint64_t sync_interval_ms;
	uint32_t shards;
	uint64_t max_value_bytes;
	uint64_t wal_segment_bytes;
	int set_snapshot_interval;
	uint64_t snapshot_interval_secs;
	int set_snapshot_ops;
	uint64_t snapshot_ops;
	uint32_t snapshot_keep;
	int recovery_mode;
	const dbkv_log_buffer *log_buffer; // NULL: no logging
	int log_level;
} gokv_open_args;

static int gokv_open(const gokv_open_args *a, dbkv **out, gokv_msg *m) {
	dbkv_options *o = NULL;
	int rc = dbkv_options_new(&o);
	// Zero means "not set" for every field below: the library keeps its default.
	if (rc == DBKV_OK && a->data_dir != NULL) rc = dbkv_options_set_data_dir(o, a->data_dir);
	if (rc == DBKV_OK) rc = dbkv_options_set_sync_mode(o, a->sync_mode);
	if (rc == DBKV_OK && a->sync_interval_ms != 0) rc = dbkv_options_set_sync_interval_ms(o, a->sync_interval_ms);
	if (rc == DBKV_OK && a->shards != 0) rc = dbkv_options_set_shards(o, a->shards);
	if (rc == DBKV_OK && a->max_value_bytes != 0) rc = dbkv_options_set_max_value_bytes(o, a->max_value_bytes);
	if (rc == DBKV_OK && a->wal_segment_bytes != 0) rc = dbkv_options_set_wal_segment_bytes(o, a->wal_segment_bytes);
	if (rc == DBKV_OK && a->set_snapshot_interval) rc = dbkv_options_set_snapshot_interval_secs(o, a->snapshot_interval_secs);
	if (rc == DBKV_OK && a->set_snapshot_ops) rc = dbkv_options_set_snapshot_ops(o, a->snapshot_ops);
	if (rc == DBKV_OK && a->snapshot_keep != 0) rc = dbkv_options_set_snapshot_keep(o, a->snapshot_keep);
	if (rc == DBKV_OK) rc = dbkv_options_set_recovery_mode(o, a->recovery_mode);
	if (rc == DBKV_OK && a->log_buffer != NULL) rc = dbkv_options_set_log_buffer(o, a->log_buffer);
	if (rc == DBKV_OK && a->log_buffer != NULL) rc = dbkv_options_set_log_level(o, a->log_level);
	if (rc == DBKV_OK) rc = dbkv_open(o, out);
	dbkv_options_free(o);
	return gokv_fail(rc, m);
}

static int gokv_close(gokv_db db, gokv_msg *m) {
	return gokv_fail(dbkv_close((dbkv *)db), m);
}

static int gokv_set(gokv_db db, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl, uint64_t ttl, gokv_msg *m) {
	return gokv_fail(dbkv_set(gokv_handle(db), k, kl, v, vl, ttl), m);
}

static int gokv_get_into(gokv_db db, const uint8_t *k, size_t kl, uint8_t *buf, size_t cap, size_t *len, gokv_msg *m) {
	int rc = dbkv_get_into(gokv_handle(db), k, kl, buf, cap, len);
	// A short buffer is not a failure for Get, which retries with *len
	// bytes: skip the message copy (and a possible malloc) on that path.
	return rc == DBKV_ERR_BUFFER_TOO_SMALL ? rc : gokv_fail(rc, m);
}

static int gokv_delete(gokv_db db, const uint8_t *k, size_t kl, gokv_msg *m) {
	return gokv_fail(dbkv_delete(gokv_handle(db), k, kl), m);
}

static int gokv_exists(gokv_db db, const uint8_t *k, size_t kl, gokv_msg *m) {
	return gokv_fail(dbkv_exists(gokv_handle(db), k, kl), m);
}

static int gokv_incr(gokv_db db, const uint8_t *k, size_t kl, int64_t delta, int64_t *out, gokv_msg *m) {
	return gokv_fail(dbkv_incr(gokv_handle(db), k, kl, delta, out), m);
}

static int gokv_decr(gokv_db db, const uint8_t *k, size_t kl, int64_t delta, int64_t *out, gokv_msg *m) {
	return gokv_fail(dbkv_decr(gokv_handle(db), k, kl, delta, out), m);
}

static int gokv_setnx(gokv_db db, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl, uint64_t ttl, gokv_msg *m) {
	return gokv_fail(dbkv_setnx(gokv_handle(db), k, kl, v, vl, ttl), m);
}

static int gokv_cas(gokv_db db, const uint8_t *k, size_t kl, const uint8_t *e, size_t el, const uint8_t *n, size_t nl, uint64_t ttl, gokv_msg *m) {
	return gokv_fail(dbkv_cas(gokv_handle(db), k, kl, e, el, n, nl, ttl), m);
}

static int gokv_expire(gokv_db db, const uint8_t *k, size_t kl, uint64_t ttl, gokv_msg *m) {
	return gokv_fail(dbkv_expire(gokv_handle(db), k, kl, ttl), m);
}

static int gokv_persist(gokv_db db, const uint8_t *k, size_t kl, gokv_msg *m) {
	return gokv_fail(dbkv_persist(gokv_handle(db), k, kl), m);
}

static int gokv_ttl(gokv_db db, const uint8_t *k, size_t kl, int64_t *ms, gokv_msg *m) {
	return gokv_fail(dbkv_ttl(gokv_handle(db), k, kl, ms), m);
}

static int gokv_mset(gokv_db db, uint8_t **keys, size_t *klens, uint8_t **vals, size_t *vlens, size_t n, uint64_t ttl, gokv_msg *m) {
	return gokv_fail(dbkv_mset(gokv_handle(db), (const uint8_t *const *)keys, klens, (const uint8_t *const *)vals, vlens, n, ttl), m);
}

static int gokv_mget(gokv_db db, uint8_t **keys, size_t *klens, size_t n, uint8_t **vals, size_t *vlens, gokv_msg *m) {
	return gokv_fail(dbkv_mget(gokv_handle(db), (const uint8_t *const *)keys, klens, n, vals, vlens), m);
}

// Frees what dbkv_mget returned in one cgo call rather than one per value.
static void gokv_free_all(uint8_t **vals, size_t n) {
	for (size_t i = 0; i < n; i++) dbkv_free(vals[i]);
}

static int gokv_mdel(gokv_db db, uint8_t **keys, size_t *klens, size_t n, size_t *deleted, gokv_msg *m) {
	return gokv_fail(dbkv_mdel(gokv_handle(db), (const uint8_t *const *)keys, klens, n, deleted), m);
}

static int gokv_lock(gokv_db db, const uint8_t *k, size_t kl, const uint8_t *o, size_t ol, uint64_t ttl, uint64_t *fence, gokv_msg *m) {
	return gokv_fail(dbkv_lock(gokv_handle(db), k, kl, o, ol, ttl, fence), m);
}

static int gokv_unlock(gokv_db db, const uint8_t *k, size_t kl, const uint8_t *o, size_t ol, gokv_msg *m) {
	return gokv_fail(dbkv_unlock(gokv_handle(db), k, kl, o, ol), m);
}

static int gokv_extend_lock(gokv_db db, const uint8_t *k, size_t kl, const uint8_t *o, size_t ol, uint64_t ttl, gokv_msg *m) {
	return gokv_fail(dbkv_extend_lock(gokv_handle(db), k, kl, o, ol, ttl), m);
}

static int gokv_set_fenced(gokv_db db, const uint8_t *lk, size_t lkl, uint64_t token, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl, uint64_t ttl, gokv_msg *m) {
	return gokv_fail(dbkv_set_fenced(gokv_handle(db), lk, lkl, token, k, kl, v, vl, ttl), m);
}

static int gokv_delete_fenced(gokv_db db, const uint8_t *lk, size_t lkl, uint64_t token, const uint8_t *k, size_t kl, gokv_msg *m) {
	return gokv_fail(dbkv_delete_fenced(gokv_handle(db), lk, lkl, token, k, kl), m);
}

static int gokv_count(gokv_db db, uint64_t *out, gokv_msg *m) {
	return gokv_fail(dbkv_count(gokv_handle(db), out), m);
}

static int gokv_sync(gokv_db db, gokv_msg *m) {
	return gokv_fail(dbkv_sync(gokv_handle(db)), m);
}

static int gokv_snapshot(gokv_db db, gokv_msg *m) {
	return gokv_fail(dbkv_snapshot(gokv_handle(db)), m);
}

static int gokv_stats(gokv_db db, dbkv_statistics *st, gokv_msg *m) {
	return gokv_fail(dbkv_stats(gokv_handle(db), st), m);
}

static int gokv_scan(gokv_db db, const uint8_t *p, size_t pl, dbkv_iter **it, gokv_msg *m) {
	return gokv_fail(dbkv_scan(gokv_handle(db), p, pl, it), m);
}

static int gokv_iter_next(dbkv_iter *it, const uint8_t **k, size_t *kl, const uint8_t **v, size_t *vl, gokv_msg *m) {
	return gokv_fail(dbkv_iter_next(it, k, kl, v, vl), m);
}
*/
import "C"

import (
	"iter"
	"math"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// NoExpiry is what TTL returns for a key that exists and never expires.
const NoExpiry time.Duration = -1

// Version returns the version of the dbkv library the program is running
// against, e.g. "0.1.0".
func Version() string { return C.GoString(C.dbkv_version()) }

// statusTexts holds dbkv_strerror for every known status, read once so that
// outcomes like "not found" cost no cgo call when they become an *Error.
var statusTexts = func() map[int]string {
	m := make(map[int]string)
	for code := codeWrongType; code <= codeStaleToken; code++ {
		m[code] = C.GoString(C.dbkv_strerror(C.int(code)))
	}
	m[CodeClosed] = "database is closed"
	return m
}()

func statusText(code int) string {
	if s, ok := statusTexts[code]; ok {
		return s
	}
	return "unknown status " + itoa(int64(code))
}

// DB is an open database. All methods are safe for concurrent use.
type DB struct {
	// mu guards h: every call holds it for reading while it uses the
	// handle, and Close takes it for writing, so Close waits for calls in
	// flight and no call can reach a freed handle (dbkv_close must be the
	// last call on a handle).
	mu sync.RWMutex
	h  *C.dbkv // nil once closed

	// getSize is the length of the value the last Get returned: Get sizes
	// its buffer by it so that the value is usually copied once, straight
	// into the slice returned, in a single cgo call.
	getSize atomic.Int64

	// logs delivers the library's log messages to Options.Logger (nil
	// without one).
	logs *logPump
}

// Open opens a database. With opts.DataDir it takes the directory's lock
// and recovers its contents before returning. The zero Options open an
// in-memory database with the library's defaults.
func Open(opts Options) (*DB, error) {
	a, err := opts.args()
	if err != nil {
		return nil, err
	}
	ca := C.gokv_open_args{
		sync_mode:              C.int(a.syncMode),
		sync_interval_ms:       C.uint64_t(a.syncIntervalMS),
		shards:                 C.uint32_t(a.shards),
		max_value_bytes:        C.uint64_t(a.maxValueBytes),
		wal_segment_bytes:      C.uint64_t(a.walSegmentBytes),
		snapshot_interval_secs: C.uint64_t(a.snapIntervalSecs),
		snapshot_ops:           C.uint64_t(a.snapOps),
		snapshot_keep:          C.uint32_t(a.snapKeep),
		recovery_mode:          C.int(a.recoveryMode),
	}
	if a.setSnapInterval {
		ca.set_snapshot_interval = 1
	}
	if a.setSnapOps {
		ca.set_snapshot_ops = 1
	}
	if a.dataDir != "" {
		ca.data_dir = C.CString(a.dataDir)
		defer C.free(unsafe.Pointer(ca.data_dir))
	}
	var logs *logPump
	if opts.Logger != nil {
		logs = newLogPump(opts.Logger)
		ca.log_buffer = logs.buf
		ca.log_level = logs.level
	}
	var h *C.dbkv
	var m C.gokv_msg
	if rc := C.gokv_open(&ca, &h, &m); rc != codeOK {
		// What recovery logged before it failed still reaches the logger.
		logs.stop()
		err := fail("open", rc, m)
		if e, ok := err.(*Error); ok && rc == codeInvalidArgument {
			e.Message = goOptionNames.Replace(e.Message)
		}
		return nil, err
	}
	logs.start()
	return &DB{h: h, logs: logs}, nil
}

// Close closes the database: it waits for calls in flight, flushes and
// fsyncs the WAL, stops background threads and releases the data
// directory. Later calls return ErrClosed; closing again returns nil.
// An error means the final flush failed, so writes acknowledged since the
// last successful Sync may not be durable; the DB is closed all the same.
func (db *DB) Close() error {
	db.mu.Lock()
	h := db.h
	db.h = nil
	db.mu.Unlock()
	if h == nil {
		return nil
	}
	var m C.gokv_msg
	rc := C.gokv_close(cHandle(h), &m)
	// Every message logged up to the close is delivered before Close returns.
	db.logs.stop()
	if rc != codeOK {
		return fail("close", rc, m)
	}
	return nil
}

// handle returns the C handle with db.mu read-locked; the caller must
// call db.mu.RUnlock when done, and only then, whatever handle returns.
func (db *DB) handle(op string) (C.gokv_db, error) {
	db.mu.RLock()
	if db.h == nil {
		return 0, closedError(op)
	}
	return cHandle(db.h), nil
}

// cHandle is the handle as the gokv_* helpers take it (see gokv_db).
func cHandle(h *C.dbkv) C.gokv_db {
	return C.gokv_db(uintptr(unsafe.Pointer(h)))
}

// fail turns a status and the message captured with it into an *Error.
// It always returns a non-nil error. It takes the message by value: a
// pointer would make every caller's buffer escape to the heap (reading it
// as a C string lets it escape), an allocation on every call, while the
// copy is made on the failure path only.
func fail(op string, rc C.int, m C.gokv_msg) error {
	code := int(rc)
	if code > 0 {
		// Outcomes leave dbkv_last_error unchanged, so nothing was
		// captured; the static description is the whole story.
		return newError(op, code, "")
	}
	var text string
	if m.overflow != 0 {
		p := C.gokv_overflow(m.overflow)
		text = C.GoString(p)
		C.free(unsafe.Pointer(p))
	} else {
		text = C.GoString(&m.text[0])
	}
	return newError(op, code, text)
}

// bytesPtr passes a slice's memory to C without copying it: C reads it only
// during the call. An empty slice becomes NULL, which dbkv accepts with a
// zero length (and reports as an empty key where a key is required).
func bytesPtr(b []byte) *C.uint8_t {
	if len(b) == 0 {
		return nil
	}
	return (*C.uint8_t)(unsafe.Pointer(unsafe.SliceData(b)))
}

func stringPtr(s string) *C.uint8_t {
	if len(s) == 0 {
		return nil
	}
	return (*C.uint8_t)(unsafe.Pointer(unsafe.StringData(s)))
}

// ttlMillis converts a TTL to dbkv's milliseconds, rounding up so that a
// positive TTL never becomes 0, which means "no expiry".
func ttlMillis(op string, ttl time.Duration) (C.uint64_t, error) {
	if ttl < 0 {
		return 0, invalidArgument(op, "ttl "+ttl.String()+" is negative")
	}
	return C.uint64_t(ceilDiv(ttl, time.Millisecond)), nil
}

// Set stores value under key, replacing any previous value and TTL. A ttl
// of 0 means no expiry; otherwise it is rounded up to whole milliseconds.
// Keys are 1 to 65,535 bytes; values 0 to Options.MaxValueBytes.
func (db *DB) Set(key, value []byte, ttl time.Duration) error {
	return db.set("set", bytesPtr(key), len(key), bytesPtr(value), len(value), ttl)
}

// SetString is Set for string keys and values, without copying them.
func (db *DB) SetString(key, value string, ttl time.Duration) error {
	return db.set("set", stringPtr(key), len(key), stringPtr(value), len(value), ttl)
}

func (db *DB) set(op string, k *C.uint8_t, kl int, v *C.uint8_t, vl int, ttl time.Duration) error {
	ms, err := ttlMillis(op, ttl)
	if err != nil {
		return err
	}
	h, err := db.handle(op)
	defer db.mu.RUnlock()
	if err != nil {
		return err
	}
	var m C.gokv_msg
	if rc := C.gokv_set(h, k, C.size_t(kl), v, C.size_t(vl), ms, &m); rc != codeOK {
		return fail(op, rc, m)
	}
	return nil
}

// maxGetGuess bounds the buffer Get allocates before it knows a value's
// size. The slice Get returns keeps the whole buffer alive, so a guess
// far above the real size wastes memory; past this size Get asks for the
// size first, which costs a second lookup, small next to the copy.
const maxGetGuess = 8 << 10

// Get returns a copy of the value of key, or an error matching ErrNotFound
// if the key is missing or expired. An empty value is a non-nil empty
// slice. The value is copied once, from dbkv straight into the returned
// slice, which the caller owns.
func (db *DB) Get(key []byte) ([]byte, error) {
	return db.get(bytesPtr(key), len(key))
}

// GetString is Get for a string key, returning the value as a string
// (without a second copy).
func (db *DB) GetString(key string) (string, error) {
	v, err := db.get(stringPtr(key), len(key))
	if err != nil || len(v) == 0 {
		return "", err
	}
	// v is a fresh buffer nobody else references, so it can back the
	// string directly.
	return unsafe.String(unsafe.SliceData(v), len(v)), nil
}

// GetInto is Get into a buffer the caller owns: the value is copied into
// dst's backing array when it fits (cap(dst) bytes), and the result is
// dst[:len(value)]; a larger value gets a new slice, as append would. A
// loop that reads many values through one buffer allocates nothing:
//
//	buf := make([]byte, 0, 4096)
//	for _, k := range keys {
//		buf, err = db.GetInto(k, buf[:0])
//		...
//	}
//
// The result aliases dst, so it is valid until dst is reused.
func (db *DB) GetInto(key, dst []byte) ([]byte, error) {
	h, err := db.handle("get")
	defer db.mu.RUnlock()
	if err != nil {
		return nil, err
	}
	v, err := db.getInto(h, bytesPtr(key), len(key), dst[:cap(dst)])
	if v == nil && err == nil {
		v = dst[:0]
	}
	return v, err
}

func (db *DB) get(k *C.uint8_t, kl int) ([]byte, error) {
	h, err := db.handle("get")
	defer db.mu.RUnlock()
	if err != nil {
		return nil, err
	}
	last := db.getSize.Load()
	var buf []byte
	if last > 0 && last <= maxGetGuess {
		buf = make([]byte, last)
	}
	v, err := db.getInto(h, k, kl, buf)
	if v == nil && err == nil {
		v = []byte{}
	}
	v = v[:len(v):len(v)] // the caller owns exactly the value
	if err == nil && int64(len(v)) != last {
		// Only store on a change: a store on every call would bounce the
		// cache line between cores running Get.
		db.getSize.Store(int64(len(v)))
	}
	return v, err
}

// getInto copies the value into buf when it fits, else into a slice of
// the exact size; nil (with no error) for an empty value read into a nil
// buf. The caller holds db.mu for reading.
func (db *DB) getInto(h C.gokv_db, k *C.uint8_t, kl int, buf []byte) ([]byte, error) {
	var m C.gokv_msg
	for {
		var n C.size_t
		rc := C.gokv_get_into(h, k, C.size_t(kl), bytesPtr(buf), C.size_t(len(buf)), &n, &m)
		switch rc {
		case codeOK:
			if buf == nil {
				return nil, nil
			}
			return buf[:n], nil
		case codeBufferTooSmall:
			// n is the size needed now; loop because the value may grow
			// again before the retry.
			buf = make([]byte, n)
			continue
		}
		return nil, fail("get", rc, m)
	}
}

// Delete removes key. It returns an error matching ErrNotFound if the key
// was missing, which callers that only want the key gone can ignore.
func (db *DB) Delete(key []byte) error {
	h, err := db.handle("delete")
	defer db.mu.RUnlock()
	if err != nil {
		return err
	}
	var m C.gokv_msg
	if rc := C.gokv_delete(h, bytesPtr(key), C.size_t(len(key)), &m); rc != codeOK {
		return fail("delete", rc, m)
	}
	return nil
}

// Exists reports whether key exists and has not expired.
func (db *DB) Exists(key []byte) (bool, error) {
	h, err := db.handle("exists")
	defer db.mu.RUnlock()
	if err != nil {
		return false, err
	}
	var m C.gokv_msg
	switch rc := C.gokv_exists(h, bytesPtr(key), C.size_t(len(key)), &m); rc {
	case codeOK:
		return true, nil
	case codeNotFound:
		return false, nil
	default:
		return false, fail("exists", rc, m)
	}
}

// Incr adds delta to the counter at key and returns the new value. A
// missing key counts as 0 and is created without TTL; an existing key
// keeps its TTL. The stored value must be a base-10 int64 as Get of a
// counter returns it (ErrNotInteger otherwise); a result outside int64
// fails with ErrOverflow and changes nothing.
func (db *DB) Incr(key []byte, delta int64) (int64, error) {
	h, err := db.handle("incr")
	defer db.mu.RUnlock()
	if err != nil {
		return 0, err
	}
	var out C.int64_t
	var m C.gokv_msg
	if rc := C.gokv_incr(h, bytesPtr(key), C.size_t(len(key)), C.int64_t(delta), &out, &m); rc != codeOK {
		return 0, fail("incr", rc, m)
	}
	return int64(out), nil
}

// Decr subtracts delta from the counter at key; otherwise it is Incr.
func (db *DB) Decr(key []byte, delta int64) (int64, error) {
	h, err := db.handle("decr")
	defer db.mu.RUnlock()
	if err != nil {
		return 0, err
	}
	var out C.int64_t
	var m C.gokv_msg
	if rc := C.gokv_decr(h, bytesPtr(key), C.size_t(len(key)), C.int64_t(delta), &out, &m); rc != codeOK {
		return 0, fail("decr", rc, m)
	}
	return int64(out), nil
}

// SetNX stores value under key only if the key does not exist, and
// reports whether it did.
func (db *DB) SetNX(key, value []byte, ttl time.Duration) (bool, error) {
	ms, err := ttlMillis("setnx", ttl)
	if err != nil {
		return false, err
	}
	h, err := db.handle("setnx")
	defer db.mu.RUnlock()
	if err != nil {
		return false, err
	}
	var m C.gokv_msg
	switch rc := C.gokv_setnx(h, bytesPtr(key), C.size_t(len(key)), bytesPtr(value), C.size_t(len(value)), ms, &m); rc {
	case codeOK:
		return true, nil
	case codeExists:
		return false, nil
	default:
		return false, fail("setnx", rc, m)
	}
}

// CAS replaces the value and TTL of key with newValue only if the current
// value equals expected byte for byte. It returns false on a mismatch and
// an error matching ErrNotFound if the key is missing.
func (db *DB) CAS(key, expected, newValue []byte, ttl time.Duration) (bool, error) {
	ms, err := ttlMillis("cas", ttl)
	if err != nil {
		return false, err
	}
	h, err := db.handle("cas")
	defer db.mu.RUnlock()
	if err != nil {
		return false, err
	}
	var m C.gokv_msg
	switch rc := C.gokv_cas(h, bytesPtr(key), C.size_t(len(key)), bytesPtr(expected), C.size_t(len(expected)),
		bytesPtr(newValue), C.size_t(len(newValue)), ms, &m); rc {
	case codeOK:
		return true, nil
	case codeMismatch:
		return false, nil
	default:
		return false, fail("cas", rc, m)
	}
}

// Expire sets the TTL of an existing key to ttl from now; 0 removes the
// expiry, as Persist does. It returns an error matching ErrNotFound if the
// key is missing.
func (db *DB) Expire(key []byte, ttl time.Duration) error {
	ms, err := ttlMillis("expire", ttl)
	if err != nil {
		return err
	}
	h, err := db.handle("expire")
	defer db.mu.RUnlock()
	if err != nil {
		return err
	}
	var m C.gokv_msg
	if rc := C.gokv_expire(h, bytesPtr(key), C.size_t(len(key)), ms, &m); rc != codeOK {
		return fail("expire", rc, m)
	}
	return nil
}

// Persist removes the TTL of an existing key. It returns an error matching
// ErrNotFound if the key is missing.
func (db *DB) Persist(key []byte) error {
	h, err := db.handle("persist")
	defer db.mu.RUnlock()
	if err != nil {
		return err
	}
	var m C.gokv_msg
	if rc := C.gokv_persist(h, bytesPtr(key), C.size_t(len(key)), &m); rc != codeOK {
		return fail("persist", rc, m)
	}
	return nil
}

// TTL returns the time key has left to live, at millisecond resolution and
// at least 1ms, or NoExpiry if it never expires. It returns an error
// matching ErrNotFound if the key is missing.
func (db *DB) TTL(key []byte) (time.Duration, error) {
	h, err := db.handle("ttl")
	defer db.mu.RUnlock()
	if err != nil {
		return 0, err
	}
	var ms C.int64_t
	var m C.gokv_msg
	if rc := C.gokv_ttl(h, bytesPtr(key), C.size_t(len(key)), &ms, &m); rc != codeOK {
		return 0, fail("ttl", rc, m)
	}
	switch {
	case ms < 0:
		return NoExpiry, nil
	case ms > math.MaxInt64/C.int64_t(time.Millisecond):
		// Further out than a Duration reaches (292 years): only a C client
		// can set such a TTL. Saturate rather than wrap.
		return math.MaxInt64, nil
	}
	return time.Duration(ms) * time.Millisecond, nil
}

// cArrays builds the pointer and length arrays of a multi-key call. The
// pointer array is Go memory holding Go pointers, which cgo allows only if
// those are pinned: pinning passes the keys and values without copying
// them. The caller unpins once the call has returned.
func cArrays(pin *runtime.Pinner, items [][]byte) ([]*C.uint8_t, []C.size_t) {
	ptrs := make([]*C.uint8_t, len(items))
	lens := make([]C.size_t, len(items))
	for i, b := range items {
		if len(b) > 0 {
			p := unsafe.SliceData(b)
			pin.Pin(p)
			ptrs[i] = (*C.uint8_t)(unsafe.Pointer(p))
		}
		lens[i] = C.size_t(len(b))
	}
	return ptrs, lens
}

// firstPtr and firstLen return the address of an array's first element,
// or NULL for an empty array (dbkv accepts NULL arrays when n is 0).
func firstPtr(s []*C.uint8_t) **C.uint8_t {
	if len(s) == 0 {
		return nil
	}
	return &s[0]
}

func firstLen(s []C.size_t) *C.size_t {
	if len(s) == 0 {
		return nil
	}
	return &s[0]
}

// MSet stores keys[i] = values[i] for every i atomically, all with the same
// TTL: no reader sees some of the pairs without the others. Later
// duplicates of a key win. Every key and value is checked before anything
// is written, so a rejected call writes nothing.
func (db *DB) MSet(keys, values [][]byte, ttl time.Duration) error {
	if len(keys) != len(values) {
		return invalidArgument("mset", "mset needs as many values as keys, got "+
			itoa(int64(len(keys)))+" keys and "+itoa(int64(len(values)))+" values")
	}
	ms, err := ttlMillis("mset", ttl)
	if err != nil {
		return err
	}
	h, err := db.handle("mset")
	defer db.mu.RUnlock()
	if err != nil {
		return err
	}
	var pin runtime.Pinner
	defer pin.Unpin()
	kp, kl := cArrays(&pin, keys)
	vp, vl := cArrays(&pin, values)
	var m C.gokv_msg
	if rc := C.gokv_mset(h, firstPtr(kp), firstLen(kl), firstPtr(vp), firstLen(vl), C.size_t(len(keys)), ms, &m); rc != codeOK {
		return fail("mset", rc, m)
	}
	return nil
}

// MGet returns the values of keys, read at one point in time: result[i] is
// nil if keys[i] is missing, and a non-nil empty slice for an empty value.
func (db *DB) MGet(keys ...[]byte) ([][]byte, error) {
	h, err := db.handle("mget")
	defer db.mu.RUnlock()
	if err != nil {
		return nil, err
	}
	var pin runtime.Pinner
	defer pin.Unpin()
	kp, kl := cArrays(&pin, keys)
	// dbkv_mget writes C pointers into these; Go memory may hold C
	// pointers, and the GC ignores them.
	vp := make([]*C.uint8_t, len(keys))
	vl := make([]C.size_t, len(keys))
	var m C.gokv_msg
	if rc := C.gokv_mget(h, firstPtr(kp), firstLen(kl), C.size_t(len(keys)), firstPtr(vp), firstLen(vl), &m); rc != codeOK {
		return nil, fail("mget", rc, m)
	}
	out := make([][]byte, len(keys))
	for i, p := range vp {
		if p == nil {
			continue
		}
		v := make([]byte, vl[i])
		copy(v, unsafe.Slice((*byte)(unsafe.Pointer(p)), vl[i]))
		out[i] = v
	}
	if len(vp) > 0 {
		C.gokv_free_all(&vp[0], C.size_t(len(vp)))
	}
	return out, nil
}

// MDel deletes keys atomically and returns how many of them existed.
func (db *DB) MDel(keys ...[]byte) (int, error) {
	h, err := db.handle("mdel")
	defer db.mu.RUnlock()
	if err != nil {
		return 0, err
	}
	var pin runtime.Pinner
	defer pin.Unpin()
	kp, kl := cArrays(&pin, keys)
	var deleted C.size_t
	var m C.gokv_msg
	if rc := C.gokv_mdel(h, firstPtr(kp), firstLen(kl), C.size_t(len(keys)), &deleted, &m); rc != codeOK {
		return 0, fail("mdel", rc, m)
	}
	return int(deleted), nil
}

// Lock takes the lock key for owner for ttl (which must be positive: a lock
// without expiry would outlive a crashed owner) and returns its fencing
// token, strictly greater than every token the database handed out before,
// across restarts with a DataDir. Pass the token to whatever the lock
// protects so it can refuse a stale holder. If owner already holds the
// lock, its TTL is refreshed and a new token issued. If another owner
// holds it, Lock returns an error matching ErrLocked.
func (db *DB) Lock(key, owner []byte, ttl time.Duration) (fence uint64, err error) {
	ms, err := ttlMillis("lock", ttl)
	if err != nil {
		return 0, err
	}
	h, err := db.handle("lock")
	defer db.mu.RUnlock()
	if err != nil {
		return 0, err
	}
	var token C.uint64_t
	var m C.gokv_msg
	if rc := C.gokv_lock(h, bytesPtr(key), C.size_t(len(key)), bytesPtr(owner), C.size_t(len(owner)), ms, &token, &m); rc != codeOK {
		return 0, fail("lock", rc, m)
	}
	return uint64(token), nil
}

// Unlock releases the lock key if owner holds it. It returns an error
// matching ErrNotOwner if another owner holds it, ErrNotFound if nobody
// does (it was never taken, was released, or expired).
func (db *DB) Unlock(key, owner []byte) error {
	h, err := db.handle("unlock")
	defer db.mu.RUnlock()
	if err != nil {
		return err
	}
	var m C.gokv_msg
	if rc := C.gokv_unlock(h, bytesPtr(key), C.size_t(len(key)), bytesPtr(owner), C.size_t(len(owner)), &m); rc != codeOK {
		return fail("unlock", rc, m)
	}
	return nil
}

// ExtendLock sets the expiry of the lock key held by owner to ttl from now
// (ttl > 0). It returns an error matching ErrNotOwner or ErrNotFound as
// Unlock does.
func (db *DB) ExtendLock(key, owner []byte, ttl time.Duration) error {
	ms, err := ttlMillis("extend_lock", ttl)
	if err != nil {
		return err
	}
	h, err := db.handle("extend_lock")
	defer db.mu.RUnlock()
	if err != nil {
		return err
	}
	var m C.gokv_msg
	if rc := C.gokv_extend_lock(h, bytesPtr(key), C.size_t(len(key)), bytesPtr(owner), C.size_t(len(owner)), ms, &m); rc != codeOK {
		return fail("extend_lock", rc, m)
	}
	return nil
}

// SetFenced stores value under key, as Set does, only if the lock lockKey
// is held, at that moment, with the fencing token that Lock returned. If
// it is not (the lock expired, was released, or was granted again, to
// another owner or by relocking, with a newer token), SetFenced writes
// nothing and returns an error matching ErrStaleToken: a holder that
// paused past its lease cannot overwrite the work of the next holder. The
// check and the write are one atomic step inside dbkv. The lock itself is
// left as it is.
func (db *DB) SetFenced(lockKey []byte, token uint64, key, value []byte, ttl time.Duration) error {
	ms, err := ttlMillis("set_fenced", ttl)
	if err != nil {
		return err
	}
	h, err := db.handle("set_fenced")
	defer db.mu.RUnlock()
	if err != nil {
		return err
	}
	var m C.gokv_msg
	if rc := C.gokv_set_fenced(h, bytesPtr(lockKey), C.size_t(len(lockKey)), C.uint64_t(token),
		bytesPtr(key), C.size_t(len(key)), bytesPtr(value), C.size_t(len(value)), ms, &m); rc != codeOK {
		return fail("set_fenced", rc, m)
	}
	return nil
}

// DeleteFenced removes key only if the lock lockKey is held with token, as
// SetFenced writes. It returns an error matching ErrStaleToken if the token
// no longer holds the lock (nothing changed), and one matching ErrNotFound,
// as Delete does, if the token is current but the key was missing.
func (db *DB) DeleteFenced(lockKey []byte, token uint64, key []byte) error {
	h, err := db.handle("delete_fenced")
	defer db.mu.RUnlock()
	if err != nil {
		return err
	}
	var m C.gokv_msg
	if rc := C.gokv_delete_fenced(h, bytesPtr(lockKey), C.size_t(len(lockKey)), C.uint64_t(token),
		bytesPtr(key), C.size_t(len(key)), &m); rc != codeOK {
		return fail("delete_fenced", rc, m)
	}
	return nil
}

// Count returns the number of live keys; expired keys are never counted.
func (db *DB) Count() (int, error) {
	h, err := db.handle("count")
	defer db.mu.RUnlock()
	if err != nil {
		return 0, err
	}
	var n C.uint64_t
	var m C.gokv_msg
	if rc := C.gokv_count(h, &n, &m); rc != codeOK {
		return 0, fail("count", rc, m)
	}
	return int(n), nil
}

// Sync returns once every write made before the call is durable, in any
// SyncMode. It does nothing for an in-memory database.
func (db *DB) Sync() error {
	h, err := db.handle("sync")
	defer db.mu.RUnlock()
	if err != nil {
		return err
	}
	var m C.gokv_msg
	if rc := C.gokv_sync(h, &m); rc != codeOK {
		return fail("sync", rc, m)
	}
	return nil
}

// Snapshot takes a snapshot now and returns once it is durable; writers
// keep running meanwhile. An in-memory database has nowhere to put one and
// returns an error matching ErrInvalidArgument.
func (db *DB) Snapshot() error {
	h, err := db.handle("snapshot")
	defer db.mu.RUnlock()
	if err != nil {
		return err
	}
	var m C.gokv_msg
	if rc := C.gokv_snapshot(h, &m); rc != codeOK {
		return fail("snapshot", rc, m)
	}
	return nil
}

// Stats are the runtime figures of a DB, as dbkv_statistics has them.
type Stats struct {
	Keys uint64 // live keys

	WALRecords uint64 // WAL records written since Open
	WALBytes   uint64 // WAL bytes written since Open
	Fsyncs     uint64 // fsync calls made since Open
	DurableLSN uint64 // every record up to this LSN is durable
	LastLSN    uint64 // LSN of the newest record

	SnapshotsTaken       uint64        // snapshots taken since Open
	LastSnapshotDuration time.Duration // duration of the last one

	Failed bool // writes stopped after an I/O failure; reopen to recover

	// Recovery done by Open: whether a snapshot was loaded and its entries,
	// WAL records replayed on top, damaged records skipped or cut off and
	// the WAL bytes dropped with them, and how long it took.
	RecoverySnapshotLoaded  bool
	RecoverySnapshotEntries uint64
	RecoveryWALRecords      uint64
	RecoveryCorruptRecords  uint64
	RecoveryBytesDropped    uint64
	RecoveryDuration        time.Duration

	// Ops counts operations since Open by kind.
	Ops OpCounts

	WALSegments  uint64 // WAL segment files on disk
	WALRotations uint64 // segments started since Open

	// WAL fsync latency since Open: total, median, 99th percentile and
	// maximum. Percentiles come from a log2 histogram: each is its
	// bucket's upper bound (at most twice the true value, never above Max).
	FsyncTotal, FsyncP50, FsyncP99, FsyncMax time.Duration

	SnapshotFailures  uint64    // failed snapshots (each retried at the next trigger)
	LastSnapshotBytes uint64    // size of the last snapshot written
	LastSnapshotTime  time.Time // when it completed; zero if none since Open

	ExpiredReclaimed uint64 // expired keys removed by the background sweep

	// Writes that waited because the WAL queue was full (back-pressure),
	// and the total time they waited.
	BackpressureWaits uint64
	BackpressureWait  time.Duration
}

// OpCounts counts operations by kind.
type OpCounts struct {
	Read   uint64 // Get, Exists, TTL; each key of MGet (a Get that must grow its buffer counts twice)
	Write  uint64 // Set, SetNX, CAS; each key of MSet
	Delete uint64 // Delete; each key of MDel
	Incr   uint64 // Incr, Decr
	Expire uint64 // Expire, Persist
	Lock   uint64 // Lock, Unlock, ExtendLock
	Txn    uint64 // SetFenced, DeleteFenced (and dbkv serve's other commands)
	Scan   uint64 // scans started
}

// Stats returns the database's runtime figures.
func (db *DB) Stats() (Stats, error) {
	h, err := db.handle("stats")
	defer db.mu.RUnlock()
	if err != nil {
		return Stats{}, err
	}
	var st C.dbkv_statistics
	// The struct is versioned by its size: the library fills only the
	// fields this binding was compiled to know.
	st.size = C.uint64_t(unsafe.Sizeof(st))
	var m C.gokv_msg
	if rc := C.gokv_stats(h, &st, &m); rc != codeOK {
		return Stats{}, fail("stats", rc, m)
	}
	us := func(v C.uint64_t) time.Duration { return time.Duration(v) * time.Microsecond }
	return Stats{
		Keys:                    uint64(st.keys),
		WALRecords:              uint64(st.wal_records),
		WALBytes:                uint64(st.wal_bytes),
		Fsyncs:                  uint64(st.fsyncs),
		DurableLSN:              uint64(st.durable_lsn),
		LastLSN:                 uint64(st.last_lsn),
		SnapshotsTaken:          uint64(st.snapshots_taken),
		LastSnapshotDuration:    us(st.last_snapshot_duration_us),
		Failed:                  st.failed != 0,
		RecoverySnapshotLoaded:  st.recovery_snapshot_loaded != 0,
		RecoverySnapshotEntries: uint64(st.recovery_snapshot_entries),
		RecoveryWALRecords:      uint64(st.recovery_wal_records),
		RecoveryCorruptRecords:  uint64(st.recovery_corrupt_records),
		RecoveryBytesDropped:    uint64(st.recovery_bytes_dropped),
		RecoveryDuration:        us(st.recovery_duration_us),
		Ops: OpCounts{
			Read: uint64(st.ops_read), Write: uint64(st.ops_write), Delete: uint64(st.ops_delete), Incr: uint64(st.ops_incr),
			Expire: uint64(st.ops_expire), Lock: uint64(st.ops_lock), Txn: uint64(st.ops_txn), Scan: uint64(st.ops_scan),
		},
		WALSegments:       uint64(st.wal_segments),
		WALRotations:      uint64(st.wal_rotations),
		FsyncTotal:        us(st.fsync_total_us),
		FsyncP50:          us(st.fsync_p50_us),
		FsyncP99:          us(st.fsync_p99_us),
		FsyncMax:          us(st.fsync_max_us),
		SnapshotFailures:  uint64(st.snapshot_failures),
		LastSnapshotBytes: uint64(st.last_snapshot_bytes),
		LastSnapshotTime:  unixMillis(uint64(st.last_snapshot_unix_ms)),
		ExpiredReclaimed:  uint64(st.expired_reclaimed),
		BackpressureWaits: uint64(st.backpressure_waits),
		BackpressureWait:  us(st.backpressure_wait_us),
	}, nil
}

// unixMillis is the time of a unix-milliseconds figure; 0 is the zero Time.
func unixMillis(ms uint64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(int64(ms))
}

// Scan returns the live keys that begin with prefix (all keys for an empty
// prefix) with their values, in no particular order, for use with range:
//
//	for k, v := range db.Scan([]byte("user:")) { ... }
//
// Every key present and unchanged for the whole loop is yielded exactly
// once; keys written meanwhile may or may not be. Keys and values are
// copies the loop body may keep. Each range starts a new scan, and the C
// iterator is freed when the loop ends, breaks or panics. The loop body
// may call other methods of db.
//
// A range over a closed DB yields nothing (Count or any other method
// reports ErrClosed). A failure inside dbkv during the scan, which would
// be a dbkv bug (ErrInternal), panics with the *Error rather than ending
// the loop early as if the scan were complete.
func (db *DB) Scan(prefix []byte) iter.Seq2[[]byte, []byte] {
	// Copied because the sequence may run long after Scan returns, and the
	// caller may reuse the prefix's memory meanwhile.
	prefix = append([]byte(nil), prefix...)
	return func(yield func(key, value []byte) bool) {
		it, err := db.scan(prefix)
		if err != nil {
			if err.(*Error).Code == CodeClosed {
				return
			}
			panic(err)
		}
		// The iterator keeps its data alive on its own, even past Close,
		// so db.mu is not held during the loop: the loop body may call db.
		defer C.dbkv_iter_free(it)
		for {
			var k, v *C.uint8_t
			var kl, vl C.size_t
			var m C.gokv_msg
			switch rc := C.gokv_iter_next(it, &k, &kl, &v, &vl, &m); rc {
			case codeOK:
			case codeNotFound:
				return
			default:
				panic(fail("iter_next", rc, m))
			}
			// The pointers are valid only until the next iter_next.
			key := make([]byte, kl)
			copy(key, unsafe.Slice((*byte)(unsafe.Pointer(k)), kl))
			val := make([]byte, vl)
			copy(val, unsafe.Slice((*byte)(unsafe.Pointer(v)), vl))
			if !yield(key, val) {
				return
			}
		}
	}
}

func (db *DB) scan(prefix []byte) (*C.dbkv_iter, error) {
	h, err := db.handle("scan")
	defer db.mu.RUnlock()
	if err != nil {
		return nil, err
	}
	var it *C.dbkv_iter
	var m C.gokv_msg
	if rc := C.gokv_scan(h, bytesPtr(prefix), C.size_t(len(prefix)), &it, &m); rc != codeOK {
		return nil, fail("scan", rc, m)
	}
	return it, nil
}
