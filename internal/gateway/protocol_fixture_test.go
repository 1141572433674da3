package gateway_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// protoBackend is a go-sdk server that exercises the server-to-client side
// of MCP: it asks the client for sampling, elicitation and roots, logs,
// changes its tool list, updates a subscribed resource and reports what it
// saw of cancellation and subscriptions.
type protoBackend struct {
	URL    string
	server *mcp.Server

	mu           sync.Mutex
	subscribed   map[string]bool
	cancelled    chan struct{} // closed when a call saw its context cancelled
	cancelOnce   sync.Once
	reqCancelled chan error   // outcome of a request the backend gave up on
	waiting      atomic.Int64 // wait_cancel calls begun
	cancelNotes  atomic.Int64 // notifications/cancelled received
}

func startProtoBackend(t *testing.T, pageSize int, extraTools int) *protoBackend {
	t.Helper()
	b := &protoBackend{subscribed: map[string]bool{}, cancelled: make(chan struct{}), reqCancelled: make(chan error, 1)}
	s := mcp.NewServer(&mcp.Implementation{Name: "proto", Version: "1"}, &mcp.ServerOptions{
		PageSize: pageSize,
		SubscribeHandler: func(_ context.Context, r *mcp.SubscribeRequest) error {
			b.mu.Lock()
			defer b.mu.Unlock()
			b.subscribed[r.Params.URI] = true
			return nil
		},
		UnsubscribeHandler: func(_ context.Context, r *mcp.UnsubscribeRequest) error {
			b.mu.Lock()
			defer b.mu.Unlock()
			delete(b.subscribed, r.Params.URI)
			return nil
		},
		CompletionHandler: func(_ context.Context, r *mcp.CompleteRequest) (*mcp.CompleteResult, error) {
			return &mcp.CompleteResult{Completion: mcp.CompletionResultDetails{Values: []string{"from-proto:" + r.Params.Ref.URI}}}, nil
		},
	})
	b.server = s
	text := func(s string) *mcp.CallToolResult {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: s}}}
	}
	tool := func(name string, h mcp.ToolHandler) {
		s.AddTool(&mcp.Tool{Name: name, InputSchema: map[string]any{"type": "object"}}, h)
	}
	tool("ask_sampling", func(ctx context.Context, r *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		res, err := r.Session.CreateMessage(ctx, &mcp.CreateMessageParams{MaxTokens: 10,
			Messages: []*mcp.SamplingMessage{{Role: "user", Content: &mcp.TextContent{Text: "hi"}}}})
		if err != nil {
			return text("sampling error: " + err.Error()), nil
		}
		return text("sampled: " + res.Content.(*mcp.TextContent).Text), nil
	})
	tool("ask_elicit", func(ctx context.Context, r *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		res, err := r.Session.Elicit(ctx, &mcp.ElicitParams{Message: "name?",
			RequestedSchema: map[string]any{"type": "object", "properties": map[string]any{"name": map[string]any{"type": "string"}}}})
		if err != nil {
			return text("elicit error: " + err.Error()), nil
		}
		return text(fmt.Sprintf("elicited: %s %v", res.Action, res.Content["name"])), nil
	})
	tool("ask_roots", func(ctx context.Context, r *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		res, err := r.Session.ListRoots(ctx, nil)
		if err != nil {
			return text("roots error: " + err.Error()), nil
		}
		return text(fmt.Sprintf("roots: %d %s", len(res.Roots), res.Roots[0].URI)), nil
	})
	tool("ping_client", func(ctx context.Context, r *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		if err := r.Session.Ping(ctx, nil); err != nil {
			return text("ping error: " + err.Error()), nil
		}
		return text("pong"), nil
	})
	tool("log3", func(ctx context.Context, r *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		for i := range 3 {
			r.Session.Log(ctx, &mcp.LoggingMessageParams{Level: "info", Data: fmt.Sprintf("line %d", i)})
		}
		return text("logged"), nil
	})
	tool("wait_cancel", func(ctx context.Context, r *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		b.waiting.Add(1)
		select {
		case <-ctx.Done():
			b.cancelOnce.Do(func() { close(b.cancelled) })
			return text("cancelled"), nil
		case <-time.After(30 * time.Second):
			return text("not cancelled"), nil
		}
	})
	tool("elicit_then_give_up", func(ctx context.Context, r *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		ectx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer cancel()
		_, err := r.Session.Elicit(ectx, &mcp.ElicitParams{Message: "never answered", RequestedSchema: map[string]any{"type": "object"}})
		b.reqCancelled <- err
		return text("gave up"), nil
	})
	tool("add_tool", func(ctx context.Context, r *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		s.AddTool(&mcp.Tool{Name: "late_tool", InputSchema: map[string]any{"type": "object"}}, func(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return text("late"), nil
		})
		return text("added"), nil
	})
	tool("touch", func(ctx context.Context, r *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		s.ResourceUpdated(ctx, &mcp.ResourceUpdatedNotificationParams{URI: "test://watched"})
		return text("touched"), nil
	})
	for i := range extraTools {
		tool(fmt.Sprintf("bulk_%03d", i), func(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) { return text("bulk"), nil })
	}
	s.AddResource(&mcp.Resource{URI: "test://watched", Name: "watched"}, func(context.Context, *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
		return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{{URI: "test://watched", Text: "v"}}}, nil
	})
	s.AddResourceTemplate(&mcp.ResourceTemplate{URITemplate: "test://files/{name}", Name: "files"}, func(_ context.Context, r *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
		return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{{URI: r.Params.URI, Text: "file"}}}, nil
	})
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Count cancellations as they arrive on the wire: the go-sdk
		// server also cancels a call whose HTTP request ends.
		if r.Method == http.MethodPost {
			body, _ := io.ReadAll(r.Body)
			if bytes.Contains(body, []byte(`"notifications/cancelled"`)) {
				b.cancelNotes.Add(1)
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
	})
	b.URL = srv.URL
	return b
}

func (b *protoBackend) isSubscribed(uri string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.subscribed[uri]
}
