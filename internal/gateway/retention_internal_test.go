package gateway

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
	"weak"

	"github.com/vmcp/vmcp/internal/config"
	"github.com/vmcp/vmcp/internal/exampleserver"
	"github.com/vmcp/vmcp/internal/fixture"
	"github.com/vmcp/vmcp/internal/session"
)

// TestEndedSessionsAreReleased: once its client has deleted it, nothing in
// vmcp still holds a session (no map, cache, replay buffer, stream queue,
// timer or takeover table), so the garbage collector can free it with its
// backend clients and front-end state. Each session uses what a real
// client does: plain-JSON and SSE calls (whose streams are kept for
// replay), a standalone GET stream, and more sessions than the connector
// has standalone-stream slots, so that some of them wait in its queue.
func TestEndedSessionsAreReleased(t *testing.T) {
	web := fixture.StartHTTP(t, exampleserver.Options{Name: "web"})
	cfg := config.Default()
	cfg.Backends = []config.Backend{{Name: "web", Transport: config.TransportStreamableHTTP, URL: web.URL,
		Timeout: config.Duration(30 * time.Second)}}
	cfg.Session.MaxSessionsPerIdentity = 0 // all from one address
	g, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- g.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := g.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	url := "http://" + ln.Addr().String() + "/mcp"
	hc := &http.Client{Transport: &http.Transport{}}
	defer hc.CloseIdleConnections()

	const n = 24 // above the pool's 16 standalone-stream slots
	var held []weak.Pointer[session.Session]
	var sids []string
	for i := range n {
		_, h := post(t, hc, url, "", `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`)
		sid := h.Get("Mcp-Session-Id")
		if sid == "" {
			t.Fatal("initialize: no session ID")
		}
		post(t, hc, url, sid, `{"jsonrpc":"2.0","method":"notifications/initialized"}`)
		for j := range 3 {
			body, _ := post(t, hc, url, sid, fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"web_echo","arguments":{"text":"hi %d"}}}`, j+2, i))
			if !strings.Contains(body, fmt.Sprintf("hi %d", i)) {
				t.Fatalf("tools/call answered %q", body)
			}
		}
		// The standalone stream: opened, then dropped by the client.
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		req.Header.Set("Accept", "text/event-stream")
		req.Header.Set("Mcp-Session-Id", sid)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		cancel()
		resp.Body.Close()

		s, err := g.manager.Get(context.Background(), sid)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, weak.Make(s))
		sids = append(sids, sid)
	}
	// Newest first, so that sessions still waiting for a stream slot
	// end while they wait.
	for _, sid := range slices.Backward(sids) {
		req, _ := http.NewRequest(http.MethodDelete, url, nil)
		req.Header.Set("Mcp-Session-Id", sid)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent {
			t.Fatalf("DELETE = %d", resp.StatusCode)
		}
	}
	if got := g.manager.Len(); got != 0 {
		t.Fatalf("%d sessions still live after every DELETE", got)
	}
	hc.CloseIdleConnections()
	// Handlers and connections may still be on their way out after the
	// last response; the condition itself is reachability, not time.
	fixture.Eventually(t, "every ended session collected", func() bool {
		runtime.GC()
		for _, w := range held {
			if w.Value() != nil {
				return false
			}
		}
		return true
	})
}

// post sends one JSON-RPC message as a client that accepts SSE would,
// and returns the body and headers of the answer.
func post(t *testing.T, hc *http.Client, url, sid, body string) (string, http.Header) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if sid != "" {
		req.Header.Set("Mcp-Session-Id", sid)
		req.Header.Set("Mcp-Protocol-Version", "2025-06-18")
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		t.Fatalf("POST %s: HTTP %d: %s", body, resp.StatusCode, b)
	}
	return string(b), resp.Header
}
