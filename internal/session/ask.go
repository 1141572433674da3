package session

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/vmcp/vmcp/internal/jsonrpc"
)

// askWait bounds how long a backend's request to the client (roots/list,
// typically) that arrives before the client can be asked waits for it. A
// backend such as server-filesystem asks for roots right after its own
// handshake, which runs while the client's initialize is still being
// answered: the client cannot be asked until it has sent
// notifications/initialized and opened a stream that vmcp can send a
// request on. The bound is below the TypeScript SDK's default request
// timeout (60s), so the backend hears a clear error rather than its own
// timeout.
const askWait = 30 * time.Second

// askState tracks whether the client can be sent a request outside a call:
// it has finished its handshake and holds a stream for server-to-client
// messages (the standalone GET stream, or a call's response stream). The
// zero value is a client that cannot be asked yet. Safe for concurrent use.
type askState struct {
	mu          sync.Mutex
	initialized bool
	open        bool          // the session-level Peer has a stream
	calls       int           // calls in flight with a Peer of their own
	closed      bool          // the session is closing: stop waiting
	changed     chan struct{} // closed and replaced on every change
}

// update applies f under the lock and wakes every waiter.
func (a *askState) update(f func()) {
	a.mu.Lock()
	defer a.mu.Unlock()
	f()
	if a.changed != nil {
		close(a.changed)
		a.changed = nil
	}
}

// ready reports whether the client can be asked now, or whether waiting is
// over because the session is closing; otherwise it returns a channel
// closed at the next change.
func (a *askState) ready() (ok, closed bool, changed <-chan struct{}) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return false, true, nil
	}
	if a.initialized && (a.open || a.calls > 0) {
		return true, false, nil
	}
	if a.changed == nil {
		a.changed = make(chan struct{})
	}
	return false, false, a.changed
}

// ClientInitialized tells the session that the client has sent
// notifications/initialized: from now on it may be sent requests. It is
// safe to call more than once.
func (s *Session) ClientInitialized() {
	s.ask.update(func() { s.ask.initialized = true })
}

// PeerOpened tells the session that its session-level Peer can now carry
// requests to the client, because the client opened its standalone stream.
// A stream the client drops later keeps its messages for the client's
// reconnect, so this is not undone.
func (s *Session) PeerOpened() {
	s.ask.update(func() { s.ask.open = true })
}

// callStarted and callEnded count calls whose own stream can carry a
// request to the client.
func (s *Session) callStarted() { s.ask.update(func() { s.ask.calls++ }) }
func (s *Session) callEnded()   { s.ask.update(func() { s.ask.calls-- }) }

// OutlivingRequester is implemented by a call's Peer that can carry a
// request which belongs to no call and so must not end with the call.
type OutlivingRequester interface {
	RequestOutliving(ctx context.Context, method string, params json.RawMessage) (json.RawMessage, error)
}

// askClient sends a request that belongs to no call, once the client can
// be asked: on its standalone stream if it opened one; else on the stream
// of the latest call in flight, without ending with that call (a client
// that opens its standalone stream only after its first call, or never).
func (s *Session) askClient(ctx context.Context, method string, params json.RawMessage) (json.RawMessage, error) {
	s.ask.mu.Lock()
	open := s.ask.open
	s.ask.mu.Unlock()
	if !open {
		if p, ok := s.busyPeer().(OutlivingRequester); ok {
			return p.RequestOutliving(ctx, method, params)
		}
	}
	p := s.Peer()
	if p == nil {
		return nil, jsonrpc.Errorf(jsonrpc.CodeInternalError, "client has no open stream for %s", method)
	}
	return p.Request(ctx, method, params)
}

// stopAsking ends every wait for the client: the session is closing.
func (s *Session) stopAsking() { s.ask.update(func() { s.ask.closed = true }) }

// awaitClient waits, at most askWait, until the client can be asked, ctx
// ends or the session closes. No lock is held while it waits, and the wait
// blocks nothing but the backend's request it serves.
func (s *Session) awaitClient(ctx context.Context, method string) error {
	var t *time.Timer
	for {
		ok, closed, changed := s.ask.ready()
		switch {
		case ok:
			return nil
		case closed:
			return fmt.Errorf("%s: %w", method, ErrClosed)
		case t == nil:
			t = time.NewTimer(askWait)
			defer t.Stop()
		}
		select {
		case <-changed:
		case <-t.C:
			return jsonrpc.Errorf(jsonrpc.CodeInternalError,
				"%s: the client did not finish its handshake and open a stream within %s", method, askWait)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// NotifyBackends sends a client notification that concerns every backend
// (notifications/roots/list_changed) to each connected one, at once, and
// waits until each is sent. A backend that cannot be reached is skipped:
// a notification has no answer to fail.
func (s *Session) NotifyBackends(ctx context.Context, method string, params json.RawMessage) {
	if s.noBackends() != nil || s.acquire() != nil {
		return
	}
	defer s.release()
	var wg sync.WaitGroup
	for _, m := range s.roster.Load().members() {
		c, name := m.current(), m.name
		if c == nil {
			continue
		}
		wg.Go(func() {
			if err := c.Notify(ctx, method, params); err != nil {
				s.factory.log.DebugContext(ctx, "notification to backend not delivered", "backend", name, "method", method, "err", err)
			}
		})
	}
	wg.Wait()
}
