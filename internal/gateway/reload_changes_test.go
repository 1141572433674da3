package gateway_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/vmcp/vmcp/internal/exampleserver"
	"github.com/vmcp/vmcp/internal/fixture"
	"github.com/vmcp/vmcp/internal/gateway"
)

// tally is a go-sdk server over Streamable HTTP whose only tool, tally,
// counts its calls: a backend with other tools than the example server's,
// and with state of its own.
type tally struct {
	URL     string
	calls   atomic.Int64
	deletes atomic.Int64 // HTTP DELETEs: backend sessions ended
}

func startTally(t *testing.T) *tally {
	t.Helper()
	tl := &tally{}
	srv := mcp.NewServer(&mcp.Implementation{Name: "tally", Version: "1"}, nil)
	srv.AddTool(&mcp.Tool{Name: "tally", InputSchema: map[string]any{"type": "object"}}, func(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		n := tl.calls.Add(1)
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: fmt.Sprint(n)}}}, nil
	})
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return srv }, nil)
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodDelete {
			tl.deletes.Add(1)
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		hs.CloseClientConnections()
		hs.Close()
	})
	tl.URL = hs.URL
	return tl
}

// TestReloadMovesABackendToAnotherURL: a reload that changes a backend's
// URL moves every live session to the server at the new URL. The
// session's next call reaches that server (its own counter says so), the
// backend session on the old server is ended exactly once, and the client
// is told its tools changed when the new server's tools differ. A
// backend left as it was keeps its backend session.
func TestReloadMovesABackendToAnotherURL(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		// start serves the new URL; call is what reaches it, and
		// served how many calls its server has answered.
		start        func(t *testing.T) (url string, served func() int64, ended func() int64)
		call         string
		toolsChanged bool
	}{
		{"same tools", func(t *testing.T) (string, func() int64, func() int64) {
			next := fixture.StartHTTP(t, exampleserver.Options{Name: "next"})
			return next.URL, func() int64 { return next.Stats.Calls("counter") }, next.Stats.Deletes
		}, "web_counter", false},
		{"other tools", func(t *testing.T) (string, func() int64, func() int64) {
			tl := startTally(t)
			return tl.URL, tl.calls.Load, tl.deletes.Load
		}, "web_tally", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			old := fixture.StartHTTP(t, exampleserver.Options{Name: "old"})
			more := fixture.StartHTTP(t, exampleserver.Options{Name: "more"})
			url, served, ended := tc.start(t)
			f := newConfigFile(t, "backends:\n"+httpBackendYAML("web", old.URL)+httpBackendYAML("more", more.URL))
			gw := startFromFile(t, f)
			cs := connectListening(t, gw.URL)
			callText(t, cs.ClientSession, "web_counter", nil)
			callText(t, cs.ClientSession, "more_counter", nil)
			if n := old.Stats.ActiveSessions(); n != 1 {
				t.Fatalf("old has %d backend sessions before the reload, want 1", n)
			}

			f.write("backends:\n" + httpBackendYAML("web", url) + httpBackendYAML("more", more.URL))
			reload(t, gw, f)
			if tc.toolsChanged {
				cs.awaitToolsChanged(t)
				if names := cs.toolNames(t); !slices.Contains(names, "web_tally") || slices.Contains(names, "web_counter") {
					t.Errorf("tools after the move: %v", names)
				}
			}
			if got := callText(t, cs.ClientSession, tc.call, nil); got != "1" {
				t.Errorf("%s after the move = %s, want 1: a new backend session on the new server", tc.call, got)
			}
			if n := served(); n != 1 {
				t.Errorf("the server at the new URL answered %d calls, want 1", n)
			}
			if n := old.Stats.Calls("counter"); n != 1 {
				t.Errorf("the old server answered %d counter calls, want the 1 before the move", n)
			}
			eventually(t, "the old backend session to end", func() bool { return old.Stats.ActiveSessions() == 0 })
			if got := callText(t, cs.ClientSession, "more_counter", nil); got != "2" {
				t.Errorf("more_counter = %s, want 2: an unchanged backend was reconnected", got)
			}

			// The session's end closes the new backend session, and
			// leaves the old one, closed already, alone.
			cs.Close()
			eventually(t, "the new backend session to end", func() bool { return ended() == 1 })
			if n := old.Stats.Deletes(); n != 1 {
				t.Errorf("the old server got %d DELETEs, want 1", n)
			}
		})
	}
}

// stdioExampleYAML is a stdio backend named name running the example
// server as server (its whoami answer).
func stdioExampleYAML(t *testing.T, name, server string) string {
	return fmt.Sprintf("  - name: %s\n    transport: stdio\n    command: [%q, -transport, stdio, -name, %s]\n", name, fixture.ExampleServerBinary(t), server)
}

