package gateway_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/vmcp/vmcp/internal/config"
	"github.com/vmcp/vmcp/internal/gateway"
)

// openListen opens a subscriptions/listen stream (request id 1) with
// filter and returns its events, in order, until the stream or the test
// ends.
func openListen(t *testing.T, url string, filter map[string]any) <-chan map[string]any {
	t.Helper()
	meta := map[string]any{"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": map[string]any{}}
	ctx, cancel := context.WithCancel(context.Background())
	resp, err := http.DefaultClient.Do(modernRequest(ctx, url, "subscriptions/listen",
		map[string]any{"_meta": meta, "notifications": filter}))
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	events := make(chan map[string]any)
	done := make(chan struct{})
	t.Cleanup(func() {
		cancel()
		<-done
	})
	go func() {
		defer close(done)
		defer close(events)
		defer resp.Body.Close()
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
	return events
}

// subID is the subscriptionId of a listen stream's event.
func subID(m map[string]any) any {
	p, _ := m["params"].(map[string]any)
	mt, _ := p["_meta"].(map[string]any)
	return mt["io.modelcontextprotocol/subscriptionId"]
}

// awaitAck reads the acknowledgement a listen stream starts with.
func awaitAck(t *testing.T, events <-chan map[string]any) {
	t.Helper()
	ack := <-events
	if ack["method"] != "notifications/subscriptions/acknowledged" || subID(ack) != float64(1) {
		t.Fatalf("first event %v, want the acknowledgement with subscriptionId 1", ack)
	}
}

// awaitToolsChanged reads events until a tools/list_changed tagged with
// the stream's subscriptionId, failing on any other kind, or on none
// within wait.
func awaitToolsChanged(t *testing.T, events <-chan map[string]any, wait time.Duration) bool {
	t.Helper()
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatal("the listen stream ended")
			}
			if ev["method"] != "notifications/tools/list_changed" {
				t.Fatalf("unexpected event on a tools-only listen stream: %v", ev)
			}
			if subID(ev) != float64(1) {
				t.Fatalf("list_changed %v lacks subscriptionId 1", ev)
			}
			return true
		case <-timer.C:
			return false
		}
	}
}

// growingServer is a stateful go-sdk server whose tool "grow" adds a tool,
// so that it sends tools/list_changed.
func growingServer() *mcp.Server {
	srv := mcp.NewServer(&mcp.Implementation{Name: "grower", Version: "1"}, nil)
	srv.AddTool(&mcp.Tool{Name: "grow", InputSchema: map[string]any{"type": "object"}},
		func(ctx context.Context, r *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			addTool(srv, "grown")
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "grew"}}}, nil
		})
	return srv
}

func addTool(srv *mcp.Server, name string) {
	srv.AddTool(&mcp.Tool{Name: name, InputSchema: map[string]any{"type": "object"}},
		func(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return &mcp.CallToolResult{}, nil
		})
}

// subscriptions/listen: the acknowledgement first, then a backend's
// tools/list_changed, tagged with the stream's subscriptionId.
func TestModernListen(t *testing.T) {
	gw := startGateway(t, baseConfig(config.Backend{Name: "g", Transport: config.TransportStreamableHTTP, URL: serveSDK(t, growingServer())}), gateway.Options{})
	events := openListen(t, gw.URL, map[string]any{"toolsListChanged": true})
	awaitAck(t, events)
	if status, msg := modernPost(t, gw.URL, "tools/call", map[string]any{"name": "g_grow", "arguments": map[string]any{}}, nil); status != 200 || msg["error"] != nil {
		t.Fatalf("g_grow: %d %v", status, msg)
	}
	if !awaitToolsChanged(t, events, 30*time.Second) {
		t.Fatal("no tools/list_changed on the listen stream")
	}
}

