package dbkv

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Many goroutines on a few shared counters: the totals are exact, and
// every value Incr returned for a key was returned exactly once.
func TestConcurrentCounters(t *testing.T) {
	db := openDB(t, Options{})
	const (
		workers = 8
		perW    = 2000
		nkeys   = 4
	)
	seen := make([][]atomic.Int32, nkeys)
	for i := range seen {
		seen[i] = make([]atomic.Int32, workers*perW/nkeys+1)
	}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perW {
				k := (w + i) % nkeys
				n, err := db.Incr([]byte(fmt.Sprint("counter:", k)), 1)
				if err != nil {
					t.Error(err)
					return
				}
				if n < 1 || int(n) >= len(seen[k]) {
					t.Errorf("Incr returned %d, out of range", n)
					return
				}
				seen[k][n].Add(1)
				// A second counter moved both ways by the same goroutine
				// must net out to zero.
				if _, err := db.Incr([]byte("net"), 3); err != nil {
					t.Error(err)
					return
				}
				if _, err := db.Decr([]byte("net"), 3); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	for k := range nkeys {
		v, err := db.Get([]byte(fmt.Sprint("counter:", k)))
		mustNil(t, err)
		if want := fmt.Sprint(workers * perW / nkeys); string(v) != want {
			t.Errorf("counter %d = %s, want %s", k, v, want)
		}
		for n := 1; n < len(seen[k]); n++ {
			if c := seen[k][n].Load(); c != 1 {
				t.Fatalf("counter %d: Incr returned %d %d times", k, n, c)
			}
		}
	}
	if v, _ := db.Get([]byte("net")); string(v) != "0" {
		t.Errorf("net counter = %s, want 0", v)
	}
}

// Goroutines contend for one lock: there is never more than one holder,
// and each grant's fencing token is above every earlier grant's.
func TestConcurrentLocks(t *testing.T) {
	db := openDB(t, Options{})
	const (
		workers = 8
		rounds  = 200
	)
	var holders atomic.Int32
	var lastFence atomic.Uint64
	var grants atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			owner := []byte(fmt.Sprint("worker-", w))
			for got := 0; got < rounds; {
				fence, err := db.Lock([]byte("lock:shared"), owner, time.Minute)
				if errors.Is(err, ErrLocked) {
					runtime.Gosched()
					continue
				}
				if err != nil {
					t.Error(err)
					return
				}
				if h := holders.Add(1); h != 1 {
					t.Errorf("%d holders at once", h)
				}
				if prev := lastFence.Swap(fence); fence <= prev {
					t.Errorf("fence %d after %d: tokens must increase", fence, prev)
				}
				grants.Add(1)
				if got%10 == 0 {
					runtime.Gosched() // hold it a little longer sometimes
					if err := db.ExtendLock([]byte("lock:shared"), owner, time.Minute); err != nil {
						t.Errorf("holder could not extend: %v", err)
					}
				}
				holders.Add(-1)
				if err := db.Unlock([]byte("lock:shared"), owner); err != nil {
					t.Errorf("holder could not unlock: %v", err)
					return
				}
				got++
			}
		}()
	}
	wg.Wait()
	if g := grants.Load(); g != workers*rounds {
		t.Fatalf("%d grants, want %d", g, workers*rounds)
	}
}

// dbkv_last_error is per OS thread and goroutines move between threads, so
// the binding must read it in the same cgo call that failed. Goroutines
// failing in different ways, each with a message naming its own sizes,
// must each get their own message back.
func TestConcurrentErrorMessagesStayWithTheirCall(t *testing.T) {
	const maxValue = 1024
	db := openDB(t, Options{MaxValueBytes: maxValue})
	const (
		workers = 16
		iters   = 300
	)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			notInt := []byte(fmt.Sprint("notint:", w))
			if err := db.Set(notInt, []byte(fmt.Sprint("text-", w)), 0); err != nil {
				t.Error(err)
				return
			}
			bigKey := make([]byte, 65536+w*8+8)
			bigVal := make([]byte, maxValue+w*8+8)
			for i := range iters {
				var err error
				var sentinel error
				var want, op string
				switch (w + i) % 5 {
				case 0:
					_, err = db.Incr(notInt, 1)
					sentinel, op, want = ErrNotInteger, "incr", "not a base-10 signed 64-bit integer"
				case 1:
					n := 65536 + w*8 + i%8
					err = db.Set(bigKey[:n], []byte("v"), 0)
					sentinel, op, want = ErrTooLarge, "set", fmt.Sprintf("key is %d bytes,", n)
				case 2:
					n := maxValue + 1 + w*8 + i%8
					err = db.Set([]byte("k"), bigVal[:n], 0)
					sentinel, op, want = ErrTooLarge, "set", fmt.Sprintf("value is %d bytes,", n)
				case 3:
					switch i % 3 {
					case 0:
						_, err = db.Get(nil)
						sentinel, op, want = ErrInvalidArgument, "get", "key is empty"
					case 1:
						_, err = db.Lock([]byte("l"), []byte("o"), 0)
						sentinel, op, want = ErrInvalidArgument, "lock", "ttl_ms must be > 0"
					case 2:
						_, err = db.Lock([]byte("l"), nil, time.Second)
						sentinel, op, want = ErrInvalidArgument, "lock", "owner is empty"
					}
				case 4:
					// Calls that succeed or end in an outcome leave the
					// thread's last error alone; they must not pick it up.
					if _, err := db.Incr([]byte(fmt.Sprint("ok:", w)), 1); err != nil {
						t.Error(err)
						return
					}
					_, err = db.Get([]byte("missing"))
					sentinel, op, want = ErrNotFound, "get", "not found"
				}
				var e *Error
				if !errors.As(err, &e) || !errors.Is(err, sentinel) || e.Op != op {
					t.Errorf("worker %d: got %v, want %v from %s", w, err, sentinel, op)
					return
				}
				if !strings.Contains(e.Message, want) {
					t.Errorf("worker %d: message %q is not about this call (%q)", w, e.Message, want)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// Close while other goroutines are calling: every call either completes
// normally or returns ErrClosed, none crashes, and none runs after the C
// handle is freed (the race detector and the C library would notice).
func TestCloseWhileInUse(t *testing.T) {
	db, err := Open(Options{})
	mustNil(t, err)
	const workers = 6
	var ok, closed atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			key := []byte(fmt.Sprint("k", w))
			for i := 0; ; i++ {
				var err error
				switch i % 5 {
				case 0:
					err = db.Set(key, key, 0)
				case 1:
					_, err = db.Get(key)
				case 2:
					_, err = db.Incr([]byte("n"), 1)
				case 3:
					_, err = db.MGet(key, []byte("n"))
				case 4:
					_, err = db.Count()
					for range db.Scan(key) {
					}
				}
				switch {
				case err == nil || errors.Is(err, ErrNotFound):
					ok.Add(1)
				case errors.Is(err, ErrClosed):
					closed.Add(1)
					return
				default:
					t.Errorf("unexpected error: %v", err)
					return
				}
			}
		}()
	}
	close(start)
	for deadline := time.Now().Add(10 * time.Second); ok.Load() < 2000 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	mustNil(t, db.Close())
	wg.Wait()
	if closed.Load() != workers {
		t.Fatalf("%d of %d workers saw ErrClosed", closed.Load(), workers)
	}
	mustNil(t, db.Close())
}
