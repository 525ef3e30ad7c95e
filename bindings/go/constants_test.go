package dbkv

// The numbers this package copies from include/dbkv.h, checked against the
// header itself, so that changing the header without the binding fails
// here. DBKV_HEADER names another header to check against (to try a
// mutation on a scratch copy).
//
// Not checked because not copied: the log levels (logging.go uses
// C.DBKV_LOG_* through cgo), the version (Version asks the library), and
// the statistics layout (Stats reads C.dbkv_statistics fields by name and
// sets size to its sizeof, so cgo itself follows the header); only that
// Stats reads every field is checked.

import (
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// cHeader is what the tests need of dbkv.h.
type cHeader struct {
	defines map[string]string // #define DBKV_NAME value, value unevaluated
	stats   []string          // dbkv_statistics fields in order; an array is name[N]
	odd     []string          // dbkv_statistics members that are not uint64_t
	docs    map[string]string // function name -> its /** */ comment
}

func parseHeader(t *testing.T) cHeader {
	t.Helper()
	path := os.Getenv("DBKV_HEADER")
	if path == "" {
		path = "../../include/dbkv.h"
	}
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	h := cHeader{defines: map[string]string{}, docs: map[string]string{}}
	for _, m := range regexp.MustCompile(`(?m)^#define (DBKV_\w+)[ \t]+(.+?)\s*$`).FindAllStringSubmatch(string(src), -1) {
		h.defines[m[1]] = m[2]
	}
	body := regexp.MustCompile(`(?s)struct dbkv_statistics \{(.*?)\n\}`).FindStringSubmatch(string(src))
	if body == nil {
		t.Fatalf("%s: no struct dbkv_statistics", path)
	}
	body[1] = regexp.MustCompile(`(?s)/\*.*?\*/`).ReplaceAllString(body[1], "")
	field := regexp.MustCompile(`^uint64_t (\w+)(?:\[(\w+)\])?;$`)
	for _, line := range strings.Split(body[1], "\n") {
		if line = strings.TrimSpace(line); line == "" {
			continue
		}
		m := field.FindStringSubmatch(line)
		if m == nil {
			h.odd = append(h.odd, line)
			continue
		}
		if m[2] != "" {
			m[1] += "[" + strconv.FormatInt(h.eval(t, m[2]), 10) + "]"
		}
		h.stats = append(h.stats, m[1])
	}
	for _, m := range regexp.MustCompile(`(?s)/\*\*((?:[^*]|\*[^/])*)\*/\s*[\w ]+?\**(dbkv_\w+)\(`).FindAllStringSubmatch(string(src), -1) {
		h.docs[m[2]] = strings.Join(strings.Fields(strings.ReplaceAll(m[1], "*", " ")), " ")
	}
	return h
}

// eval evaluates a define's value (or an integer literal): an integer, a
// negative one, parentheses and <<, which is all dbkv.h uses.
func (h cHeader) eval(t *testing.T, s string) int64 {
	t.Helper()
	if v, ok := h.defines[s]; ok {
		s = v
	}
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "(") && strings.HasSuffix(s, ")") {
		return h.eval(t, s[1:len(s)-1])
	}
	if l, r, ok := strings.Cut(s, "<<"); ok {
		return h.eval(t, l) << h.eval(t, r)
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatalf("dbkv.h: cannot evaluate %q", s)
	}
	return v
}

var units = map[string]int64{"": 1, "bytes": 1, "ms": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40}

// number reads "65,536", "60,000 ms", "1 TiB".
func number(digits, unit string) int64 {
	v, _ := strconv.ParseInt(strings.ReplaceAll(digits, ",", ""), 10, 64)
	return v * units[unit]
}

const docNum = `(\d[\d,]*)\s*(bytes|ms|KiB|MiB|GiB|TiB)?`

// docRange reads the first "N to M" of a function's comment: its numbers
// (in the comment's unit) and its text.
func (h cHeader) docRange(t *testing.T, fn string) (lo, hi int64, text string) {
	t.Helper()
	m := regexp.MustCompile(docNum + `\s+to\s+` + docNum).FindStringSubmatch(h.docs[fn])
	if m == nil {
		t.Fatalf("dbkv.h: the comment of %s gives no range (N to M): %q", fn, h.docs[fn])
	}
	return number(m[1], m[2]), number(m[3], m[4]), strings.TrimSpace(m[0])
}

// docDefault reads "default N" of a function's comment, as written there.
func (h cHeader) docDefault(t *testing.T, fn string) string {
	t.Helper()
	m := regexp.MustCompile(`default ` + docNum).FindStringSubmatch(h.docs[fn])
	if m == nil {
		t.Fatalf("dbkv.h: the comment of %s gives no default: %q", fn, h.docs[fn])
	}
	return strings.TrimSpace(m[0][len("default "):])
}

