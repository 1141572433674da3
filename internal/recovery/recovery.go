// Package recovery keeps a panic on a goroutine that vmcp starts for a
// session or a backend from ending the process: the panic is logged with
// its stack and becomes an error for that goroutine's owner alone.
package recovery

import (
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
)

// ErrPanic is wrapped by the error Recover passes on.
var ErrPanic = errors.New("internal error (recovered panic)")

// Recover must be deferred directly at the top of a goroutine (recover only
// works there). If the goroutine panics, Recover logs the panic at ERROR
// with attrs (say "backend", name) and the stack, then calls fail, if not
// nil, with an error wrapping ErrPanic, so the owner can fail what the
// goroutine served: that backend or that session, not the process.
func Recover(log *slog.Logger, fail func(error), attrs ...any) {
	v := recover()
	if v == nil {
		return
	}
	if log != nil {
		log.Error("recovered from a panic", append(attrs, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))...)
	}
	if fail != nil {
		fail(fmt.Errorf("%w: %v", ErrPanic, v))
	}
}
