package dbkv

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/dbkv/dbkv/bindings/go/internal/cbench"
)

// The benchmark workload: 1M keys of 53 bytes with 200-byte values, visited
// in a uniformly random order (one random permutation of the keys, over and
// over; see cbench.Workload). BenchmarkGet/Set go through the binding;
// BenchmarkGetC/SetC run the same operations on the same handle from a C
// loop (one cgo call for all b.N operations), so the difference between
// the two is what the binding costs per operation. The data is built on
// first use, so plain `go test` never pays for it.
const (
	benchKeys = 1 << 20
	benchKLen = 53
	benchVLen = 200
)

var bench struct {
	once sync.Once
	db   *DB
	w    *cbench.Workload
	// at is where the next benchmark run continues in the key sequence, so
	// that repeated runs keep visiting fresh random keys.
	at int
}

func benchSetup(b *testing.B) (*DB, *cbench.Workload) {
	bench.once.Do(func() {
		rng := rand.New(rand.NewPCG(1, 2))
		keys := make([]byte, 0, benchKeys*benchKLen)
		for _, i := range rng.Perm(benchKeys) {
			keys = fmt.Appendf(keys, "bench:%047d", i)
		}
		vals := make([]byte, 4096*benchVLen)
		for i := range vals {
			vals[i] = byte('a' + rng.IntN(26))
		}
		w := cbench.NewWorkload(keys, benchKLen, vals, benchVLen)
		db, err := Open(Options{})
		if err != nil {
			panic(err)
		}
		// Fill through C: one pass over the sequence writes every key.
		if err := cbench.Set(unsafe.Pointer(db.h), w, 0, benchKeys); err != nil {
			panic(err)
		}
		bench.db, bench.w = db, w
	})
	if n, err := bench.db.Count(); err != nil || n != benchKeys {
		b.Fatalf("workload has %d keys (%v), want %d", n, err, benchKeys)
	}
	return bench.db, bench.w
}

func BenchmarkGet(b *testing.B) {
	db, w := benchSetup(b)
	start := bench.at
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		v, err := db.Get(w.Key(start + i))
		if err != nil || len(v) != benchVLen {
			b.Fatalf("Get: %d bytes, %v", len(v), err)
		}
	}
	b.StopTimer()
	bench.at += b.N
}

// BenchmarkGetInto is BenchmarkGet reading into one reused buffer: the
// binding's cost without the allocation of the result.
func BenchmarkGetInto(b *testing.B) {
	db, w := benchSetup(b)
	start := bench.at
	buf := make([]byte, 0, 4096)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		v, err := db.GetInto(w.Key(start+i), buf[:0])
		if err != nil || len(v) != benchVLen {
			b.Fatalf("GetInto: %d bytes, %v", len(v), err)
		}
	}
	b.StopTimer()
	bench.at += b.N
}

func BenchmarkGetC(b *testing.B) {
	db, w := benchSetup(b)
	buf := make([]byte, 256)
	start := bench.at
	b.ResetTimer()
	if err := cbench.Get(unsafe.Pointer(db.h), w, start, b.N, buf); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	bench.at += b.N
}

func BenchmarkSet(b *testing.B) {
	db, w := benchSetup(b)
	start := bench.at
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if err := db.Set(w.Key(start+i), w.Val(start+i), 0); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	bench.at += b.N
}

func BenchmarkSetC(b *testing.B) {
	db, w := benchSetup(b)
	start := bench.at
	b.ResetTimer()
	if err := cbench.Set(unsafe.Pointer(db.h), w, start, b.N); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	bench.at += b.N
}

