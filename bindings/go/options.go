package dbkv

import (
	"log/slog"
	"math"
	"strconv"
	"strings"
	"time"
)

// SyncMode says when a write's WAL record reaches stable storage. It only
// matters with a DataDir. The zero value is SyncInterval, the library's
// default, so that a zero Options means "whatever dbkv recommends".
type SyncMode int

const (
	// SyncInterval fsyncs every Options.SyncInterval; a write returns once
	// queued, so a crash can lose up to one interval of acknowledged writes.
	SyncInterval SyncMode = iota
	// SyncAlways returns from a write once its record is fsynced;
	// concurrent writers share fsyncs.
	SyncAlways
	// SyncNone fsyncs only on segment rotation, snapshot, Sync and Close.
	SyncNone
)

func (m SyncMode) String() string {
	switch m {
	case SyncInterval:
		return "SyncInterval"
	case SyncAlways:
		return "SyncAlways"
	case SyncNone:
		return "SyncNone"
	}
	return "SyncMode(" + itoa(int64(m)) + ")"
}

// RecoveryMode says what Open does with a damaged write-ahead log.
type RecoveryMode int

const (
	// RecoveryPointInTime (the default) replays up to the first damaged
	// record and truncates the WAL there.
	RecoveryPointInTime RecoveryMode = iota
	// RecoveryAbsolute makes Open fail with ErrCorruption on any damage,
	// modifying nothing.
	RecoveryAbsolute
	// RecoverySkipCorrupted replays every record with a good checksum and
	// skips damaged ones.
	RecoverySkipCorrupted
)

func (m RecoveryMode) String() string {
	switch m {
	case RecoveryPointInTime:
		return "RecoveryPointInTime"
	case RecoveryAbsolute:
		return "RecoveryAbsolute"
	case RecoverySkipCorrupted:
		return "RecoverySkipCorrupted"
	}
	return "RecoveryMode(" + itoa(int64(m)) + ")"
}

// Options configure Open. The zero value opens an in-memory database with
// every library default; a zero field always means "the library default",
// never "zero". Out-of-range values make Open fail with ErrInvalidArgument
// and a message naming the field.
type Options struct {
	// DataDir makes the database durable: a write-ahead log and snapshots
	// live there and are recovered by Open. It is created if missing (its
	// parent must exist) and may be open in one DB at a time (ErrBusy).
	// Empty means in-memory only: nothing touches the disk.
	DataDir string

	// SyncMode and SyncInterval set when writes become durable (see
	// SyncMode). SyncInterval is 1ms to 60s, rounded up to whole
	// milliseconds; zero means 100ms.
	SyncMode     SyncMode
	SyncInterval time.Duration

	// Shards is the number of independently locked partitions: a power of
	// two from 1 to 65,536; zero means 256.
	Shards int

	// MaxValueBytes is the largest value accepted, at most 1 GiB; zero
	// means 64 MiB. Larger values fail with ErrTooLarge.
	MaxValueBytes int64

	// WALSegmentBytes is the size at which the WAL moves to a new file,
	// 4096 bytes to 1 TiB; zero means 64 MiB.
	WALSegmentBytes int64

	// SnapshotInterval takes a snapshot this often if anything was written
	// since the last one, rounded up to whole seconds; zero means 5
	// minutes, a negative value never snapshots by time.
	SnapshotInterval time.Duration

	// SnapshotOps takes a snapshot once this many WAL records were written
	// since the last one; zero means 4,000,000, a negative value never
	// snapshots by count.
	SnapshotOps int64

	// SnapshotKeep is how many snapshots stay on disk, 1 to 1000; zero
	// means 3.
	SnapshotKeep int

	// RecoveryMode says what Open does with a damaged WAL.
	RecoveryMode RecoveryMode

	// Logger receives the library's messages: the recovery summary of
	// Open, every piece of damage found in the data directory and what
	// was done with it (Warn), snapshots written or failed, the failed
	// state with its OS error (Error), WAL rotation and retention (Debug).
	// Levels the logger's handler does not enable are not produced at
	// all. Messages are delivered from one goroutine per DB, in order, a
	// little after they happen; Close returns after the last one. Nil
	// (the default) logs nothing.
	Logger *slog.Logger
}

// openArgs is Options translated to what the C setters take. set* flags
// exist where the C API gives zero a meaning of its own (0 = never for the
// snapshot triggers), so "not set" and "zero" must be told apart.
type openArgs struct {
	dataDir          string
	syncMode         int
	syncIntervalMS   uint64
	shards           uint32
	maxValueBytes    uint64
	walSegmentBytes  uint64
	setSnapInterval  bool
	snapIntervalSecs uint64
	setSnapOps       bool
	snapOps          uint64
	snapKeep         uint32
	recoveryMode     int
}

