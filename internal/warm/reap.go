package warm

import (
	"errors"
	"sync"
	"time"
)

// reap runs Sweep every SweepInterval until Close.
func (p *Pool) reap() {
	defer close(p.reaped)
	t := time.NewTicker(p.opts.SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-p.life.Done():
			return
		case <-t.C:
			p.Sweep()
		}
	}
}

// Sweep closes every session no request has used for IdleTimeout, and
// every idle one past MaxAge, and returns how many it closed. The reaper
// calls it; tests with a fake clock may too. No lock is held while the
// sessions close.
func (p *Pool) Sweep() int {
	now := p.opts.Now()
	var idle []*entry
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return 0
	}
	for _, ip := range p.ids {
		for _, e := range ip.entries {
			if !e.held() && (now.Sub(e.lastUsed) >= p.opts.IdleTimeout || !p.usable(e, now)) {
				idle = append(idle, e)
			}
		}
	}
	for _, e := range idle {
		p.removeLocked(e)
	}
	p.counts.reaped += uint64(len(idle))
	p.mu.Unlock()
	closeAll(p, idle, "idle")
	if len(idle) > 0 {
		p.log.Debug("closed idle warm sessions", "count", len(idle))
	}
	return len(idle)
}

// closeAll closes the sessions at once and joins their errors.
func closeAll(p *Pool, es []*entry, why string) error {
	errs := make([]error, len(es))
	var wg sync.WaitGroup
	for i, e := range es {
		wg.Go(func() { errs[i] = p.closeSession(e, why) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Close stops the reaper and the builds under way, and closes every
// pooled session exactly once, letting the requests in flight on them
// finish. Acquire fails with ErrClosed from the start of Close. Later
// calls wait for the first and return its result.
func (p *Pool) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		<-p.done
		return p.closeErr
	}
	p.closed = true
	var all []*entry
	for _, ip := range p.ids {
		for _, e := range ip.entries {
			e.gone = true
			all = append(all, e)
		}
	}
	p.ids = make(map[string]*identityPool)
	p.total = 0
	p.signalLocked() // waiters see the pool closed
	p.mu.Unlock()
	p.stop()
	<-p.reaped
	err := closeAll(p, all, "shutdown")
	p.bg.Wait() // builds (which close what they built) and eviction closes
	p.closeErr = err
	close(p.done)
	return err
}

// Stats is a snapshot of a Pool, for /status and the metrics. It holds
// counts only: no identity, no session ID.
type Stats struct {
	Sessions int `json:"sessions"` // pooled and initialized
	Busy     int `json:"busy"`     // of which serving a request now
	// Listened are the sessions a subscriptions/listen stream holds; one
	// serving no request is not Busy: requests may have it.
	Listened       int `json:"listened"`
	Building       int `json:"building"`   // being initialized
	Identities     int `json:"identities"` // identities with a session or a build
	MaxSessions    int `json:"maxSessions"`
	MaxPerIdentity int `json:"maxPerIdentity"`
	// What each Acquire got, since the pool started.
	Hits    uint64 `json:"hits"`    // an idle session of its identity
	Shared  uint64 `json:"shared"`  // a busy one, the identity being at its bound
	Misses  uint64 `json:"misses"`  // a new session (one initialize per backend)
	Evicted uint64 `json:"evicted"` // a new session, in place of another identity's idle one
	Refused uint64 `json:"refused"` // ErrExhausted
	Failed  uint64 `json:"failed"`  // a build that failed
	// Reaped counts sessions closed for being idle or too old.
	Reaped uint64 `json:"reaped"`
}

// counters are the Stats totals, guarded by Pool.mu.
type counters struct {
	hits, shared, misses, evicted, refused, failed, reaped uint64
}

// Stats returns a snapshot of the pool.
func (p *Pool) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	st := Stats{
		Identities: len(p.ids), MaxSessions: p.opts.MaxSessions, MaxPerIdentity: p.opts.MaxPerIdentity,
		Hits: p.counts.hits, Shared: p.counts.shared, Misses: p.counts.misses, Evicted: p.counts.evicted,
		Refused: p.counts.refused, Failed: p.counts.failed, Reaped: p.counts.reaped,
	}
	for _, ip := range p.ids {
		st.Building += ip.building
		st.Sessions += len(ip.entries)
		for _, e := range ip.entries {
			if e.busy > 0 {
				st.Busy++
			}
			if e.listeners > 0 {
				st.Listened++
			}
		}
	}
	return st
}
