package session

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/vmcp/vmcp/internal/backend"
	"github.com/vmcp/vmcp/internal/recovery"
)

// member is one backend inside a session: its connector and the live
// client the session owns. It replaces that client when the backend lost
// the session or went away (reinit.go) and may keep it alive with pings
// (keepalive.go).
type member struct {
	name      string
	connector backend.Connector
	s         *Session
	breaker   *Breaker   // shared by all sessions; nil: none
	keepalive *Keepalive // nil: no pings
	traceMeta bool       // trace context in params._meta (Backend.TraceInParams)
	// credentials resolve the backend's credential; nil: none.
	credentials Credentials

	mu      sync.Mutex
	client  backend.Client   // nil when not connected
	suspect backend.Client   // the client, after a call on it found the backend unreachable
	creds   CredentialSource // the session's credential for the backend; nil: none (yet)
	flight  *flight          // the replacement of client under way, if any
	// inUse counts the calls under way on each client. A client replaced
	// while calls are under way on it is retired: closed when the last of
	// them ends, so that one call's replacement never cuts off another
	// call whose request was sent (it could not be re-sent: at most once).
	inUse   map[backend.Client]int
	retired map[backend.Client]bool
	closed  bool
	// removed is set when a reload dropped or replaced the backend:
	// new calls fail at once, and calls counts those still under way.
	removed bool
	calls   sync.WaitGroup
	stop    chan struct{}  // closed by close: ends the keepalive loop
	wg      sync.WaitGroup // keepalive loop, replacements, closing replaced clients
}

func newMember(s *Session, b Backend, r backendInit) *member {
	return &member{
		name: b.Name, connector: b.Connector, s: s,
		breaker: b.Breaker, keepalive: b.Keepalive, credentials: b.Credentials, traceMeta: b.TraceInParams,
		client: r.client, creds: r.creds, stop: make(chan struct{}),
	}
}

// settled is the current client once any replacement under way has
// finished: a backend may announce list_changed during the handshake of
// the client replacing the old one, and that list is the new client's.
func (m *member) settled(ctx context.Context) backend.Client {
	m.mu.Lock()
	f := m.flight
	m.mu.Unlock()
	if f != nil {
		select {
		case <-f.done:
		case <-ctx.Done():
			return nil
		}
	}
	return m.current()
}

func (m *member) current() backend.Client {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.client
}

// call sends one request within the session's call limit. When the backend
// has lost the session (404, "session not found"), or refused the
// credential (401, 403) of a backend with outgoing credentials, the client
// is replaced (with fresh credentials) and the call retried once. A client
// with no connection yet, or one a previous call found unreachable, is
// checked (and if need be replaced) before the call. A result served by a replacement client says so in its
// _meta, because the backend state the client built up is gone. retried
// reports that the request went out on a replacement client.
func (m *member) call(ctx context.Context, method string, params json.RawMessage) (res json.RawMessage, retried bool, err error) {
	if err := m.enter(); err != nil {
		return nil, false, err
	}
	defer m.calls.Done()
	// The limiter the call took its slot from gets it back, whatever a
	// reload has made the session's limiter meanwhile.
	limiter := m.s.limiter.Load()
	if err := limiter.acquire(ctx); err != nil {
		return nil, false, err
	}
	defer limiter.release()

	m.mu.Lock()
	c, suspect := m.client, m.suspect != nil && m.suspect == m.client
	m.mu.Unlock()
	replaced := false
	if c == nil || suspect {
		nc, err := m.replace(ctx, c, suspect, false)
		if err != nil {
			return nil, false, err
		}
		c, replaced = nc, nc != c
	}
	res, err = m.callOn(ctx, c, method, params)
	m.breaker.record(err, false)
	if refused := m.refused(err); !replaced && (refused || m.lost(c, err)) {
		nc, rerr := m.replace(ctx, c, false, refused)
		if rerr != nil {
			return nil, false, fmt.Errorf("%w; re-initializing failed: %w", err, rerr)
		}
		c, replaced = nc, true
		res, err = m.callOn(ctx, c, method, params)
		m.breaker.record(err, false)
	}
	if errors.Is(err, backend.ErrUnavailable) {
		m.markSuspect(c)
	}
	if err != nil {
		return nil, replaced, m.scrub(err)
	}
	if replaced && !backend.Stateless(c) {
		// The backend's state is lost: say so in the result's _meta. A
		// 2026-07-28 backend kept none.
		res, _ = withMeta(res, MetaBackendReinitialized, []string{m.name})
	}
	return res, replaced, nil
}

