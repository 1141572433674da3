package session

import (
	"context"
	"encoding/json"
	"fmt"
)

// A backend may talk to vmcp as soon as its handshake is done, before
// Factory.New has finished building the session (server-everything sends
// notifications/tools/list_changed right after initialized; server-
// filesystem asks for roots). Nothing a backend sends runs against a
// half-built session: the factory closes ready once the members, the
// catalog and the metadata are in place (or the session is closing), and
// what arrives before then waits for it.
//
//   - list_changed: the refresh goroutine waits for ready (refresh.go);
//   - requests (roots, sampling, elicitation): the handler goroutine waits
//     for ready or its context (peer.go);
//   - other notifications (logging, progress, resource updates): held in
//     order, up to maxHeld, and delivered once the session is ready and
//     the client has somewhere to receive them.

// maxHeld and maxHeldBytes bound the notifications held for a session
// (whose client may never open a stream); beyond them the oldest are
// dropped.
const (
	maxHeld      = 64
	maxHeldBytes = 1 << 20
)

// heldNote is a notification waiting for the session to be ready.
type heldNote struct {
	r      *relay
	method string
	params json.RawMessage
}

// markReady opens the session to what its backends send. It is called once
// New has built the session, and by Close; only the first call counts.
func (s *Session) markReady() {
	s.readyOnce.Do(func() { close(s.ready) })
	s.flushHeld()
}

// isReady reports whether markReady has run.
func (s *Session) isReady() bool {
	select {
	case <-s.ready:
		return true
	default:
		return false
	}
}

// awaitReady waits until the session is ready or ctx ends.
func (s *Session) awaitReady(ctx context.Context) error {
	select {
	case <-s.ready:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("waiting for the session to be ready: %w", ctx.Err())
	}
}

// notify delivers a backend's notification, or holds it while the session
// is not ready, or while it has no Peer to take it, or while earlier ones
// are still held (so the order is kept).
func (s *Session) notify(ctx context.Context, r *relay, method string, params json.RawMessage) {
	s.hmu.Lock()
	if len(s.held) == 0 && !s.flushing && s.isReady() {
		s.hmu.Unlock()
		if r.send(ctx, method, params) {
			return
		}
		s.hmu.Lock()
	}
	s.held = append(s.held, heldNote{r: r, method: method, params: params})
	s.heldBytes += len(params)
	for len(s.held) > maxHeld || (s.heldBytes > maxHeldBytes && len(s.held) > 1) {
		s.heldBytes -= len(s.held[0].params)
		s.held = s.held[1:]
	}
	s.hmu.Unlock()
	s.flushHeld() // the session may have become ready meanwhile
}

// flushHeld delivers the held notifications in order, as long as the
// session is ready and each has a Peer. Only one flush runs at a time; no
// lock is held while a Peer is called.
func (s *Session) flushHeld() {
	if !s.isReady() {
		return
	}
	s.hmu.Lock()
	if s.flushing {
		s.hmu.Unlock()
		return
	}
	s.flushing = true
	for len(s.held) > 0 {
		n := s.held[0]
		if n.r.target(n.method, n.params) == nil {
			break
		}
		s.held = s.held[1:]
		s.heldBytes -= len(n.params)
		s.hmu.Unlock()
		n.r.send(context.Background(), n.method, n.params)
		s.hmu.Lock()
	}
	if len(s.held) == 0 {
		s.held = nil
	}
	s.flushing = false
	s.hmu.Unlock()
}
