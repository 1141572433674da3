package session

import (
	"context"
	"time"

	"github.com/vmcp/vmcp/internal/recovery"
)

// refreshTimeout bounds one catalog refresh after a list_changed.
const refreshTimeout = 30 * time.Second

// refresh re-lists one backend after it said its list changed, recomputes
// the session's catalog, and tells the client. It runs in the background as
// a call of the session, so Close waits for it; refreshes of one session
// are serialised so the catalog never goes back in time. A backend may say
// so during its handshake: the refresh then waits until the session is
// ready, so it reads complete members and its catalog replaces New's.
func (s *Session) refresh(backendName, method string) {
	if s.acquire() != nil {
		return
	}
	go func() {
		defer s.release()
		defer recovery.Recover(s.factory.log, nil, "backend", backendName, "during", "catalog refresh")
		<-s.ready
		s.refreshMu.Lock()
		defer s.refreshMu.Unlock()
		m := s.member(backendName)
		if m == nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), refreshTimeout)
		defer cancel()
		c := m.settled(ctx)
		if c == nil {
			return
		}
		caps := s.backendCapabilities(backendName)
		listing, err := s.factory.list(ctx, c, backendName, caps)
		if err != nil {
			s.factory.log.Warn("refreshing catalog after list_changed", "backend", backendName, "err", err)
			return
		}
		if s.member(backendName) != m {
			return // a reload removed or replaced the backend meanwhile
		}
		cats := s.catalogs()
		listing = cats.intern(listing)
		s.lmu.Lock()
		s.listings[backendName] = listing
		all := s.listingsLocked()
		s.lmu.Unlock()
		cat, _, err := cats.catalog(all)
		if err != nil {
			s.factory.log.Warn("catalog refresh left unresolved conflicts; keeping the previous catalog", "backend", backendName, "err", err)
			return
		}
		s.catalog.Store(cat)
		// Held, like the backend's own notifications, until the client
		// has a stream to take it.
		s.notify(ctx, &relay{s: s, backend: backendName}, method, nil)
	}()
}

// backendCapabilities returns what a backend answered to initialize.
func (s *Session) backendCapabilities(name string) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, b := range s.meta.Backends {
		if b.Name == name {
			return b.Capabilities
		}
	}
	return nil
}
