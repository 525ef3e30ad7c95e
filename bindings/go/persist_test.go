package dbkv

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Tests of a database with a data directory: reopening, the directory
// lock, Sync, Snapshot and the statistics they leave.

func TestReopenKeepsData(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "db")
	opts := Options{DataDir: dir, SyncMode: SyncAlways}
	db, err := Open(opts)
	mustNil(t, err)
	mustNil(t, db.Set(b("plain"), b("value"), 0))
	mustNil(t, db.Set(b("expiring"), b("soon"), time.Hour))
	mustNil(t, db.Set(b("empty"), nil, 0))
	_, err = db.Incr(b("counter"), 41)
	mustNil(t, err)
	_, err = db.Incr(b("counter"), 1)
	mustNil(t, err)
	mustNil(t, db.MSet([][]byte{b("m1"), b("m2")}, [][]byte{b("one"), b("two")}, 0))
	mustNil(t, db.Set(b("gone"), b("x"), 0))
	mustNil(t, db.Delete(b("gone")))
	fence1, err := db.Lock(b("lock"), b("a"), time.Hour)
	mustNil(t, err)
	mustNil(t, db.Close())

	db = openDB(t, opts)
	for k, want := range map[string]string{"plain": "value", "expiring": "soon", "counter": "42", "m1": "one", "m2": "two", "lock": "a"} {
		if v, err := db.GetString(k); err != nil || v != want {
			t.Errorf("after reopen %s = %q, %v; want %q", k, v, err, want)
		}
	}
	if v, err := db.Get(b("empty")); err != nil || v == nil || len(v) != 0 {
		t.Errorf("after reopen empty = %#v, %v", v, err)
	}
	_, err = db.Get(b("gone"))
	wantErr(t, err, ErrNotFound, "get")
	if d, err := db.TTL(b("expiring")); err != nil || d <= 59*time.Minute || d > time.Hour {
		t.Errorf("TTL after reopen = %v, %v; want just under an hour", d, err)
	}
	if d, _ := db.TTL(b("plain")); d != NoExpiry {
		t.Errorf("TTL of a plain key after reopen = %v", d)
	}
	if n, _ := db.Count(); n != 7 {
		t.Errorf("Count after reopen = %d, want 7", n)
	}
	// The lock survived, and tokens keep increasing across the restart.
	_, err = db.Lock(b("lock"), b("b"), time.Minute)
	wantErr(t, err, ErrLocked, "lock")
	mustNil(t, db.Unlock(b("lock"), b("a")))
	fence2, err := db.Lock(b("lock"), b("b"), time.Minute)
	mustNil(t, err)
	if fence2 <= fence1 {
		t.Errorf("fence after reopen %d, before %d: tokens must increase across restarts", fence2, fence1)
	}
}

// A data directory is open in one DB at a time.
func TestDataDirBusy(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "db")
	db, err := Open(Options{DataDir: dir})
	mustNil(t, err)
	_, err = Open(Options{DataDir: dir})
	e := wantErr(t, err, ErrBusy, "open")
	if e.Message == "" || e.Message == statusText(codeBusy) {
		t.Errorf("ErrBusy carries no detail: %q", e.Message)
	}
	mustNil(t, db.Close())
	// Released by Close.
	db = openDB(t, Options{DataDir: dir})
	mustNil(t, db.Set(b("k"), b("v"), 0))
}

// An unusable data directory fails with ErrIO and a message naming it:
// one under a regular file, one whose parent is missing (dbkv creates the
// directory, not its parents, so a typo does not create a tree).
func TestOpenDataDirUnusable(t *testing.T) {
	file := filepath.Join(t.TempDir(), "plain-file")
	mustNil(t, os.WriteFile(file, nil, 0o644))
	_, err := Open(Options{DataDir: filepath.Join(file, "db")})
	wantErr(t, err, ErrIO, "open", "plain-file")

	missing := filepath.Join(t.TempDir(), "no-such-parent", "db")
	_, err = Open(Options{DataDir: missing})
	wantErr(t, err, ErrIO, "open", "no-such-parent")
	if _, statErr := os.Stat(filepath.Dir(missing)); !os.IsNotExist(statErr) {
		t.Errorf("Open created the missing parent %s", filepath.Dir(missing))
	}
}