// C values of the mode constants (DBKV_SYNC_*), kept here for the same
// reason as the status codes in errors.go.
const (
	cSyncNone     = 0
	cSyncInterval = 1
	cSyncAlways   = 2
)

// Limits of the C setters that Go checks or names in its own messages,
// copied from the dbkv_options_set_* documentation in dbkv.h (checked
// against it by constants_test.go).
const (
	maxSyncInterval = time.Minute // dbkv_options_set_sync_interval_ms: 1 to 60,000 ms
	maxShards       = 65536       // dbkv_options_set_shards: 1 to 65,536
	maxSnapshotKeep = 1000        // dbkv_options_set_snapshot_keep: 1 to 1000
)

// args checks what only Go can check (signs, sizes that would wrap when
// narrowed, NUL bytes) and leaves range checks to the library, whose
// messages name the limits.
func (o *Options) args() (openArgs, *Error) {
	a := openArgs{dataDir: o.DataDir}
	if strings.IndexByte(o.DataDir, 0) >= 0 {
		return a, invalidArgument("open", "DataDir contains a NUL byte")
	}
	switch o.SyncMode {
	case SyncInterval:
		a.syncMode = cSyncInterval
	case SyncAlways:
		a.syncMode = cSyncAlways
	case SyncNone:
		a.syncMode = cSyncNone
	default:
		return a, invalidArgument("open", "Options.SyncMode "+itoa(int64(o.SyncMode))+" is not SyncInterval (0), SyncAlways (1) or SyncNone (2)")
	}
	// The recovery constants equal their C counterparts.
	if o.RecoveryMode < RecoveryPointInTime || o.RecoveryMode > RecoverySkipCorrupted {
		return a, invalidArgument("open", "Options.RecoveryMode "+itoa(int64(o.RecoveryMode))+" is not RecoveryPointInTime (0), RecoveryAbsolute (1) or RecoverySkipCorrupted (2)")
	}
	a.recoveryMode = int(o.RecoveryMode)
	if o.SyncInterval < 0 {
		return a, invalidArgument("open", "SyncInterval is negative")
	}
	if o.SyncInterval > maxSyncInterval {
		return a, invalidArgument("open", "Options.SyncInterval must be 1ms to "+maxSyncInterval.String()+", got "+o.SyncInterval.String())
	}
	a.syncIntervalMS = ceilDiv(o.SyncInterval, time.Millisecond)
	if o.Shards < 0 || int64(o.Shards) > math.MaxUint32 {
		return a, invalidArgument("open", "Shards must be a power of two from 1 to "+itoa(maxShards)+", got "+itoa(int64(o.Shards)))
	}
	a.shards = uint32(o.Shards)
	if o.MaxValueBytes < 0 {
		return a, invalidArgument("open", "MaxValueBytes is negative")
	}
	a.maxValueBytes = uint64(o.MaxValueBytes)
	if o.WALSegmentBytes < 0 {
		return a, invalidArgument("open", "WALSegmentBytes is negative")
	}
	a.walSegmentBytes = uint64(o.WALSegmentBytes)
	switch {
	case o.SnapshotInterval < 0:
		a.setSnapInterval, a.snapIntervalSecs = true, 0
	case o.SnapshotInterval > 0:
		a.setSnapInterval, a.snapIntervalSecs = true, ceilDiv(o.SnapshotInterval, time.Second)
	}
	switch {
	case o.SnapshotOps < 0:
		a.setSnapOps, a.snapOps = true, 0
	case o.SnapshotOps > 0:
		a.setSnapOps, a.snapOps = true, uint64(o.SnapshotOps)
	}
	if o.SnapshotKeep < 0 || int64(o.SnapshotKeep) > math.MaxUint32 {
		return a, invalidArgument("open", "SnapshotKeep must be 1 to "+itoa(maxSnapshotKeep)+", got "+itoa(int64(o.SnapshotKeep)))
	}
	a.snapKeep = uint32(o.SnapshotKeep)
	return a, nil
}

// ceilDiv rounds a positive duration up to whole units, so that a short
// but non-zero duration never turns into zero, which means something else
// (the default, or no expiry) everywhere in the C API.
func ceilDiv(d, unit time.Duration) uint64 {
	if d <= 0 {
		return 0
	}
	return uint64((d-1)/unit) + 1
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// goOptionNames rewrites the library's option names (snake_case, the C
// setters' names) at the start of an Open error into the Options fields a
// Go caller sets.
var goOptionNames = strings.NewReplacer(
	"shards must", "Options.Shards must",
	"max_value_bytes ", "Options.MaxValueBytes ",
	"wal_segment_bytes must", "Options.WALSegmentBytes must",
	"snapshot_keep must", "Options.SnapshotKeep must",
)
