package session

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/vmcp/vmcp/internal/backend"
	"github.com/vmcp/vmcp/internal/credentials"
	"github.com/vmcp/vmcp/internal/jsonrpc"
)

// ErrCircuitOpen is wrapped (together with backend.ErrUnavailable) by the
// error for a backend that was not contacted because its circuit breaker is
// open.
var ErrCircuitOpen = errors.New("circuit breaker open after repeated failures")

// BreakerState is the state of a circuit breaker.
type BreakerState int

// Breaker states.
const (
	// BreakerClosed: the backend is used normally.
	BreakerClosed BreakerState = iota
	// BreakerOpen: new connections are refused at once until the cooldown
	// has passed.
	BreakerOpen
	// BreakerHalfOpen: one probe connection is under way; others are
	// refused until it succeeds (closed) or fails (open again).
	BreakerHalfOpen
)

func (s BreakerState) String() string {
	switch s {
	case BreakerClosed:
		return "closed"
	case BreakerOpen:
		return "open"
	case BreakerHalfOpen:
		return "half-open"
	}
	return fmt.Sprintf("BreakerState(%d)", int(s))
}

// BreakerOptions configure a Breaker.
type BreakerOptions struct {
	// Threshold is how many consecutive failures open the breaker;
	// default 5.
	Threshold int
	// Cooldown is how long the breaker stays open before it lets one probe
	// through; default 10s. A probe that reports no outcome within another
	// Cooldown is presumed lost and a new one is let through.
	Cooldown time.Duration
	// Now is the clock; default time.Now. Tests may fake it.
	Now func() time.Time
}

// Breaker is the circuit breaker of one backend, shared by every session.
// It gates new connections to the backend (session initialize and
// re-initialize), so that one dead or hung backend does not make every new
// session wait for its init timeout. Calls on live clients are never
// refused, but their outcomes count.
//
// Failures are connect failures (a refusal of vmcp's credential, 401 or
// 403, among them) and calls that found the backend unreachable;
// JSON-RPC errors and tool errors prove the backend answers and
// count as successes. Failing to obtain a credential (from a token
// endpoint, or for a caller without one) is not the backend's doing and
// does not count. A nil *Breaker allows everything.
//
// All methods are safe for concurrent use.
type Breaker struct {
	opts BreakerOptions

	mu          sync.Mutex
	state       BreakerState
	failures    int // consecutive
	lastFailure time.Time
	lastReason  string    // the last failure's category (backend.Category)
	since       time.Time // when it opened, or when the probe went through
}

