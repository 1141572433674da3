package backend

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// ErrOverBudget means a response could not be buffered within the
// process-wide budget for buffered backend responses.
var ErrOverBudget = errors.New("backend response over the buffered-bytes budget")

// Budget bounds the bytes of backend responses that all connectors buffer
// at once, so that many concurrent large answers cannot grow the process
// without bound. It is a byte semaphore: a response being read holds a
// reservation for the buffer it grows, released when the call is done
// with it. It is safe for concurrent use; the zero value is not usable.
type Budget struct {
	name  string // the config key, for errors
	total int64

	mu      sync.Mutex
	avail   int64
	waiters []*budgetWaiter // oldest first
}

type budgetWaiter struct {
	n     int64
	ready chan struct{} // closed once n bytes were granted
}

// NewBudget returns a budget of total bytes; name is the setting that
// configures it, which errors quote.
func NewBudget(total int64, name string) *Budget {
	return &Budget{name: name, total: total, avail: total}
}

// acquire waits for n bytes, in arrival order, until ctx ends. A request
// larger than the whole budget fails at once.
func (b *Budget) acquire(ctx context.Context, n int64) error {
	if n > b.total {
		return b.exceeded(n)
	}
	b.mu.Lock()
	if len(b.waiters) == 0 && n <= b.avail {
		b.avail -= n
		b.mu.Unlock()
		return nil
	}
	w := &budgetWaiter{n: n, ready: make(chan struct{})}
	b.waiters = append(b.waiters, w)
	b.mu.Unlock()
	select {
	case <-w.ready:
		return nil
	case <-ctx.Done():
		b.mu.Lock()
		for i, x := range b.waiters {
			if x == w {
				b.waiters = append(b.waiters[:i], b.waiters[i+1:]...)
				b.mu.Unlock()
				return ctx.Err()
			}
		}
		b.mu.Unlock()
		// Granted meanwhile: give it back.
		b.release(n)
		return ctx.Err()
	}
}

// tryAcquire takes n bytes if they are free now. It may go before
// waiters: it grows a reservation whose call, once done, frees it all.
func (b *Budget) tryAcquire(n int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if n > b.avail {
		return false
	}
	b.avail -= n
	return true
}

func (b *Budget) release(n int64) {
	if n == 0 {
		return
	}
	b.mu.Lock()
	b.avail += n
	var wake []*budgetWaiter
	for len(b.waiters) > 0 && b.waiters[0].n <= b.avail {
		w := b.waiters[0]
		b.waiters = b.waiters[1:]
		b.avail -= w.n
		wake = append(wake, w)
	}
	b.mu.Unlock()
	for _, w := range wake {
		close(w.ready)
	}
}

// inUse reports the bytes reserved now (for tests and status).
func (b *Budget) inUse() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.total - b.avail
}

func (b *Budget) exceeded(n int64) error {
	return fmt.Errorf("%w: %d bytes needed, %s is %d", ErrOverBudget, n, b.name, b.total)
}

// reservation is what one call holds of a Budget while it buffers a
// response. The first reserve may wait for room; growing a reservation
// that already holds bytes never waits (two calls each holding part of the
// budget and waiting for more would wait for ever), and fails instead.
// It is used by one goroutine; release must be called once the buffer is
// no longer needed, and may be called more than once.
type reservation struct {
	b    *Budget // nil: no budget
	held int64
}

// reserve makes the reservation cover n bytes in all.
func (r *reservation) reserve(ctx context.Context, n int64) error {
	if r == nil || r.b == nil || n <= r.held {
		return nil
	}
	more := n - r.held
	if r.held == 0 {
		if err := r.b.acquire(ctx, more); err != nil {
			return err
		}
	} else if !r.b.tryAcquire(more) {
		return r.b.exceeded(n)
	}
	r.held = n
	return nil
}

// release gives back everything held.
func (r *reservation) release() {
	if r == nil || r.b == nil {
		return
	}
	r.b.release(r.held)
	r.held = 0
}