func TestSyncSnapshotAndStats(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "db")
	// No background syncs or snapshots: every figure below comes from the
	// calls the test makes.
	opts := Options{DataDir: dir, SyncMode: SyncNone, SnapshotInterval: -1, SnapshotOps: -1, SnapshotKeep: 1}
	db, err := Open(opts)
	mustNil(t, err)
	const n = 100
	for i := range n {
		mustNil(t, db.SetString(fmt.Sprint("k", i), "v", 0))
	}
	mustNil(t, db.Sync())
	st, err := db.Stats()
	mustNil(t, err)
	if st.Keys != n || st.WALRecords < n || st.WALBytes == 0 || st.Fsyncs == 0 {
		t.Errorf("stats after %d writes and Sync = %+v", n, st)
	}
	if st.LastLSN == 0 || st.DurableLSN < st.LastLSN {
		t.Errorf("after Sync durable LSN %d < last LSN %d", st.DurableLSN, st.LastLSN)
	}
	if st.SnapshotsTaken != 0 || st.Failed {
		t.Errorf("stats before Snapshot = %+v", st)
	}
	mustNil(t, db.Snapshot())
	st, err = db.Stats()
	mustNil(t, err)
	if st.SnapshotsTaken != 1 {
		t.Errorf("SnapshotsTaken = %d after one Snapshot", st.SnapshotsTaken)
	}
	mustNil(t, db.Close())

	db = openDB(t, opts)
	st, err = db.Stats()
	mustNil(t, err)
	if !st.RecoverySnapshotLoaded || st.RecoverySnapshotEntries != n || st.Keys != n {
		t.Errorf("stats after reopening from a snapshot = %+v", st)
	}
	if st.RecoveryCorruptRecords != 0 || st.RecoveryBytesDropped != 0 {
		t.Errorf("a clean reopen reports damage: %+v", st)
	}
}

// Writes after the last snapshot come back by WAL replay, and the
// statistics say so.
func TestStatsAfterReopenReplay(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "db")
	opts := Options{DataDir: dir, SyncMode: SyncInterval, SyncInterval: 10 * time.Millisecond,
		SnapshotInterval: -1, SnapshotOps: -1, RecoveryMode: RecoveryAbsolute}
	db, err := Open(opts)
	mustNil(t, err)
	const n = 50
	for range n {
		_, err := db.Incr(b("c"), 1)
		mustNil(t, err)
	}
	mustNil(t, db.Close())

	db = openDB(t, opts)
	if v, _ := db.GetString("c"); v != fmt.Sprint(n) {
		t.Errorf("counter after replay = %q, want %d", v, n)
	}
	st, err := db.Stats()
	mustNil(t, err)
	// Snapshots are off and Close does not take one: all n writes come back
	// from the WAL.
	if st.RecoveryWALRecords < n || st.Keys != 1 {
		t.Errorf("stats after replay = %+v", st)
	}
}

// countFiles counts the files in dir whose names contain part.
func countFiles(t *testing.T, dir, part string) int {
	t.Helper()
	entries, err := os.ReadDir(dir)
	mustNil(t, err)
	n := 0
	for _, e := range entries {
		if strings.Contains(e.Name(), part) {
			n++
		}
	}
	return n
}