// defines lists the header's names with a prefix.
func (h cHeader) names(prefix string) []string {
	var out []string
	for name := range h.defines {
		if strings.HasPrefix(name, prefix) {
			out = append(out, name)
		}
	}
	return out
}

// checkGroup compares each copied constant with the header, and fails for
// a header constant of the group that the binding does not copy.
func checkGroup(t *testing.T, h cHeader, prefixes []string, copies map[string]int64) {
	t.Helper()
	for name, got := range copies {
		if _, ok := h.defines[name]; !ok {
			t.Errorf("%s: the binding has %d but dbkv.h does not define it", name, got)
		} else if want := h.eval(t, name); want != got {
			t.Errorf("%s: dbkv.h says %d, the binding says %d", name, want, got)
		}
	}
	for _, p := range prefixes {
		for _, name := range h.names(p) {
			if _, ok := copies[name]; !ok {
				t.Errorf("%s = %s in dbkv.h has no counterpart in the binding", name, h.defines[name])
			}
		}
	}
}

func TestHeaderStatusCodes(t *testing.T) {
	h := parseHeader(t)
	copies := map[string]int64{
		"DBKV_OK": codeOK, "DBKV_NOT_FOUND": codeNotFound, "DBKV_EXISTS": codeExists,
		"DBKV_LOCKED": codeLocked, "DBKV_NOT_OWNER": codeNotOwner, "DBKV_MISMATCH": codeMismatch,
		"DBKV_STALE_TOKEN": codeStaleToken, "DBKV_ERR_INVALID_ARGUMENT": codeInvalidArgument,
		"DBKV_ERR_TOO_LARGE": codeTooLarge, "DBKV_ERR_NOT_INTEGER": codeNotInteger,
		"DBKV_ERR_OVERFLOW": codeOverflow, "DBKV_ERR_BUFFER_TOO_SMALL": codeBufferTooSmall,
		"DBKV_ERR_IO": codeIO, "DBKV_ERR_CORRUPTION": codeCorruption, "DBKV_ERR_BUSY": codeBusy,
		"DBKV_ERR_FAILED": codeFailed, "DBKV_ERR_INTERNAL": codeInternal, "DBKV_ERR_WRONG_TYPE": codeWrongType,
	}
	// Every other DBKV_ name without a known non-status prefix is a status.
	var statuses []string
	for _, name := range h.names("DBKV_") {
		if !regexp.MustCompile(`^DBKV_(SYNC|RECOVERY|LOG|VERSION|MAX)_`).MatchString(name) {
			statuses = append(statuses, name)
		}
	}
	checkGroup(t, h, statuses, copies)
	// statusTexts reads dbkv_strerror for codeWrongType..codeStaleToken.
	for _, name := range statuses {
		if v := h.eval(t, name); v < codeWrongType || v > codeStaleToken {
			t.Errorf("%s = %d is outside codeWrongType..codeStaleToken (%d..%d), the range statusTexts reads", name, v, codeWrongType, codeStaleToken)
		}
	}
}

func TestHeaderModes(t *testing.T) {
	h := parseHeader(t)
	checkGroup(t, h, []string{"DBKV_SYNC_"}, map[string]int64{
		"DBKV_SYNC_NONE": cSyncNone, "DBKV_SYNC_INTERVAL": cSyncInterval, "DBKV_SYNC_ALWAYS": cSyncAlways,
	})
	// options.go passes RecoveryMode to C as it is.
	checkGroup(t, h, []string{"DBKV_RECOVERY_"}, map[string]int64{
		"DBKV_RECOVERY_POINT_IN_TIME":  int64(RecoveryPointInTime),
		"DBKV_RECOVERY_ABSOLUTE":       int64(RecoveryAbsolute),
		"DBKV_RECOVERY_SKIP_CORRUPTED": int64(RecoverySkipCorrupted),
	})
}

func TestHeaderLimits(t *testing.T) {
	h := parseHeader(t)
	for _, c := range []struct {
		fn, what string
		got      int64
	}{
		{"dbkv_options_set_sync_interval_ms", "maxSyncInterval (ms)", int64(maxSyncInterval / time.Millisecond)},
		{"dbkv_options_set_shards", "maxShards", maxShards},
		{"dbkv_options_set_snapshot_keep", "maxSnapshotKeep", maxSnapshotKeep},
	} {
		if _, hi, _ := h.docRange(t, c.fn); hi != c.got {
			t.Errorf("%s: dbkv.h (%s) says at most %d, the binding says %d", c.what, c.fn, hi, c.got)
		}
	}
	if lo, hi, _ := h.docRange(t, "dbkv_log_buffer_new"); logBufferSize < lo || logBufferSize > hi {
		t.Errorf("logBufferSize: dbkv.h (dbkv_log_buffer_new) allows %d to %d, the binding uses %d", lo, hi, logBufferSize)
	}
}

