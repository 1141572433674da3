package session

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ErrTooManyCalls is returned by a call that found the session's
// concurrent-call limit reached and no slot freed within the queue timeout.
var ErrTooManyCalls = errors.New("too many concurrent calls in this session; retry later")

// CallLimits bound the calls one session has in flight to its backends.
type CallLimits struct {
	// MaxConcurrent is the most calls in flight per session; 0 means no
	// limit.
	MaxConcurrent int
	// QueueTimeout is how long a call beyond the limit waits for a slot
	// before it fails with ErrTooManyCalls; 0 fails it at once.
	QueueTimeout time.Duration
}

// callLimiter is a session's call slots, shared by its members. A nil
// *callLimiter admits everything.
type callLimiter struct {
	slots chan struct{}
	wait  time.Duration
}

func newCallLimiter(l CallLimits) *callLimiter {
	if l.MaxConcurrent <= 0 {
		return nil
	}
	return &callLimiter{slots: make(chan struct{}, l.MaxConcurrent), wait: l.QueueTimeout}
}

// acquire takes a slot, waiting up to the queue timeout. Every nil error
// must be paired with a release.
func (l *callLimiter) acquire(ctx context.Context) error {
	if l == nil {
		return nil
	}
	select {
	case l.slots <- struct{}{}:
		return nil
	default:
	}
	if l.wait <= 0 {
		return ErrTooManyCalls
	}
	t := time.NewTimer(l.wait)
	defer t.Stop()
	select {
	case l.slots <- struct{}{}:
		return nil
	case <-t.C:
		return ErrTooManyCalls
	case <-ctx.Done():
		return fmt.Errorf("waiting for a call slot: %w", ctx.Err())
	}
}

func (l *callLimiter) release() {
	if l != nil {
		<-l.slots
	}
}
