package dbkv

import (
	"errors"
	"path/filepath"
	"testing"
	"time"
)

// Fenced writes: SetFenced and DeleteFenced change a key only while the
// lock is held with exactly the caller's fencing token.

func wantValue(t testing.TB, db *DB, key, want string) {
	t.Helper()
	if v, err := db.GetString(key); err != nil || v != want {
		t.Fatalf("%s = %q, %v; want %q", key, v, err, want)
	}
}

func TestSetFenced(t *testing.T) {
	db := openDB(t, Options{})
	t1, err := db.Lock(b("lock"), b("a"), time.Minute)
	mustNil(t, err)
	mustNil(t, db.SetFenced(b("lock"), t1, b("res"), b("v1"), 0))
	wantValue(t, db, "res", "v1")
	// As Set: the value and its TTL are replaced.
	mustNil(t, db.SetFenced(b("lock"), t1, b("res"), b("v2"), time.Hour))
	if d, _ := db.TTL(b("res")); d <= 59*time.Minute || d > time.Hour {
		t.Fatalf("TTL after SetFenced(1h) = %v", d)
	}
	mustNil(t, db.SetFenced(b("lock"), t1, b("empty"), nil, 0))
	if v, err := db.Get(b("empty")); err != nil || v == nil || len(v) != 0 {
		t.Fatalf("empty = %#v, %v", v, err)
	}
	// The lock is left alone.
	wantValue(t, db, "lock", "a")

	// Relocking issues a new token; the old one is stale from then on.
	t2, err := db.Lock(b("lock"), b("a"), time.Minute)
	mustNil(t, err)
	e := wantErr(t, db.SetFenced(b("lock"), t1, b("res"), b("old"), 0), ErrStaleToken, "set_fenced", "stale fencing token")
	if e.Code != codeStaleToken || errors.Is(e, ErrLocked) || errors.Is(e, ErrNotFound) {
		t.Fatalf("stale error %#v", e)
	}
	wantValue(t, db, "res", "v2")
	// Only the exact token of this very lock counts.
	for _, c := range []struct {
		lock  string
		token uint64
	}{{"lock", 0}, {"lock", t2 + 1}, {"lock", ^uint64(0)}, {"other", t2}} {
		wantErr(t, db.SetFenced(b(c.lock), c.token, b("res"), b("x"), 0), ErrStaleToken, "set_fenced")
	}
	wantValue(t, db, "res", "v2")
	mustNil(t, db.SetFenced(b("lock"), t2, b("res"), b("v3"), 0))
	wantValue(t, db, "res", "v3")

	// Unlocked: stale, even for the owner's latest token.
	mustNil(t, db.Unlock(b("lock"), b("a")))
	wantErr(t, db.SetFenced(b("lock"), t2, b("res"), b("x"), 0), ErrStaleToken, "set_fenced")
	wantValue(t, db, "res", "v3")
}

func TestDeleteFenced(t *testing.T) {
	db := openDB(t, Options{})
	t1, err := db.Lock(b("lock"), b("a"), time.Minute)
	mustNil(t, err)
	mustNil(t, db.Set(b("res"), b("v"), 0))
	mustNil(t, db.DeleteFenced(b("lock"), t1, b("res")))
	if ok, _ := db.Exists(b("res")); ok {
		t.Fatal("res exists after DeleteFenced")
	}
	wantErr(t, db.DeleteFenced(b("lock"), t1, b("res")), ErrNotFound, "delete_fenced", "not found")

	t2, err := db.Lock(b("lock"), b("a"), time.Minute)
	mustNil(t, err)
	mustNil(t, db.Set(b("res"), b("v"), 0))
	wantErr(t, db.DeleteFenced(b("lock"), t1, b("res")), ErrStaleToken, "delete_fenced")
	wantErr(t, db.DeleteFenced(b("lock"), t1, b("missing")), ErrStaleToken, "delete_fenced")
	wantValue(t, db, "res", "v")

	// Deleting the lock key itself releases the lock.
	mustNil(t, db.DeleteFenced(b("lock"), t2, b("lock")))
	if _, err := db.Lock(b("lock"), b("b"), time.Minute); err != nil {
		t.Fatalf("Lock after a fenced delete of the lock: %v", err)
	}
}