// BenchmarkGoOverC runs the binding and the C loop in alternating chunks
// of the same workload and reports both per-op times and their difference.
// On a machine shared with other work, separate benchmarks run seconds
// apart see different loads; interleaving chunks of a few milliseconds
// exposes both sides to the same conditions, so the difference is steadier.
func BenchmarkGoOverC(b *testing.B) {
	b.Run("Get", func(b *testing.B) {
		db, w := benchSetup(b)
		buf := make([]byte, 256)
		benchInterleaved(b, func(at int) error {
			v, err := db.Get(w.Key(at))
			if err == nil && len(v) != benchVLen {
				err = fmt.Errorf("Get returned %d bytes", len(v))
			}
			return err
		}, func(at, n int) error {
			return cbench.Get(unsafe.Pointer(db.h), w, at, n, buf)
		})
	})
	b.Run("Set", func(b *testing.B) {
		db, w := benchSetup(b)
		benchInterleaved(b, func(at int) error {
			return db.Set(w.Key(at), w.Val(at), 0)
		}, func(at, n int) error {
			return cbench.Set(unsafe.Pointer(db.h), w, at, n)
		})
	})
}

// BenchmarkGoOverCHot is BenchmarkGoOverC on the first 1024 keys of the
// sequence only, so that every access hits the CPU caches. Without cache
// misses to hide behind or to overlap, the difference is the fixed cost of
// a call through the binding: cgo, the handle lock, the result allocation.
func BenchmarkGoOverCHot(b *testing.B) {
	hot := func(b *testing.B) (*DB, *cbench.Workload) {
		db, w := benchSetup(b)
		return db, cbench.NewWorkload(w.Keys[:1024*benchKLen], benchKLen, w.Vals[:16*benchVLen], benchVLen)
	}
	b.Run("Get", func(b *testing.B) {
		db, w := hot(b)
		buf := make([]byte, 256)
		benchInterleaved(b, func(at int) error {
			_, err := db.Get(w.Key(at))
			return err
		}, func(at, n int) error {
			return cbench.Get(unsafe.Pointer(db.h), w, at, n, buf)
		})
	})
	b.Run("Set", func(b *testing.B) {
		db, w := hot(b)
		benchInterleaved(b, func(at int) error {
			return db.Set(w.Key(at), w.Val(at), 0)
		}, func(at, n int) error {
			return cbench.Set(unsafe.Pointer(db.h), w, at, n)
		})
	})
}

// BenchmarkCheckPointer measures what cgo's pointer check on the handle
// cost each call before the binding passed it as an integer: one dbkv_set
// per cgo call with the handle as a pointer (checked) against the same
// with it as an integer, interleaved on hot keys. overhead-ns/op is the
// check.
func BenchmarkCheckPointer(b *testing.B) {
	db, w := benchSetup(b)
	hot := cbench.NewWorkload(w.Keys[:1024*benchKLen], benchKLen, w.Vals[:16*benchVLen], benchVLen)
	h := unsafe.Pointer(db.h)
	benchInterleaved(b, func(at int) error {
		return cbench.Set1(h, hot.Key(at), hot.Val(at))
	}, func(at, n int) error {
		for i := range n {
			if err := cbench.Set1Int(h, hot.Key(at+i), hot.Val(at+i)); err != nil {
				return err
			}
		}
		return nil
	})
}

// BenchmarkBindingWork measures the binding's own work around the cgo
// call: Set against one cgo call straight to dbkv_set (Set1Int, the handle
// passed as the binding passes it), interleaved on hot keys. The rest of
// Set's overhead over the C loop (BenchmarkGoOverC) is the crossing itself
// (BenchmarkCallFloor/Noop) and the overlap a C loop gets between
// consecutive operations.
func BenchmarkBindingWork(b *testing.B) {
	db, w := benchSetup(b)
	hot := cbench.NewWorkload(w.Keys[:1024*benchKLen], benchKLen, w.Vals[:16*benchVLen], benchVLen)
	h := unsafe.Pointer(db.h)
	benchInterleaved(b, func(at int) error {
		return db.Set(hot.Key(at), hot.Val(at), 0)
	}, func(at, n int) error {
		for i := range n {
			if err := cbench.Set1Int(h, hot.Key(at+i), hot.Val(at+i)); err != nil {
				return err
			}
		}
		return nil
	})
}

