package gateway_test

import (
	"strings"
	"sync"
	"testing"

	"github.com/vmcp/vmcp/internal/config"
	"github.com/vmcp/vmcp/internal/fixture"
	"github.com/vmcp/vmcp/internal/gateway"
)

// TestPerSessionCallLimit: a session with session.maxConcurrentCalls calls
// in flight fails the next one with a clear error once the queue timeout
// passes, without it reaching the backend; other sessions are unaffected.
func TestPerSessionCallLimit(t *testing.T) {
	web := fixture.StartFaulty(t, "web")
	cfg := baseConfig(config.Backend{Name: "web", Transport: config.TransportStreamableHTTP, URL: web.URL})
	cfg.Session.MaxConcurrentCalls, cfg.Session.CallQueueTimeout = 2, 0
	gw := startGateway(t, cfg, gateway.Options{})
	cs := connect(t, gw.URL)

	gate := make(chan struct{})
	web.CallGate.Store(&gate)
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() { callResult(cs, "web_echo", map[string]any{"text": "held"}) })
	}
	eventually(t, "two calls held by the backend", func() bool { return web.Calls.Load() == 2 })

	_, err := callResult(cs, "web_echo", map[string]any{"text": "one too many"})
	if err == nil || !strings.Contains(err.Error(), "too many concurrent calls in this session; retry later") {
		t.Fatalf("third call: %v", err)
	}
	if n := web.Calls.Load(); n != 2 {
		t.Errorf("backend got %d calls, want the 2 held ones only", n)
	}
	other := connect(t, gw.URL)
	web.CallGate.Store(nil)
	if got := callText(t, other, "web_echo", map[string]any{"text": "other"}); got != "other" {
		t.Errorf("another session's call = %q", got)
	}
	close(gate)
	wg.Wait()
	if got := callText(t, cs, "web_echo", map[string]any{"text": "again"}); got != "again" {
		t.Errorf("call after the held ones ended = %q", got)
	}
}
