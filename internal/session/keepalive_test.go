package session_test

import (
	"strings"
	"testing"
	"time"

	"github.com/vmcp/vmcp/internal/fixture"
	"github.com/vmcp/vmcp/internal/session"
)

func keepaliveBackend(fb *fixture.Faulty, k session.Keepalive) session.Backend {
	b := httpBackend("web", fb.URL)
	b.Keepalive = &k
	return b
}

func TestKeepalivePingsBackend(t *testing.T) {
	t.Parallel()
	web := fixture.StartFaulty(t, "web")
	s := newSession(t, newFactory(t, nil, session.CallLimits{}, keepaliveBackend(web, session.Keepalive{Interval: 5 * time.Millisecond})))
	fixture.Eventually(t, "keepalive pings", func() bool { return web.Pings.Load() >= 3 })
	if r := mustCall(t, s, "web_counter"); r.Content[0].Text != "1" {
		t.Errorf("keepalive disturbed the backend session: counter = %q", r.Content[0].Text)
	}
}

func TestKeepalivePausesAfterFailuresAndResumes(t *testing.T) {
	t.Parallel()
	web := fixture.StartFaulty(t, "web")
	web.FailPings.Store(true)
	var logs syncBuffer
	s := newSession(t, newFactory(t, &logs, session.CallLimits{}, keepaliveBackend(web, session.Keepalive{Interval: 5 * time.Millisecond, MaxFailures: 2})))
	fixture.Eventually(t, "keepalive paused with a WARN", func() bool {
		l := logs.String()
		return strings.Contains(l, "level=WARN") && strings.Contains(l, "keepalive paused") && strings.Contains(l, "backend=web")
	})
	// The session is unaffected by failing pings.
	if r := mustCall(t, s, "web_counter"); r.Content[0].Text != "1" {
		t.Errorf("counter = %q", r.Content[0].Text)
	}
	web.FailPings.Store(false)
	fixture.Eventually(t, "a probe resumes keepalive", func() bool { return strings.Contains(logs.String(), "keepalive resumed") })
	if strings.Contains(logs.String(), s.ID()) {
		t.Error("logs show the session ID")
	}
}

// TestKeepaliveTakesPartInClose: Close waits for a ping in flight like for
// any call, then stops the keepalive goroutine.
func TestKeepaliveTakesPartInClose(t *testing.T) {
	leakCheck(t)
	web := fixture.StartFaulty(t, "web")
	gate := make(chan struct{})
	web.PingGate.Store(&gate)
	s := newSession(t, newFactory(t, nil, session.CallLimits{}, keepaliveBackend(web, session.Keepalive{Interval: 5 * time.Millisecond})))
	fixture.Eventually(t, "a ping in flight", func() bool { return web.Pings.Load() >= 1 })

	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	select {
	case <-s.Done():
		t.Fatal("session closed while a keepalive ping was in flight")
	case <-time.After(50 * time.Millisecond):
	}
	if n := web.Stats.Deletes(); n != 0 {
		t.Fatalf("backend session ended (%d DELETEs) while a ping was in flight", n)
	}
	close(gate)
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	fixture.Eventually(t, "backend session ended", func() bool { return web.Stats.Deletes() == 1 })
	pings := web.Pings.Load()
	time.Sleep(30 * time.Millisecond)
	if n := web.Pings.Load(); n != pings {
		t.Errorf("%d pings after Close", n-pings)
	}
}
