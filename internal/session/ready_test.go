package session

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
)

// notePeer records the params of the notifications it gets, in order.
type notePeer struct {
	mu  sync.Mutex
	got []string
}

func (p *notePeer) Notify(_ context.Context, _ string, params json.RawMessage) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.got = append(p.got, string(params))
}

func (p *notePeer) Request(context.Context, string, json.RawMessage) (json.RawMessage, error) {
	return nil, nil
}

// What a backend sends before the session is ready, or before the client
// has a stream, is held in order, bounded, and delivered once both are
// there.
func TestNotificationsHeldUntilReadyAndPeer(t *testing.T) {
	t.Parallel()
	s := &Session{ready: make(chan struct{})}
	r := &relay{s: s, backend: "b"}
	for i := range maxHeld + 2 {
		r.Notify(context.Background(), "notifications/message", json.RawMessage(fmt.Sprint(i)))
	}
	p := &notePeer{}
	s.markReady() // ready, but no stream yet: still held
	r.Notify(context.Background(), "notifications/message", json.RawMessage(`"after ready"`))
	if len(p.got) != 0 {
		t.Fatalf("delivered before the client had a stream: %v", p.got)
	}
	s.SetPeer(p)
	r.Notify(context.Background(), "notifications/message", json.RawMessage(`"after peer"`))
	var want []string
	for i := 3; i < maxHeld+2; i++ { // the oldest three were dropped
		want = append(want, fmt.Sprint(i))
	}
	want = append(want, `"after ready"`, `"after peer"`)
	if !slices.Equal(p.got, want) {
		t.Fatalf("delivered %v\nwant %v", p.got, want)
	}
}

// A backend's request made before the session is ready waits for it, and
// one whose context ends first gets an error rather than hanging.
func TestBackendRequestWaitsForReady(t *testing.T) {
	t.Parallel()
	s := &Session{ready: make(chan struct{}), clientCap: clientCaps{roots: true}}
	s.SetPeer(&recordingPeer{})
	// The client has finished its handshake and can be asked: only the
	// session's readiness is awaited.
	s.ClientInitialized()
	s.PeerOpened()
	r := &relay{s: s, backend: "b"}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := r.Request(ctx, "roots/list", nil); err == nil {
		t.Fatal("a request before ready with its context ended succeeded")
	}
	done := make(chan error, 1)
	go func() {
		_, err := r.Request(context.Background(), "roots/list", nil)
		done <- err
	}()
	s.markReady()
	if err := <-done; err != nil {
		t.Fatalf("roots/list after ready: %v", err)
	}
}

// streamPeer is a call's Peer whose stream the call's response may have
// ended: then TryNotify sends nothing.
type streamPeer struct {
	notePeer
	ended bool
}

func (p *streamPeer) TryNotify(ctx context.Context, method string, params json.RawMessage) bool {
	if p.ended {
		return false
	}
	p.Notify(ctx, method, params)
	return true
}

// A backend's notification goes to the stream of the call it came during,
// or rides the stream of a call in flight when it belongs to none (the
// client may have opened no other stream). If that call's response ended
// the stream first, it goes to the session's stream rather than being
// lost with the call; progress, which must not outlive its call, does not.
func TestNotificationOutlivesTheCallStreamItWasFor(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		own       bool // the relay is the call's own
		method    string
		ended     bool
		onCall    int
		onSession int
	}{
		{"rides a live call", false, "notifications/tasks/status", false, 1, 0},
		{"rode a call that ended", false, "notifications/tasks/status", true, 0, 1},
		{"its call's, which ended", true, "notifications/message", true, 0, 1},
		{"its call's, live", true, "notifications/message", false, 1, 0},
		{"progress of an ended call", true, "notifications/progress", true, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := &Session{ready: make(chan struct{})}
			s.markReady()
			standalone := &notePeer{}
			s.SetPeer(standalone)
			call := &streamPeer{ended: tt.ended}
			r := &relay{s: s, backend: "a"}
			if tt.own {
				r.peer = call
			} else {
				defer s.trackCall(call, json.RawMessage(`{}`))()
			}
			r.Notify(context.Background(), tt.method, json.RawMessage(`{"taskId":"a-1"}`))
			if len(call.got) != tt.onCall || len(standalone.got) != tt.onSession {
				t.Errorf("the call's stream got %v, the session's %v; want %d and %d", call.got, standalone.got, tt.onCall, tt.onSession)
			}
		})
	}
}
