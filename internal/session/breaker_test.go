package session_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/vmcp/vmcp/internal/backend"
	"github.com/vmcp/vmcp/internal/exampleserver"
	"github.com/vmcp/vmcp/internal/fixture"
	"github.com/vmcp/vmcp/internal/session"
)

func TestBreakerStateMachine(t *testing.T) {
	t.Parallel()
	const cooldown = time.Minute
	// Each step does one thing to the breaker, then checks its state and
	// whether Allow would let a connection through.
	type step struct {
		do        string // "fail", "ok", "allow", "wait" (one cooldown), "tick" (a second)
		wantState session.BreakerState
		wantAllow bool // checked only for "allow"
	}
	cases := []struct {
		name  string
		steps []step
	}{
		{"failures below the threshold keep it closed", []step{
			{"fail", session.BreakerClosed, false}, {"fail", session.BreakerClosed, false},
			{"allow", session.BreakerClosed, true},
		}},
		{"a success resets the count", []step{
			{"fail", session.BreakerClosed, false}, {"fail", session.BreakerClosed, false},
			{"ok", session.BreakerClosed, false},
			{"fail", session.BreakerClosed, false}, {"fail", session.BreakerClosed, false},
			{"allow", session.BreakerClosed, true},
		}},
		{"threshold failures open it and it refuses", []step{
			{"fail", session.BreakerClosed, false}, {"fail", session.BreakerClosed, false}, {"fail", session.BreakerOpen, false},
			{"allow", session.BreakerOpen, false}, {"tick", session.BreakerOpen, false}, {"allow", session.BreakerOpen, false},
		}},
		{"after the cooldown one probe goes through; a success closes it", []step{
			{"fail", session.BreakerClosed, false}, {"fail", session.BreakerClosed, false}, {"fail", session.BreakerOpen, false},
			{"wait", session.BreakerOpen, false},
			{"allow", session.BreakerHalfOpen, true},
			{"allow", session.BreakerHalfOpen, false}, // only one probe
			{"ok", session.BreakerClosed, false},
			{"allow", session.BreakerClosed, true},
		}},
		{"a failed probe opens it again for another cooldown", []step{
			{"fail", session.BreakerClosed, false}, {"fail", session.BreakerClosed, false}, {"fail", session.BreakerOpen, false},
			{"wait", session.BreakerOpen, false},
			{"allow", session.BreakerHalfOpen, true},
			{"fail", session.BreakerOpen, false},
			{"tick", session.BreakerOpen, false}, {"allow", session.BreakerOpen, false},
			{"wait", session.BreakerOpen, false}, {"allow", session.BreakerHalfOpen, true},
		}},
		{"a probe that never reports is replaced after a cooldown", []step{
			{"fail", session.BreakerClosed, false}, {"fail", session.BreakerClosed, false}, {"fail", session.BreakerOpen, false},
			{"wait", session.BreakerOpen, false},
			{"allow", session.BreakerHalfOpen, true},
			{"tick", session.BreakerHalfOpen, false}, {"allow", session.BreakerHalfOpen, false},
			{"wait", session.BreakerHalfOpen, false}, {"allow", session.BreakerHalfOpen, true},
		}},
		{"a success while open closes it at once", []step{
			{"fail", session.BreakerClosed, false}, {"fail", session.BreakerClosed, false}, {"fail", session.BreakerOpen, false},
			{"ok", session.BreakerClosed, false}, {"allow", session.BreakerClosed, true},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			clk := fixture.NewClock(time.Unix(1_700_000_000, 0))
			b := session.NewBreaker(session.BreakerOptions{Threshold: 3, Cooldown: cooldown, Now: clk.Now})
			for i, st := range tc.steps {
				allowed := false
				switch st.do {
				case "fail":
					b.Failure()
				case "ok":
					b.Success()
				case "allow":
					allowed = b.Allow()
				case "wait":
					clk.Advance(cooldown)
				case "tick":
					clk.Advance(time.Second)
				}
				if got := b.State(); got != st.wantState {
					t.Fatalf("step %d (%s): state %v, want %v", i, st.do, got, st.wantState)
				}
				if st.do == "allow" && allowed != st.wantAllow {
					t.Fatalf("step %d: Allow() = %v, want %v", i, allowed, st.wantAllow)
				}
			}
		})
	}
}

func TestBreakerHealth(t *testing.T) {
	t.Parallel()
	clk := fixture.NewClock(time.Unix(1_700_000_000, 0))
	b := session.NewBreaker(session.BreakerOptions{Threshold: 2, Cooldown: time.Minute, Now: clk.Now})
	if h := b.Health(); h.State != "closed" || h.ConsecutiveFailures != 0 || h.LastFailure != nil || h.RetryAfter != nil {
		t.Errorf("fresh: %+v", h)
	}
	b.Failure()
	clk.Advance(time.Second)
	b.Failure()
	h := b.Health()
	if h.State != "open" || h.ConsecutiveFailures != 2 || !h.LastFailure.Equal(clk.Now()) || !h.RetryAfter.Equal(clk.Now().Add(time.Minute)) {
		t.Errorf("open: %+v", h)
	}
	if !b.Refusing() {
		t.Error("open breaker not refusing")
	}
	clk.Advance(time.Minute)
	if b.Refusing() {
		t.Error("breaker past its cooldown still refusing: nothing could probe it")
	}
	var nilBreaker *session.Breaker
	if !nilBreaker.Allow() || nilBreaker.Refusing() || nilBreaker.Health().State != "closed" {
		t.Error("a nil breaker must allow everything")
	}
}

