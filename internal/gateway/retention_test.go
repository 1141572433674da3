package gateway_test

import (
	"context"
	"fmt"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"testing"
	"weak"

	"github.com/vmcp/vmcp/internal/config"
	"github.com/vmcp/vmcp/internal/exampleserver"
	"github.com/vmcp/vmcp/internal/fixture"
	"github.com/vmcp/vmcp/internal/gateway"
	"github.com/vmcp/vmcp/internal/session"
)

// TestEndedSessionsAreReleased: once its client has deleted it, nothing in
// vmcp still holds a session (no map, cache, replay buffer, stream queue,
// timer or takeover table), so the garbage collector can free it with its
// backend clients and front-end state. Each session uses what a real
// client does: SSE-capable calls (whose streams are kept for replay), a
// standalone GET stream, and more sessions than the connector has
// standalone-stream slots, so that some wait in its queue.
func TestEndedSessionsAreReleased(t *testing.T) {
	web := fixture.StartHTTP(t, exampleserver.Options{Name: "web"})
	cfg := baseConfig(config.Backend{Name: "web", Transport: config.TransportStreamableHTTP, URL: web.URL})
	cfg.Session.MaxSessionsPerIdentity = 0 // all from one address
	gw := startGateway(t, cfg, gateway.Options{})
	hc := &http.Client{Transport: &http.Transport{}}
	defer hc.CloseIdleConnections()

	const n = 24 // above the pool's 16 standalone-stream slots
	var held []weak.Pointer[session.Session]
	var sids []string
	for i := range n {
		sid := rawInitWith(t, hc, gw.URL)
		rawPostWith(t, hc, gw.URL, sid, `{"jsonrpc":"2.0","method":"notifications/initialized"}`)
		for j := range 3 {
			code, _, body := rawPostWith(t, hc, gw.URL, sid, fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"web_echo","arguments":{"text":"hi %d"}}}`, j+2, i))
			if code != http.StatusOK || !strings.Contains(body, fmt.Sprintf("hi %d", i)) {
				t.Fatalf("tools/call: %d %q", code, body)
			}
		}
		// The standalone stream: opened, then dropped by the client.
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, gw.URL, nil)
		req.Header.Set("Accept", "text/event-stream")
		req.Header.Set("Mcp-Session-Id", sid)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		cancel()
		resp.Body.Close()

		s, err := gw.Manager().Get(context.Background(), sid)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, weak.Make(s))
		sids = append(sids, sid)
	}
	// Newest first, so that sessions still waiting for a stream slot end
	// while they wait.
	for _, sid := range slices.Backward(sids) {
		if code := rawDelete(t, gw.URL, sid); code != http.StatusNoContent {
			t.Fatalf("DELETE = %d", code)
		}
	}
	if got := gw.Manager().Len(); got != 0 {
		t.Fatalf("%d sessions still live after every DELETE", got)
	}
	hc.CloseIdleConnections()
	// Handlers and connections may still be on their way out after the
	// last response; the condition itself is reachability, not time.
	eventually(t, "every ended session collected", func() bool {
		runtime.GC()
		for _, w := range held {
			if w.Value() != nil {
				return false
			}
		}
		return true
	})
}
