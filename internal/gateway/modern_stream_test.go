package gateway_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/vmcp/vmcp/internal/config"
	"github.com/vmcp/vmcp/internal/gateway"
)

// chattyBackend is a legacy go-sdk server with a tool that reports
// progress and logs at debug and warning, and one that blocks until its
// call is cancelled, telling the test when it starts and when it ends.
func chattyBackend(t *testing.T) (url string, started, cancelled chan struct{}) {
	started, cancelled = make(chan struct{}, 1), make(chan struct{}, 1)
	srv := mcp.NewServer(&mcp.Implementation{Name: "chatty", Version: "1"}, nil)
	srv.AddTool(&mcp.Tool{Name: "talk", InputSchema: map[string]any{"type": "object"}},
		func(ctx context.Context, r *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			if tok := r.Params.GetProgressToken(); tok != nil {
				r.Session.NotifyProgress(ctx, &mcp.ProgressNotificationParams{ProgressToken: tok, Progress: 1, Total: 2})
			}
			r.Session.Log(ctx, &mcp.LoggingMessageParams{Level: "debug", Data: "debug-line"})
			r.Session.Log(ctx, &mcp.LoggingMessageParams{Level: "warning", Data: "warning-line"})
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "said"}}}, nil
		})
	srv.AddTool(&mcp.Tool{Name: "block", InputSchema: map[string]any{"type": "object"}},
		func(ctx context.Context, r *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			started <- struct{}{}
			<-ctx.Done()
			cancelled <- struct{}{}
			return nil, ctx.Err()
		})
	return serveSDK(t, srv), started, cancelled
}

func modernRequest(ctx context.Context, url, method string, params map[string]any) *http.Request {
	body, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("MCP-Protocol-Version", "2026-07-28")
	req.Header.Set("Mcp-Method", method)
	if n, ok := params["name"].(string); ok {
		req.Header.Set("Mcp-Name", n)
	}
	return req
}

// A request's stream carries its own progress and the log messages at or
// above the level its _meta asks for, then its result; a request that
// asks for no level gets no log message.
func TestModernStreamNotifications(t *testing.T) {
	url, _, _ := chattyBackend(t)
	gw := startGateway(t, baseConfig(config.Backend{Name: "c", Transport: config.TransportStreamableHTTP, URL: url}), gateway.Options{})
	meta := func(extra map[string]any) map[string]any {
		m := map[string]any{"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": map[string]any{}}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	tests := []struct {
		name       string
		meta       map[string]any
		want, deny []string
	}{
		{"level info", meta(map[string]any{"io.modelcontextprotocol/logLevel": "info", "progressToken": "p1"}),
			[]string{"notifications/progress", "warning-line", `"said"`}, []string{"debug-line"}},
		{"no level", meta(map[string]any{"progressToken": "p2"}),
			[]string{"notifications/progress", `"said"`}, []string{"notifications/message"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := http.DefaultClient.Do(modernRequest(t.Context(), gw.URL, "tools/call",
				map[string]any{"name": "c_talk", "arguments": map[string]any{}, "_meta": tt.meta}))
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			body := string(b)
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") || resp.Header.Get("X-Accel-Buffering") != "no" {
				t.Fatalf("Content-Type %q, X-Accel-Buffering %q: want an unbuffered SSE stream\n%s", ct, resp.Header.Get("X-Accel-Buffering"), body)
			}
			for _, w := range tt.want {
				if !strings.Contains(body, w) {
					t.Errorf("stream lacks %s:\n%s", w, body)
				}
			}
			for _, d := range tt.deny {
				if strings.Contains(body, d) {
					t.Errorf("stream carries %s:\n%s", d, body)
				}
			}
			if i, j := strings.Index(body, "notifications/progress"), strings.Index(body, `"result"`); i < 0 || j < i {
				t.Errorf("the result does not come after the notifications:\n%s", body)
			}
		})
	}
}

// Closing a request's stream cancels its call at the backend.
func TestModernStreamCloseCancels(t *testing.T) {
	url, started, cancelled := chattyBackend(t)
	gw := startGateway(t, baseConfig(config.Backend{Name: "c", Transport: config.TransportStreamableHTTP, URL: url}), gateway.Options{})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		resp, err := http.DefaultClient.Do(modernRequest(ctx, gw.URL, "tools/call", map[string]any{"name": "c_block", "arguments": map[string]any{},
			"_meta": map[string]any{"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": map[string]any{}}}))
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	<-started
	cancel()
	<-done
	<-cancelled // the backend saw its call cancelled
}
