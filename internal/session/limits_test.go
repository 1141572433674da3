package session_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/vmcp/vmcp/internal/exampleserver"
	"github.com/vmcp/vmcp/internal/fixture"
	"github.com/vmcp/vmcp/internal/session"
	"github.com/vmcp/vmcp/internal/store"
)

// eventually polls cond until it holds or a generous deadline passes. It
// waits for background work; it does not assert speed.

// holdCalls starts n calls that the backend holds until the returned func
// is called, and waits until the backend has them all.
func holdCalls(t *testing.T, s *session.Session, b *fixture.Faulty, n int) (release func()) {
	t.Helper()
	gate := make(chan struct{})
	b.CallGate.Store(&gate)
	var wg sync.WaitGroup
	base := b.Calls.Load()
	for range n {
		wg.Go(func() { callTool(context.Background(), s, "web_echo", map[string]any{"text": "held"}) })
	}
	fixture.Eventually(t, "held calls reach the backend", func() bool { return b.Calls.Load() == base+int64(n) })
	var once sync.Once
	release = func() {
		once.Do(func() {
			b.CallGate.Store(nil)
			close(gate)
			wg.Wait()
		})
	}
	t.Cleanup(release)
	return release
}

func TestCallLimitRejectsBeyondLimit(t *testing.T) {
	t.Parallel()
	web := fixture.StartFaulty(t, "web")
	s := newSession(t, newFactory(t, nil, session.CallLimits{MaxConcurrent: 2}, httpBackend("web", web.URL)))
	release := holdCalls(t, s, web, 2)

	_, err := callTool(context.Background(), s, "web_echo", map[string]any{"text": "x"})
	if !errors.Is(err, session.ErrTooManyCalls) {
		t.Fatalf("third call: %v, want ErrTooManyCalls", err)
	}
	if n := web.Calls.Load(); n != 2 {
		t.Errorf("backend got %d calls, want only the 2 held ones", n)
	}
	release()
	if r, err := callTool(context.Background(), s, "web_echo", map[string]any{"text": "x"}); err != nil || r.Content[0].Text != "x" {
		t.Fatalf("call after slots freed: %+v %v", r, err)
	}
}

func TestCallLimitQueuesWithinTimeout(t *testing.T) {
	t.Parallel()
	web := fixture.StartFaulty(t, "web")
	s := newSession(t, newFactory(t, nil, session.CallLimits{MaxConcurrent: 1, QueueTimeout: time.Minute}, httpBackend("web", web.URL)))
	release := holdCalls(t, s, web, 1)

	type outcome struct {
		r   toolResult
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		r, err := callTool(context.Background(), s, "web_echo", map[string]any{"text": "queued"})
		done <- outcome{r, err}
	}()
	release() // the held call ends and frees its slot for the queued one
	out := <-done
	if out.err != nil || out.r.Content[0].Text != "queued" {
		t.Fatalf("queued call: %+v %v", out.r, out.err)
	}
}

func TestCallLimitWaitEndsWithCaller(t *testing.T) {
	t.Parallel()
	web := fixture.StartFaulty(t, "web")
	s := newSession(t, newFactory(t, nil, session.CallLimits{MaxConcurrent: 1, QueueTimeout: time.Hour}, httpBackend("web", web.URL)))
	holdCalls(t, s, web, 1)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := callTool(ctx, s, "web_echo", map[string]any{"text": "x"}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled waiting call: %v", err)
	}
}

// TestSlowSessionStartIsNotIdle: a session whose backends take longer to
// connect than the idle timeout is not expired the moment it goes live.
func TestSlowSessionStartIsNotIdle(t *testing.T) {
	t.Parallel()
	slow := fixture.StartHTTP(t, exampleserver.Options{Name: "slow", InitDelay: 400 * time.Millisecond})
	m := session.NewManager(session.ManagerOptions{
		Store:         store.NewMemory(),
		Factory:       newFactory(t, nil, session.CallLimits{}, httpBackend("slow", slow.URL)),
		IdleTimeout:   300 * time.Millisecond,
		SweepInterval: 5 * time.Millisecond,
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); m.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
		m.Shutdown(context.Background())
	})
	s, err := m.Create(context.Background(), session.CreateRequest{Identity: "a", ProtocolVersion: "2025-06-18", ClientCapabilities: []byte(`{}`)})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond) // several sweeps, well within the idle timeout
	if _, err := m.Get(context.Background(), s.ID()); err != nil {
		t.Fatalf("a session just created was expired: %v", err)
	}
}