// TestHeaderStatsFields checks that Stats reads every dbkv_statistics field
// (size is an input), so a field appended to the header is not left out.
func TestHeaderStatsFields(t *testing.T) {
	h := parseHeader(t)
	src, err := os.ReadFile("dbkv.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range h.odd {
		t.Errorf("dbkv_statistics member %q in dbkv.h is not uint64_t name; or uint64_t name[N];", m)
	}
	for _, f := range h.stats[1:] {
		f, _, _ = strings.Cut(f, "[")
		if !regexp.MustCompile(`\bst\.` + f + `\b`).Match(src) {
			t.Errorf("dbkv_statistics.%s in dbkv.h is not read by Stats in dbkv.go", f)
		}
	}
	if len(h.stats) == 0 || h.stats[0] != "size" {
		t.Errorf("dbkv_statistics in dbkv.h does not start with size: %v", h.stats)
	}
}

// TestHeaderDocumentedLimits checks that the ranges and defaults the Go
// documentation repeats are the header's, by looking for the header's
// figures, as the Go comments word them, in the Go sources.
func TestHeaderDocumentedLimits(t *testing.T) {
	h := parseHeader(t)
	comments := func(file string) string {
		src, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		return strings.Join(strings.Fields(strings.ReplaceAll(string(src), "//", " ")), " ")
	}
	rangeText := func(fn string) string { _, _, s := h.docRange(t, fn); return s }
	_, syncMax, _ := h.docRange(t, "dbkv_options_set_sync_interval_ms")
	keys := "Keys are 1 to " + commas(h.eval(t, "DBKV_MAX_KEY_BYTES")) + " bytes"
	for _, c := range []struct{ file, from, want string }{
		{"doc.go", "DBKV_MAX_KEY_BYTES", keys},
		{"dbkv.go", "DBKV_MAX_KEY_BYTES", keys},
		{"options.go", "DBKV_MAX_VALUE_BYTES_CAP", "at most " + binarySize(h.eval(t, "DBKV_MAX_VALUE_BYTES_CAP"))},
		{"options.go", "dbkv_options_set_shards", rangeText("dbkv_options_set_shards") + "; zero means " + h.docDefault(t, "dbkv_options_set_shards")},
		{"options.go", "dbkv_options_set_sync_interval_ms", "1ms to " + strconv.FormatInt(syncMax/1000, 10) + "s"},
		{"options.go", "dbkv_options_set_sync_interval_ms", "zero means " + h.docDefault(t, "dbkv_options_set_sync_interval_ms") + "ms"},
		{"options.go", "dbkv_options_set_max_value_bytes", "zero means " + h.docDefault(t, "dbkv_options_set_max_value_bytes")},
		{"options.go", "dbkv_options_set_wal_segment_bytes", rangeText("dbkv_options_set_wal_segment_bytes") + "; zero means " + h.docDefault(t, "dbkv_options_set_wal_segment_bytes")},
		{"options.go", "dbkv_options_set_snapshot_interval_secs", "zero means " + minutes(h.docDefault(t, "dbkv_options_set_snapshot_interval_secs"))},
		{"options.go", "dbkv_options_set_snapshot_ops", "zero means " + h.docDefault(t, "dbkv_options_set_snapshot_ops")},
		{"options.go", "dbkv_options_set_snapshot_keep", rangeText("dbkv_options_set_snapshot_keep") + "; zero means " + h.docDefault(t, "dbkv_options_set_snapshot_keep")},
	} {
		if !strings.Contains(comments(c.file), c.want) {
			t.Errorf("%s: %s does not say %q, as dbkv.h has it", c.from, c.file, c.want)
		}
	}
}

// commas writes 65535 as "65,535".
func commas(n int64) string {
	s := strconv.FormatInt(n, 10)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// binarySize writes 1 << 30 as "1 GiB".
func binarySize(n int64) string {
	for _, u := range []string{"TiB", "GiB", "MiB", "KiB"} {
		if n%units[u] == 0 {
			return strconv.FormatInt(n/units[u], 10) + " " + u
		}
	}
	return strconv.FormatInt(n, 10) + " bytes"
}

// minutes writes "300" (seconds) as "5 minutes".
func minutes(secs string) string {
	n := number(secs, "")
	if n%60 != 0 {
		return secs + " seconds"
	}
	return strconv.FormatInt(n/60, 10) + " minutes"
}
