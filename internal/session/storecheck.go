package session

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/vmcp/vmcp/internal/store"
)

// A shared Store is consulted on use, at most every few seconds per
// session: the check slides the session's TTL there and notices a session
// that ended while this replica missed the announcement.

// toucher is a Store that can slide a session's TTL (store.Redis). Touch
// throttles itself: between refreshes it returns nil without a round trip.
type toucher interface {
	Touch(ctx context.Context, id string) error
}

// pinger is a Store that can tell whether it answers (store.Redis).
type pinger interface {
	Ping(ctx context.Context) error
}

// storeProbeEvery is how often, during a Store outage, one probe checks
// whether it is back; held sessions skip the Store meanwhile.
const storeProbeEvery = time.Second

// storeTimeout bounds the background store calls (probes, metadata writes).
const storeTimeout = 5 * time.Second

// storeHealth tracks whether the Store answers, so that an outage is
// logged once and held sessions stop waiting on it. Safe for concurrent
// use. Its clock is the wall clock, not the Manager's (which tests fake):
// outages happen in real time.
type storeHealth struct {
	log *slog.Logger

	mu        sync.Mutex
	down      bool
	nextProbe time.Time
	probing   bool
}

// failed records an unavailable Store, logging the start of an outage.
func (h *storeHealth) failed(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.down {
		h.down = true
		h.log.Warn("session store unavailable: new sessions are refused and sessions held here keep serving until it is back", "err", err)
	}
	h.nextProbe = time.Now().Add(storeProbeEvery)
}

// ok records a Store that answered, logging the end of an outage.
func (h *storeHealth) ok() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.down {
		h.down = false
		h.log.Info("session store reachable again")
	}
}

func (h *storeHealth) isDown() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.down
}

// claimProbe reports whether the caller should probe the Store now: it is
// down, no probe is running and the last one is old enough.
func (h *storeHealth) claimProbe() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.down || h.probing || time.Now().Before(h.nextProbe) {
		return false
	}
	h.probing = true
	return true
}

func (h *storeHealth) probed() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.probing = false
}

// observe feeds the outcome of a Store call that reached (or failed to
// reach) the Store into m.health. A failure caused by the caller's own
// context ending says nothing about the Store.
func (m *Manager) observe(ctx context.Context, err error) {
	switch {
	case err == nil || errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrExists):
		m.health.ok()
	case ctx.Err() != nil:
	case errors.Is(err, store.ErrUnavailable):
		m.health.failed(err)
	}
}

// load reads a session's metadata: ErrNotFound, or an error wrapping
// store.ErrUnavailable.
func (m *Manager) load(ctx context.Context, id string) (*store.Metadata, error) {
	meta, err := m.opts.Store.Get(ctx, id)
	m.observe(ctx, err)
	switch {
	case err == nil:
		return meta, nil
	case errors.Is(err, store.ErrNotFound):
		return nil, ErrNotFound
	default:
		return nil, fmt.Errorf("loading session: %w", err)
	}
}

// checkHeld consults the Store about a session held here before it serves
// a request. It returns ErrNotFound, after closing the runtime, if the
// Store no longer has the session: it was deleted while this replica
// missed the announcement, or it expired there. A Store that is down is
// not waited on: the session keeps serving, and a probe in the background
// finds out when the Store is back.
func (m *Manager) checkHeld(ctx context.Context, s *Session) error {
	t, ok := m.opts.Store.(toucher)
	if !ok {
		return nil
	}
	if m.health.isDown() {
		m.probeStore()
		return nil
	}
	id := s.ID()
	m.mu.Lock()
	dirty := m.dirty[id]
	m.mu.Unlock()
	var err error
	if dirty {
		err = m.persist(ctx, s) // a full write slides the TTL too
	} else {
		err = t.Touch(context.WithoutCancel(ctx), id)
	}
	switch {
	case err == nil:
		return nil
	case errors.Is(err, store.ErrNotFound):
		m.observe(ctx, err)
		m.closeEnded(s)
		return ErrNotFound
	default:
		m.observe(ctx, err)
		return nil
	}
}

// closeEnded closes a held session that the Store says has ended.
func (m *Manager) closeEnded(s *Session) {
	m.mu.Lock()
	if m.live[s.ID()] == s {
		m.detachLocked(s.ID())
	} else {
		s = nil
	}
	m.mu.Unlock()
	if s != nil {
		m.log.Info("closing a session the store no longer has: it ended on another replica, expired, or the store lost it (a restarted Redis without persistence)")
		m.goBackground(func() { s.Close() })
	}
}

// probeStore checks, in the background and at most every storeProbeEvery,
// whether a Store that was down answers again.
func (m *Manager) probeStore() {
	if !m.health.claimProbe() {
		return
	}
	m.goBackground(func() {
		defer m.health.probed()
		p, ok := m.opts.Store.(pinger)
		if !ok {
			m.health.ok() // nothing to probe with: let the next use find out
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
		defer cancel()
		if err := p.Ping(ctx); err != nil {
			m.health.failed(err)
			return
		}
		m.health.ok()
	})
}

// watch makes the Manager persist s's metadata whenever one of its backend
// sessions is replaced, so that another replica resumes the new one.
func (m *Manager) watch(s *Session) {
	s.OnBackendChange(func() {
		m.goBackground(func() {
			ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
			defer cancel()
			if err := m.persist(ctx, s); errors.Is(err, store.ErrNotFound) {
				m.closeEnded(s)
			}
		})
	})
}

// persist writes s's current metadata to the Store (update-if-present, so
// a deleted session is never brought back). A write the Store could not
// take is remembered and retried when the session is next used.
func (m *Manager) persist(ctx context.Context, s *Session) error {
	m.persistMu.Lock() // writes are rare (takeover, re-initialize): one at a time keeps them ordered
	defer m.persistMu.Unlock()
	err := m.opts.Store.Update(context.WithoutCancel(ctx), s.Metadata())
	m.observe(ctx, err)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.live[s.ID()] == s {
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			m.dirty[s.ID()] = true
		} else {
			delete(m.dirty, s.ID())
		}
	}
	return err
}
