package gateway_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/vmcp/vmcp/internal/config"
	"github.com/vmcp/vmcp/internal/fixture"
	"github.com/vmcp/vmcp/internal/gateway"
)

// rootsRig is a gateway over two backends that ask for the client's roots
// as soon as they are initialized, as server-filesystem does: "files" as a
// stdio child and "web" over Streamable HTTP. (The go-sdk's HTTP server
// drops a request it cannot send at once, so "web"'s first roots/list
// reaches the client only because vmcp opens its GET stream before it
// sends notifications/initialized.)
func rootsRig(t *testing.T) *running {
	t.Helper()
	bin := fixture.Binary(t, "./internal/gateway/testdata/rootserver")
	web := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return fixture.RootsServer("web") }, nil))
	t.Cleanup(func() {
		web.CloseClientConnections()
		web.Close()
	})
	cfg := baseConfig(
		config.Backend{Name: "files", Transport: config.TransportStdio, Command: []string{bin}},
		config.Backend{Name: "web", Transport: config.TransportStreamableHTTP, URL: web.URL},
	)
	return startGateway(t, cfg, gateway.Options{})
}

// TestRootsAskedDuringTheHandshakeGetTheClientsRoots: the backends ask
// for roots while vmcp is still answering the client's initialize, before
// the client can be asked; they get the client's roots once it can.
func TestRootsAskedDuringTheHandshakeGetTheClientsRoots(t *testing.T) {
	gw := rootsRig(t)
	c := mcp.NewClient(&mcp.Implementation{Name: "vmcp-test", Version: "1"}, nil)
	c.AddRoots(&mcp.Root{URI: "file:///work/a", Name: "a"})
	cs, err := c.Connect(context.Background(), &mcp.StreamableClientTransport{Endpoint: gw.URL}, legacyEra)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	// Each backend's first roots/list, asked during the handshake, was
	// answered with the client's roots.
	for _, tool := range []string{"files_roots", "web_roots"} {
		if got := callText(t, cs, tool, nil); got != "roots: file:///work/a" {
			t.Errorf("%s = %q, want the client's roots", tool, got)
		}
	}

	// The client's roots change: every backend hears of it and asks again.
	c.AddRoots(&mcp.Root{URI: "file:///work/b", Name: "b"})
	for _, tool := range []string{"files_roots", "web_roots"} {
		eventually(t, tool+" sees the new roots", func() bool {
			return callText(t, cs, tool, nil) == "roots: file:///work/a,file:///work/b"
		})
	}
}

// TestRootsAskedBeforeAClientWithoutStandaloneStreamCalls: a client that
// opens no GET stream is asked on the stream of its first call.
func TestRootsAskedBeforeAClientWithoutStandaloneStreamCalls(t *testing.T) {
	gw := rootsRig(t)
	c := mcp.NewClient(&mcp.Implementation{Name: "vmcp-test", Version: "1"}, nil)
	c.AddRoots(&mcp.Root{URI: "file:///only", Name: "only"})
	cs, err := c.Connect(context.Background(), &mcp.StreamableClientTransport{Endpoint: gw.URL, DisableStandaloneSSE: true}, legacyEra)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	for _, tool := range []string{"files_roots", "web_roots"} {
		if got := callText(t, cs, tool, nil); got != "roots: file:///only" {
			t.Errorf("%s = %q, want the client's roots", tool, got)
		}
	}
}

// TestNoRootsAskedOfAClientWithoutTheCapability: the backend's roots/list
// gets method-not-found from vmcp, and the client is never asked.
func TestNoRootsAskedOfAClientWithoutTheCapability(t *testing.T) {
	gw := rootsRig(t)
	var asked atomic.Int32
	c := mcp.NewClient(&mcp.Implementation{Name: "vmcp-test", Version: "1"}, &mcp.ClientOptions{Capabilities: &mcp.ClientCapabilities{}})
	c.AddReceivingMiddleware(func(next mcp.MethodHandler) mcp.MethodHandler {
		return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
			if method == "roots/list" {
				asked.Add(1)
			}
			return next(ctx, method, req)
		}
	})
	cs, err := c.Connect(context.Background(), &mcp.StreamableClientTransport{Endpoint: gw.URL}, legacyEra)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	got := callText(t, cs, "files_roots", nil)
	if !strings.HasPrefix(got, "roots error:") || !strings.Contains(got, "does not support roots") {
		t.Errorf("files_roots = %q, want method-not-found from vmcp", got)
	}
	if n := asked.Load(); n != 0 {
		t.Errorf("client without roots was asked for roots %d times", n)
	}
}