// lost reports whether a call on c failed because c no longer has a
// backend session, in a way that says the backend did not run it: the
// backend forgot the session, or another call had already replaced c and
// closed it before this call was sent. A call whose client closed while it
// was under way (ErrInFlight) may have run, and is never re-sent; nor is
// one that failed for any other reason (ErrUnavailable after the request
// was written, say).
func (m *member) lost(c backend.Client, err error) bool {
	if errors.Is(err, backend.ErrSessionNotFound) {
		return true
	}
	return errors.Is(err, backend.ErrClosed) && !errors.Is(err, backend.ErrInFlight) && m.current() != c
}

func (m *member) markSuspect(c backend.Client) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.client == c {
		m.suspect = c
	}
}

// close closes the client once, after stopping the keepalive loop and any
// replacement under way; the member cannot be used afterwards. The session
// calls it once no call is in flight.
func (m *member) close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	c, f := m.client, m.flight
	m.client, m.suspect = nil, nil
	m.mu.Unlock()
	close(m.stop)
	if f != nil {
		f.cancel()
	}
	m.wg.Wait()
	// Replaced clients whose calls outlived the session go with it.
	m.mu.Lock()
	retired := m.retired
	m.retired = nil
	m.mu.Unlock()
	for rc := range retired {
		rc.Close()
	}
	if c == nil {
		return nil
	}
	return c.Close()
}

// callOn sends one request on c, counted in c's calls under way.
func (m *member) callOn(ctx context.Context, c backend.Client, method string, params json.RawMessage) (json.RawMessage, error) {
	m.mu.Lock()
	if m.inUse == nil {
		m.inUse = make(map[backend.Client]int)
	}
	m.inUse[c]++
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		last := false
		if m.inUse[c]--; m.inUse[c] <= 0 {
			delete(m.inUse, c)
			last = m.retired[c]
			delete(m.retired, c)
		}
		if last && m.goTrackedLocked(func() { m.closeReplaced(ctx, c) }) {
			last = false
		}
		m.mu.Unlock()
		if last {
			m.closeReplaced(ctx, c) // the member is closing: no goroutine to hand it to
		}
	}()
	return c.Call(ctx, method, params)
}

// retire closes a replaced client now, or once the calls under way on it
// have ended. It runs on a tracked goroutine. ctx is the request that
// replaced c, for the log.
func (m *member) retire(ctx context.Context, c backend.Client) {
	m.mu.Lock()
	if m.inUse[c] > 0 {
		if m.retired == nil {
			m.retired = make(map[backend.Client]bool)
		}
		m.retired[c] = true
		m.mu.Unlock()
		return
	}
	m.mu.Unlock()
	m.closeReplaced(ctx, c)
}

// closeReplaced closes c; ctx is the request whose trace the log line
// joins (the one that replaced c, or the last call on it).
func (m *member) closeReplaced(ctx context.Context, c backend.Client) {
	if err := c.Close(); err != nil {
		m.s.factory.log.DebugContext(ctx, "closing replaced backend client", "backend", m.name, "err", err)
	}
}

// goTracked runs f on a goroutine that close waits for. It reports false,
// and does not run f, once the member is closed. m.mu must be held. A
// panic in f is logged and ends only f.
func (m *member) goTrackedLocked(f func()) bool {
	if m.closed {
		return false
	}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		defer recovery.Recover(m.s.factory.log, nil, "backend", m.name)
		f()
	}()
	return true
}
