package gateway_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/vmcp/vmcp/internal/config"
	"github.com/vmcp/vmcp/internal/exampleserver"
	"github.com/vmcp/vmcp/internal/fixture"
	"github.com/vmcp/vmcp/internal/gateway"
	"github.com/vmcp/vmcp/internal/session"
)

type statusDoc struct {
	Gateway struct {
		Backends []struct {
			Name   string                `json:"name"`
			Health session.BreakerHealth `json:"health"`
		} `json:"backends"`
	} `json:"gateway"`
}

func health(t *testing.T, gw *running, name string) session.BreakerHealth {
	t.Helper()
	var st statusDoc
	if code := getJSON(t, gw.Base+"/status", &st); code != http.StatusOK {
		t.Fatalf("/status = %d", code)
	}
	for _, b := range st.Gateway.Backends {
		if b.Name == name {
			return b.Health
		}
	}
	t.Fatalf("/status lists no backend %q", name)
	return session.BreakerHealth{}
}

func toolNames(t *testing.T, cs *mcp.ClientSession) string {
	t.Helper()
	res, err := cs.ListTools(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tl := range res.Tools {
		names = append(names, tl.Name)
	}
	return strings.Join(names, " ")
}

// TestBreakerSkipsHungBackend: once a hung backend has cost enough
// sessions their init timeout, its breaker opens and new sessions start
// without contacting it. /status shows its health; /readyz stays ready
// because another backend is fine.
func TestBreakerSkipsHungBackend(t *testing.T) {
	web := fixture.StartHTTP(t, exampleserver.Options{Name: "web"})
	hung := fixture.StartFaulty(t, "hung")
	hung.Hang.Store(true)
	cfg := baseConfig(
		config.Backend{Name: "web", Transport: config.TransportStreamableHTTP, URL: web.URL},
		config.Backend{Name: "hung", Transport: config.TransportStreamableHTTP, URL: hung.URL,
			Breaker: &config.Breaker{FailureThreshold: 2, Cooldown: config.Duration(time.Hour)}},
	)
	cfg.Session.BackendInitTimeout = config.Duration(500 * time.Millisecond)
	gw := startGateway(t, cfg, gateway.Options{})

	for range 2 {
		cs := connect(t, gw.URL)
		if names := toolNames(t, cs); strings.Contains(names, "hung_") || !strings.Contains(names, "web_echo") {
			t.Fatalf("tools = %s", names)
		}
	}
	h := health(t, gw, "hung")
	if h.State != "open" || h.ConsecutiveFailures != 2 || h.LastFailure == nil || h.RetryAfter == nil {
		t.Fatalf("hung backend health = %+v, want open after 2 failures", h)
	}
	if h := health(t, gw, "web"); h.State != "closed" || h.ConsecutiveFailures != 0 {
		t.Errorf("web backend health = %+v", h)
	}

	before := hung.Requests.Load()
	cs := connect(t, gw.URL)
	if n := hung.Requests.Load() - before; n != 0 {
		t.Errorf("a new session sent %d requests to a backend whose breaker is open", n)
	}
	if got := callText(t, cs, "web_echo", map[string]any{"text": "hi"}); got != "hi" {
		t.Errorf("web_echo = %q", got)
	}
	if code := getJSON(t, gw.Base+"/readyz", nil); code != http.StatusOK {
		t.Errorf("/readyz = %d with one healthy backend, want 200", code)
	}
	logs := gw.Logs.String()
	if !strings.Contains(logs, "backend=hung") || !strings.Contains(logs, "circuit breaker open") {
		t.Errorf("the skipped backend is not reported in the logs:\n%s", logs)
	}
	if strings.Contains(logs, cs.ID()) {
		t.Error("logs show a session ID")
	}
}

// TestReadyzWhenEveryBreakerIsOpen: /readyz answers 503 once no backend
// can be reached; /health stays 200. The metrics say why: the breaker is
// open (2), after an init that failed by timeout.
func TestReadyzWhenEveryBreakerIsOpen(t *testing.T) {
	hung := fixture.StartFaulty(t, "hung")
	hung.Hang.Store(true)
	cfg := baseConfig(config.Backend{Name: "hung", Transport: config.TransportStreamableHTTP, URL: hung.URL})
	cfg.Session.BackendInitTimeout = config.Duration(200 * time.Millisecond)
	gw := startGateway(t, cfg, gateway.Options{Breaker: session.BreakerOptions{Threshold: 1, Cooldown: time.Hour}})
	if code := getJSON(t, gw.Base+"/readyz", nil); code != http.StatusOK {
		t.Fatalf("/readyz before any failure = %d", code)
	}
	rawInit(t, gw.URL) // the session starts, without the backend
	var body map[string]string
	if code := getJSON(t, gw.Base+"/readyz", &body); code != http.StatusServiceUnavailable || !strings.Contains(body["reason"], "circuit breaker") {
		t.Errorf("/readyz = %d %v, want 503 naming the breakers", code, body)
	}
	if code := getJSON(t, gw.Base+"/health", nil); code != http.StatusOK {
		t.Errorf("/health = %d, want 200: liveness does not depend on backends", code)
	}
	m := scrapeText(t, gw.Base)
	for _, want := range []string{
		`vmcp_backend_breaker_state{backend="hung"} 2`,
		`vmcp_session_backend_init_total{backend="hung",outcome="error",reason="timeout"} 1`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s:\n%s", want, grepLines(m, `backend="hung"`))
		}
	}
}

// TestBreakerStateMetricFollowsItsProbe: vmcp_backend_breaker_state goes
// open (2), half-open (1) while the one probe after the cooldown is under
// way, open again when the probe fails, and closed (0) when a later probe
// reaches the backend. The cooldown runs on a fake clock.
func TestBreakerStateMetricFollowsItsProbe(t *testing.T) {
	t.Parallel()
	hung := fixture.StartFaulty(t, "hung")
	hung.Hang.Store(true)
	cfg := baseConfig(config.Backend{Name: "hung", Transport: config.TransportStreamableHTTP, URL: hung.URL})
	cfg.Session.BackendInitTimeout = config.Duration(2 * time.Second)
	clock := fixture.NewClock(time.Now())
	gw := startGateway(t, cfg, gateway.Options{Breaker: session.BreakerOptions{Threshold: 1, Cooldown: time.Hour, Now: clock.Now}})
	state := func(want string) func() bool {
		return func() bool {
			return strings.Contains(scrapeText(t, gw.Base), `vmcp_backend_breaker_state{backend="hung"} `+want+"\n")
		}
	}

	rawInit(t, gw.URL) // the session starts without the backend
	eventually(t, "the breaker to open", state("2"))
	clock.Advance(2 * time.Hour)
	probed := make(chan struct{})
	go func() {
		defer close(probed)
		// The probe: this initialize's, or the first session's retry.
		req, _ := http.NewRequest(http.MethodPost, gw.URL, strings.NewReader(initBody))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	eventually(t, "the breaker to be half-open while its probe hangs", state("1"))
	<-probed
	eventually(t, "the failed probe to open the breaker again", state("2"))

	hung.Hang.Store(false)
	clock.Advance(2 * time.Hour)
	rawInit(t, gw.URL)
	eventually(t, "a probe that reached the backend to close the breaker", state("0"))
}
