// The dbkv quick start in Go: a task result with a TTL, a chord counter, a
// lock with a fencing token, all in a data directory that survives
// restarts. It does what examples/c/quickstart.c does.
//
//	make lib
//	cd examples/go && PKG_CONFIG_PATH=$PWD/../../target/release go run . [data-dir]
//
// (make test-go runs it too.) The data directory defaults to
// $TMPDIR/dbkv-go-quickstart; run it twice to see the counter and the
// fencing token carry on from the previous run.
package main

import (
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	dbkv "github.com/dbkv/dbkv/bindings/go"
)

func main() {
	log.SetFlags(0)
	dir := filepath.Join(os.TempDir(), "dbkv-go-quickstart")
	if len(os.Args) > 1 {
		dir = os.Args[1]
	}
	db, err := dbkv.Open(dbkv.Options{DataDir: dir, SyncMode: dbkv.SyncInterval})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("dbkv %s, data in %s\n", dbkv.Version(), dir)

	// A task result that expires in an hour.
	if err := db.SetString("result:task-42", `{"status":"SUCCESS"}`, time.Hour); err != nil {
		log.Fatal(err)
	}
	result, err := db.GetString("result:task-42")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("result:task-42 = %s\n", result)
	ttl, err := db.TTL([]byte("result:task-42"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("expires in %d ms\n", ttl.Milliseconds())

	// A chord counter: each finished part increments it.
	var parts int64
	for range 3 {
		if parts, err = db.Incr([]byte("chord:7:done"), 1); err != nil {
			log.Fatal(err)
		}
	}
	fmt.Printf("chord:7:done = %d (counts across runs: the data directory keeps it)\n", parts)

	// A lock with a fencing token; a second owner is refused.
	fence, err := db.Lock([]byte("lock:report"), []byte("worker-a"), 30*time.Second)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("worker-a holds lock:report with fencing token %d\n", fence)
	_, err = db.Lock([]byte("lock:report"), []byte("worker-b"), 30*time.Second)
	if !errors.Is(err, dbkv.ErrLocked) {
		log.Fatalf("worker-b should have been refused, got %v", err)
	}
	fmt.Printf("worker-b tries: %v\n", err)
	if err := db.Unlock([]byte("lock:report"), []byte("worker-a")); err != nil {
		log.Fatal(err)
	}

	// Errors name the problem.
	_, err = db.Incr([]byte("result:task-42"), 1)
	var e *dbkv.Error
	if !errors.As(err, &e) || !errors.Is(err, dbkv.ErrNotInteger) {
		log.Fatalf("incr on a JSON value should fail with ErrNotInteger, got %v", err)
	}
	fmt.Printf("incr on a JSON value: %v (code %d, message %q)\n", err, e.Code, e.Message)

	if err := db.Sync(); err != nil {
		log.Fatal(err)
	}
	if err := db.Close(); err != nil {
		log.Fatal(err)
	}
}
