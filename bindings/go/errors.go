package dbkv

import (
	"errors"
	"strings"
)

// Status codes of the C library (DBKV_* in dbkv.h), repeated here so that
// the pure-Go parts of the package do not need cgo.
const (
	codeOK              = 0
	codeNotFound        = 1
	codeExists          = 2
	codeLocked          = 3
	codeNotOwner        = 4
	codeMismatch        = 5
	codeStaleToken      = 6
	codeInvalidArgument = -1
	codeTooLarge        = -2
	codeNotInteger      = -3
	codeOverflow        = -4
	codeBufferTooSmall  = -5
	codeIO              = -6
	codeCorruption      = -7
	codeBusy            = -8
	codeFailed          = -9
	codeInternal        = -10
	codeWrongType       = -11
)

// CodeClosed is the Code of an *Error returned by a call on a closed DB.
// It is not a dbkv status: the C library never sees such a call.
const CodeClosed = -100

// Sentinel errors, one per dbkv status, matched with errors.Is against the
// *Error values the methods return (never compare with ==). The first six
// are outcomes rather than failures in the C API: a method returns them
// only where the outcome means the call could not do what was asked (Get
// of a missing key, Lock held by another owner, SetFenced with a token that
// no longer holds the lock). ErrExists and ErrMismatch are never returned,
// since SetNX and CAS report those outcomes as false; nor is
// ErrBufferTooSmall, which Get handles itself. ErrWrongType comes from a
// key holding a list or sorted set, which only `dbkv serve` writes.
var (
	ErrNotFound        error = errors.New("dbkv: not found")
	ErrExists          error = errors.New("dbkv: key exists")
	ErrLocked          error = errors.New("dbkv: locked by another owner")
	ErrNotOwner        error = errors.New("dbkv: lock held by another owner")
	ErrMismatch        error = errors.New("dbkv: value does not match the expected value")
	ErrStaleToken      error = errors.New("dbkv: stale fencing token")
	ErrInvalidArgument error = errors.New("dbkv: invalid argument")
	ErrTooLarge        error = errors.New("dbkv: key or value too large")
	ErrNotInteger      error = errors.New("dbkv: value is not an integer")
	ErrOverflow        error = errors.New("dbkv: integer overflow")
	ErrBufferTooSmall  error = errors.New("dbkv: buffer too small")
	ErrIO              error = errors.New("dbkv: I/O error")
	ErrCorruption      error = errors.New("dbkv: data corruption")
	ErrBusy            error = errors.New("dbkv: data directory is in use")
	ErrFailed          error = errors.New("dbkv: engine failed after an I/O error and accepts no writes")
	ErrInternal        error = errors.New("dbkv: internal error")
	ErrWrongType       error = errors.New("dbkv: wrong type: the key holds a list or sorted set")
	ErrClosed          error = errors.New("dbkv: database is closed")
)

var sentinels = map[int]error{
	codeNotFound:        ErrNotFound,
	codeExists:          ErrExists,
	codeLocked:          ErrLocked,
	codeNotOwner:        ErrNotOwner,
	codeMismatch:        ErrMismatch,
	codeStaleToken:      ErrStaleToken,
	codeInvalidArgument: ErrInvalidArgument,
	codeTooLarge:        ErrTooLarge,
	codeNotInteger:      ErrNotInteger,
	codeOverflow:        ErrOverflow,
	codeBufferTooSmall:  ErrBufferTooSmall,
	codeIO:              ErrIO,
	codeCorruption:      ErrCorruption,
	codeBusy:            ErrBusy,
	codeFailed:          ErrFailed,
	codeInternal:        ErrInternal,
	codeWrongType:       ErrWrongType,
	CodeClosed:          ErrClosed,
}

// Error is the error every DB method returns.
type Error struct {
	// Code is the dbkv status (a DBKV_* value of dbkv.h), or CodeClosed.
	Code int
	// Op names the operation, after the C function: "get", "extend_lock".
	Op string
	// Message is the detailed message dbkv gave for this very call (what
	// dbkv_last_error returned right after it failed, on the same thread),
	// or the status description for outcomes such as not found.
	Message string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("dbkv: ")
	if e.Op != "" {
		b.WriteString(e.Op)
		b.WriteString(": ")
	}
	b.WriteString(e.Message)
	return b.String()
}

// Is reports whether target is the sentinel error for e's Code, so that
// errors.Is(err, ErrNotFound) works on any *Error.
func (e *Error) Is(target error) bool {
	s, ok := sentinels[e.Code]
	return ok && s == target
}

// newError builds an *Error for a status code. A blank message (which dbkv
// never gives for a failure, but costs nothing to handle) falls back to
// the static description, so Error() always says something.
func newError(op string, code int, msg string) *Error {
	if msg == "" {
		msg = statusText(code)
	}
	return &Error{Code: code, Op: op, Message: msg}
}

func invalidArgument(op, msg string) *Error {
	return &Error{Code: codeInvalidArgument, Op: op, Message: "invalid argument: " + msg}
}

func closedError(op string) *Error {
	return &Error{Code: CodeClosed, Op: op, Message: "database is closed"}
}
