package dbkv

import (
	"bytes"
	"errors"
	"testing"
)

func TestGetInto(t *testing.T) {
	db := openDB(t, Options{})
	big := bytes.Repeat([]byte("v"), 10_000)
	mustSet := func(k string, v []byte) {
		if err := db.Set([]byte(k), v, 0); err != nil {
			t.Fatal(err)
		}
	}
	mustSet("small", []byte("abc"))
	mustSet("empty", nil)
	mustSet("big", big)

	buf := make([]byte, 0, 64)
	v, err := db.GetInto([]byte("small"), buf)
	if err != nil || string(v) != "abc" || &v[0] != &buf[:1][0] {
		t.Fatalf("small: %q %v (same array: %v)", v, err, err == nil && &v[0] == &buf[:1][0])
	}
	if cap(v) != 64 {
		t.Fatalf("the result keeps dst's capacity for reuse: cap %d", cap(v))
	}
	v, err = db.GetInto([]byte("empty"), buf)
	if err != nil || v == nil || len(v) != 0 {
		t.Fatalf("empty: %q (nil %v) %v", v, v == nil, err)
	}
	v, err = db.GetInto([]byte("big"), buf)
	if err != nil || !bytes.Equal(v, big) {
		t.Fatalf("big: %d bytes %v", len(v), err)
	}
	v, err = db.GetInto([]byte("small"), nil)
	if err != nil || string(v) != "abc" {
		t.Fatalf("nil dst: %q %v", v, err)
	}
	if _, err = db.GetInto([]byte("missing"), buf); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing: %v", err)
	}
	if _, err = db.GetInto(nil, buf); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("empty key: %v", err)
	}
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := db.GetInto([]byte("small"), buf); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("GetInto into a large enough buffer allocated %.1f times per call", allocs)
	}
	db.Close()
	if _, err = db.GetInto([]byte("small"), buf); !errors.Is(err, ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
}
