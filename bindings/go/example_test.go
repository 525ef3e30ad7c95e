package dbkv_test

import (
	"errors"
	"fmt"
	"log"
	"slices"
	"time"

	dbkv "github.com/dbkv/dbkv/bindings/go"
)

// The quick start: open, write, read, handle a missing key.
func Example() {
	// Zero Options: in memory. Set DataDir to keep the data across restarts.
	db, err := dbkv.Open(dbkv.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()

	if err := db.Set([]byte("result:task-42"), []byte(`{"status":"SUCCESS"}`), time.Hour); err != nil {
		log.Fatal(err)
	}
	v, err := db.Get([]byte("result:task-42"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("result:task-42 = %s\n", v)

	_, err = db.Get([]byte("result:task-43"))
	fmt.Println("missing:", errors.Is(err, dbkv.ErrNotFound))

	// Errors carry dbkv's own message for the call that failed.
	_, err = db.Incr([]byte("result:task-42"), 1)
	fmt.Println(err)
	// Output:
	// result:task-42 = {"status":"SUCCESS"}
	// missing: true
	// dbkv: incr: key "result:task-42": value is not a base-10 signed 64-bit integer
}

// Keys can expire; TTL reports the time left, NoExpiry for none.
func ExampleDB_TTL() {
	db, err := dbkv.Open(dbkv.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()

	db.SetString("session:abc", "user-7", 30*time.Minute)
	ttl, _ := db.TTL([]byte("session:abc"))
	fmt.Println("expires in about", ttl.Round(time.Minute))

	db.Expire([]byte("session:abc"), 2*time.Hour) // slide the expiry
	ttl, _ = db.TTL([]byte("session:abc"))
	fmt.Println("extended to about", ttl.Round(time.Minute))

	db.Persist([]byte("session:abc"))
	ttl, _ = db.TTL([]byte("session:abc"))
	fmt.Println("after Persist:", ttl == dbkv.NoExpiry)

	db.SetString("flash", "gone soon", 10*time.Millisecond)
	time.Sleep(20 * time.Millisecond)
	_, err = db.GetString("flash")
	fmt.Println("expired:", errors.Is(err, dbkv.ErrNotFound))
	// Output:
	// expires in about 30m0s
	// extended to about 2h0m0s
	// after Persist: true
	// expired: true
}

// Counters are atomic, start at zero, and refuse to overflow.
func ExampleDB_Incr() {
	db, err := dbkv.Open(dbkv.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()

	for range 3 {
		db.Incr([]byte("chord:7:done"), 1)
	}
	n, _ := db.Decr([]byte("chord:7:done"), 1)
	fmt.Println("chord:7:done =", n)

	// Counters read back as base-10 text.
	s, _ := db.GetString("chord:7:done")
	fmt.Printf("as stored: %q\n", s)

	db.SetString("max", "9223372036854775807", 0)
	_, err = db.Incr([]byte("max"), 1)
	fmt.Println("overflow:", errors.Is(err, dbkv.ErrOverflow))
	// Output:
	// chord:7:done = 2
	// as stored: "2"
	// overflow: true
}

// A lock with a fencing token: a second owner is refused until the first
// releases it, and each grant gets a larger token.
func ExampleDB_Lock() {
	db, err := dbkv.Open(dbkv.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()

	key := []byte("lock:report")
	fence, err := db.Lock(key, []byte("worker-a"), 30*time.Second)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("worker-a holds the lock, fencing token", fence)

	_, err = db.Lock(key, []byte("worker-b"), 30*time.Second)
	fmt.Println("worker-b refused:", errors.Is(err, dbkv.ErrLocked))

	err = db.Unlock(key, []byte("worker-b"))
	fmt.Println("worker-b cannot unlock:", errors.Is(err, dbkv.ErrNotOwner))

	db.Unlock(key, []byte("worker-a"))
	fence, _ = db.Lock(key, []byte("worker-b"), 30*time.Second)
	fmt.Println("worker-b holds the lock, fencing token", fence)
	// Output:
	// worker-a holds the lock, fencing token 1
	// worker-b refused: true
	// worker-b cannot unlock: true
	// worker-b holds the lock, fencing token 2
}

// Fenced writes: a worker that stalled past its lease, while another took
// the lock, writes with a stale token and dbkv refuses it, so the newer
// holder's result stands.
func ExampleDB_SetFenced() {
	db, err := dbkv.Open(dbkv.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()

	lock, report := []byte("lock:report"), []byte("report")
	tokenA, _ := db.Lock(lock, []byte("worker-a"), 50*time.Millisecond)
	time.Sleep(100 * time.Millisecond) // worker-a stalls; its lease runs out

	tokenB, _ := db.Lock(lock, []byte("worker-b"), 30*time.Second)
	err = db.SetFenced(lock, tokenB, report, []byte("by worker-b"), 0)
	fmt.Println("worker-b writes with token", tokenB, "->", err)

	err = db.SetFenced(lock, tokenA, report, []byte("by worker-a"), 0)
	fmt.Println("worker-a writes with token", tokenA, "-> stale:", errors.Is(err, dbkv.ErrStaleToken))

	v, _ := db.GetString("report")
	fmt.Println("report:", v)
	// Output:
	// worker-b writes with token 2 -> <nil>
	// worker-a writes with token 1 -> stale: true
	// report: by worker-b
}

// Scan ranges over the keys with a prefix, in no particular order.
func ExampleDB_Scan() {
	db, err := dbkv.Open(dbkv.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()

	db.MSet([][]byte{[]byte("user:1"), []byte("user:2"), []byte("team:1")},
		[][]byte{[]byte("ada"), []byte("grace"), []byte("core")}, 0)
	var users []string
	for k, v := range db.Scan([]byte("user:")) {
		users = append(users, string(k)+"="+string(v))
	}
	slices.Sort(users)
	fmt.Println(users)
	// Output:
	// [user:1=ada user:2=grace]
}

// GetInto reads values into a buffer the caller reuses, so a loop over
// many keys allocates nothing.
func ExampleDB_GetInto() {
	db, err := dbkv.Open(dbkv.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	for _, id := range []string{"1", "2", "3"} {
		db.SetString("task:"+id, "done by worker "+id, 0)
	}

	buf := make([]byte, 0, 256)
	for _, id := range []string{"1", "2", "3"} {
		buf, err = db.GetInto([]byte("task:"+id), buf[:0])
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%s (%d bytes into a buffer of %d)\n", buf, len(buf), cap(buf))
	}
	// Output:
	// done by worker 1 (16 bytes into a buffer of 256)
	// done by worker 2 (16 bytes into a buffer of 256)
	// done by worker 3 (16 bytes into a buffer of 256)
}

// MSet and MGet move many keys in one call into dbkv each (one cgo
// crossing for the batch instead of one per key), atomically: no reader
// sees some of the pairs without the others, and MGet reads at one point
// in time. A missing key is a nil entry, not an error.
func ExampleDB_MGet() {
	db, err := dbkv.Open(dbkv.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()

	keys := [][]byte{[]byte("user:1"), []byte("user:2"), []byte("user:3")}
	if err := db.MSet(keys, [][]byte{[]byte("ada"), []byte("grace"), []byte("edsger")}, 0); err != nil {
		log.Fatal(err)
	}
	vals, err := db.MGet(append(keys, []byte("user:4"))...)
	if err != nil {
		log.Fatal(err)
	}
	for i, v := range vals {
		if v == nil {
			fmt.Printf("user:%d missing\n", i+1)
			continue
		}
		fmt.Printf("user:%d = %s\n", i+1, v)
	}
	// Output:
	// user:1 = ada
	// user:2 = grace
	// user:3 = edsger
	// user:4 missing
}