func benchInterleaved(b *testing.B, goOp func(at int) error, cOps func(at, n int) error) {
	const chunk = 10000
	var goTime, cTime time.Duration
	b.ResetTimer()
	for done, round := 0, 0; done < b.N; done, round = done+chunk, round+1 {
		n := min(chunk, b.N-done)
		// Each side gets fresh positions of the random sequence, and the
		// side that goes first alternates, so neither inherits the other's
		// cache lines or runs in a systematically different moment.
		goAt, cAt := bench.at, bench.at+n
		if round%2 == 1 {
			goAt, cAt = cAt, goAt
		}
		runGo := func() {
			t := time.Now()
			for i := range n {
				if err := goOp(goAt + i); err != nil {
					b.Fatal(err)
				}
			}
			goTime += time.Since(t)
		}
		runC := func() {
			t := time.Now()
			if err := cOps(cAt, n); err != nil {
				b.Fatal(err)
			}
			cTime += time.Since(t)
		}
		if round%2 == 0 {
			runGo()
			runC()
		} else {
			runC()
			runGo()
		}
		bench.at += 2 * n
	}
	b.StopTimer()
	goNS := float64(goTime.Nanoseconds()) / float64(b.N)
	cNS := float64(cTime.Nanoseconds()) / float64(b.N)
	b.ReportMetric(goNS, "go-ns/op")
	b.ReportMetric(cNS, "c-ns/op")
	b.ReportMetric(goNS-cNS, "overhead-ns/op")
}

// BenchmarkCallFloor breaks a Set down: a cgo call to a C function that
// does nothing (Noop), one cgo call straight to dbkv_set per operation
// (Set1, the binding with no work of its own), and the binding's Set, on
// the 1M-key workload. Set - Set1 is what the binding adds around the
// call; Set1 - the C loop is the crossing plus the cache misses a C loop
// overlaps and separate calls cannot.
func BenchmarkCallFloor(b *testing.B) {
	b.Run("Noop", func(b *testing.B) {
		db, w := benchSetup(b)
		start := bench.at
		b.ResetTimer()
		for i := range b.N {
			cbench.Noop(unsafe.Pointer(db.h), w.Key(start+i), w.Val(start+i))
		}
	})
	b.Run("Set1", func(b *testing.B) {
		db, w := benchSetup(b)
		start := bench.at
		b.ResetTimer()
		for i := range b.N {
			if err := cbench.Set1(unsafe.Pointer(db.h), w.Key(start+i), w.Val(start+i)); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		bench.at += b.N
	})
}

// BenchmarkMGet and BenchmarkMSet read and write the workload 100 keys per
// call (one cgo crossing for the batch, or two for MGet: the values dbkv
// copies out are freed in a second call); ns/op is per key, comparable
// with BenchmarkGet/Set and the C loops. The batch calls are atomic, and
// that is what they are for: per key they cost more than Get and Set
// (2026-12-02: MGet 1054 ns/key beside Get 636, MSet 745 beside Set 656),
// since dbkv locks every shard a batch touches and copies each MGet value
// into a malloc'd block that Go copies again, so fewer crossings alone do
// not make them the faster path.
func BenchmarkMGet(b *testing.B) {
	db, w := benchSetup(b)
	const batch = 100
	keys := make([][]byte, batch)
	start := bench.at
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; done += batch {
		n := min(batch, b.N-done)
		for i := range n {
			keys[i] = w.Key(start + done + i)
		}
		vals, err := db.MGet(keys[:n]...)
		if err != nil || len(vals) != n || len(vals[0]) != benchVLen {
			b.Fatalf("MGet: %d values, %v", len(vals), err)
		}
	}
	b.StopTimer()
	bench.at += b.N
}

func BenchmarkMSet(b *testing.B) {
	db, w := benchSetup(b)
	const batch = 100
	keys := make([][]byte, batch)
	vals := make([][]byte, batch)
	start := bench.at
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; done += batch {
		n := min(batch, b.N-done)
		for i := range n {
			keys[i], vals[i] = w.Key(start+done+i), w.Val(start+done+i)
		}
		if err := db.MSet(keys[:n], vals[:n], 0); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	bench.at += b.N
}
