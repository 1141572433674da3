package session_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/vmcp/vmcp/internal/backend"
	"github.com/vmcp/vmcp/internal/fixture"
	"github.com/vmcp/vmcp/internal/session"
)

// TestCallDroppedAfterItRanIsNotResent: a backend runs a tool call, then
// drops the connection without answering. The call ran exactly once (it
// may have paid, booked or deleted something), the client gets a clear
// error naming the backend, and the breaker counts the failure.
func TestCallDroppedAfterItRanIsNotResent(t *testing.T) {
	t.Parallel()
	web := fixture.StartFaulty(t, "web")
	br := session.NewBreaker(session.BreakerOptions{Threshold: 1, Cooldown: time.Hour})
	b := httpBackend("web", web.URL)
	b.Breaker = br
	s := newSession(t, newFactory(t, nil, session.CallLimits{}, b))
	if r := mustCall(t, s, "web_counter"); r.Content[0].Text != "1" {
		t.Fatalf("counter = %q", r.Content[0].Text)
	}

	web.DropAfterCall.Store(true)
	_, err := callTool(context.Background(), s, "web_counter", nil)
	if !errors.Is(err, backend.ErrUnavailable) || !strings.Contains(err.Error(), `backend "web"`) {
		t.Fatalf("err = %v, want ErrUnavailable naming the backend", err)
	}
	if n := web.Stats.Calls("counter"); n != 2 {
		t.Errorf("the backend ran counter %d times, want 2 (once before the fault, once for the dropped call)", n)
	}
	if n := web.Calls.Load(); n != 2 {
		t.Errorf("%d tools/call requests reached the backend, want 2", n)
	}
	if br.State() != session.BreakerOpen {
		t.Errorf("breaker %v after the dropped call, want open (threshold 1)", br.State())
	}
}
