package dbkv

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"math"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestVersion(t *testing.T) {
	if v := Version(); !regexp.MustCompile(`^\d+\.\d+\.\d+`).MatchString(v) {
		t.Fatalf("Version() = %q, want a semantic version", v)
	}
}

func TestOpenZeroOptionsIsInMemoryWithDefaults(t *testing.T) {
	db := openDB(t, Options{})
	mustNil(t, db.Set(b("k"), b("v"), 0))
	// The default max value (64 MiB) accepts 1 MiB.
	mustNil(t, db.Set(b("big"), make([]byte, 1<<20), 0))
	// In memory: snapshots have nowhere to go.
	wantErr(t, db.Snapshot(), ErrInvalidArgument, "snapshot", "data directory")
	// and Sync is a no-op that succeeds.
	mustNil(t, db.Sync())
	st, err := db.Stats()
	mustNil(t, err)
	if st.Keys != 2 || st.WALRecords != 0 || st.Fsyncs != 0 {
		t.Fatalf("in-memory stats = %+v, want 2 keys and no WAL activity", st)
	}
}

func TestOpenRejectsBadOptions(t *testing.T) {
	for _, tc := range []struct {
		opts Options
		want string
	}{
		{Options{Shards: 3}, "Options.Shards must be a power of two"},
		{Options{Shards: 1 << 17}, "Options.Shards must be a power of two"},
		{Options{Shards: -1}, "Shards"},
		{Options{MaxValueBytes: 2 << 30}, "Options.MaxValueBytes 2147483648 exceeds"},
		{Options{MaxValueBytes: -1}, "MaxValueBytes"},
		{Options{SyncInterval: 61 * time.Second}, "Options.SyncInterval must be 1ms to 1m0s, got 1m1s"},
		{Options{SyncInterval: -time.Millisecond}, "SyncInterval"},
		{Options{WALSegmentBytes: 100}, "Options.WALSegmentBytes must be 4096"},
		{Options{WALSegmentBytes: -5}, "WALSegmentBytes"},
		{Options{SnapshotKeep: 1001}, "Options.SnapshotKeep must be 1 to 1000, got 1001"},
		{Options{SnapshotKeep: -1}, "SnapshotKeep"},
		{Options{SyncMode: 7}, "Options.SyncMode 7 is not"},
		{Options{SyncMode: -2}, "Options.SyncMode -2 is not"},
		{Options{RecoveryMode: 9}, "Options.RecoveryMode 9 is not"},
		{Options{RecoveryMode: -1}, "Options.RecoveryMode -1 is not"},
		{Options{DataDir: "a\x00b"}, "NUL"},
	} {
		db, err := Open(tc.opts)
		if err == nil {
			db.Close()
			t.Errorf("Open(%+v) succeeded", tc.opts)
			continue
		}
		wantErr(t, err, ErrInvalidArgument, "open", tc.want)
	}
}

func TestOpenAppliesOptions(t *testing.T) {
	db := openDB(t, Options{
		SyncMode:         SyncAlways,
		SyncInterval:     5 * time.Millisecond,
		Shards:           4,
		MaxValueBytes:    100,
		WALSegmentBytes:  1 << 20,
		SnapshotInterval: -1,
		SnapshotOps:      -1,
		SnapshotKeep:     2,
		RecoveryMode:     RecoveryAbsolute,
	})
	mustNil(t, db.Set(b("k"), make([]byte, 100), 0))
	wantErr(t, db.Set(b("k"), make([]byte, 101), 0), ErrTooLarge, "set", "value is 101 bytes, max_value_bytes is 100")
}

// How Options become C setter calls: zero leaves the library default,
// sub-unit durations round up (not down to zero, which means "default" or
// "never"), negative snapshot triggers mean "never".
func TestOptionsTranslation(t *testing.T) {
	a, err := (&Options{}).args()
	if err != nil || a.setSnapInterval || a.setSnapOps || a.syncIntervalMS != 0 || a.shards != 0 ||
		a.syncMode != cSyncInterval || a.recoveryMode != 0 {
		t.Fatalf("zero Options = %+v, %v", a, err)
	}
	o := Options{SyncMode: SyncNone, SyncInterval: time.Microsecond, SnapshotInterval: time.Millisecond, SnapshotOps: 7}
	a, err = o.args()
	if err != nil || a.syncMode != cSyncNone || a.syncIntervalMS != 1 || !a.setSnapInterval || a.snapIntervalSecs != 1 ||
		!a.setSnapOps || a.snapOps != 7 {
		t.Fatalf("%+v = %+v, %v", o, a, err)
	}
	o = Options{SyncMode: SyncAlways, SyncInterval: 1500 * time.Microsecond, SnapshotInterval: -1, SnapshotOps: -1, RecoveryMode: RecoverySkipCorrupted}
	a, err = o.args()
	if err != nil || a.syncMode != cSyncAlways || a.syncIntervalMS != 2 || !a.setSnapInterval || a.snapIntervalSecs != 0 ||
		!a.setSnapOps || a.snapOps != 0 || a.recoveryMode != 2 {
		t.Fatalf("%+v = %+v, %v", o, a, err)
	}
}

