package dbkv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// records collects slog records; safe for the pump goroutine.
type records struct {
	mu    sync.Mutex
	level slog.Level
	got   []slog.Record
}

func (r *records) Enabled(_ context.Context, l slog.Level) bool { return l >= r.level }
func (r *records) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, rec)
	return nil
}
func (r *records) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *records) WithGroup(string) slog.Handler      { return r }

// find returns the first message at level containing every part.
func (r *records) find(level slog.Level, parts ...string) (string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rec := range r.got {
		ok := rec.Level == level
		for _, p := range parts {
			ok = ok && strings.Contains(rec.Message, p)
		}
		if ok {
			return rec.Message, true
		}
	}
	return "", false
}

func (r *records) dump() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b strings.Builder
	for _, rec := range r.got {
		fmt.Fprintf(&b, "%s %s\n", rec.Level, rec.Message)
	}
	return b.String()
}

// damagedDir writes 100 keys and flips a byte near the end of the newest
// WAL segment; it returns the directory and the segment's name.
func damagedDir(t *testing.T) (string, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "db")
	db := openDB(t, Options{DataDir: dir})
	for i := range 100 {
		mustNil(t, db.Set(b(fmt.Sprintf("key%03d", i)), b("value-value-value"), 0))
	}
	mustNil(t, db.Close())
	names, err := filepath.Glob(filepath.Join(dir, "wal-*.log"))
	mustNil(t, err)
	sort.Strings(names)
	seg := names[len(names)-1]
	data, err := os.ReadFile(seg)
	mustNil(t, err)
	data[len(data)-10] ^= 0x40
	mustNil(t, os.WriteFile(seg, data, 0o644))
	return dir, filepath.Base(seg)
}

func TestLoggerReportsWhatADamagedOpenCut(t *testing.T) {
	dir, seg := damagedDir(t)
	rec := &records{level: slog.LevelDebug}

	// ABSOLUTE refuses; the refusal is logged before Open returns.
	_, err := Open(Options{DataDir: dir, RecoveryMode: RecoveryAbsolute, Logger: slog.New(rec)})
	if !errors.Is(err, ErrCorruption) {
		t.Fatalf("absolute open: %v, want ErrCorruption", err)
	}
	for _, want := range []string{seg, "at offset", "POINT_IN_TIME to cut", "dbkv check --repair"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("absolute open error %q lacks %q", err, want)
		}
	}
	if _, ok := rec.find(slog.LevelError, "recovery failed"); !ok {
		t.Errorf("no Error record for the refused open:\n%s", rec.dump())
	}

	db, err := Open(Options{DataDir: dir, Logger: slog.New(rec)})
	mustNil(t, err)
	mustNil(t, db.Close()) // Close returns after the last message is delivered
	if _, ok := rec.find(slog.LevelWarn, seg, "at offset", "cut the last"); !ok {
		t.Errorf("no Warn record naming %s and the cut:\n%s", seg, rec.dump())
	}
	if _, ok := rec.find(slog.LevelInfo, "recovered", "damaged record"); !ok {
		t.Errorf("no Info recovery summary:\n%s", rec.dump())
	}
	if _, ok := rec.find(slog.LevelInfo, "snapshot written"); !ok {
		t.Errorf("no Info record for the snapshot after the repair:\n%s", rec.dump())
	}
}

func TestLoggerLevelFollowsTheHandler(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "db")
	rec := &records{level: slog.LevelWarn}
	db := openDB(t, Options{DataDir: dir, Logger: slog.New(rec)})
	mustNil(t, db.Set(b("k"), b("v"), 0))
	mustNil(t, db.Snapshot())
	mustNil(t, db.Close())
	if d := rec.dump(); d != "" {
		t.Errorf("a Warn-level logger got records from a clean open:\n%s", d)
	}
}

func TestStatsMetrics(t *testing.T) {
	db := openDB(t, Options{DataDir: filepath.Join(t.TempDir(), "db"), SyncMode: SyncAlways})
	defer db.Close()
	mustNil(t, db.Set(b("a"), b("1"), 0))
	mustNil(t, db.Set(b("b"), b("2"), 0))
	// Exists, not Get: a Get whose value outgrows the binding's size
	// estimate is two library reads.
	if _, err := db.Exists(b("a")); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Incr(b("n"), 1); err != nil {
		t.Fatal(err)
	}
	mustNil(t, db.Delete(b("a")))
	before := time.Now().Add(-time.Second)
	mustNil(t, db.Snapshot())
	st, err := db.Stats()
	mustNil(t, err)
	want := OpCounts{Read: 1, Write: 2, Delete: 1, Incr: 1}
	if st.Ops != want {
		t.Errorf("Ops = %+v, want %+v", st.Ops, want)
	}
	if st.Fsyncs < 4 || st.FsyncMax < st.FsyncP99 || st.FsyncP99 < st.FsyncP50 || st.FsyncTotal < st.FsyncMax {
		t.Errorf("fsync figures out of order: %+v", st)
	}
	if st.LastSnapshotBytes == 0 || st.LastSnapshotTime.Before(before) || st.WALSegments == 0 {
		t.Errorf("snapshot/WAL figures: bytes %d time %v segments %d", st.LastSnapshotBytes, st.LastSnapshotTime, st.WALSegments)
	}
}

// Options.Logger takes any *slog.Logger; the library's messages arrive
// with source=dbkv.
func ExampleOptions_logger() {
	dir, _ := os.MkdirTemp("", "dbkv-example-")
	defer os.RemoveAll(dir)
	var out bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{
		// Keep the example's output stable: drop the time and the figures.
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			if a.Key == slog.MessageKey {
				return slog.String(a.Key, strings.Fields(a.Value.String())[0])
			}
			return a
		},
	}))
	db, err := Open(Options{DataDir: filepath.Join(dir, "db"), Logger: logger})
	if err != nil {
		fmt.Println(err)
		return
	}
	db.Close()
	fmt.Print(out.String())
	// Output: level=INFO msg=recovered source=dbkv
}