// Holder A stalls past its lease, B takes the lock and writes, then A wakes
// up and writes as if it still held the lock: dbkv refuses A.
func TestFencedPausedHolder(t *testing.T) {
	db := openDB(t, Options{})
	lock, res := b("lock:job"), b("job:result")
	// No write by A inside its 50ms lease: on a loaded machine the next
	// call could already be past it. TestSetFenced covers that.
	t1, err := db.Lock(lock, b("A"), 50*time.Millisecond)
	mustNil(t, err)

	time.Sleep(150 * time.Millisecond) // A is paused; its lease runs out
	wantErr(t, db.SetFenced(lock, t1, res, b("A-late"), 0), ErrStaleToken, "set_fenced")

	t2, err := db.Lock(lock, b("B"), time.Minute)
	mustNil(t, err)
	if t2 <= t1 {
		t.Fatalf("B's token %d is not above A's %d", t2, t1)
	}
	mustNil(t, db.SetFenced(lock, t2, res, b("B"), 0))

	wantErr(t, db.SetFenced(lock, t1, res, b("A"), 0), ErrStaleToken, "set_fenced")
	wantErr(t, db.DeleteFenced(lock, t1, res), ErrStaleToken, "delete_fenced")
	wantValue(t, db, "job:result", "B")
	wantValue(t, db, "lock:job", "B")
}

// Bad arguments fail as they do for Set and Delete, before the token is
// looked at, and change nothing.
func TestFencedBadArguments(t *testing.T) {
	db := openDB(t, Options{MaxValueBytes: 8})
	tok, err := db.Lock(b("lock"), b("a"), time.Minute)
	mustNil(t, err)
	mustNil(t, db.SetFenced(b("lock"), tok, b("res"), b("keep"), 0))

	wantErr(t, db.SetFenced(nil, tok, b("res"), b("x"), 0), ErrInvalidArgument, "set_fenced", "key is empty")
	wantErr(t, db.SetFenced(b("lock"), tok, nil, b("x"), 0), ErrInvalidArgument, "set_fenced", "key is empty")
	wantErr(t, db.SetFenced(b("lock"), tok, b("res"), b("x"), -time.Second), ErrInvalidArgument, "set_fenced", "negative")
	wantErr(t, db.SetFenced(make([]byte, 65536), tok, b("res"), b("x"), 0), ErrTooLarge, "set_fenced", "key is 65536 bytes")
	wantErr(t, db.SetFenced(b("lock"), tok, b("res"), b("123456789"), 0), ErrTooLarge, "set_fenced", "value is 9 bytes")
	wantErr(t, db.SetFenced(b("lock"), tok+1, b("res"), b("123456789"), 0), ErrTooLarge, "set_fenced")
	wantErr(t, db.DeleteFenced(nil, tok, b("res")), ErrInvalidArgument, "delete_fenced", "key is empty")
	wantErr(t, db.DeleteFenced(b("lock"), tok, nil), ErrInvalidArgument, "delete_fenced", "key is empty")
	wantErr(t, db.DeleteFenced(b("lock"), tok, make([]byte, 65536)), ErrTooLarge, "delete_fenced", "key is 65536 bytes")

	wantValue(t, db, "res", "keep")
	if n, _ := db.Count(); n != 2 {
		t.Fatalf("Count = %d, want 2", n)
	}
	mustNil(t, db.SetFenced(b("lock"), tok, b("res"), b("after"), 0))
}

// A fenced write is logged like any other, and the token it was checked
// against survives a reopen (WAL replay, then a snapshot).
func TestFencedWritesSurviveReopen(t *testing.T) {
	opts := Options{DataDir: filepath.Join(t.TempDir(), "db"), SyncMode: SyncAlways}
	db, err := Open(opts)
	mustNil(t, err)
	t1, err := db.Lock(b("lock"), b("a"), time.Hour)
	mustNil(t, err)
	mustNil(t, db.SetFenced(b("lock"), t1, b("res"), b("v1"), 0))
	wantErr(t, db.SetFenced(b("lock"), t1+1, b("never"), b("x"), 0), ErrStaleToken, "set_fenced")
	mustNil(t, db.Close())

	db, err = Open(opts)
	mustNil(t, err)
	wantValue(t, db, "res", "v1")
	if ok, _ := db.Exists(b("never")); ok {
		t.Fatal("a refused fenced write came back after reopen")
	}
	mustNil(t, db.SetFenced(b("lock"), t1, b("res"), b("v2"), 0))
	t2, err := db.Lock(b("lock"), b("a"), time.Hour)
	mustNil(t, err)
	mustNil(t, db.Snapshot())
	mustNil(t, db.Close())

	db = openDB(t, opts)
	wantValue(t, db, "res", "v2")
	wantErr(t, db.SetFenced(b("lock"), t1, b("res"), b("stale"), 0), ErrStaleToken, "set_fenced")
	mustNil(t, db.SetFenced(b("lock"), t2, b("res"), b("v3"), 0))
	wantValue(t, db, "res", "v3")
}