// The sync modes reach the library as the modes they name: SyncAlways makes
// each write durable before it returns, SyncNone leaves it to Sync, and
// SyncInterval fsyncs on its own within the interval.
func TestSyncModes(t *testing.T) {
	noSnapshots := func(o Options) Options {
		o.SnapshotInterval, o.SnapshotOps = -1, -1
		return o
	}
	write := func(db *DB) Stats {
		for i := range 20 {
			mustNil(t, db.SetString(fmt.Sprint("k", i), "v", 0))
		}
		st, err := db.Stats()
		mustNil(t, err)
		return st
	}

	always := openDB(t, noSnapshots(Options{DataDir: filepath.Join(t.TempDir(), "db"), SyncMode: SyncAlways}))
	if st := write(always); st.DurableLSN != st.LastLSN || st.Fsyncs == 0 {
		t.Errorf("SyncAlways: durable LSN %d, last %d, %d fsyncs after writes", st.DurableLSN, st.LastLSN, st.Fsyncs)
	}

	none := openDB(t, noSnapshots(Options{DataDir: filepath.Join(t.TempDir(), "db"), SyncMode: SyncNone, SyncInterval: time.Millisecond}))
	write(none)
	time.Sleep(50 * time.Millisecond) // fifty intervals, were they used
	if st, _ := none.Stats(); st.Fsyncs != 0 || st.DurableLSN >= st.LastLSN {
		t.Errorf("SyncNone: %d fsyncs, durable LSN %d of %d before Sync", st.Fsyncs, st.DurableLSN, st.LastLSN)
	}
	mustNil(t, none.Sync())
	if st, _ := none.Stats(); st.DurableLSN != st.LastLSN {
		t.Errorf("SyncNone: durable LSN %d of %d after Sync", st.DurableLSN, st.LastLSN)
	}

	interval := openDB(t, noSnapshots(Options{DataDir: filepath.Join(t.TempDir(), "db"), SyncMode: SyncInterval, SyncInterval: 5 * time.Millisecond}))
	write(interval)
	deadline := time.Now().Add(5 * time.Second)
	for {
		st, _ := interval.Stats()
		if st.DurableLSN == st.LastLSN && st.Fsyncs > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("SyncInterval(5ms): still not durable after 5s: %+v", st)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// WALSegmentBytes, SnapshotKeep and SnapshotOps reach the library: small
// segments make several WAL files, keep=1 leaves one snapshot, and a
// snapshot follows SnapshotOps writes without being asked for.
func TestFileOptions(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "db")
	db := openDB(t, Options{DataDir: dir, WALSegmentBytes: 4096, SnapshotKeep: 1, SnapshotInterval: -1, SnapshotOps: -1})
	value := strings.Repeat("v", 100)
	for i := range 200 {
		mustNil(t, db.SetString(fmt.Sprint("k", i), value, 0))
	}
	mustNil(t, db.Sync())
	if n := countFiles(t, dir, "wal"); n < 2 {
		t.Errorf("%d WAL files after 20 KiB of writes with 4 KiB segments", n)
	}
	mustNil(t, db.Snapshot())
	mustNil(t, db.SetString("x", "y", 0))
	mustNil(t, db.Snapshot())
	if n := countFiles(t, dir, "snap"); n != 1 {
		t.Errorf("%d snapshot files with SnapshotKeep 1", n)
	}

	auto := openDB(t, Options{DataDir: filepath.Join(t.TempDir(), "db"), SnapshotOps: 10, SnapshotInterval: -1})
	for i := range 50 {
		mustNil(t, auto.SetString(fmt.Sprint("k", i), "v", 0))
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		st, _ := auto.Stats()
		if st.SnapshotsTaken > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no snapshot 5s after 50 writes with SnapshotOps 10: %+v", st)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A damaged WAL: RecoveryAbsolute refuses it with ErrCorruption naming the
// file, RecoverySkipCorrupted and RecoveryPointInTime open and report it.
func TestRecoveryModes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "db")
	opts := Options{DataDir: dir, SyncMode: SyncAlways, SnapshotInterval: -1, SnapshotOps: -1}
	db, err := Open(opts)
	mustNil(t, err)
	for i := range 100 {
		mustNil(t, db.SetString(fmt.Sprintf("key-%03d", i), strings.Repeat("v", 50), 0))
	}
	mustNil(t, db.Close())

	entries, err := os.ReadDir(dir)
	mustNil(t, err)
	var wal string
	for _, e := range entries {
		if strings.Contains(e.Name(), "wal") {
			wal = filepath.Join(dir, e.Name())
		}
	}
	if wal == "" {
		t.Fatalf("no WAL file in %v", entries)
	}
	data, err := os.ReadFile(wal)
	mustNil(t, err)
	data[len(data)/2] ^= 0xff
	mustNil(t, os.WriteFile(wal, data, 0o644))

	opts.RecoveryMode = RecoveryAbsolute
	_, err = Open(opts)
	wantErr(t, err, ErrCorruption, "open", filepath.Base(wal))

	opts.RecoveryMode = RecoverySkipCorrupted
	db, err = Open(opts)
	mustNil(t, err)
	st, err := db.Stats()
	mustNil(t, err)
	if st.RecoveryCorruptRecords == 0 || st.Keys == 0 || st.Keys >= 100 {
		t.Errorf("SkipCorrupted: %+v", st)
	}
	mustNil(t, db.Close())

	opts.RecoveryMode = RecoveryPointInTime
	db = openDB(t, opts)
	st, err = db.Stats()
	mustNil(t, err)
	if st.Keys == 0 || st.Keys >= 100 {
		t.Errorf("PointInTime after damage: %+v", st)
	}
}
