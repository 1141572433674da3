package gateway_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/vmcp/vmcp/internal/config"
	"github.com/vmcp/vmcp/internal/exampleserver"
	"github.com/vmcp/vmcp/internal/fixture"
	"github.com/vmcp/vmcp/internal/gateway"
)

// A legacy go-sdk client (initialize, a session, server-to-client
// requests on its call's stream) in front of vmcp, with two backends
// behind it in one session: the go-sdk v1.8.0 conformance
// everything-server in its default 2026-07-28 mode, found by auto, and a
// legacy example server. The everything-server's input-required tool
// reaches the client as elicitation/create, and the client's answer
// completes the call; the legacy backend's stateful counter counts on.
func TestLegacyClientThroughModernBackend(t *testing.T) {
	t.Parallel()
	everything := fixture.StartEverything(t, true)
	web := fixture.StartHTTP(t, exampleserver.Options{Name: "web"})
	gw := startGateway(t, baseConfig(
		config.Backend{Name: "everything", Transport: config.TransportStreamableHTTP, URL: everything},
		config.Backend{Name: "web", Transport: config.TransportStreamableHTTP, URL: web.URL},
	), gateway.Options{})

	var mu sync.Mutex
	var asked []string
	updated := make(chan string, 16)
	c := mcp.NewClient(&mcp.Implementation{Name: "legacy-front", Version: "1"}, &mcp.ClientOptions{
		ResourceUpdatedHandler: func(_ context.Context, req *mcp.ResourceUpdatedNotificationRequest) {
			select {
			case updated <- req.Params.URI:
			default:
			}
		},
		ElicitationHandler: func(_ context.Context, req *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
			mu.Lock()
			asked = append(asked, req.Params.Message)
			mu.Unlock()
			return &mcp.ElicitResult{Action: "accept", Content: map[string]any{"name": "Alice"}}, nil
		},
	})
	ctx := context.Background()
	cs, err := c.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: gw.URL}, &mcp.ClientSessionOptions{ProtocolVersion: "2025-11-25"})
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	if pv := cs.InitializeResult().ProtocolVersion; pv != "2025-11-25" {
		t.Fatalf("front end negotiated %q", pv)
	}

	tools, err := cs.ListTools(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, tl := range tools.Tools {
		names[tl.Name] = true
	}
	for _, n := range []string{"everything_test_simple_text", "everything_test_input_required_result_elicitation", "web_counter"} {
		if !names[n] {
			t.Errorf("catalog lacks %s", n)
		}
	}

	if got := callText(t, cs, "everything_test_input_required_result_elicitation", nil); got != "Hello, Alice!" {
		t.Errorf("input-required tool = %q", got)
	}
	mu.Lock()
	if len(asked) != 1 || asked[0] != "What is your name?" {
		t.Errorf("the client was asked %q", asked)
	}
	mu.Unlock()
	if got := callText(t, cs, "everything_test_x_mcp_header", map[string]any{"region": "eu-west1"}); got == "" {
		t.Error("x-mcp-header tool: empty result")
	}
	for _, want := range []string{"1", "2"} {
		if got := callText(t, cs, "web_counter", nil); got != want {
			t.Errorf("legacy backend's counter = %q, want %s", got, want)
		}
	}
	// A resource subscription reaches the modern backend as
	// subscriptions/listen; its updates (every 3 s) reach the client.
	if err := cs.Subscribe(ctx, &mcp.SubscribeParams{URI: "test://watched-resource"}); err != nil {
		t.Fatal(err)
	}
	select {
	case uri := <-updated:
		if uri != "test://watched-resource" {
			t.Errorf("update for %q", uri)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no resources/updated from the modern backend")
	}
	// /status says which era auto found for each backend.
	var st struct {
		Gateway struct {
			Backends []struct{ Name, Protocol string }
		}
	}
	if err := json.Unmarshal([]byte(getBody(t, gw.Base+"/status")), &st); err != nil {
		t.Fatal(err)
	}
	eras := map[string]string{}
	for _, b := range st.Gateway.Backends {
		eras[b.Name] = b.Protocol
	}
	if eras["everything"] != "modern" || eras["web"] != "legacy" {
		t.Errorf("/status eras = %v, want everything modern, web legacy", eras)
	}
	// The log level a legacy client sets reaches the modern backend with
	// each request; the call goes on.
	if err := cs.SetLoggingLevel(ctx, &mcp.SetLoggingLevelParams{Level: "debug"}); err != nil {
		t.Fatal(err)
	}
	if got := callText(t, cs, "everything_test_simple_text", nil); got == "" {
		t.Error("after setLevel: empty result")
	}
}