func TestModeStrings(t *testing.T) {
	for m, want := range map[fmt.Stringer]string{
		SyncInterval: "SyncInterval", SyncAlways: "SyncAlways", SyncNone: "SyncNone", SyncMode(9): "SyncMode(9)",
		RecoveryPointInTime: "RecoveryPointInTime", RecoveryAbsolute: "RecoveryAbsolute",
		RecoverySkipCorrupted: "RecoverySkipCorrupted", RecoveryMode(-3): "RecoveryMode(-3)",
	} {
		if got := m.String(); got != want {
			t.Errorf("String() = %q, want %q", got, want)
		}
	}
}

func TestSetGet(t *testing.T) {
	db := openDB(t, Options{MaxValueBytes: 1 << 20})
	mustNil(t, db.Set(b("a"), b("1"), 0))
	mustNil(t, db.Set(b("a"), b("22"), 0))
	v, err := db.Get(b("a"))
	mustNil(t, err)
	if string(v) != "22" {
		t.Fatalf("Get = %q, want overwritten value 22", v)
	}

	// Binary-safe keys and values.
	bin := []byte{0, 1, 0, 255, '\n'}
	mustNil(t, db.Set(bin, bin, 0))
	if v, err := db.Get(bin); err != nil || !bytes.Equal(v, bin) {
		t.Fatalf("binary Get = %v, %v", v, err)
	}

	// An empty value is present and non-nil; nil and empty slices agree.
	mustNil(t, db.Set(b("empty"), nil, 0))
	v, err = db.Get(b("empty"))
	mustNil(t, err)
	if v == nil || len(v) != 0 {
		t.Fatalf("Get(empty value) = %#v, want non-nil empty", v)
	}
	mustNil(t, db.Set(b("empty2"), []byte{}, 0))
	if ok, _ := db.Exists(b("empty2")); !ok {
		t.Fatal("key with empty value does not exist")
	}

	// The caller's buffers are free to reuse as soon as Set returns.
	buf := b("original")
	mustNil(t, db.Set(b("reuse"), buf, 0))
	copy(buf, "########")
	if v, _ := db.Get(b("reuse")); string(v) != "original" {
		t.Fatalf("Get after reusing the value buffer = %q", v)
	}
	// Get returns a copy the caller owns.
	v, _ = db.Get(b("reuse"))
	v[0] = 'Z'
	if v2, _ := db.Get(b("reuse")); string(v2) != "original" {
		t.Fatalf("modifying Get's result changed the stored value: %q", v2)
	}

	// Key size limits.
	mustNil(t, db.Set(bytes.Repeat(b("k"), 65535), b("max"), 0))
	wantErr(t, db.Set(bytes.Repeat(b("k"), 65536), b("v"), 0), ErrTooLarge, "set", "key is 65536 bytes")
	_, err = db.Get(bytes.Repeat(b("k"), 70000))
	wantErr(t, err, ErrTooLarge, "get", "key is 70000 bytes")
	wantErr(t, db.Set(nil, b("v"), 0), ErrInvalidArgument, "set", "key is empty")
	_, err = db.Get([]byte{})
	wantErr(t, err, ErrInvalidArgument, "get", "key is empty")
	wantErr(t, db.Set(b("k"), make([]byte, 1<<20+1), 0), ErrTooLarge, "set", fmt.Sprintf("value is %d bytes", 1<<20+1))
	wantErr(t, db.Set(b("k"), b("v"), -time.Second), ErrInvalidArgument, "set", "negative")

	// Missing keys.
	v, err = db.Get(b("missing"))
	e := wantErr(t, err, ErrNotFound, "get", "not found")
	if v != nil || e.Code != codeNotFound {
		t.Fatalf("Get(missing) = %v, code %d", v, e.Code)
	}
}

func TestStringConvenience(t *testing.T) {
	db := openDB(t, Options{})
	mustNil(t, db.SetString("greeting", "hello", 0))
	s, err := db.GetString("greeting")
	if err != nil || s != "hello" {
		t.Fatalf("GetString = %q, %v", s, err)
	}
	if v, _ := db.Get(b("greeting")); string(v) != "hello" {
		t.Fatalf("Get of a SetString key = %q", v)
	}
	mustNil(t, db.SetString("e", "", 0))
	if s, err := db.GetString("e"); err != nil || s != "" {
		t.Fatalf("GetString(empty) = %q, %v", s, err)
	}
	_, err = db.GetString("nope")
	wantErr(t, err, ErrNotFound, "get")
	wantErr(t, db.SetString("", "v", 0), ErrInvalidArgument, "set", "key is empty")
	wantErr(t, db.SetString("k", "v", -1), ErrInvalidArgument, "set", "negative")
}