// TestBreakerSkipsHungBackend: once enough sessions have waited out a hung
// backend's init timeout, new sessions skip it without contacting it, and
// the half-open probe after the cooldown lets it back in when it recovers.
func TestBreakerSkipsHungBackend(t *testing.T) {
	t.Parallel()
	ok := fixture.StartHTTP(t, exampleserver.Options{Name: "ok"})
	slow := fixture.StartFaulty(t, "slow")
	slow.Hang.Store(true)
	clk := fixture.NewClock(time.Unix(1_700_000_000, 0))
	br := session.NewBreaker(session.BreakerOptions{Threshold: 2, Cooldown: time.Minute, Now: clk.Now})
	slowB := httpBackend("slow", slow.URL)
	slowB.Breaker = br
	backends := []session.Backend{httpBackend("ok", ok.URL), slowB}
	t.Cleanup(func() {
		for _, b := range backends {
			b.Connector.Close()
		}
	})
	var logs syncBuffer
	f := session.NewFactory(session.FactoryOptions{
		Backends: backends, InitTimeout: time.Second,
		Logger: slog.New(slog.NewTextHandler(&logs, nil)),
		// The sessions' background retries would contact the backend
		// too; this test counts the contacts of new sessions.
		Retry: session.Backoff{Initial: time.Hour},
	})
	requests := func() int64 { return slow.Requests.Load() }

	for i := range 2 {
		s := newSession(t, f)
		if _, err := callTool(context.Background(), s, "slow_echo", map[string]any{"text": "x"}); !errors.Is(err, session.ErrUnknownTool) {
			t.Fatalf("session %d: slow backend's tools listed (%v)", i, err)
		}
	}
	if br.State() != session.BreakerOpen {
		t.Fatalf("breaker %v after 2 init timeouts, want open", br.State())
	}
	before := requests()
	s := newSession(t, f)
	if n := requests(); n != before {
		t.Errorf("a new session contacted the backend %d times while its breaker was open", n-before)
	}
	if r, err := callTool(context.Background(), s, "ok_echo", map[string]any{"text": "hi"}); err != nil || r.Content[0].Text != "hi" {
		t.Errorf("ok_echo = %+v, %v", r, err)
	}
	if !strings.Contains(logs.String(), "circuit breaker open") || !strings.Contains(logs.String(), "backend=slow") {
		t.Errorf("skipped backend not reported:\n%s", logs.String())
	}
	// The errors name the setting to change, and the breaker keeps what
	// kind of failure opened it.
	for _, want := range []string{"no answer within session.backendInitTimeout (1s)", "circuit breaker open after repeated failures (last failure: timeout)"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs.String())
		}
	}
	if h := br.Health(); h.LastFailureReason != "timeout" {
		t.Errorf("Health().LastFailureReason = %q, want timeout", h.LastFailureReason)
	}

	// The backend recovers; after the cooldown, the next session probes it
	// and gets its tools again.
	slow.Hang.Store(false)
	clk.Advance(time.Minute)
	s = newSession(t, f)
	if r := mustCall(t, s, "slow_whoami"); r.Content[0].Text != "slow" {
		t.Errorf("slow_whoami = %+v", r)
	}
	if br.State() != session.BreakerClosed {
		t.Errorf("breaker %v after a successful probe, want closed", br.State())
	}
}

// TestBreakerCountsCallsThatFindBackendDown: calls that find a backend
// unreachable open its breaker; JSON-RPC and tool errors do not.
func TestBreakerCountsCallsThatFindBackendDown(t *testing.T) {
	t.Parallel()
	web := fixture.StartHTTP(t, exampleserver.Options{Name: "web"})
	br := session.NewBreaker(session.BreakerOptions{Threshold: 2, Cooldown: time.Hour})
	b := httpBackend("web", web.URL)
	b.Breaker = br
	s := newSession(t, newFactory(t, nil, session.CallLimits{}, b))
	for range 3 {
		if _, err := callTool(context.Background(), s, "web_fail", map[string]any{"message": "boom"}); err == nil {
			t.Fatal("web_fail succeeded")
		}
	}
	if br.State() != session.BreakerClosed {
		t.Fatalf("tool errors opened the breaker")
	}
	web.Handler.Close() // from now on the backend answers 503
	for range 2 {
		if _, err := callTool(context.Background(), s, "web_echo", map[string]any{"text": "x"}); !errors.Is(err, backend.ErrUnavailable) {
			t.Fatalf("call to a closed backend: %v", err)
		}
	}
	if br.State() != session.BreakerOpen {
		t.Errorf("breaker %v after calls found the backend down, want open", br.State())
	}
}

var _ io.Writer = (*syncBuffer)(nil)

type syncBuffer = fixture.Buffer
