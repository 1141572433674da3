package gateway_test

import (
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/vmcp/vmcp/internal/config"
	"github.com/vmcp/vmcp/internal/fixture"
	"github.com/vmcp/vmcp/internal/gateway"
)

// TestResultsNameVmcpNotTheBackend: a 2026-07-28 backend names itself in
// each result's _meta (SEP-2575). Through vmcp, a modern client reads
// vmcp's serverInfo there, the server it talks to; a legacy client, which
// has serverInfo from initialize, gets none: neither learns what runs
// behind the gateway.
func TestResultsNameVmcpNotTheBackend(t *testing.T) {
	t.Parallel()
	everything := fixture.StartEverything(t, true)
	gw := startGateway(t, baseConfig(
		config.Backend{Name: "everything", Transport: config.TransportStreamableHTTP, URL: everything},
	), gateway.Options{})
	const key = "io.modelcontextprotocol/serverInfo"
	for _, version := range []string{"2026-07-28", "2025-11-25"} {
		t.Run(version, func(t *testing.T) {
			c := mcp.NewClient(&mcp.Implementation{Name: "serverinfo-test", Version: "1"}, nil)
			cs, err := c.Connect(t.Context(), &mcp.StreamableClientTransport{Endpoint: gw.URL}, &mcp.ClientSessionOptions{ProtocolVersion: version})
			if err != nil {
				t.Fatal(err)
			}
			defer cs.Close()
			res, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: "everything_test_simple_text"})
			if err != nil {
				t.Fatal(err)
			}
			info, _ := res.Meta[key].(map[string]any)
			if version == "2025-11-25" {
				if res.Meta[key] != nil {
					t.Errorf("a legacy client's result names a server in _meta: %v", res.Meta[key])
				}
				return
			}
			if info["name"] != "vmcp" {
				t.Errorf("_meta serverInfo = %v, want vmcp's", res.Meta[key])
			}
		})
	}
}