// Get sizes its buffer by the previous value: it must still return exact
// values when sizes change in every direction, including across the point
// where it stops guessing.
func TestGetAcrossValueSizes(t *testing.T) {
	db := openDB(t, Options{})
	sizes := []int{0, 1, 200, 199, 201, 5000, maxGetGuess - 1, maxGetGuess, maxGetGuess + 1, 1 << 20, 3, 0, 1 << 20, 1 << 20, 64}
	for i, n := range sizes {
		want := bytes.Repeat([]byte{byte('a' + i)}, n)
		key := []byte(fmt.Sprint("size:", i))
		mustNil(t, db.Set(key, want, 0))
		got, err := db.Get(key)
		mustNil(t, err)
		if !bytes.Equal(got, want) {
			t.Fatalf("value %d: got %d bytes, want %d", i, len(got), n)
		}
		if got == nil || cap(got) != len(got) {
			t.Fatalf("value %d: len %d cap %d: the result must be exactly its value", i, len(got), cap(got))
		}
	}
}

// A value that changes size between Get's two attempts must come back
// whole: Get retries with the size dbkv reports until the value fits.
func TestGetWhileValueResizes(t *testing.T) {
	db := openDB(t, Options{})
	small, large := bytes.Repeat(b("s"), 10), bytes.Repeat(b("L"), 20000)
	mustNil(t, db.Set(b("k"), small, 0))
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			v := small
			if i%2 == 0 {
				v = large
			}
			if err := db.Set(b("k"), v, 0); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	for range 3000 {
		v, err := db.Get(b("k"))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(v, small) && !bytes.Equal(v, large) {
			t.Fatalf("Get returned a torn value of %d bytes", len(v))
		}
	}
	close(stop)
	wg.Wait()
}

func TestDeleteExists(t *testing.T) {
	db := openDB(t, Options{})
	mustNil(t, db.Set(b("k"), b("v"), 0))
	ok, err := db.Exists(b("k"))
	if err != nil || !ok {
		t.Fatalf("Exists = %v, %v", ok, err)
	}
	mustNil(t, db.Delete(b("k")))
	ok, err = db.Exists(b("k"))
	if err != nil || ok {
		t.Fatalf("Exists after Delete = %v, %v", ok, err)
	}
	wantErr(t, db.Delete(b("k")), ErrNotFound, "delete", "not found")
	wantErr(t, db.Delete(nil), ErrInvalidArgument, "delete", "key is empty")
	wantErr(t, db.Delete(make([]byte, 65536)), ErrTooLarge, "delete", "key is 65536 bytes")
	_, err = db.Exists(nil)
	wantErr(t, err, ErrInvalidArgument, "exists", "key is empty")
	_, err = db.Exists(make([]byte, 65537))
	wantErr(t, err, ErrTooLarge, "exists", "key is 65537 bytes")
}

func TestIncrDecr(t *testing.T) {
	db := openDB(t, Options{})
	n, err := db.Incr(b("c"), 5)
	if err != nil || n != 5 {
		t.Fatalf("Incr(missing, 5) = %d, %v", n, err)
	}
	n, err = db.Decr(b("c"), 7)
	if err != nil || n != -2 {
		t.Fatalf("Decr(5, 7) = %d, %v", n, err)
	}
	n, err = db.Incr(b("c"), -3)
	if err != nil || n != -5 {
		t.Fatalf("Incr(-2, -3) = %d, %v", n, err)
	}
	if v, _ := db.Get(b("c")); string(v) != "-5" {
		t.Fatalf("Get(counter) = %q, want ASCII -5", v)
	}
	// A counter written with Set counts too.
	mustNil(t, db.Set(b("s"), b("41"), 0))
	if n, err := db.Incr(b("s"), 1); err != nil || n != 42 {
		t.Fatalf("Incr(\"41\") = %d, %v", n, err)
	}

	mustNil(t, db.Set(b("json"), b(`{"a":1}`), 0))
	_, err = db.Incr(b("json"), 1)
	wantErr(t, err, ErrNotInteger, "incr", "integer")
	_, err = db.Decr(b("json"), 1)
	wantErr(t, err, ErrNotInteger, "decr", "integer")

	// Overflow changes nothing, in both directions.
	_, err = db.Incr(b("max"), math.MaxInt64)
	mustNil(t, err)
	_, err = db.Incr(b("max"), 1)
	wantErr(t, err, ErrOverflow, "incr", "overflow")
	if v, _ := db.Get(b("max")); string(v) != "9223372036854775807" {
		t.Fatalf("value after overflow = %q", v)
	}
	_, err = db.Decr(b("min"), math.MaxInt64)
	mustNil(t, err)
	_, err = db.Decr(b("min"), 2)
	wantErr(t, err, ErrOverflow, "decr", "overflow")

	// An existing key keeps its TTL through Incr.
	mustNil(t, db.Set(b("ttl"), b("1"), time.Hour))
	_, err = db.Incr(b("ttl"), 1)
	mustNil(t, err)
	if d, err := db.TTL(b("ttl")); err != nil || d <= 59*time.Minute || d > time.Hour {
		t.Fatalf("TTL after Incr = %v, %v; want about an hour", d, err)
	}

	_, err = db.Incr(nil, 1)
	wantErr(t, err, ErrInvalidArgument, "incr", "key is empty")
	_, err = db.Decr(make([]byte, 65536), 1)
	wantErr(t, err, ErrTooLarge, "decr", "key is 65536 bytes")
}

