package dbkv

import (
	"errors"
	"strings"
	"testing"
)

// openDB opens a database that the test closes when it ends.
func openDB(t testing.TB, opts Options) *DB {
	t.Helper()
	db, err := Open(opts)
	if err != nil {
		t.Fatalf("Open(%+v): %v", opts, err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return db
}

// wantErr fails the test unless err is an *Error matching sentinel, with
// the given Op and a Message containing every one of substrs.
func wantErr(t testing.TB, err error, sentinel error, op string, substrs ...string) *Error {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want %v", sentinel)
	}
	if !errors.Is(err, sentinel) {
		t.Fatalf("error %q (%#v) does not match %v", err, err, sentinel)
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %q is a %T, not an *Error", err, err)
	}
	if e.Op != op {
		t.Errorf("error %q: Op = %q, want %q", err, e.Op, op)
	}
	for _, s := range substrs {
		if !strings.Contains(e.Message, s) {
			t.Errorf("error %q: Message %q does not contain %q", err, e.Message, s)
		}
	}
	return e
}

func mustNil(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func b(s string) []byte { return []byte(s) }
