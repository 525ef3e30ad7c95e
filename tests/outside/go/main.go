// Outside-user check (tests/outside/run.sh): a module of its own that
// requires github.com/dbkv/dbkv/bindings/go through a replace directive and
// links the installed libdbkv through pkg-config, following the recipe in
// bindings/go/README.md. Writes a value, one with a TTL, a counter and a
// lock into DATA_DIR, closes, reopens and checks they came back. Prints
// "ok go" and exits 0, or names the mismatch and exits 1.
//
//	usage: hello DATA_DIR
package main

import (
	"errors"
	"fmt"
	"os"
	"time"

	dbkv "github.com/dbkv/dbkv/bindings/go"
)

var failures int

func check(what string, ok bool) {
	if !ok {
		fmt.Fprintf(os.Stderr, "go: mismatch: %s\n", what)
		failures++
	}
}

func must(what string, err error) {
	if err != nil {
		fmt.Fprintf(os.Stderr, "go: %s: %v\n", what, err)
		os.Exit(1)
	}
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: hello DATA_DIR")
		os.Exit(2)
	}
	dir := os.Args[1]

	db, err := dbkv.Open(dbkv.Options{DataDir: dir})
	must("open", err)
	must("set greeting", db.SetString("greeting", "hello from go", 0))
	must("set session", db.SetString("session", "user-7", time.Hour))
	n, err := db.Incr([]byte("counter"), 1)
	must("incr", err)
	n, err = db.Incr([]byte("counter"), 41)
	must("incr", err)
	check("counter == 42 after incr 1, 41", n == 42)
	fence, err := db.Lock([]byte("lock:job"), []byte("worker-a"), time.Minute)
	must("lock", err)
	check("fence > 0", fence > 0)
	must("close", db.Close())

	db, err = dbkv.Open(dbkv.Options{DataDir: dir})
	must("reopen", err)
	v, err := db.GetString("greeting")
	check(fmt.Sprintf("greeting came back (got %q, %v)", v, err), err == nil && v == "hello from go")
	v, err = db.GetString("session")
	check(fmt.Sprintf("session came back (got %q, %v)", v, err), err == nil && v == "user-7")
	ttl, err := db.TTL([]byte("session"))
	check(fmt.Sprintf("session TTL in (0, 1h] (got %v, %v)", ttl, err), err == nil && ttl > 0 && ttl <= time.Hour)
	v, err = db.GetString("counter")
	check(fmt.Sprintf("counter came back as 42 (got %q, %v)", v, err), err == nil && v == "42")
	n, err = db.Incr([]byte("counter"), 1)
	check(fmt.Sprintf("counter == 43 (got %d, %v)", n, err), err == nil && n == 43)
	v, err = db.GetString("lock:job")
	check(fmt.Sprintf("lock:job held by worker-a (got %q, %v)", v, err), err == nil && v == "worker-a")
	_, err = db.Lock([]byte("lock:job"), []byte("worker-b"), time.Second)
	check(fmt.Sprintf("worker-b refused with ErrLocked (got %v)", err), errors.Is(err, dbkv.ErrLocked))
	fence2, err := db.Lock([]byte("lock:job"), []byte("worker-a"), time.Second)
	check(fmt.Sprintf("fencing token grew across the restart (%d then %d, %v)", fence, fence2, err), err == nil && fence2 > fence)
	must("unlock", db.Unlock([]byte("lock:job"), []byte("worker-a")))
	count, err := db.Count()
	check(fmt.Sprintf("3 keys left (got %d, %v)", count, err), err == nil && count == 3)
	must("close", db.Close())

	if failures != 0 {
		fmt.Fprintf(os.Stderr, "go: %d check(s) failed\n", failures)
		os.Exit(1)
	}
	fmt.Printf("ok go (libdbkv %s)\n", dbkv.Version())
}
