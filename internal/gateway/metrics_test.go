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
