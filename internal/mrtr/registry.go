package mrtr

import (
	"crypto/rand"
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// ErrFull is returned by Park when as many calls wait as the Registry
// allows.
var ErrFull = errors.New("too many calls waiting for client input")

// Waiting is a call parked while its client gathers input. Expire is
// called, once, when the call waited longer than the Registry allows: it
// must end the call.
type Waiting interface {
	Expire()
}

// Registry holds the calls that wait for a client's retry, each under a
// random ID, for at most a bound of time and up to a bound of calls. A call
// is in the Registry only between rounds: Take removes it while a retry
// serves it, so two retries never serve one call. Safe for concurrent use.
type Registry[W Waiting] struct {
	max  int
	wait time.Duration

	mu      sync.Mutex
	entries map[string]*entry[W]
	closed  bool
	expired atomic.Uint64 // calls that waited too long (not those Close ended)
}

type entry[W Waiting] struct {
	w     W
	timer *time.Timer
}

// NewRegistry returns a Registry of at most max calls, each waiting at most
// wait.
func NewRegistry[W Waiting](max int, wait time.Duration) *Registry[W] {
	return &Registry[W]{max: max, wait: wait, entries: make(map[string]*entry[W])}
}

// NewID returns a fresh call ID.
func NewID() string { return rand.Text() }

// Park puts w in the Registry under id until Take or its expiry.
func (r *Registry[W]) Park(id string, w W) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed || len(r.entries) >= r.max {
		return ErrFull
	}
	e := &entry[W]{w: w}
	e.timer = time.AfterFunc(r.wait, func() {
		r.mu.Lock()
		cur, ok := r.entries[id]
		if ok && cur == e {
			delete(r.entries, id)
		}
		r.mu.Unlock()
		if ok && cur == e {
			r.expired.Add(1)
			w.Expire()
		}
	})
	r.entries[id] = e
	return nil
}

// Take removes the call parked under id and returns it.
func (r *Registry[W]) Take(id string) (W, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.entries[id]
	if !ok {
		var zero W
		return zero, false
	}
	delete(r.entries, id)
	e.timer.Stop()
	return e.w, true
}

// Len returns how many calls wait.
func (r *Registry[W]) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.entries)
}

// Expired returns how many calls were expired for waiting too long.
func (r *Registry[W]) Expired() uint64 { return r.expired.Load() }

// Close expires every waiting call and refuses new ones.
func (r *Registry[W]) Close() {
	r.mu.Lock()
	r.closed = true
	all := r.entries
	r.entries = make(map[string]*entry[W])
	r.mu.Unlock()
	for _, e := range all {
		if e.timer.Stop() {
			e.w.Expire()
		}
	}
}
