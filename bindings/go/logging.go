package dbkv

/*
#include <stdlib.h>
#include <dbkv.h>
*/
import "C"

import (
	"context"
	"log/slog"
	"sync/atomic"
	"unsafe"
)

// logBufferSize is how many messages wait for the pump before the oldest
// are dropped (the next message delivered says how many).
const logBufferSize = 4096

// logPump carries the library's log messages to a *slog.Logger. dbkv logs
// from its own threads, where calling back into Go would be a cgo callback
// on every path that can log (a WAL rotation inside Set, for one); instead
// the library queues messages in a dbkv_log_buffer and this goroutine pops
// them, so no dbkv call ever re-enters Go.
type logPump struct {
	buf     *C.dbkv_log_buffer
	level   C.int
	logger  *slog.Logger
	started bool
	stopped atomic.Bool
	done    chan struct{}
}

// newLogPump creates the buffer; the caller attaches it to the options.
// The library produces only the levels the logger enables.
func newLogPump(l *slog.Logger) *logPump {
	p := &logPump{logger: l, done: make(chan struct{}), level: minLevel(l)}
	if rc := C.dbkv_log_buffer_new(logBufferSize, &p.buf); rc != codeOK {
		// Only a bad capacity fails, and the capacity is a constant.
		panic("dbkv: dbkv_log_buffer_new failed")
	}
	return p
}

// minLevel is the least severe dbkv level the logger enables.
func minLevel(l *slog.Logger) C.int {
	ctx := context.Background()
	for _, lv := range []struct {
		c C.int
		s slog.Level
	}{{C.DBKV_LOG_DEBUG, slog.LevelDebug}, {C.DBKV_LOG_INFO, slog.LevelInfo}, {C.DBKV_LOG_WARN, slog.LevelWarn}} {
		if l.Enabled(ctx, lv.s) {
			return lv.c
		}
	}
	return C.DBKV_LOG_ERROR
}

func slogLevel(level C.int) slog.Level {
	switch level {
	case C.DBKV_LOG_ERROR:
		return slog.LevelError
	case C.DBKV_LOG_WARN:
		return slog.LevelWarn
	case C.DBKV_LOG_INFO:
		return slog.LevelInfo
	default:
		return slog.LevelDebug
	}
}

// start runs the pump until stop. A nil pump (no Logger) does nothing.
func (p *logPump) start() {
	if p == nil {
		return
	}
	p.started = true
	go p.run()
}

func (p *logPump) run() {
	defer close(p.done)
	for {
		// Wait a little for a message, so stop is noticed promptly.
		if p.deliver(100) {
			continue
		}
		if p.stopped.Load() {
			p.drain()
			return
		}
	}
}

// deliver pops one message (waiting up to timeoutMS) and logs it.
func (p *logPump) deliver(timeoutMS C.uint32_t) bool {
	var level C.int
	var msg *C.char
	if C.dbkv_log_buffer_pop(p.buf, timeoutMS, &level, &msg) != codeOK {
		return false
	}
	text := C.GoString(msg)
	C.dbkv_free(unsafe.Pointer(msg))
	p.logger.Log(context.Background(), slogLevel(level), text, slog.String("source", "dbkv"))
	return true
}

func (p *logPump) drain() {
	for p.deliver(0) {
	}
}

// stop delivers what is queued and frees the buffer; call it after the
// handle is closed (or its open failed), so nothing logs any more. A nil
// pump does nothing.
func (p *logPump) stop() {
	if p == nil {
		return
	}
	if p.stopped.Swap(true) {
		return
	}
	if p.started {
		<-p.done // run drains the buffer before it returns
	} else {
		p.drain()
	}
	C.dbkv_log_buffer_free(p.buf)
	p.buf = nil
}
