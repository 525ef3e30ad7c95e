// Package dbkv is the Go binding of dbkv, an embedded, sharded, in-memory
// key-value engine made durable by a write-ahead log and snapshots. It
// calls the C library libdbkv through cgo.
//
// Open a database with [Open]; the zero [Options] give an in-memory one,
// Options.DataDir a durable one. A [DB] is safe for concurrent use by any
// number of goroutines; [DB.Close] waits for calls in flight, and calls
// after it return an error matching [ErrClosed].
//
//	db, err := dbkv.Open(dbkv.Options{DataDir: "/var/lib/app/kv"})
//	if err != nil { ... }
//	defer db.Close()
//	err = db.Set([]byte("result:42"), []byte(`{"ok":true}`), time.Hour)
//	v, err := db.Get([]byte("result:42"))
//
// # Keys, values and TTLs
//
// Keys are 1 to 65,535 bytes; values 0 to Options.MaxValueBytes. Methods
// read key and value slices in place, without copying them, for the
// duration of the call only: they may be reused as soon as the call
// returns. Everything returned (Get, MGet, Scan) is a fresh copy that the
// caller owns.
//
// A TTL of 0 means no expiry; a positive TTL is rounded up to whole
// milliseconds; a negative one is an error. Expiry is stored as a
// wall-clock time, so it holds across restarts. An expired key is absent
// for every method.
//
// # Errors
//
// Every error a method returns is an [*Error] carrying the dbkv status
// code, the operation and the detailed message dbkv gave for that very
// call. Match it with errors.Is against the sentinels ([ErrNotFound],
// [ErrTooLarge], ...) and use errors.As to read the message fields.
// Outcomes that answer the question asked are not errors: Exists returns
// false, SetNX false when the key exists, CAS false on a mismatch.
//
// # Building
//
// The package links libdbkv with "#cgo pkg-config: dbkv", so the directory
// holding dbkv.pc must be on PKG_CONFIG_PATH when building; see README.md
// for that, the CGO_CFLAGS/CGO_LDFLAGS alternative, and running programs.
package dbkv
