// Package cbench runs the binding's benchmark workload from C, with no Go
// in the loop, so that the per-operation cost of going through the Go
// binding can be measured against the library itself in the same process,
// on the same handle and the same data. It is a separate package so that
// programs using the binding do not link this code.
package cbench

/*
// Flags from pkgconfig.go, as in the binding.
#cgo noescape cbench_noop
#cgo nocallback cbench_noop
#cgo noescape cbench_set1
#cgo nocallback cbench_set1
#cgo noescape cbench_set1_int
#cgo nocallback cbench_set1_int
#include <dbkv.h>

// The floor of a call through cgo: a function that does nothing.
static int cbench_noop(const dbkv *db, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl) {
	(void)db; (void)k; (void)kl; (void)v; (void)vl;
	return 0;
}

// One dbkv_set per cgo call, with none of the binding's work around it.
static int cbench_set1(const dbkv *db, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl) {
	return dbkv_set(db, k, kl, v, vl, 0);
}

// The same with the handle passed as an integer, as the binding passes it:
// cgo runs no pointer check on it.
static int cbench_set1_int(uintptr_t db, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl) {
	return dbkv_set((const dbkv *)db, k, kl, v, vl, 0);
}

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

	// The record counts, computed once by NewWorkload: Key and Val then
	// cost one modulo each, as in the C loops, rather than a division for
	// the count too (on a 200-400 ns operation, two extra 64-bit divisions
	// per operation were charged to the Go side as binding overhead).
	nk, nv int
}

// NewWorkload returns the workload of keys (klen bytes each) and vals
// (vlen bytes each).
func NewWorkload(keys []byte, klen int, vals []byte, vlen int) *Workload {
	return &Workload{Keys: keys, KLen: klen, Vals: vals, VLen: vlen, nk: len(keys) / klen, nv: len(vals) / vlen}
}

func (w *Workload) nkeys() int { return w.nk }

// Key returns the key at position at of the sequence.
func (w *Workload) Key(at int) []byte {
	k := (at % w.nk) * w.KLen
	return w.Keys[k : k+w.KLen : k+w.KLen]
}

// Val returns the value written at position at of the sequence.
func (w *Workload) Val(at int) []byte {
	v := (at % w.nv) * w.VLen
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
		(*C.uint8_t)(&w.Vals[0]), C.size_t(w.VLen), C.size_t(w.nv), C.size_t(start), C.size_t(n))
	return status("dbkv_set", rc)
}

// Noop makes one cgo call to a C function that does nothing, with Set's
// arguments: the floor of any binding call.
func Noop(db unsafe.Pointer, k, v []byte) int {
	return int(C.cbench_noop((*C.dbkv)(db), (*C.uint8_t)(unsafe.SliceData(k)), C.size_t(len(k)),
		(*C.uint8_t)(unsafe.SliceData(v)), C.size_t(len(v))))
}

// Set1 makes one cgo call to dbkv_set and nothing else: what the binding's
// Set would cost with no work of its own around the call.
func Set1(db unsafe.Pointer, k, v []byte) error {
	return status("dbkv_set", C.cbench_set1((*C.dbkv)(db), (*C.uint8_t)(unsafe.SliceData(k)), C.size_t(len(k)),
		(*C.uint8_t)(unsafe.SliceData(v)), C.size_t(len(v))))
}

// Set1Int is Set1 with the handle passed as an integer: the difference is
// the cost of cgo's pointer check on an opaque handle.
func Set1Int(db unsafe.Pointer, k, v []byte) error {
	return status("dbkv_set", C.cbench_set1_int(C.uintptr_t(uintptr(db)), (*C.uint8_t)(unsafe.SliceData(k)), C.size_t(len(k)),
		(*C.uint8_t)(unsafe.SliceData(v)), C.size_t(len(v))))
}

func status(fn string, rc C.int) error {
	if rc == C.DBKV_OK {
		return nil
	}
	return fmt.Errorf("%s: %s", fn, C.GoString(C.dbkv_strerror(rc)))
}