// TestReloadChangesAStdioBackendsCommand: a reload that changes a stdio
// backend's command stops and reaps the live session's child and starts
// the new command, which serves the session's next call.
// Not parallel: it counts this process's stdio children.
func TestReloadChangesAStdioBackendsCommand(t *testing.T) {
	defer leakCheck(t)()
	f := newConfigFile(t, "backends:\n"+stdioExampleYAML(t, "local", "first"))
	gw := startFromFile(t, f)
	cs := connectListening(t, gw.URL)
	callText(t, cs.ClientSession, "local_counter", nil)
	if got := callText(t, cs.ClientSession, "local_whoami", nil); got != "first" {
		t.Fatalf("local_whoami = %s, want first", got)
	}
	before, _ := fixture.Children("vmcp-example")
	if len(before) != 1 {
		t.Fatalf("stdio children before the reload: %v, want 1", before)
	}

	f.write("backends:\n" + stdioExampleYAML(t, "local", "second"))
	reload(t, gw, f)
	if got := callText(t, cs.ClientSession, "local_whoami", nil); got != "second" {
		t.Errorf("local_whoami after the reload = %s, want second: the new command", got)
	}
	if got := callText(t, cs.ClientSession, "local_counter", nil); got != "1" {
		t.Errorf("local_counter after the reload = %s, want 1: a new process", got)
	}
	eventually(t, "the old child reaped, the new one running", func() bool {
		pids, zombies := fixture.Children("vmcp-example")
		return len(pids) == 1 && pids[0] != before[0] && len(zombies) == 0
	})

	cs.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := gw.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if pids, zombies := fixture.Children("vmcp-example"); len(pids) != 0 || len(zombies) != 0 {
		t.Errorf("stdio children after shutdown: %v (zombies %v)", pids, zombies)
	}
}

// TestReloadSessionTimeoutsApplyAtOnce: a reload that shortens
// session.idleTimeout ends a live session idle for longer than the new
// timeout at the next sweep (its backend session gets its DELETE, the
// client's next request a 404); one that shortens a backend's timeout
// bounds the next call to it.
func TestReloadSessionTimeoutsApplyAtOnce(t *testing.T) {
	t.Parallel()
	t.Run("session.idleTimeout", func(t *testing.T) {
		t.Parallel()
		web := fixture.StartHTTP(t, exampleserver.Options{Name: "web"})
		clock := fixture.NewClock(time.Unix(1_700_000_000, 0))
		f := newConfigFile(t, "session: {idleTimeout: 1h}\nbackends:\n"+httpBackendYAML("web", web.URL))
		gw := startFromFileWith(t, f, gateway.Options{Now: clock.Now, SweepInterval: 5 * time.Millisecond})
		sid := rawInit(t, gw.URL)
		if code, _, body := rawPost(t, gw.URL, sid, `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"web_counter","arguments":{}}}`); code != http.StatusOK {
			t.Fatalf("call: %d %s", code, body)
		}
		clock.Advance(2 * time.Minute) // idle, well within the hour

		f.write("session: {idleTimeout: 1m}\nbackends:\n" + httpBackendYAML("web", web.URL))
		reload(t, gw, f)
		eventually(t, "the idle session to end", func() bool { return web.Stats.Deletes() == 1 })
		if code, _, _ := rawPost(t, gw.URL, sid, `{"jsonrpc":"2.0","id":3,"method":"ping"}`); code != http.StatusNotFound {
			t.Errorf("ping after the idle timeout = %d, want 404", code)
		}
	})
	t.Run("backends[].timeout", func(t *testing.T) {
		t.Parallel()
		web := fixture.StartHTTP(t, exampleserver.Options{Name: "web"})
		f := newConfigFile(t, "backends:\n"+httpBackendYAML("web", web.URL, "timeout: 1h"))
		gw := startFromFile(t, f)
		cs := connectListening(t, gw.URL)
		callText(t, cs.ClientSession, "web_counter", nil)

		f.write("backends:\n" + httpBackendYAML("web", web.URL, "timeout: 300ms"))
		reload(t, gw, f)
		// Under the old timeout this call would run its full minute
		// and answer.
		_, err := callResult(cs.ClientSession, "web_sleep_ms", map[string]any{"ms": 60_000})
		if err == nil || !strings.Contains(err.Error(), "backends[].timeout (300ms)") {
			t.Fatalf("a call longer than the reloaded timeout: %v; want a timeout naming the setting", err)
		}
		if got := callText(t, cs.ClientSession, "web_echo", map[string]any{"text": "still here"}); got != "still here" {
			t.Errorf("web_echo after the timeout = %q", got)
		}
	})
}
