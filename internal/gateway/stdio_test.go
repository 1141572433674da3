package gateway_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/vmcp/vmcp/internal/config"
	"github.com/vmcp/vmcp/internal/fixture"
	"github.com/vmcp/vmcp/internal/gateway"
)

func stdioBackend(t *testing.T, name string, warm int) config.Backend {
	b := config.Backend{Name: name, Transport: config.TransportStdio,
		Command: []string{fixture.ExampleServerBinary(t), "-transport", "stdio", "-name", name}}
	if warm > 0 {
		b.Stdio = &config.Stdio{Warm: warm, IdleTimeout: config.Duration(time.Hour)}
	}
	return b
}

// stdioCounts reads the stdio process counts from /status and /metrics.
type stdioCounts struct {
	total, max int
	byBackend  map[string]int // from /status
	metrics    string
}

func readStdioCounts(t *testing.T, gw *running) stdioCounts {
	t.Helper()
	var st struct {
		Gateway struct {
			Backends []struct {
				Name      string
				Processes *int
			}
			Stdio struct{ Processes, MaxProcesses int }
		}
	}
	getJSON(t, gw.Base+"/status", &st)
	resp, err := http.Get(gw.Base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	metrics, _ := io.ReadAll(resp.Body)
	c := stdioCounts{total: st.Gateway.Stdio.Processes, max: st.Gateway.Stdio.MaxProcesses, byBackend: map[string]int{}, metrics: string(metrics)}
	for _, b := range st.Gateway.Backends {
		if b.Processes != nil {
			c.byBackend[b.Name] = *b.Processes
		}
	}
	return c
}

func (c stdioCounts) shows(backend string, n int) bool {
	return c.byBackend[backend] == n &&
		strings.Contains(c.metrics, fmt.Sprintf("vmcp_backend_connections{backend=%q} %d\n", backend, n))
}

// TestStdioProcessLimitAnswers503: at server.maxStdioProcesses a new
// session gets 503 and Retry-After, and the backend's breaker does not
// count it against the backend.
func TestStdioProcessLimitAnswers503(t *testing.T) {
	cfg := baseConfig(stdioBackend(t, "local", 0))
	cfg.Server.MaxStdioProcesses = 2
	gw := startGateway(t, cfg, gateway.Options{})
	first := rawInit(t, gw.URL)
	rawInit(t, gw.URL)
	code, h, body := rawPost(t, gw.URL, "", initBody)
	if code != http.StatusServiceUnavailable || h.Get("Retry-After") != "30" ||
		!strings.Contains(body, "Too many backend server processes running; retry later") || h.Get("Mcp-Session-Id") != "" {
		t.Fatalf("initialize beyond the limit: %d Retry-After %q %s", code, h.Get("Retry-After"), body)
	}
	if c := readStdioCounts(t, gw); c.total != 2 || c.max != 2 || !c.shows("local", 2) {
		t.Errorf("counts at the limit: %+v", c)
	}
	if !strings.Contains(gw.Logs.String(), "server.maxStdioProcesses") {
		t.Errorf("the log does not name the setting:\n%s", gw.Logs)
	}
	if n := gw.Manager().Len(); n != 2 {
		t.Errorf("%d sessions live, want the 2 admitted", n)
	}
	// Room again once a session ends.
	rawDelete(t, gw.URL, first)
	eventually(t, "the process count to drop", func() bool { return readStdioCounts(t, gw).shows("local", 1) })
	sid := rawInit(t, gw.URL)
	if code, _, body := rawPost(t, gw.URL, sid, `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"local_counter"}}`); code != http.StatusOK || !strings.Contains(body, `"text":"1"`) {
		t.Errorf("call in a session started after the limit: %d %s", code, body)
	}
}

// TestStdioWarmPoolBehindTheGateway: a warm pool counts in /status and
// /metrics, serves sessions, and stops with the gateway.
func TestStdioWarmPoolBehindTheGateway(t *testing.T) {
	defer leakCheck(t)()
	cfg := baseConfig(stdioBackend(t, "warm", 2), stdioBackend(t, "cold", 0))
	gw := startGateway(t, cfg, gateway.Options{})
	cs := connect(t, gw.URL)
	// One process per session and backend, plus two warm ones.
	eventually(t, "the warm pool to fill", func() bool {
		c := readStdioCounts(t, gw)
		return c.shows("warm", 3) && c.shows("cold", 1) && c.total == 4
	})
	cs2 := connect(t, gw.URL)
	if got := callText(t, cs2, "warm_counter", nil); got != "1" {
		t.Errorf("warm_counter in the second session = %s, want 1", got)
	}
	eventually(t, "the warm pool to refill", func() bool { return readStdioCounts(t, gw).shows("warm", 4) })
	cs.Close()
	cs2.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := gw.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if pids, _ := fixture.Children("vmcp-example"); len(pids) != 0 {
		t.Errorf("stdio processes %v run after Shutdown", pids)
	}
}

// TestShutdownStopsTheStartupProbe: a probe still waiting for a backend
// that never answers ends with the gateway, says nothing about it, and
// leaves no goroutine or process behind.
func TestShutdownStopsTheStartupProbe(t *testing.T) {
	defer leakCheck(t)()
	cfg := baseConfig(config.Backend{Name: "hang", Transport: config.TransportStdio, Command: []string{"sleep", "600"}},
		stdioBackend(t, "local", 0))
	cfg.Session.BackendInitTimeout = config.Duration(time.Hour)
	gw := startGateway(t, cfg, gateway.Options{})
	gw.StartProbe()
	eventually(t, "the probe of local", func() bool { return strings.Contains(gw.Logs.String(), `msg="backend reachable" backend=local`) })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := gw.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(gw.Logs.String(), "backend=hang") {
		t.Errorf("the stopped probe reported on the backend:\n%s", gw.Logs)
	}
	if pids, _ := fixture.Children("sleep"); len(pids) != 0 {
		t.Errorf("probe processes %v run after Shutdown", pids)
	}
}
