package session

import (
	"context"
	"time"

	"github.com/vmcp/vmcp/internal/aggregate"
	"github.com/vmcp/vmcp/internal/recovery"
)

// refreshTimeout bounds one catalog refresh after a list_changed.
const refreshTimeout = 30 * time.Second

// refresh re-lists one backend after it said its list changed, recomputes
// the session's catalog, and tells the client. It runs in the background as
// a call of the session, so Close waits for it. A backend may say so
// during its handshake: the refresh then waits until the session is ready,
// so it reads complete members and its catalog replaces New's. The backend
// is listed with no lock held (a reload publishes meanwhile); the catalog
// never goes back in time, because a listing is published only if no
// refresh of the same backend that started later has published first.
func (s *Session) refresh(backendName, method string) {
	if s.acquire() != nil {
		return
	}
	go func() {
		defer s.release()
		defer recovery.Recover(s.factory.log, nil, "backend", backendName, "during", "catalog refresh")
		<-s.ready
		m := s.member(backendName)
		if m == nil {
			return
		}
		s.lmu.Lock()
		s.refreshSeq++
		seq := s.refreshSeq
		s.lmu.Unlock()
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
		if !s.publishRefresh(m, seq, listing) {
			return
		}
		// Held, like the backend's own notifications, until the client
		// has a stream to take it.
		s.notify(ctx, &relay{s: s, backend: backendName}, method, nil)
	}()
}

// publishRefresh makes listing, fetched by the refresh numbered seq from
// member m, the backend's listing and recomputes the catalog. It reports
// false, changing nothing, if a reload removed or replaced m meanwhile, a
// later refresh of the backend has published already, or the catalog
// would have unresolved conflicts.
func (s *Session) publishRefresh(m *member, seq uint64, listing aggregate.Backend) bool {
	s.refreshMu.Lock()
	defer s.refreshMu.Unlock()
	if s.member(m.name) != m {
		return false // a reload removed or replaced the backend meanwhile
	}
	cats := s.catalogs()
	listing = cats.intern(listing)
	s.lmu.Lock()
	if s.refreshed[m.name] > seq {
		s.lmu.Unlock()
		return false
	}
	if s.refreshed == nil {
		s.refreshed = make(map[string]uint64)
	}
	s.refreshed[m.name] = seq
	s.listings[m.name] = listing
	all := s.listingsLocked()
	s.lmu.Unlock()
	cat, _, err := cats.catalog(all)
	if err != nil {
		s.factory.log.Warn("catalog refresh left unresolved conflicts; keeping the previous catalog", "backend", m.name, "err", err)
		return false
	}
	s.catalog.Store(cat)
	return true
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
