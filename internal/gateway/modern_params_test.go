package gateway_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/vmcp/vmcp/internal/config"
	"github.com/vmcp/vmcp/internal/fixture"
	"github.com/vmcp/vmcp/internal/gateway"
)

// A 2026-07-28 client's Mcp-Param-* header, for a tool argument marked
// x-mcp-header, reaches a legacy Streamable HTTP backend with the call
// (where a load balancer in front of the backend may route on it); a
// header the tool does not declare does not.
func TestModernParamHeadersReachALegacyBackend(t *testing.T) {
	t.Parallel()
	srv := mcp.NewServer(&mcp.Implementation{Name: "regional", Version: "1"}, nil)
	srv.AddTool(&mcp.Tool{Name: "deploy", InputSchema: map[string]any{
		"type":       "object",
		"properties": map[string]any{"region": map[string]any{"type": "string", "x-mcp-header": "Region"}},
	}}, func(_ context.Context, r *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "deployed"}}}, nil
	})
	rec := &fixture.Posts{}
	ts := httptest.NewServer(rec.Wrap(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return srv }, nil)))
	t.Cleanup(func() {
		ts.CloseClientConnections()
		ts.Close()
	})
	cfg := baseConfig(config.Backend{Name: "r", Transport: config.TransportStreamableHTTP, URL: ts.URL, Protocol: config.ProtocolLegacy})
	gw := startGateway(t, cfg, gateway.Options{})

	status, msg := modernPost(t, gw.URL, "tools/call",
		map[string]any{"name": "r_deploy", "arguments": map[string]any{"region": "eu-west1"}},
		map[string]string{"Mcp-Param-Region": "eu-west1", "Mcp-Param-Other": "x"})
	if status != http.StatusOK || !strings.Contains(fmt.Sprint(msg["result"]), "deployed") {
		t.Fatalf("tools/call = %d %v", status, msg)
	}
	got := rec.Last("tools/call")
	if v := got.Header.Get("Mcp-Param-Region"); v != "eu-west1" {
		t.Errorf("the backend's tools/call had Mcp-Param-Region %q, want eu-west1 (headers %v)", v, got.Header)
	}
	if v := got.Header.Get("Mcp-Param-Other"); v != "" {
		t.Errorf("the backend got Mcp-Param-Other %q, which the tool does not declare", v)
	}
	if got.Header.Get("Mcp-Session-Id") == "" {
		t.Error("the call did not go on a legacy backend session")
	}
}
