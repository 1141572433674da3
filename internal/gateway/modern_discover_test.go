package gateway_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/vmcp/vmcp/internal/config"
	"github.com/vmcp/vmcp/internal/exampleserver"
	"github.com/vmcp/vmcp/internal/fixture"
	"github.com/vmcp/vmcp/internal/gateway"
)

// cachingModernBackend is a stateless (2026-07-28) go-sdk server whose
// server/discover answer is public for ttl, behind a recorder of what
// reaches it.
func cachingModernBackend(t *testing.T, ttl time.Duration) (string, *fixture.Posts) {
	t.Helper()
	return hintedModernBackend(t, "cached", func(req mcp.Request, c *mcp.Cacheable) {
		if _, ok := req.GetParams().(*mcp.DiscoverParams); ok {
			c.TTLMs, c.CacheScope = int(ttl.Milliseconds()), "public"
		}
	})
}

// hintedModernBackend is a stateless (2026-07-28) go-sdk server with one
// tool, hello, whose results get the caching hints hint sets, behind a
// recorder of what reaches it.
func hintedModernBackend(t *testing.T, name string, hint func(mcp.Request, *mcp.Cacheable)) (string, *fixture.Posts) {
	t.Helper()
	srv := mcp.NewServer(&mcp.Implementation{Name: name, Version: "1"}, &mcp.ServerOptions{
		SetCacheable: func(_ context.Context, req mcp.Request, c *mcp.Cacheable) { hint(req, c) },
	})
	srv.AddTool(&mcp.Tool{Name: "hello", InputSchema: map[string]any{"type": "object"}},
		func(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "hello"}}}, nil
		})
	rec := &fixture.Posts{}
	ts := httptest.NewServer(rec.Wrap(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return srv },
		&mcp.StreamableHTTPOptions{Stateless: true})))
	t.Cleanup(func() {
		ts.CloseClientConnections()
		ts.Close()
	})
	return ts.URL, rec
}

// A modern backend's server/discover answer, fresh for its ttlMs, serves
// every backend session vmcp opens to it: legacy client sessions and warm
// pool sessions alike, and the pool's sessions rebuilt after a reload that
// left the backend alone. A reload that changes the backend asks it again.
func TestModernBackendDiscoverCached(t *testing.T) {
	t.Parallel()
	url, rec := cachingModernBackend(t, time.Hour)
	b := config.Backend{Name: "m", Transport: config.TransportStreamableHTTP, URL: url, Protocol: "modern"}
	cfg := baseConfig(b)
	gw := startGateway(t, cfg, gateway.Options{})
	for range 3 {
		cs := connect(t, gw.URL)
		if got := callText(t, cs, "m_hello", nil); got != "hello" {
			t.Fatalf("m_hello = %q", got)
		}
		cs.Close()
	}
	if status, msg := modernPost(t, gw.URL, "tools/call", map[string]any{"name": "m_hello", "arguments": map[string]any{}}, nil); status != 200 || msg["error"] != nil {
		t.Fatalf("modern m_hello: %d %v", status, msg)
	}
	// Another backend added: the pool's sessions are rebuilt, m's kept.
	web := fixture.StartHTTP(t, exampleserver.Options{Name: "web"})
	cfg2 := baseConfig(b, config.Backend{Name: "web", Transport: config.TransportStreamableHTTP, URL: web.URL})
	if err := gw.Reload(t.Context(), cfg2); err != nil {
		t.Fatal(err)
	}
	if status, msg := modernPost(t, gw.URL, "tools/call", map[string]any{"name": "m_hello", "arguments": map[string]any{}}, nil); status != 200 || msg["error"] != nil {
		t.Fatalf("modern m_hello after the reload: %d %v", status, msg)
	}
	if n, calls := rec.Count("server/discover"), rec.Count("tools/call"); n != 1 || calls != 5 {
		t.Fatalf("the backend got %d server/discover for 5 backend sessions (%d calls), want 1", n, calls)
	}

	// m changed: a new connector, whose cache starts empty.
	b.Timeout = config.Duration(20 * time.Second)
	if err := gw.Reload(t.Context(), baseConfig(b, cfg2.Backends[1])); err != nil {
		t.Fatal(err)
	}
	cs := connect(t, gw.URL)
	callText(t, cs, "m_hello", nil)
	connect(t, gw.URL)
	if n := rec.Count("server/discover"); n != 2 {
		t.Errorf("after a reload that changed the backend, %d server/discover, want 2", n)
	}
}