func TestSetNX(t *testing.T) {
	db := openDB(t, Options{MaxValueBytes: 10})
	ok, err := db.SetNX(b("k"), b("first"), time.Hour)
	if err != nil || !ok {
		t.Fatalf("SetNX(missing) = %v, %v", ok, err)
	}
	ok, err = db.SetNX(b("k"), b("second"), 0)
	if err != nil || ok {
		t.Fatalf("SetNX(existing) = %v, %v", ok, err)
	}
	if v, _ := db.Get(b("k")); string(v) != "first" {
		t.Fatalf("SetNX overwrote: %q", v)
	}
	if d, _ := db.TTL(b("k")); d <= 0 || d > time.Hour {
		t.Fatalf("SetNX TTL = %v", d)
	}
	_, err = db.SetNX(b("x"), make([]byte, 11), 0)
	wantErr(t, err, ErrTooLarge, "setnx", "value is 11 bytes")
	_, err = db.SetNX(nil, b("v"), 0)
	wantErr(t, err, ErrInvalidArgument, "setnx", "key is empty")
	_, err = db.SetNX(b("x"), b("v"), -time.Nanosecond)
	wantErr(t, err, ErrInvalidArgument, "setnx", "negative")
	if ok, _ := db.Exists(b("x")); ok {
		t.Fatal("a rejected SetNX wrote its key")
	}
}

func TestCAS(t *testing.T) {
	db := openDB(t, Options{MaxValueBytes: 10})
	mustNil(t, db.Set(b("k"), b("v1"), 0))
	ok, err := db.CAS(b("k"), b("v1"), b("v2"), time.Hour)
	if err != nil || !ok {
		t.Fatalf("CAS(match) = %v, %v", ok, err)
	}
	if v, _ := db.Get(b("k")); string(v) != "v2" {
		t.Fatalf("after CAS: %q", v)
	}
	if d, _ := db.TTL(b("k")); d <= 0 || d > time.Hour {
		t.Fatalf("CAS did not set the TTL: %v", d)
	}
	ok, err = db.CAS(b("k"), b("v1"), b("v3"), 0)
	if err != nil || ok {
		t.Fatalf("CAS(mismatch) = %v, %v", ok, err)
	}
	if v, _ := db.Get(b("k")); string(v) != "v2" {
		t.Fatalf("a mismatched CAS changed the value to %q", v)
	}
	// The empty value is a value like any other.
	mustNil(t, db.Set(b("e"), nil, 0))
	if ok, err := db.CAS(b("e"), nil, b("x"), 0); err != nil || !ok {
		t.Fatalf("CAS(empty expected) = %v, %v", ok, err)
	}
	if ok, err := db.CAS(b("e"), b("x"), nil, 0); err != nil || !ok {
		t.Fatalf("CAS(to empty) = %v, %v", ok, err)
	}
	if v, _ := db.Get(b("e")); v == nil || len(v) != 0 {
		t.Fatalf("after CAS to empty: %#v", v)
	}

	_, err = db.CAS(b("missing"), b("a"), b("b"), 0)
	wantErr(t, err, ErrNotFound, "cas", "not found")
	_, err = db.CAS(b("k"), b("v2"), make([]byte, 11), 0)
	wantErr(t, err, ErrTooLarge, "cas", "value is 11 bytes")
	_, err = db.CAS(nil, b("a"), b("b"), 0)
	wantErr(t, err, ErrInvalidArgument, "cas", "key is empty")
	_, err = db.CAS(b("k"), b("v2"), b("b"), -time.Second)
	wantErr(t, err, ErrInvalidArgument, "cas", "negative")
}

