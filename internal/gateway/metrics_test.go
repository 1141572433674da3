package gateway_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/vmcp/vmcp/internal/config"
	"github.com/vmcp/vmcp/internal/exampleserver"
	"github.com/vmcp/vmcp/internal/fixture"
	"github.com/vmcp/vmcp/internal/gateway"
)

func TestMetricsAndStatusCountWithoutSecrets(t *testing.T) {
	web := fixture.StartHTTP(t, exampleserver.Options{Name: "web"})
	cfg := baseConfig(config.Backend{Name: "web", Transport: config.TransportStreamableHTTP, URL: web.URL,
		Headers: map[string]string{"X-Api-Key": "metrics-secret-key"}})
	cfg.Telemetry.ToolLabels = true
	gw := startGateway(t, cfg, gateway.Options{})
	sid := rawInit(t, gw.URL)
	for range 3 {
		rawPost(t, gw.URL, sid, `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"web_echo","arguments":{"text":"x"}}}`)
	}
	rawPost(t, gw.URL, sid, `{"jsonrpc":"2.0","id":3,"method":"made/up-`+sid[:8]+`"}`)

	get := func(path string) string {
		resp, err := http.Get(gw.Base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	metrics := get("/metrics")
	for _, want := range []string{
		`vmcp_requests_total{method="initialize",outcome="ok"} 1`,
		`vmcp_requests_total{method="tools/call",outcome="ok"} 3`,
		`vmcp_requests_total{method="other",outcome="error"} 1`,
		"vmcp_active_sessions 1",
		// Per backend: the three calls, the init, the breaker's state.
		`vmcp_backend_call_duration_seconds_count{backend="web",method="tools/call",outcome="ok"} 3`,
		`vmcp_session_backend_init_total{backend="web",outcome="ok",reason=""} 1`,
		`vmcp_session_backend_init_duration_seconds_count{backend="web"} 1`,
		`vmcp_backend_breaker_state{backend="web"} 0`,
		`vmcp_backend_connections{backend="web"} `,                                // its open sockets
		`vmcp_backend_tool_calls_total{backend="web",outcome="ok",tool="echo"} 3`, // telemetry.toolLabels
		`vmcp_sessions_rejected_total{reason="limit"} 0`,
		`vmcp_backend_reinitializations_total{backend="web",cause="session_lost"} 0`,
		// What the README's Operations section tells operators to watch.
		"go_sched_gomaxprocs_threads ", "go_gc_gomemlimit_bytes ",
		"go_memstats_heap_inuse_bytes ", "process_resident_memory_bytes ",
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	status := get("/status")
	if !strings.Contains(status, `"sessions": 1`) || !strings.Contains(status, `"name": "web"`) {
		t.Errorf("/status = %s", status)
	}
	backendIDs := backendSessionIDs(t, gw, sid)
	for _, body := range []string{metrics, status} {
		for _, secret := range append(backendIDs, sid, sid[:8], "metrics-secret-key") {
			if strings.Contains(body, secret) {
				t.Errorf("a secret (%d bytes) leaks into /metrics or /status", len(secret))
			}
		}
	}
}

func TestKeepaliveOutcomesAreCounted(t *testing.T) {
	web := fixture.StartFaulty(t, "web")
	cfg := baseConfig(config.Backend{Name: "web", Transport: config.TransportStreamableHTTP, URL: web.URL,
		Keepalive: &config.Keepalive{Interval: config.Duration(20 * time.Millisecond), MaxFailures: 1000}})
	gw := startGateway(t, cfg, gateway.Options{})
	rawInit(t, gw.URL)
	scrape := func() string {
		resp, err := http.Get(gw.Base + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	eventually(t, "a counted keepalive ping", func() bool {
		return strings.Contains(scrape(), `vmcp_keepalive_pings_total{backend="web",outcome="ok"}`)
	})
	web.FailPings.Store(true)
	eventually(t, "a counted failed keepalive ping", func() bool {
		return strings.Contains(scrape(), `vmcp_keepalive_pings_total{backend="web",outcome="error"}`)
	})
}

// Requests refused before they are JSON-RPC have no method to be counted
// under: vmcp_requests_refused_total says why, so that an operator can see
// a client sending oversized or malformed bodies.
func TestRefusedRequestsAreCounted(t *testing.T) {
	t.Parallel()
	web := fixture.StartHTTP(t, exampleserver.Options{Name: "web"})
	cfg := baseConfig(config.Backend{Name: "web", Transport: config.TransportStreamableHTTP, URL: web.URL})
	cfg.Server.MaxBodyBytes = 1024
	cfg.Server.MaxMessageDepth = 8
	cfg.Server.ReadTimeout = config.Duration(time.Second)
	gw := startGateway(t, cfg, gateway.Options{})

	send := func(body io.Reader, header map[string]string) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, gw.URL, body)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		for k, v := range header {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	ping := `{"jsonrpc":"2.0","id":1,"method":"ping"}`
	// A body that starts and then stalls, past server.readTimeout.
	stalled, w := io.Pipe()
	go w.Write([]byte(`{"jsonrpc":`))
	t.Cleanup(func() { w.Close() })
	for _, tc := range []struct {
		name   string
		body   io.Reader
		header map[string]string
		want   int
	}{
		{"origin", strings.NewReader(ping), map[string]string{"Origin": "http://evil.example"}, http.StatusForbidden},
		{"content_type", strings.NewReader(ping), map[string]string{"Content-Type": "text/plain"}, http.StatusUnsupportedMediaType},
		{"body_too_large", strings.NewReader(strings.Repeat(" ", 2048) + ping), nil, http.StatusRequestEntityTooLarge},
		// Without a Content-Length (chunked): found out while reading.
		{"body_too_large", io.MultiReader(strings.NewReader(strings.Repeat(" ", 2048) + ping)), nil, http.StatusRequestEntityTooLarge},
		{"body_timeout", stalled, nil, http.StatusRequestTimeout},
		{"malformed", strings.NewReader(`{"jsonrpc":"2.0",`), nil, http.StatusBadRequest},
		{"malformed", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"ping","params":` + strings.Repeat(`[`, 20) + strings.Repeat(`]`, 20) + `}`), nil, http.StatusBadRequest},
	} {
		if got := send(tc.body, tc.header); got != tc.want {
			t.Errorf("%s: status %d, want %d", tc.name, got, tc.want)
		}
	}
	metrics := scrapeText(t, gw.Base)
	for _, want := range []string{
		`vmcp_requests_refused_total{reason="origin"} 1`,
		`vmcp_requests_refused_total{reason="content_type"} 1`,
		`vmcp_requests_refused_total{reason="body_too_large"} 2`,
		`vmcp_requests_refused_total{reason="body_timeout"} 1`,
		`vmcp_requests_refused_total{reason="body_unreadable"} 0`,
		`vmcp_requests_refused_total{reason="malformed"} 2`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if strings.Contains(metrics, `vmcp_requests_total{method="other",outcome="error"} 1`) {
		t.Error("a refused request was also counted as an answered one")
	}
}
