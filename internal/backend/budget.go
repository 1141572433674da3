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
// reservation for the buffers it grows, released when the call is done
// with them. Reservations wait for room rather than fail, except where
// waiting could never end: a response larger than the whole budget, or
// one whose growth would leave every reservation waiting for another.
// It is safe for concurrent use; the zero value is not usable.
type Budget struct {
	name  string // the config key, for errors
	total int64

	mu      sync.Mutex
	avail   int64
	peak    int64           // the most ever reserved at once
	holders int             // reservations holding bytes
	waiters []*budgetWaiter // first reservations waiting, oldest first
	growers []*budgetWaiter // holders waiting to grow, oldest first
}

type budgetWaiter struct {
	n     int64
	ready chan error // receives nil once n bytes were granted, or why not
}

// NewBudget returns a budget of total bytes; name is the setting that
// configures it, which errors quote.
func NewBudget(total int64, name string) *Budget {
	return &Budget{name: name, total: total, avail: total}
}

// acquire waits, in arrival order and behind holders waiting to grow, for
// a reservation's first n bytes, until ctx ends.
func (b *Budget) acquire(ctx context.Context, n int64) error {
	if n > b.total {
		return b.exceeded(n)
	}
	b.mu.Lock()
	if len(b.growers) == 0 && len(b.waiters) == 0 && n <= b.avail {
		b.take(n)
		b.holders++
		b.mu.Unlock()
		return nil
	}
	w := &budgetWaiter{n: n, ready: make(chan error, 1)}
	b.waiters = append(b.waiters, w)
	b.mu.Unlock()
	return b.wait(ctx, w, &b.waiters, true)
}

// grow adds more bytes to a reservation that holds held, waiting for room
// while another holder can still free some.
func (b *Budget) grow(ctx context.Context, held, more int64) error {
	if held+more > b.total {
		return b.exceeded(held + more)
	}
	b.mu.Lock()
	if more <= b.avail {
		b.take(more)
		b.mu.Unlock()
		return nil
	}
	if len(b.growers)+1 >= b.holders {
		// Every other holder already waits to grow: none would ever free
		// room.
		b.mu.Unlock()
		return b.exceeded(held + more)
	}
	w := &budgetWaiter{n: more, ready: make(chan error, 1)}
	b.growers = append(b.growers, w)
	b.mu.Unlock()
	return b.wait(ctx, w, &b.growers, false)
}

// wait waits for w in queue q. first says whether w is a reservation's
// first bytes.
func (b *Budget) wait(ctx context.Context, w *budgetWaiter, q *[]*budgetWaiter, first bool) error {
	select {
	case err := <-w.ready:
		return err
	case <-ctx.Done():
	}
	b.mu.Lock()
	for i, x := range *q {
		if x == w {
			*q = append((*q)[:i], (*q)[i+1:]...)
			b.mu.Unlock()
			// One waiter fewer may let the next one in, or leave the
			// growers all waiting on one another.
			b.release(0, false)
			return ctx.Err()
		}
	}
	b.mu.Unlock()
	if err := <-w.ready; err == nil {
		b.release(w.n, first) // granted meanwhile: give it back
	}
	return ctx.Err()
}

// release gives back n bytes; ends says the reservation now holds none.
func (b *Budget) release(n int64, ends bool) {
	b.mu.Lock()
	b.avail += n
	if ends {
		b.holders--
	}
	type grant struct {
		w   *budgetWaiter
		err error
	}
	var wake []grant
	// Holders waiting to grow go first: granting them lets calls finish.
	for i := 0; i < len(b.growers); {
		if w := b.growers[i]; w.n <= b.avail {
			b.take(w.n)
			b.growers = append(b.growers[:i], b.growers[i+1:]...)
			wake = append(wake, grant{w, nil})
			continue
		}
		i++
	}
	for len(b.growers) == 0 && len(b.waiters) > 0 && b.waiters[0].n <= b.avail {
		w := b.waiters[0]
		b.waiters = b.waiters[1:]
		b.take(w.n)
		b.holders++
		wake = append(wake, grant{w, nil})
	}
	// If every holder waits to grow, none can: fail the newest, whose
	// release then lets the others on.
	if n := len(b.growers); n > 0 && n >= b.holders {
		w := b.growers[n-1]
		b.growers = b.growers[:n-1]
		wake = append(wake, grant{w, b.exceeded(b.total - b.avail + w.n)})
	}
	b.mu.Unlock()
	for _, g := range wake {
		g.w.ready <- g.err
	}
}

// take reserves n bytes; b.mu is held and n fits.
func (b *Budget) take(n int64) {
	b.avail -= n
	b.peak = max(b.peak, b.total-b.avail)
}

// Usage reports the bytes reserved now and the most ever reserved at once.
func (b *Budget) Usage() (now, peak int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.total - b.avail, b.peak
}

func (b *Budget) exceeded(n int64) error {
	return fmt.Errorf("%w: %d bytes needed, %s is %d", ErrOverBudget, n, b.name, b.total)
}

// reservation is what one call holds of a Budget while it buffers a
// response. It is used by one goroutine; release must be called once the
// buffers are no longer needed, and may be called more than once.
type reservation struct {
	b    *Budget // nil: no budget
	held int64
}

// reserve makes the reservation cover n bytes in all, waiting for room.
func (r *reservation) reserve(ctx context.Context, n int64) error {
	if r == nil || r.b == nil || n <= r.held {
		return nil
	}
	var err error
	if r.held == 0 {
		err = r.b.acquire(ctx, n)
	} else {
		err = r.b.grow(ctx, r.held, n-r.held)
	}
	if err == nil {
		r.held = n
	}
	return err
}

// release gives back everything held.
func (r *reservation) release() {
	if r == nil || r.b == nil || r.held == 0 {
		return
	}
	r.b.release(r.held, true)
	r.held = 0
}

// Hold keeps the budget that calls' responses were charged to until
// Release, for a caller that goes on holding the results (writing them to
// its own client, say): the budget then bounds them there too. Without a
// Hold in its context a call gives its reservation back as it returns.
// A Hold is safe for concurrent use; Release is idempotent.
type Hold struct {
	mu       sync.Mutex
	held     []*reservation
	released bool
}

type holdKey struct{}

// WithHold returns a context whose calls leave their reservations with
// the returned Hold. The caller must call Release.
func WithHold(ctx context.Context) (context.Context, *Hold) {
	h := new(Hold)
	return context.WithValue(ctx, holdKey{}, h), h
}

// keep hands r to the Hold in ctx, if any, and reports whether it did.
func keep(ctx context.Context, r *reservation) bool {
	h, _ := ctx.Value(holdKey{}).(*Hold)
	if h == nil || r.b == nil {
		return false
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.released {
		return false
	}
	h.held = append(h.held, r)
	return true
}

// Release gives back what the calls left with h.
func (h *Hold) Release() {
	h.mu.Lock()
	held := h.held
	h.held, h.released = nil, true
	h.mu.Unlock()
	for _, r := range held {
		r.release()
	}
}