func TestExpirePersistTTL(t *testing.T) {
	db := openDB(t, Options{})
	mustNil(t, db.Set(b("k"), b("v"), 0))
	d, err := db.TTL(b("k"))
	if err != nil || d != NoExpiry {
		t.Fatalf("TTL(no expiry) = %v, %v; want NoExpiry", d, err)
	}
	mustNil(t, db.Expire(b("k"), 10*time.Minute))
	d, err = db.TTL(b("k"))
	if err != nil || d <= 9*time.Minute || d > 10*time.Minute || d%time.Millisecond != 0 {
		t.Fatalf("TTL after Expire(10m) = %v, %v", d, err)
	}
	mustNil(t, db.Persist(b("k")))
	if d, _ := db.TTL(b("k")); d != NoExpiry {
		t.Fatalf("TTL after Persist = %v", d)
	}
	// Expire(0) removes the expiry too, as in the C API.
	mustNil(t, db.Expire(b("k"), time.Minute))
	mustNil(t, db.Expire(b("k"), 0))
	if d, _ := db.TTL(b("k")); d != NoExpiry {
		t.Fatalf("TTL after Expire(0) = %v", d)
	}
	// A sub-millisecond TTL rounds up to 1ms rather than to "no expiry".
	mustNil(t, db.Expire(b("k"), time.Nanosecond))
	time.Sleep(5 * time.Millisecond)
	if ok, _ := db.Exists(b("k")); ok {
		t.Fatal("a key with a 1ns TTL still exists after 5ms")
	}

	wantErr(t, db.Expire(b("missing"), time.Second), ErrNotFound, "expire")
	wantErr(t, db.Persist(b("missing")), ErrNotFound, "persist")
	_, err = db.TTL(b("missing"))
	wantErr(t, err, ErrNotFound, "ttl")
	wantErr(t, db.Expire(b("k"), -time.Second), ErrInvalidArgument, "expire", "negative")
	wantErr(t, db.Expire(nil, time.Second), ErrInvalidArgument, "expire", "key is empty")
	wantErr(t, db.Persist(nil), ErrInvalidArgument, "persist", "key is empty")
	_, err = db.TTL(make([]byte, 65536))
	wantErr(t, err, ErrTooLarge, "ttl", "key is 65536 bytes")
}

func TestExpiredKeysVanish(t *testing.T) {
	db := openDB(t, Options{})
	mustNil(t, db.Set(b("short"), b("v"), 20*time.Millisecond))
	mustNil(t, db.Set(b("long"), b("v"), time.Hour))
	if n, _ := db.Count(); n != 2 {
		t.Fatalf("Count = %d, want 2", n)
	}
	time.Sleep(40 * time.Millisecond)
	_, err := db.Get(b("short"))
	wantErr(t, err, ErrNotFound, "get")
	if ok, _ := db.Exists(b("short")); ok {
		t.Fatal("expired key exists")
	}
	if n, _ := db.Count(); n != 1 {
		t.Fatalf("Count after expiry = %d, want 1", n)
	}
	for k := range db.Scan(nil) {
		if string(k) == "short" {
			t.Fatal("Scan yielded an expired key")
		}
	}
}

func TestMultiKey(t *testing.T) {
	db := openDB(t, Options{MaxValueBytes: 10})
	keys := [][]byte{b("a"), b("b"), b("c"), b("a")}
	vals := [][]byte{b("1"), b("2"), {}, b("4")}
	mustNil(t, db.MSet(keys, vals, time.Hour))
	got, err := db.MGet(b("a"), b("b"), b("c"), b("missing"))
	mustNil(t, err)
	// Later duplicates win; the empty value is non-nil, the missing key nil.
	if string(got[0]) != "4" || string(got[1]) != "2" || got[2] == nil || len(got[2]) != 0 || got[3] != nil {
		t.Fatalf("MGet = %q", got)
	}
	if d, _ := db.TTL(b("b")); d <= 0 || d > time.Hour {
		t.Fatalf("MSet TTL = %v", d)
	}

	// Atomic validation: one bad value and nothing is written.
	err = db.MSet([][]byte{b("x"), b("y")}, [][]byte{b("ok"), make([]byte, 11)}, 0)
	wantErr(t, err, ErrTooLarge, "mset", "value is 11 bytes")
	if ok, _ := db.Exists(b("x")); ok {
		t.Fatal("a rejected MSet wrote a key")
	}
	wantErr(t, db.MSet([][]byte{b("x")}, nil, 0), ErrInvalidArgument, "mset", "1 keys and 0 values")
	wantErr(t, db.MSet([][]byte{nil}, [][]byte{b("v")}, 0), ErrInvalidArgument, "mset", "key is empty")
	wantErr(t, db.MSet([][]byte{b("x")}, [][]byte{b("v")}, -1), ErrInvalidArgument, "mset", "negative")
	mustNil(t, db.MSet(nil, nil, 0))

	_, err = db.MGet(b("a"), nil)
	wantErr(t, err, ErrInvalidArgument, "mget", "key is empty")
	_, err = db.MGet(b("a"), make([]byte, 65536))
	wantErr(t, err, ErrTooLarge, "mget", "key is 65536 bytes")
	if got, err := db.MGet(); err != nil || len(got) != 0 {
		t.Fatalf("MGet() = %v, %v", got, err)
	}

	n, err := db.MDel(b("a"), b("b"), b("missing"), b("a"))
	if err != nil || n != 2 {
		t.Fatalf("MDel = %d, %v; want 2", n, err)
	}
	if got, _ := db.MGet(b("a"), b("b"), b("c")); got[0] != nil || got[1] != nil || got[2] == nil {
		t.Fatalf("after MDel: %q", got)
	}
	_, err = db.MDel(b("c"), nil)
	wantErr(t, err, ErrInvalidArgument, "mdel", "key is empty")
	if ok, _ := db.Exists(b("c")); !ok {
		t.Fatal("a rejected MDel deleted a key")
	}
	if n, err := db.MDel(); err != nil || n != 0 {
		t.Fatalf("MDel() = %d, %v", n, err)
	}
}

