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
)

// lifecycleRig is one HTTP and one stdio backend behind a gateway with a
// fake clock, so expiry can be driven without waiting.
type lifecycleRig struct {
	gw    *running
	web   *fixture.Backend
	clock *fakeClock
}

func startRig(t *testing.T, mutate func(*config.Config)) *lifecycleRig {
	t.Helper()
	web := fixture.StartHTTP(t, exampleserver.Options{Name: "web"})
	bin := fixture.ExampleServerBinary(t)
	cfg := baseConfig(
		config.Backend{Name: "web", Transport: config.TransportStreamableHTTP, URL: web.URL},
		config.Backend{Name: "notes", Transport: config.TransportStdio, Command: []string{bin, "-transport", "stdio", "-name", "notes"}},
	)
	if mutate != nil {
		mutate(cfg)
	}
	clock := fixture.NewClock(time.Unix(1_700_000_000, 0))
	gw := startGateway(t, cfg, gateway.Options{Now: clock.Now, SweepInterval: 5 * time.Millisecond})
	return &lifecycleRig{gw: gw, web: web, clock: clock}
}

// assertBackendsClosed waits until the HTTP backend saw its DELETE and the
// stdio child is gone and reaped.
func (r *lifecycleRig) assertBackendsClosed(t *testing.T, sessions int64) {
	t.Helper()
	eventually(t, "HTTP backend DELETE", func() bool { return r.web.Stats.Deletes() == sessions })
	eventually(t, "stdio child gone", func() bool { pids, _ := fixture.Children("vmcp-example"); return len(pids) == 0 })
}

func TestLifecycleClosesBackendSessions(t *testing.T) {
	defer leakCheck(t)()
	cases := []struct {
		name   string
		mutate func(*config.Config)
		end    func(t *testing.T, r *lifecycleRig, sid string)
	}{
		{"delete", nil, func(t *testing.T, r *lifecycleRig, sid string) {
			if code := rawDelete(t, r.gw.URL, sid); code != http.StatusNoContent {
				t.Fatalf("DELETE = %d", code)
			}
		}},
		{"idle expiry", func(c *config.Config) { c.Session.IdleTimeout = config.Duration(time.Minute) },
			func(t *testing.T, r *lifecycleRig, sid string) { r.clock.Advance(2 * time.Minute) }},
		{"ttl expiry", func(c *config.Config) {
			c.Session.TTL, c.Session.IdleTimeout = config.Duration(time.Hour), 0
		}, func(t *testing.T, r *lifecycleRig, sid string) {
			// Activity does not extend a TTL.
			rawPost(t, r.gw.URL, sid, `{"jsonrpc":"2.0","id":2,"method":"ping"}`)
			r.clock.Advance(61 * time.Minute)
		}},
		{"shutdown", nil, func(t *testing.T, r *lifecycleRig, sid string) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := r.gw.Shutdown(ctx); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := startRig(t, tc.mutate)
			sid := rawInit(t, r.gw.URL)
			code, _, body := rawPost(t, r.gw.URL, sid, `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"notes_counter","arguments":{}}}`)
			if code != 200 || !strings.Contains(body, `"1"`) {
				t.Fatalf("call: %d %s", code, body)
			}
			tc.end(t, r, sid)
			r.assertBackendsClosed(t, 1)
			if tc.name != "shutdown" {
				if code, _, _ := rawPost(t, r.gw.URL, sid, `{"jsonrpc":"2.0","id":3,"method":"ping"}`); code != http.StatusNotFound {
					t.Errorf("ping after end = %d, want 404", code)
				}
			}
			if n := r.web.Stats.Initializes(); n != 1 {
				t.Errorf("backend initializes = %d, want 1", n)
			}
		})
	}
}

func TestCloseWaitsForCallInFlight(t *testing.T) {
	r := startRig(t, nil)
	cs := connect(t, r.gw.URL)
	sid := cs.ID()

	type outcome struct {
		res *mcp.CallToolResult
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "web_sleep_ms", Arguments: map[string]any{"ms": 1000}})
		done <- outcome{res, err}
	}()
	eventually(t, "slow call reaches backend", func() bool { return r.web.Stats.Calls("sleep_ms") == 1 })

	deleted := make(chan int, 1)
	go func() { deleted <- rawDelete(t, r.gw.URL, sid) }()
	// The session is detached at once: a new call is rejected while the
	// slow one is still running.
	eventually(t, "new calls rejected", func() bool {
		code, _, _ := rawPost(t, r.gw.URL, sid, `{"jsonrpc":"2.0","id":9,"method":"ping"}`)
		return code == http.StatusNotFound
	})
	if n := r.web.Stats.Deletes(); n != 0 {
		select {
		case out := <-done: // a slow machine: the call ended first
			done <- out
		default:
			t.Fatalf("backend closed (%d DELETEs) while a call was in flight", n)
		}
	}
	out := <-done
	if out.err != nil || out.res.IsError {
		t.Fatalf("in-flight call did not complete: %+v %v", out.res, out.err)
	}
	if txt := out.res.Content[0].(*mcp.TextContent).Text; !strings.Contains(txt, "slept") {
		t.Fatalf("in-flight call result = %q", txt)
	}
	if code := <-deleted; code != http.StatusNoContent {
		t.Fatalf("DELETE = %d", code)
	}
	r.assertBackendsClosed(t, 1)
}
