package gateway_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/vmcp/vmcp/internal/config"
	"github.com/vmcp/vmcp/internal/gateway"
)

// subscriptions/listen: the acknowledgement first, then a backend's
// tools/list_changed, tagged with the stream's subscriptionId.
func TestModernListen(t *testing.T) {
	srv := mcp.NewServer(&mcp.Implementation{Name: "grower", Version: "1"}, nil)
	srv.AddTool(&mcp.Tool{Name: "grow", InputSchema: map[string]any{"type": "object"}},
		func(ctx context.Context, r *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			srv.AddTool(&mcp.Tool{Name: "grown", InputSchema: map[string]any{"type": "object"}},
				func(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
					return &mcp.CallToolResult{}, nil
				})
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "grew"}}}, nil
		})
	gw := startGateway(t, baseConfig(config.Backend{Name: "g", Transport: config.TransportStreamableHTTP, URL: serveSDK(t, srv)}), gateway.Options{})
	meta := map[string]any{"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": map[string]any{}}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	resp, err := http.DefaultClient.Do(modernRequest(ctx, gw.URL, "subscriptions/listen",
		map[string]any{"_meta": meta, "notifications": map[string]any{"toolsListChanged": true}}))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	events := make(chan map[string]any)
	go func() {
		defer close(events)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				var m map[string]any
				if json.Unmarshal([]byte(d), &m) == nil {
					select {
					case events <- m:
					case <-ctx.Done():
						return
					}
				}
			}
		}
	}()
	subID := func(m map[string]any) any {
		p, _ := m["params"].(map[string]any)
		mt, _ := p["_meta"].(map[string]any)
		return mt["io.modelcontextprotocol/subscriptionId"]
	}
	ack := <-events
	if ack["method"] != "notifications/subscriptions/acknowledged" || subID(ack) != float64(1) {
		t.Fatalf("first event %v, want the acknowledgement with subscriptionId 1", ack)
	}
	if status, msg := modernPost(t, gw.URL, "tools/call", map[string]any{"name": "g_grow", "arguments": map[string]any{}}, nil); status != 200 || msg["error"] != nil {
		t.Fatalf("g_grow: %d %v", status, msg)
	}
	for ev := range events {
		if ev["method"] == "notifications/tools/list_changed" {
			if subID(ev) != float64(1) {
				t.Fatalf("list_changed %v lacks subscriptionId 1", ev)
			}
			return
		}
		if m, _ := ev["method"].(string); m != "notifications/tools/list_changed" {
			t.Fatalf("unexpected event on a tools-only listen stream: %v", ev)
		}
	}
	t.Fatal("the listen stream ended without tools/list_changed")
}