// MGet's result must be Go memory the caller owns: the C buffers are freed.
func TestMGetResultsAreIndependentCopies(t *testing.T) {
	db := openDB(t, Options{})
	var keys [][]byte
	for i := range 100 {
		k := []byte(fmt.Sprint("k", i))
		keys = append(keys, k)
		mustNil(t, db.Set(k, bytes.Repeat(k, 50), 0))
	}
	got, err := db.MGet(keys...)
	mustNil(t, err)
	for i, v := range got {
		v[0] = '!'
		if want := bytes.Repeat(keys[i], 50)[1:]; !bytes.Equal(v[1:], want) {
			t.Fatalf("MGet[%d] = %q", i, v)
		}
	}
	again, _ := db.MGet(keys...)
	if again[0][0] != 'k' {
		t.Fatal("modifying MGet's result changed the stored value")
	}
}

func TestLocks(t *testing.T) {
	db := openDB(t, Options{})
	f1, err := db.Lock(b("lock"), b("a"), time.Minute)
	if err != nil || f1 == 0 {
		t.Fatalf("Lock = %d, %v", f1, err)
	}
	// Re-locking by the holder refreshes it with a newer token.
	f2, err := db.Lock(b("lock"), b("a"), time.Minute)
	if err != nil || f2 <= f1 {
		t.Fatalf("re-Lock = %d, %v; want a token above %d", f2, err, f1)
	}
	f, err := db.Lock(b("lock"), b("b"), time.Minute)
	if f != 0 {
		t.Fatalf("refused Lock returned token %d", f)
	}
	wantErr(t, err, ErrLocked, "lock", "locked by another owner")
	wantErr(t, db.Unlock(b("lock"), b("b")), ErrNotOwner, "unlock")
	wantErr(t, db.ExtendLock(b("lock"), b("b"), time.Minute), ErrNotOwner, "extend_lock")

	mustNil(t, db.ExtendLock(b("lock"), b("a"), time.Hour))
	if d, _ := db.TTL(b("lock")); d <= 59*time.Minute {
		t.Fatalf("TTL after ExtendLock(1h) = %v", d)
	}
	// The lock lives in the keyspace, its value the owner.
	if v, _ := db.Get(b("lock")); string(v) != "a" {
		t.Fatalf("lock value = %q", v)
	}
	mustNil(t, db.Unlock(b("lock"), b("a")))
	wantErr(t, db.Unlock(b("lock"), b("a")), ErrNotFound, "unlock")
	wantErr(t, db.ExtendLock(b("lock"), b("a"), time.Minute), ErrNotFound, "extend_lock")
	f3, err := db.Lock(b("lock"), b("b"), time.Minute)
	if err != nil || f3 <= f2 {
		t.Fatalf("Lock after Unlock = %d, %v; want a token above %d", f3, err, f2)
	}

	// An expired lock is free for the next owner.
	_, err = db.Lock(b("brief"), b("a"), 10*time.Millisecond)
	mustNil(t, err)
	time.Sleep(30 * time.Millisecond)
	if _, err := db.Lock(b("brief"), b("b"), time.Minute); err != nil {
		t.Fatalf("Lock of an expired lock: %v", err)
	}

	_, err = db.Lock(b("l"), b("a"), 0)
	wantErr(t, err, ErrInvalidArgument, "lock", "ttl_ms must be > 0")
	_, err = db.Lock(b("l"), nil, time.Second)
	wantErr(t, err, ErrInvalidArgument, "lock", "owner is empty")
	_, err = db.Lock(nil, b("a"), time.Second)
	wantErr(t, err, ErrInvalidArgument, "lock", "key is empty")
	_, err = db.Lock(b("l"), b("a"), -time.Second)
	wantErr(t, err, ErrInvalidArgument, "lock", "negative")
	_, err = db.Lock(make([]byte, 65536), b("a"), time.Second)
	wantErr(t, err, ErrTooLarge, "lock", "key is 65536 bytes")
	wantErr(t, db.ExtendLock(b("lock"), b("b"), 0), ErrInvalidArgument, "extend_lock", "ttl_ms must be > 0")
	wantErr(t, db.ExtendLock(b("lock"), b("b"), -1), ErrInvalidArgument, "extend_lock", "negative")
	wantErr(t, db.Unlock(nil, b("a")), ErrInvalidArgument, "unlock", "key is empty")
	wantErr(t, db.Unlock(b("lock"), nil), ErrInvalidArgument, "unlock", "owner is empty")
}