// A listen stream opened before a config reload stays open across it and
// follows the new lineup: it is told the tools changed (a backend was
// added), and the added backend's own list_changed reaches it, with no
// request from the client in between to build a session on the new
// lineup.
func TestModernListenAcrossReload(t *testing.T) {
	first := config.Backend{Name: "g", Transport: config.TransportStreamableHTTP, URL: serveSDK(t, growingServer())}
	gw := startGateway(t, baseConfig(first), gateway.Options{})
	events := openListen(t, gw.URL, map[string]any{"toolsListChanged": true})
	awaitAck(t, events)

	added := growingServer()
	cfg := baseConfig(first, config.Backend{Name: "h", Transport: config.TransportStreamableHTTP, URL: serveSDK(t, added)})
	if err := gw.Reload(t.Context(), cfg); err != nil {
		t.Fatal(err)
	}
	if !awaitToolsChanged(t, events, 30*time.Second) {
		t.Fatal("no tools/list_changed on the listen stream for the backend the reload added")
	}
	// The added backend changes its tools on its own. Its list_changed
	// goes to the backend sessions it has, on their standalone streams,
	// which open a moment after the session: change it until one arrives.
	got := false
	for i := 0; i < 30 && !got; i++ {
		addTool(added, fmt.Sprintf("late%d", i))
		got = awaitToolsChanged(t, events, time.Second)
	}
	if !got {
		t.Fatal("the added backend's tools/list_changed never reached the listen stream")
	}
	// And the stream's identity sees the tools the new backend added.
	_, msg := modernPost(t, gw.URL, "tools/list", nil, nil)
	if !strings.Contains(fmt.Sprint(msg["result"]), "h_late0") {
		t.Errorf("tools/list after the reload: %v, want h_late0", msg)
	}
}

// A listen stream's resource subscription that no backend served when the
// stream opened is taken up by the backend a reload adds: the stream's
// session subscribes there, and the backend's resources/updated reaches
// the stream.
func TestModernListenResourceAcrossReload(t *testing.T) {
	first := config.Backend{Name: "g", Transport: config.TransportStreamableHTTP, URL: serveSDK(t, growingServer())}
	gw := startGateway(t, baseConfig(first), gateway.Options{})
	const uri = "watch://h/state"
	events := openListen(t, gw.URL, map[string]any{"resourceSubscriptions": []string{uri}})
	awaitAck(t, events)

	subscribed := make(chan string, 4)
	added := mcp.NewServer(&mcp.Implementation{Name: "watched", Version: "1"}, &mcp.ServerOptions{
		SubscribeHandler: func(_ context.Context, r *mcp.SubscribeRequest) error {
			subscribed <- r.Params.URI
			return nil
		},
		UnsubscribeHandler: func(context.Context, *mcp.UnsubscribeRequest) error { return nil },
	})
	added.AddResource(&mcp.Resource{URI: uri, Name: "state"}, func(context.Context, *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
		return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{{URI: uri, Text: "on"}}}, nil
	})
	cfg := baseConfig(first, config.Backend{Name: "h", Transport: config.TransportStreamableHTTP, URL: serveSDK(t, added)})
	if err := gw.Reload(t.Context(), cfg); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-subscribed:
		if got != uri {
			t.Fatalf("the added backend was subscribed to %q", got)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the listen stream's resource was never subscribed at the added backend")
	}
	// Its update goes on the backend session's standalone stream, which
	// opens a moment after the session: update until one arrives.
	for range 30 {
		if err := added.ResourceUpdated(t.Context(), &mcp.ResourceUpdatedNotificationParams{URI: uri}); err != nil {
			t.Fatal(err)
		}
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatal("the listen stream ended")
			}
			p, _ := ev["params"].(map[string]any)
			if ev["method"] != "notifications/resources/updated" || p["uri"] != uri || subID(ev) != float64(1) {
				t.Fatalf("unexpected event on a resource-only listen stream: %v", ev)
			}
			return
		case <-time.After(time.Second):
		}
	}
	t.Fatal("the added backend's resources/updated never reached the listen stream")
}
