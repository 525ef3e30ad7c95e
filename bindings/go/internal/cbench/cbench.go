// Package cbench runs the binding's benchmark workload from C, with no Go
// in the loop, so that the per-operation cost of going through the Go
// binding can be measured against the library itself in the same process,
// on the same handle and the same data. It is a separate package so that
// programs using the binding do not link this code.
package cbench

/*
// Flags from pkgconfig.go, as in the binding.
#include <dbkv.h>

// Each loop does n operations on keys (start+i) % nkeys, the same
// sequence the Go benchmarks walk. Keys are fixed-size records in one
// array, as the Go side slices them.
static int cbench_get(const dbkv *db, const uint8_t *keys, size_t klen, size_t nkeys,
                      size_t start, size_t n, uint8_t *buf, size_t cap) {
	for (size_t i = 0; i < n; i++) {
		size_t len = 0;
		int rc = dbkv_get_into(db, keys + ((start + i) % nkeys) * klen, klen, buf, cap, &len);
		if (rc != DBKV_OK) return rc;
	}
	return DBKV_OK;
}

static int cbench_set(const dbkv *db, const uint8_t *keys, size_t klen, size_t nkeys,
                      const uint8_t *vals, size_t vlen, size_t nvals, size_t start, size_t n) {
	for (size_t i = 0; i < n; i++) {
		size_t at = start + i;
		int rc = dbkv_set(db, keys + (at % nkeys) * klen, klen, vals + (at % nvals) * vlen, vlen, 0);
		if (rc != DBKV_OK) return rc;
	}
	return DBKV_OK;
}
*/
import "C"

import (
	"fmt"
	"unsafe"
)

// Workload is the benchmark data: keys of KLen bytes packed in Keys in the
// order the benchmarks visit them, and values of VLen bytes packed in Vals.
//
// The keys are stored in visit order (a random permutation of the key
// space) rather than visited at random in key order: the engine sees the
// same uniformly random access either way, but the client reads its keys
// sequentially, as a client iterating over a list of keys would. Otherwise
// each operation would start with a cache miss on the key in this 53 MB
// array, which a C loop overlaps with the previous lookup and a loop of
// cgo calls cannot, and the comparison would measure that, not the binding.
type Workload struct {
	Keys []byte
	KLen int
	Vals []byte
	VLen int
}

func (w *Workload) nkeys() int { return len(w.Keys) / w.KLen }

// Key returns the key at position at of the sequence.
func (w *Workload) Key(at int) []byte {
	k := (at % w.nkeys()) * w.KLen
	return w.Keys[k : k+w.KLen : k+w.KLen]
}

// Val returns the value written at position at of the sequence.
func (w *Workload) Val(at int) []byte {
	v := (at % (len(w.Vals) / w.VLen)) * w.VLen
	return w.Vals[v : v+w.VLen : v+w.VLen]
}

// Get reads n keys from position start with dbkv_get_into into buf. db is
// the binding's *C.dbkv handle, passed as an unsafe.Pointer because C
// types are distinct per Go package.
func Get(db unsafe.Pointer, w *Workload, start, n int, buf []byte) error {
	rc := C.cbench_get((*C.dbkv)(db), (*C.uint8_t)(&w.Keys[0]), C.size_t(w.KLen), C.size_t(w.nkeys()),
		C.size_t(start), C.size_t(n), (*C.uint8_t)(&buf[0]), C.size_t(len(buf)))
	return status("dbkv_get_into", rc)
}

// Set writes n keys from position start with dbkv_set, no TTL.
func Set(db unsafe.Pointer, w *Workload, start, n int) error {
	rc := C.cbench_set((*C.dbkv)(db), (*C.uint8_t)(&w.Keys[0]), C.size_t(w.KLen), C.size_t(w.nkeys()),
		(*C.uint8_t)(&w.Vals[0]), C.size_t(w.VLen), C.size_t(len(w.Vals)/w.VLen), C.size_t(start), C.size_t(n))
	return status("dbkv_set", rc)
}

func status(fn string, rc C.int) error {
	if rc == C.DBKV_OK {
		return nil
	}
	return fmt.Errorf("%s: %s", fn, C.GoString(C.dbkv_strerror(rc)))
}