func TestScan(t *testing.T) {
	db := openDB(t, Options{})
	want := map[string]string{}
	for i := range 300 {
		k := fmt.Sprintf("user:%03d", i)
		want[k] = strings.Repeat("v", i%7) // includes empty values
		mustNil(t, db.SetString(k, want[k], 0))
	}
	mustNil(t, db.SetString("other", "x", 0))

	got := map[string]string{}
	var kept [][]byte
	for k, v := range db.Scan(b("user:")) {
		if v == nil {
			t.Fatalf("Scan yielded a nil value for %q", k)
		}
		if _, dup := got[string(k)]; dup {
			t.Fatalf("Scan yielded %q twice", k)
		}
		got[string(k)] = string(v)
		kept = append(kept, k)
	}
	if !maps.Equal(got, want) {
		t.Fatalf("Scan(user:) gave %d keys, want %d", len(got), len(want))
	}
	// Yielded slices are copies that stay valid after the loop moved on.
	for _, k := range kept {
		if _, ok := want[string(k)]; !ok {
			t.Fatalf("a key kept from the scan changed afterwards: %q", k)
		}
	}

	all := 0
	for range db.Scan(nil) {
		all++
	}
	if all != 301 {
		t.Fatalf("Scan(nil) yielded %d keys, want 301", all)
	}
	for k := range db.Scan(b("nomatch")) {
		t.Fatalf("Scan(nomatch) yielded %q", k)
	}

	// The prefix is copied: changing it after Scan returns does not matter.
	prefix := b("user:")
	seq := db.Scan(prefix)
	copy(prefix, "other")
	n := 0
	for k := range seq {
		if !bytes.HasPrefix(k, b("user:")) {
			t.Fatalf("scan yielded %q", k)
		}
		n++
	}
	if n != 300 {
		t.Fatalf("scan after prefix reuse yielded %d keys", n)
	}
}

func TestScanBreakPanicAndReentry(t *testing.T) {
	db := openDB(t, Options{})
	for i := range 50 {
		mustNil(t, db.SetString(fmt.Sprint("k", i), "v", 0))
	}
	// Breaking out frees the iterator; many abandoned scans must not pile
	// up or hold anything that blocks later calls, including Close.
	for range 1000 {
		for range db.Scan(nil) {
			break
		}
	}
	// The loop body may call the database, writes included.
	n := 0
	for k := range db.Scan(b("k")) {
		if _, err := db.Get(k); err != nil {
			t.Fatal(err)
		}
		mustNil(t, db.Set(append(b("copy:"), k...), b("x"), 0))
		n++
	}
	if n != 50 {
		t.Fatalf("scan with writes in the body yielded %d keys, want 50", n)
	}
	// A panic in the body unwinds through the sequence (freeing the iterator).
	func() {
		defer func() {
			if r := recover(); r != "boom" {
				t.Fatalf("recovered %v, want boom", r)
			}
		}()
		for range db.Scan(nil) {
			panic("boom")
		}
	}()
	// The sequence can be ranged over again.
	seq := db.Scan(b("copy:"))
	for range 2 {
		c := 0
		for range seq {
			c++
		}
		if c != 50 {
			t.Fatalf("re-ranged scan yielded %d, want 50", c)
		}
	}
}

// A scan started before Close keeps working; one started after yields
// nothing.
func TestScanAcrossClose(t *testing.T) {
	db, err := Open(Options{})
	mustNil(t, err)
	for i := range 10 {
		mustNil(t, db.SetString(fmt.Sprint("k", i), "v", 0))
	}
	n := 0
	for range db.Scan(nil) {
		if n == 0 {
			mustNil(t, db.Close())
		}
		n++
	}
	if n != 10 {
		t.Fatalf("scan across Close yielded %d keys, want 10", n)
	}
	for k := range db.Scan(nil) {
		t.Fatalf("scan of a closed DB yielded %q", k)
	}
}

func TestCountAndStats(t *testing.T) {
	db := openDB(t, Options{})
	for i := range 25 {
		mustNil(t, db.SetString(fmt.Sprint("k", i), "v", 0))
	}
	mustNil(t, db.Delete(b("k0")))
	n, err := db.Count()
	if err != nil || n != 24 {
		t.Fatalf("Count = %d, %v", n, err)
	}
	st, err := db.Stats()
	mustNil(t, err)
	if st.Keys != 24 || st.Failed || st.RecoverySnapshotLoaded {
		t.Fatalf("Stats = %+v", st)
	}
}

