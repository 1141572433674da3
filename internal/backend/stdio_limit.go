package backend

import (
	"errors"
	"fmt"
	"sync/atomic"
)

// ErrProcessLimit means a stdio backend needed a new process while vmcp
// already ran as many as its process limit allows. It is vmcp's own limit,
// not a failure of the backend: the caller may retry later.
var ErrProcessLimit = errors.New("stdio process limit reached")

// ProcessLimit caps the child processes of the stdio connectors that share
// it, warm ones included, so that a burst of sessions cannot spawn without
// end. A nil *ProcessLimit sets no cap. Safe for concurrent use.
type ProcessLimit struct {
	max     int64 // 0: no cap
	running atomic.Int64
}

// NewProcessLimit returns a limit of max processes; 0 sets no cap but still
// counts them.
func NewProcessLimit(max int) *ProcessLimit { return &ProcessLimit{max: int64(max)} }

// Running is the number of children started and not yet reaped.
func (l *ProcessLimit) Running() int {
	if l == nil {
		return 0
	}
	return int(l.running.Load())
}

// Max is the cap; 0 means none.
func (l *ProcessLimit) Max() int {
	if l == nil {
		return 0
	}
	return int(l.max)
}

// acquire takes a slot for one child. Every true must be paired with a
// release once the child is reaped (or failed to start).
func (l *ProcessLimit) acquire() bool {
	if l == nil {
		return true
	}
	for {
		n := l.running.Load()
		if l.max > 0 && n >= l.max {
			return false
		}
		if l.running.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

func (l *ProcessLimit) release() {
	if l != nil {
		l.running.Add(-1)
	}
}

// limitError is the error for a child the limit did not allow; it names the
// setting an operator would change.
func (l *ProcessLimit) limitError() error {
	return fmt.Errorf("%w: %d processes already run, the most server.maxStdioProcesses allows", ErrProcessLimit, l.Max())
}
