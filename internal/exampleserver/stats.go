package exampleserver

import (
	"sync"
	"sync/atomic"
)

// Stats counts what a server saw. The zero value is ready to use, and all
// methods are safe for concurrent use. One Stats may be shared by several
// servers (for example across [Handler.Forget]), in which case it sums them.
type Stats struct {
	initializes    atomic.Int64
	deletes        atomic.Int64
	active         atomic.Int64
	sessionsClosed atomic.Int64

	mu    sync.Mutex
	calls map[string]int64
}

// Initializes reports how many initialize requests were received. Clients
// that speak protocol 2026-07-28 (for example go-sdk v1.8 clients over
// stdio) use server/discover instead and send none.
func (s *Stats) Initializes() int64 { return s.initializes.Load() }

// Deletes reports how many HTTP DELETE requests were received, whether or not
// they named a known session.
func (s *Stats) Deletes() int64 { return s.deletes.Load() }

// ActiveSessions reports how many MCP sessions are open: initialized (or
// having called a tool, for sessionless protocol versions) and not yet closed.
func (s *Stats) ActiveSessions() int64 { return s.active.Load() }

// SessionsClosed reports how many of the counted sessions have closed.
func (s *Stats) SessionsClosed() int64 { return s.sessionsClosed.Load() }

// Calls reports how many tools/call requests named tool, including calls
// that failed.
func (s *Stats) Calls(tool string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[tool]
}

// The recording methods below accept a nil receiver so that callers need not
// check whether Options.Stats was set.

func (s *Stats) addInitialize() {
	if s != nil {
		s.initializes.Add(1)
	}
}

func (s *Stats) addDelete() {
	if s != nil {
		s.deletes.Add(1)
	}
}

func (s *Stats) addCall(tool string) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.calls == nil {
		s.calls = make(map[string]int64)
	}
	s.calls[tool]++
}

func (s *Stats) sessionOpened() {
	if s != nil {
		s.active.Add(1)
	}
}

func (s *Stats) sessionClosed() {
	if s != nil {
		s.active.Add(-1)
		s.sessionsClosed.Add(1)
	}
}
