package session

import (
	"context"
	"errors"
	"time"

	"github.com/vmcp/vmcp/internal/backend"
)

// Keepalive makes every session ping its client of one backend with MCP
// ping, so that the backend session does not expire while the vmcp session
// lives.
type Keepalive struct {
	// Interval is the time between pings; required.
	Interval time.Duration
	// MaxFailures consecutive failed pings pause the pings for that
	// backend, with a WARN; default 3. While paused, a probe ping every
	// probeEvery intervals resumes them once one succeeds.
	MaxFailures int
}

// probeEvery is how many intervals a paused keepalive waits between
// probes.
const probeEvery = 4

// minPingTimeout is the least time a ping may take: pings are bounded by
// their interval, but a very short interval must not make a merely busy
// backend look dead.
const minPingTimeout = 5 * time.Second

// startKeepalive starts the member's ping loop if its backend asks for one.
// The loop belongs to the member: close stops it and waits for it.
func (m *member) startKeepalive() {
	k := m.keepalive
	if k == nil || k.Interval <= 0 || backend.Stateless(m.current()) {
		return // a 2026-07-28 backend has no session to keep alive, nor ping
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.goTrackedLocked(func() { m.keepAliveLoop(*k) })
}

func (m *member) keepAliveLoop(k Keepalive) {
	if k.MaxFailures <= 0 {
		k.MaxFailures = 3
	}
	log := m.s.factory.log
	t := time.NewTicker(k.Interval)
	defer t.Stop()
	failures, paused, wait := 0, false, 0
	for {
		select {
		case <-m.stop:
			return
		case <-t.C:
		}
		if paused {
			if wait++; wait < probeEvery {
				continue
			}
			wait = 0
		}
		err, pinged := m.ping(max(k.Interval, minPingTimeout))
		if obs := m.s.factory.opts.Observer; pinged && obs != nil {
			obs.ObserveKeepalive(m.name, err == nil)
		}
		switch {
		case !pinged:
		case err == nil:
			if paused {
				log.Info("keepalive ping answered again; keepalive resumed", "backend", m.name)
			}
			failures, paused = 0, false
		case !paused:
			if failures++; failures >= k.MaxFailures {
				paused, wait = true, 0
				log.Warn("keepalive pings keep failing; keepalive paused for this backend, probing now and then",
					"backend", m.name, "failures", failures, "probeEvery", probeEvery*k.Interval, "err", err)
			}
		}
	}
}

// ping sends one keepalive ping on the current client as a call of the
// session, so that Close waits for it like for any other call. It reports
// false if there was nothing to ping or the session is closing.
func (m *member) ping(timeout time.Duration) (err error, pinged bool) {
	if m.s.acquire() != nil {
		return nil, false
	}
	defer m.s.release()
	c := m.current()
	if c == nil || backend.Stateless(c) {
		return nil, false
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	_, err = c.Call(ctx, "ping", nil)
	m.breaker.record(err, false)
	if errors.Is(err, backend.ErrUnavailable) {
		m.markSuspect(c)
	}
	return err, true
}
