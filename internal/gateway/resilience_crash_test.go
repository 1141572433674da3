package gateway_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vmcp/vmcp/internal/config"
	"github.com/vmcp/vmcp/internal/exampleserver"
	"github.com/vmcp/vmcp/internal/fixture"
	"github.com/vmcp/vmcp/internal/gateway"
)

// backendSessionIDs returns the backend session IDs a gateway session
// holds, to check that none of them leaks.
func backendSessionIDs(t *testing.T, gw *running, sid string) []string {
	t.Helper()
	s, err := gw.Manager().Get(context.Background(), sid)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, b := range s.BackendSessions() {
		if b.SessionID != "" {
			ids = append(ids, b.SessionID)
		}
	}
	return ids
}

// TestBackendKilledAndRestarted: a backend process is killed with SIGKILL
// mid-session. Calls to it fail with an error that names it; the other
// backend keeps working; once it is restarted on the same port the next
// call re-initializes it and succeeds.
func TestBackendKilledAndRestarted(t *testing.T) {
	bin := fixture.ExampleServerBinary(t)
	web := startExampleProc(t, bin, "web", "127.0.0.1:0")
	docs := fixture.StartHTTP(t, exampleserver.Options{Name: "docs"})
	cfg := baseConfig(
		config.Backend{Name: "web", Transport: config.TransportStreamableHTTP, URL: web.URL},
		config.Backend{Name: "docs", Transport: config.TransportStreamableHTTP, URL: docs.URL},
	)
	gw := startGateway(t, cfg, gateway.Options{})
	cs := connect(t, gw.URL)
	for i, name := range []string{"web_counter", "web_counter", "docs_counter"} {
		if got := callText(t, cs, name, nil); got != []string{"1", "2", "1"}[i] {
			t.Fatalf("%s = %q", name, got)
		}
	}
	secrets := append(backendSessionIDs(t, gw, cs.ID()), cs.ID())

	web.kill()
	res, err := callResult(cs, "web_counter", nil)
	if err == nil {
		t.Fatalf("call to a killed backend succeeded: %+v", res)
	}
	if !strings.Contains(err.Error(), `"web"`) {
		t.Errorf("error does not name the backend: %v", err)
	}
	for _, s := range secrets {
		if strings.Contains(err.Error(), s) {
			t.Errorf("error shows a session ID: %v", err)
		}
	}
	if got := callText(t, cs, "docs_counter", nil); got != "2" {
		t.Errorf("other backend after the crash: docs_counter = %q, want 2", got)
	}

	startExampleProc(t, bin, "web", web.Addr)
	res, err = callResult(cs, "web_counter", nil)
	if err != nil || res.IsError {
		t.Fatalf("call after restart: %+v %v", res, err)
	}
	if text(res) != "1" || !slices.Equal(reinitialized(res), []string{"web"}) {
		t.Errorf("call after restart = %q, _meta %v; want a fresh backend session (1) flagged as re-initialized", text(res), res.Meta)
	}
	if got := callText(t, cs, "web_counter", nil); got != "2" {
		t.Errorf("next call = %q, want 2", got)
	}
	if got := callText(t, cs, "docs_counter", nil); got != "3" {
		t.Errorf("docs_counter = %q, want 3: its state must survive the other backend's crash", got)
	}
	logs := gw.Logs.String()
	for _, s := range secrets {
		if strings.Contains(logs, s) {
			t.Error("logs show a session ID")
		}
	}
}

