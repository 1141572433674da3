package gateway_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/vmcp/vmcp/internal/config"
	"github.com/vmcp/vmcp/internal/gateway"
	"github.com/vmcp/vmcp/internal/mrtr"
	"github.com/vmcp/vmcp/internal/redistest"
)

// startAdvertisedReplica serves a gateway for cfg whose modern.advertiseURL
// is its own MCP endpoint.
func startAdvertisedReplica(t *testing.T, cfg config.Config) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String() + "/mcp"
	cfg.Modern.AdvertiseURL = url
	g, err := gateway.New(&cfg, gateway.Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(g.Handler())
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(func() {
		srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := g.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return url
}

// Two replicas with one state key (and one Redis store): an MRTR retry that lands on the replica
// that does not hold the waiting call is forwarded to the one that does,
// and completes there.
func TestModernMRTRRetryOnAnotherReplica(t *testing.T) {
	cfg := baseConfig(config.Backend{Name: "ask", Transport: config.TransportStreamableHTTP, URL: askingBackend(t)})
	cfg.Modern.StateKey = fmt.Sprintf("%x", mrtr.RandomKey())
	cfg.Store.Type = config.StoreRedis
	cfg.Store.Redis.Address = redistest.Start(t).Addr
	a, b := startAdvertisedReplica(t, *cfg), startAdvertisedReplica(t, *cfg)

	call := map[string]any{"name": "ask_confirm", "arguments": map[string]any{}}
	_, msg := modernPost(t, a, "tools/call", call, nil)
	res, _ := msg["result"].(map[string]any)
	if res["resultType"] != "input_required" {
		t.Fatalf("first round on replica A: %v", msg)
	}
	var key string
	for k := range res["inputRequests"].(map[string]any) {
		key = k
	}
	retry := map[string]any{"name": "ask_confirm", "arguments": map[string]any{}, "requestState": res["requestState"],
		"inputResponses": map[string]any{key: map[string]any{"action": "accept", "content": map[string]any{"name": "Bo"}}}}
	status, msg := modernPost(t, b, "tools/call", retry, nil)
	res, _ = msg["result"].(map[string]any)
	if status != http.StatusOK || res["resultType"] != "complete" || !strings.Contains(fmt.Sprint(res["content"]), "hello Bo") {
		t.Fatalf("retry on replica B: %d %v, want the call completed on A", status, msg)
	}
}
