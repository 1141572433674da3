package session

import (
	"context"
	"encoding/json"
	"errors"
	"sync/atomic"
	"testing"
)

// gatedPeer answers every request, noting whether the test had let it be
// asked yet.
type gatedPeer struct {
	allowed atomic.Bool
	asked   atomic.Int32
	early   atomic.Int32
}

func (p *gatedPeer) Notify(context.Context, string, json.RawMessage) {}
func (p *gatedPeer) Request(context.Context, string, json.RawMessage) (json.RawMessage, error) {
	p.asked.Add(1)
	if !p.allowed.Load() {
		p.early.Add(1)
	}
	return json.RawMessage(`{"roots":[{"uri":"file:///w"}]}`), nil
}

func (p *gatedPeer) RequestOutliving(ctx context.Context, method string, params json.RawMessage) (json.RawMessage, error) {
	return p.Request(ctx, method, params)
}

func rootsSession() *Session {
	s := &Session{clientCap: parseClientCaps(json.RawMessage(`{"roots":{}}`)), done: make(chan struct{}), ready: make(chan struct{})}
	s.markReady() // built: only the client's handshake is awaited
	return s
}

// A backend's roots/list from before the client's handshake is relayed
// only once the client has sent notifications/initialized and opened a
// stream.
func TestRequestBeforeTheClientCanBeAskedWaitsForIt(t *testing.T) {
	t.Parallel()
	s := rootsSession()
	p := &gatedPeer{}
	type answer struct {
		res json.RawMessage
		err error
	}
	done := make(chan answer, 1)
	go func() {
		res, err := (&relay{s: s, backend: "files"}).Request(context.Background(), "roots/list", nil)
		done <- answer{res, err}
	}()
	s.SetPeer(p)
	s.ClientInitialized() // not enough: the client holds no stream yet
	p.allowed.Store(true)
	s.PeerOpened()
	a := <-done
	if a.err != nil || string(a.res) != `{"roots":[{"uri":"file:///w"}]}` {
		t.Fatalf("roots/list = %s, %v; want the client's roots", a.res, a.err)
	}
	if p.early.Load() != 0 {
		t.Error("the client was asked before it could be")
	}
}

// A call of the client's own makes it askable on that call's stream.
func TestRequestBeforeTheClientCanBeAskedUsesACallInFlight(t *testing.T) {
	t.Parallel()
	s := rootsSession()
	standalone := &gatedPeer{} // never opened by the client
	s.SetPeer(standalone)
	call := &gatedPeer{}
	call.allowed.Store(true)
	done := make(chan error, 1)
	go func() {
		_, err := (&relay{s: s, backend: "files"}).Request(context.Background(), "roots/list", nil)
		done <- err
	}()
	s.ClientInitialized()
	end := s.trackCall(call, json.RawMessage(`{}`))
	defer end()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if call.asked.Load() != 1 || standalone.asked.Load() != 0 {
		t.Errorf("asked %d times on the call's stream and %d on the unopened standalone one, want 1 and 0",
			call.asked.Load(), standalone.asked.Load())
	}
}

func TestRequestWaitingForTheClientEndsWithTheSession(t *testing.T) {
	t.Parallel()
	s := rootsSession()
	done := make(chan error, 1)
	go func() {
		_, err := (&relay{s: s, backend: "files"}).Request(context.Background(), "roots/list", nil)
		done <- err
	}()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, ErrClosed) {
		t.Errorf("waiting request ended with %v, want ErrClosed", err)
	}
}