// TestStdioChildKilledIsRestarted: a stdio backend's child dies. The next
// call, which vmcp had not sent to the dead child, starts a new child and
// succeeds, flagged as re-initialized.
func TestStdioChildKilledIsRestarted(t *testing.T) {
	defer leakCheck(t)()
	bin := fixture.ExampleServerBinary(t)
	t.Run("kill", func(t *testing.T) {
		web := fixture.StartHTTP(t, exampleserver.Options{Name: "web"})
		cfg := baseConfig(
			config.Backend{Name: "notes", Transport: config.TransportStdio, Command: []string{bin, "-transport", "stdio", "-name", "notes"}},
			config.Backend{Name: "web", Transport: config.TransportStreamableHTTP, URL: web.URL},
		)
		gw := startGateway(t, cfg, gateway.Options{})
		cs := connect(t, gw.URL)
		callText(t, cs, "notes_counter", nil)
		callText(t, cs, "web_counter", nil)
		pids, _ := fixture.Children("vmcp-example")
		if len(pids) != 1 {
			t.Fatalf("stdio children = %v, want 1", pids)
		}
		if err := syscall.Kill(pids[0], syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		eventually(t, "dead child reaped", func() bool { p, _ := fixture.Children("vmcp-example"); return len(p) == 0 })
		eventually(t, "vmcp counts the dead child gone", func() bool { return stdioProcesses(t, gw) == 0 })

		// vmcp knew the child was gone before it sent anything: the call
		// goes to a new child, at most once.
		res, err := callResult(cs, "notes_counter", nil)
		if err != nil || res.IsError || text(res) != "1" || !slices.Equal(reinitialized(res), []string{"notes"}) {
			t.Fatalf("call after the child died: %+v %v; want a new child's counter (1) flagged as re-initialized", res, err)
		}
		if got := callText(t, cs, "web_counter", nil); got != "2" {
			t.Errorf("web_counter = %q, want 2", got)
		}
		if got := callText(t, cs, "notes_counter", nil); got != "2" {
			t.Errorf("next call on the new child: notes_counter = %q, want 2", got)
		}
		now, _ := fixture.Children("vmcp-example")
		if len(now) != 1 || now[0] == pids[0] {
			t.Errorf("stdio children = %v, want one new child", now)
		}
		cs.Close()
		eventually(t, "new child ended with the session", func() bool { p, _ := fixture.Children("vmcp-example"); return len(p) == 0 })
	})
}

// TestSSEBackendRestartedBetweenCalls: an SSE backend is killed and
// restarted on its port between two calls. Its session died with its event
// stream, before the next call was sent, so that call goes to a new
// backend session and succeeds, flagged as re-initialized, as over
// Streamable HTTP.
func TestSSEBackendRestartedBetweenCalls(t *testing.T) {
	bin := fixture.ExampleServerBinary(t)
	docs := startExampleProcOver(t, bin, "sse", "docs", "127.0.0.1:0")
	gw := startGateway(t, baseConfig(config.Backend{Name: "docs", Transport: config.TransportSSE, URL: docs.URL}), gateway.Options{})
	cs := connect(t, gw.URL)
	for _, want := range []string{"1", "2"} {
		if got := callText(t, cs, "docs_counter", nil); got != want {
			t.Fatalf("docs_counter = %q, want %q", got, want)
		}
	}
	docs.kill()
	startExampleProcOver(t, bin, "sse", "docs", docs.Addr)
	// Whether vmcp has yet seen the old event stream end or not, the call
	// is not sent to the old session: either vmcp knows it is gone, or the
	// restarted backend answers its POST 404.
	res, err := callResult(cs, "docs_counter", nil)
	if err != nil || res.IsError || text(res) != "1" || !slices.Equal(reinitialized(res), []string{"docs"}) {
		t.Fatalf("call after the restart: %+v %v; want a new backend session's counter (1) flagged as re-initialized", res, err)
	}
	cs.Close()
}

// stdioProcesses is /status's gateway.stdio.processes: the children vmcp
// has not yet seen end.
func stdioProcesses(t *testing.T, gw *running) int {
	t.Helper()
	var st struct {
		Gateway struct {
			Stdio struct{ Processes int } `json:"stdio"`
		} `json:"gateway"`
	}
	if err := json.Unmarshal([]byte(getBody(t, gw.Base+"/status")), &st); err != nil {
		t.Fatal(err)
	}
	return st.Gateway.Stdio.Processes
}

// TestHungToolTimesOut: a tool that runs longer than its backend's timeout
// ends with an error in time, the backend is told to cancel, and the
// session and its backends carry on.
func TestHungToolTimesOut(t *testing.T) {
	slow := fixture.StartFaulty(t, "slow")
	web := fixture.StartHTTP(t, exampleserver.Options{Name: "web"})
	cfg := baseConfig(
		config.Backend{Name: "slow", Transport: config.TransportStreamableHTTP, URL: slow.URL, Timeout: config.Duration(300 * time.Millisecond)},
		config.Backend{Name: "web", Transport: config.TransportStreamableHTTP, URL: web.URL},
	)
	gw := startGateway(t, cfg, gateway.Options{})
	cs := connect(t, gw.URL)
	callText(t, cs, "slow_counter", nil)

	_, err := callResult(cs, "slow_sleep_ms", map[string]any{"ms": 60_000})
	if err == nil || !strings.Contains(err.Error(), `"slow"`) || !strings.Contains(err.Error(), "backends[].timeout (300ms)") {
		t.Fatalf("hung call: %v; want a timeout naming the backend and the setting", err)
	}
	eventually(t, "backend told to cancel", func() bool { return slow.Cancelled.Load() == 1 })
	if got := callText(t, cs, "slow_counter", nil); got != "2" {
		t.Errorf("slow_counter after the timeout = %q, want 2: same backend session", got)
	}
	if got := callText(t, cs, "web_counter", nil); got != "1" {
		t.Errorf("web_counter = %q", got)
	}
	if n := slow.Stats.Initializes(); n != 1 {
		t.Errorf("slow backend initializes = %d, want 1: a timeout is no reason to re-initialize", n)
	}
}