// NewBreaker returns a closed Breaker.
func NewBreaker(opts BreakerOptions) *Breaker {
	if opts.Threshold <= 0 {
		opts.Threshold = 5
	}
	if opts.Cooldown <= 0 {
		opts.Cooldown = 10 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Breaker{opts: opts}
}

// Allow reports whether a new connection to the backend may be tried now.
// While the breaker is open it refuses; once the cooldown has passed it
// lets exactly one probe through and goes half-open.
func (b *Breaker) Allow() bool {
	if b == nil {
		return true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	switch b.state {
	case BreakerClosed:
		return true
	case BreakerOpen, BreakerHalfOpen:
		now := b.opts.Now()
		if now.Sub(b.since) < b.opts.Cooldown {
			return false
		}
		b.state, b.since = BreakerHalfOpen, now
		return true
	}
	return false
}

// Success records that the backend answered. It closes the breaker.
func (b *Breaker) Success() {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.state, b.failures = BreakerClosed, 0
}

// Failure records that the backend could not be reached. The Threshold-th
// consecutive failure opens the breaker; a failed probe opens it again.
func (b *Breaker) Failure() { b.fail("") }

// fail is Failure, keeping the failure's category for the log and /status.
func (b *Breaker) fail(reason string) {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.opts.Now()
	b.failures++
	b.lastFailure, b.lastReason = now, reason
	switch {
	case b.state == BreakerHalfOpen,
		b.state == BreakerClosed && b.failures >= b.opts.Threshold:
		b.state, b.since = BreakerOpen, now
	}
}

// State returns the current state.
func (b *Breaker) State() BreakerState {
	if b == nil {
		return BreakerClosed
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.state
}

// Refusing reports whether Allow would refuse now: the breaker is open
// and cooling down, or its half-open probe is under way.
func (b *Breaker) Refusing() bool {
	if b == nil {
		return false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.state != BreakerClosed && b.opts.Now().Sub(b.since) < b.opts.Cooldown
}

// BreakerHealth is a snapshot of a breaker for /status. It carries no error
// text, so nothing from a backend's answers can leak through it.
type BreakerHealth struct {
	State               string     `json:"state"`
	ConsecutiveFailures int        `json:"consecutiveFailures"`
	LastFailure         *time.Time `json:"lastFailure,omitempty"`
	// LastFailureReason is the last failure's category ("unreachable",
	// "timeout", "http 5xx", "protocol error"…), never the backend's text.
	LastFailureReason string `json:"lastFailureReason,omitempty"`
	// RetryAfter is when an open breaker will let a probe through.
	RetryAfter *time.Time `json:"retryAfter,omitempty"`
}

// Health returns a snapshot of the breaker.
func (b *Breaker) Health() BreakerHealth {
	if b == nil {
		return BreakerHealth{State: BreakerClosed.String()}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	h := BreakerHealth{State: b.state.String(), ConsecutiveFailures: b.failures}
	if !b.lastFailure.IsZero() {
		t := b.lastFailure
		h.LastFailure, h.LastFailureReason = &t, b.lastReason
	}
	if b.state != BreakerClosed {
		t := b.since.Add(b.opts.Cooldown)
		h.RetryAfter = &t
	}
	return h
}

// record counts the outcome of one exchange with the backend. connecting
// is true for initialize (and the listing that follows it): there a timeout
// is the backend's fault, whereas a call may time out because its tool is
// slow.
func (b *Breaker) record(err error, connecting bool) {
	switch outcome(err, connecting) {
	case answered:
		b.Success()
	case unreachable:
		b.fail(backend.Category(err))
	}
}

// RecordConnect counts the outcome of a connect made outside a session
// (the startup probe) as a session's initialize would count.
func (b *Breaker) RecordConnect(err error) { b.record(err, true) }

type exchange int

const (
	inconclusive exchange = iota
	answered
	unreachable
)

func outcome(err error, connecting bool) exchange {
	switch {
	case errors.Is(err, backend.ErrUnauthorized):
		// A refused call leads to new clients with fresh credentials;
		// those connects count. Counting every concurrent refused call
		// too would open the breaker before the first new client.
		if connecting {
			return unreachable
		}
		return inconclusive
	case errors.Is(err, credentials.ErrCredentials):
		return inconclusive
	case err == nil,
		errors.Is(err, backend.ErrSessionNotFound), // it answered: it forgot the session
		jsonrpc.AsError(err) != nil:
		return answered
	case errors.Is(err, context.Canceled), errors.Is(err, backend.ErrClosed),
		errors.Is(err, ErrCircuitOpen), errors.Is(err, backend.ErrProcessLimit):
		return inconclusive // we gave up, not the backend
	case errors.Is(err, backend.ErrUnavailable):
		return unreachable
	case connecting:
		return unreachable // timeouts, malformed handshakes
	}
	return inconclusive
}

// circuitOpen is the error for a backend skipped by its breaker b; it says
// what kind of failure opened it.
func circuitOpen(name string, b *Breaker) error {
	last := ""
	if b != nil {
		b.mu.Lock()
		if b.lastReason != "" {
			last = " (last failure: " + b.lastReason + ")"
		}
		b.mu.Unlock()
	}
	return fmt.Errorf("backend %q: not contacted: %w%s: %w", name, ErrCircuitOpen, last, backend.ErrUnavailable)
}

// reason is the category of a backend's failure as a client or operator
// sees it: "circuit open" for a backend its breaker skipped, else
// backend.Category.
func reason(err error) string {
	switch {
	case errors.Is(err, ErrCircuitOpen):
		return "circuit open"
	case errors.Is(err, credentials.ErrNoIdentity):
		return credentials.ErrNoIdentity.Error() // vmcp's own words, no secret
	case errors.Is(err, credentials.ErrCredentials):
		return "no credential"
	}
	return backend.Category(err)
}
