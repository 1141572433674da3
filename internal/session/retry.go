package session

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/vmcp/vmcp/internal/recovery"
)

// Backoff is how a session spaces its retries of the backends it could not
// connect: the first comes after about Initial, each next one after twice
// the last, up to Max. Each wait is jittered (half to all of it), so that
// sessions started together do not retry in step.
type Backoff struct {
	Initial time.Duration // default 1s
	Max     time.Duration // default 30s
}

// Default retry backoff.
const (
	DefaultRetryInitial = time.Second
	DefaultRetryMax     = 30 * time.Second
)

// retryWarnEvery is the least time between two warnings of one session that
// a backend is still down: a stdio backend whose command has a typo fails
// every retry at once, and must not fill the log.
const retryWarnEvery = 10 * time.Minute

func (b Backoff) withDefaults() Backoff {
	if b.Initial <= 0 {
		b.Initial = DefaultRetryInitial
	}
	if b.Max <= 0 {
		b.Max = DefaultRetryMax
	}
	b.Max = max(b.Max, b.Initial)
	return b
}

// retrier is a session's background retry loop. At most one runs at a
// time; the session owns it: Close stops it and waits for it.
type retrier struct {
	mu      sync.Mutex
	running bool
	stopped bool
	ctx     context.Context // ends when the session closes
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// retryLater starts the session's retry loop unless it is running or the
// session is closing. The loop connects, in the background, the backends the
// outage lists, until none is left.
func (s *Session) retryLater() {
	r := &s.retry
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.running || r.stopped {
		return
	}
	if r.ctx == nil {
		r.ctx, r.cancel = context.WithCancel(context.Background())
	}
	r.running = true
	r.wg.Go(func() {
		returned := false
		defer func() {
			if !returned { // it panicked: the next outage starts a loop
				r.mu.Lock()
				r.running = false
				r.mu.Unlock()
			}
		}()
		defer recovery.Recover(s.factory.log, nil, "during", "backend retry")
		s.retryLoop(r.ctx, s.factory.opts.Retry.withDefaults())
		returned = true
	})
}

// stopRetry ends the retry loop, cancelling a connect under way, and waits
// for it. No loop starts afterwards.
func (s *Session) stopRetry() {
	r := &s.retry
	r.mu.Lock()
	r.stopped = true
	if r.cancel != nil {
		r.cancel()
	}
	r.mu.Unlock()
	r.wg.Wait()
}

func (s *Session) retryLoop(ctx context.Context, b Backoff) {
	log := s.factory.log
	delay := b.Initial
	warned := time.Now() // New or the reload that failed has just warned
	t := time.NewTimer(jitter(delay))
	defer t.Stop()
	for attempt := 1; ; attempt++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		failed := s.retryFailed(ctx)
		if ctx.Err() != nil {
			return
		}
		// Whether to go on is decided under the lock retryLater takes,
		// after the outage is published: a reload that leaves a backend
		// unavailable either sees this loop running or starts another.
		s.retry.mu.Lock()
		if len(s.Unavailable()) == 0 {
			s.retry.running = false
			s.retry.mu.Unlock()
			return
		}
		s.retry.mu.Unlock()
		if len(failed) > 0 {
			if time.Since(warned) >= retryWarnEvery {
				warned = time.Now()
				log.Warn("backends are still unavailable to a session; retrying in the background", "backends", failed, "attempts", attempt, "session", s.seq)
			} else {
				log.Debug("backend retry failed", "backends", failed, "attempt", attempt, "session", s.seq)
			}
		}
		delay = min(delay*2, b.Max)
		t.Reset(jitter(delay))
	}
}

// jitter is a random duration from d/2 to d.
func jitter(d time.Duration) time.Duration {
	return d/2 + rand.N(d/2+1)
}

// retryFailed tries once to connect the backends the session's outage
// lists, on the path a reload connects them by, with no lock held across
// the connects; a backend whose breaker is open is skipped by that path at
// once. If any connected, the session takes them in as a reload would
// (publish: catalog, list_changed, outage, hooks). It returns those that
// failed, as "name: category" (no backend text). It counts as a call in
// flight.
func (s *Session) retryFailed(ctx context.Context) (failed []string) {
	if s.acquire() != nil {
		return nil
	}
	defer s.release()
	l, prev := s.lineup.Load(), s.roster.Load()
	if l != s.factory.lineup() {
		return nil // a reload is bringing the session to a newer lineup: it retries them
	}
	down := make(map[string]bool)
	for _, u := range s.Unavailable() {
		down[u.Name] = true
	}
	var add []Backend
	for _, b := range l.Backends {
		if m := prev.byName[b.Name]; down[b.Name] && m != nil && m.current() == nil {
			add = append(add, b)
		}
	}
	if len(add) == 0 {
		return nil
	}
	results := s.connectBackends(ctx, l, add)
	connected := false
	for i, r := range results {
		if r.err != nil {
			failed = append(failed, add[i].Name+": "+reason(r.err))
		} else {
			connected = true
		}
	}
	if !connected {
		for i, r := range results {
			s.factory.hooks.joined(ctx, s, add[i].Name, joinedOnRetry, r.took, r.err)
		}
		return failed
	}
	s.reconfMu.Lock()
	if s.lineup.Load() != l || s.roster.Load() != prev || ctx.Err() != nil {
		// A reload got there first and connected its own; or the session
		// is closing. Closing ends backend sessions: no lock held.
		s.reconfMu.Unlock()
		for _, r := range results {
			if r.client != nil {
				r.client.Close()
			}
		}
		return nil
	}
	defer s.reconfMu.Unlock()
	for i, r := range results {
		if r.err == nil {
			s.factory.log.Info("backend joined the session on a background retry", "backend", add[i].Name, "session", s.seq)
		}
	}
	s.publish(ctx, l, l, prev, add, results, joinedOnRetry)
	return failed
}