// Every method of a closed DB returns ErrClosed (and never reaches the
// freed C handle); Close itself stays nil.
func TestClosed(t *testing.T) {
	db, err := Open(Options{})
	mustNil(t, err)
	mustNil(t, db.Close())
	mustNil(t, db.Close())
	k := b("k")
	_, e1 := db.Get(k)
	_, e2 := db.GetString("k")
	_, e3 := db.Exists(k)
	_, e4 := db.Incr(k, 1)
	_, e5 := db.Decr(k, 1)
	_, e6 := db.SetNX(k, k, 0)
	_, e7 := db.CAS(k, k, k, 0)
	_, e8 := db.TTL(k)
	_, e9 := db.MGet(k)
	_, e10 := db.MDel(k)
	_, e11 := db.Lock(k, k, time.Second)
	_, e12 := db.Count()
	_, e13 := db.Stats()
	for _, c := range []struct {
		op  string
		err error
	}{
		{"set", db.Set(k, k, 0)},
		{"set", db.SetString("k", "v", 0)},
		{"get", e1}, {"get", e2},
		{"delete", db.Delete(k)},
		{"exists", e3},
		{"incr", e4}, {"decr", e5},
		{"setnx", e6}, {"cas", e7},
		{"expire", db.Expire(k, time.Second)},
		{"persist", db.Persist(k)},
		{"ttl", e8},
		{"mset", db.MSet([][]byte{k}, [][]byte{k}, 0)},
		{"mget", e9}, {"mdel", e10},
		{"lock", e11},
		{"unlock", db.Unlock(k, k)},
		{"extend_lock", db.ExtendLock(k, k, time.Second)},
		{"set_fenced", db.SetFenced(k, 1, k, k, 0)},
		{"delete_fenced", db.DeleteFenced(k, 1, k)},
		{"count", e12},
		{"sync", db.Sync()},
		{"snapshot", db.Snapshot()},
		{"stats", e13},
	} {
		e := wantErr(t, c.err, ErrClosed, c.op, "closed")
		if e.Code != CodeClosed {
			t.Errorf("%s: Code = %d, want CodeClosed", c.op, e.Code)
		}
	}
}

func TestErrorMatching(t *testing.T) {
	all := []error{ErrNotFound, ErrExists, ErrLocked, ErrNotOwner, ErrMismatch, ErrStaleToken, ErrInvalidArgument,
		ErrTooLarge, ErrNotInteger, ErrOverflow, ErrBufferTooSmall, ErrIO, ErrCorruption, ErrBusy,
		ErrFailed, ErrInternal, ErrWrongType, ErrClosed}
	codes := []int{1, 2, 3, 4, 5, 6, -1, -2, -3, -4, -5, -6, -7, -8, -9, -10, -11, CodeClosed}
	for i, code := range codes {
		err := error(&Error{Code: code, Op: "op", Message: "msg"})
		for j, s := range all {
			if got := errors.Is(err, s); got != (i == j) {
				t.Errorf("errors.Is(code %d, %v) = %v", code, s, got)
			}
		}
		wrapped := fmt.Errorf("context: %w", err)
		if !errors.Is(wrapped, all[i]) {
			t.Errorf("wrapped code %d does not match %v", code, all[i])
		}
	}
	if errors.Is(&Error{Code: 99}, ErrInternal) {
		t.Error("an unknown code matches a sentinel")
	}
	// Sentinels do not match each other.
	if errors.Is(ErrNotFound, ErrExists) {
		t.Error("sentinels match each other")
	}
	// Each sentinel's text is the library's description of its status.
	for i, code := range codes {
		if want := "dbkv: " + statusText(code); all[i].Error() != want {
			t.Errorf("sentinel for %d says %q, library says %q", code, all[i].Error(), want)
		}
	}
	if got := (&Error{Code: -2, Op: "set", Message: "too large: key is 70000 bytes"}).Error(); got != "dbkv: set: too large: key is 70000 bytes" {
		t.Errorf("Error() = %q", got)
	}
	if got := newError("get", 1, "").Error(); got != "dbkv: get: not found" {
		t.Errorf("outcome Error() = %q", got)
	}
	if got := statusText(42); got != "unknown status 42" {
		t.Errorf("statusText(42) = %q", got)
	}
}

func TestTTLRounding(t *testing.T) {
	for _, c := range []struct {
		in   time.Duration
		want uint64
	}{{0, 0}, {1, 1}, {time.Millisecond, 1}, {time.Millisecond + 1, 2}, {1500 * time.Microsecond, 2}, {time.Hour, 3600000}} {
		got, err := ttlMillis("x", c.in)
		if err != nil || uint64(got) != c.want {
			t.Errorf("ttlMillis(%v) = %d, %v; want %d", c.in, got, err, c.want)
		}
	}
}
