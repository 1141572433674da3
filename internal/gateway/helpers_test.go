package gateway_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"go.uber.org/goleak"

	"github.com/vmcp/vmcp/internal/config"
	"github.com/vmcp/vmcp/internal/fixture"
	"github.com/vmcp/vmcp/internal/gateway"
)

// TestMain stops what the tests of this binary share: the Jaeger and the
// binaries fixture.Binary built.
func TestMain(m *testing.M) {
	code := m.Run()
	stopJaeger()
	fixture.RemoveBinaries()
	os.Exit(code)
}

// running is a gateway serving on a loopback port.
type running struct {
	*gateway.Gateway
	URL  string // the MCP endpoint
	Base string // http://host:port
	Logs *syncBuffer
}

// startGateway runs a gateway for cfg until the test ends.
func startGateway(t *testing.T, cfg *config.Config, opts gateway.Options) *running {
	t.Helper()
	logs := &syncBuffer{}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	g, err := gateway.New(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- g.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := g.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	scheme := "http"
	if g.TLS() {
		scheme = "https"
	}
	base := scheme + "://" + ln.Addr().String()
	return &running{Gateway: g, URL: base + "/mcp", Base: base, Logs: logs}
}

// baseConfig returns a config with defaults and the given backends.
func baseConfig(backends ...config.Backend) *config.Config {
	cfg := config.Default()
	cfg.Backends = backends
	for i := range cfg.Backends {
		if cfg.Backends[i].Timeout == 0 {
			cfg.Backends[i].Timeout = config.Duration(30 * time.Second)
		}
	}
	return cfg
}

// legacyEra makes a go-sdk client open a legacy protocol session with
// initialize: the go-sdk (v1.7+) tries 2026-07-28 first, which vmcp serves
// statelessly (modern_test.go), and these tests are about sessions.
var legacyEra = &mcp.ClientSessionOptions{ProtocolVersion: "2025-11-25"}

// connect opens a go-sdk client session to url, closed at test end.
func connect(t *testing.T, url string) *mcp.ClientSession {
	t.Helper()
	c := mcp.NewClient(&mcp.Implementation{Name: "vmcp-test", Version: "1"}, nil)
	cs, err := c.Connect(context.Background(), &mcp.StreamableClientTransport{Endpoint: url, DisableStandaloneSSE: true}, legacyEra)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { cs.Close() })
	return cs
}

func callText(t *testing.T, cs *mcp.ClientSession, name string, args map[string]any) string {
	t.Helper()
	res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: name, Arguments: args})
	if err != nil {
		t.Fatalf("call %s: %v", name, err)
	}
	if res.IsError {
		t.Fatalf("call %s: tool error: %+v", name, res.Content)
	}
	return res.Content[0].(*mcp.TextContent).Text
}

// rawPost sends one JSON-RPC body and returns the status, headers and body.
func rawPost(t *testing.T, url, sid string, body string) (int, http.Header, string) {
	t.Helper()
	return rawPostWith(t, http.DefaultClient, url, sid, body)
}

func rawPostWith(t *testing.T, hc *http.Client, url, sid string, body string) (int, http.Header, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if sid != "" {
		req.Header.Set("Mcp-Session-Id", sid)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// rawInit initializes a session over plain HTTP and returns its ID.
func rawInit(t *testing.T, url string) string {
	t.Helper()
	return rawInitWith(t, http.DefaultClient, url)
}

func rawInitWith(t *testing.T, hc *http.Client, url string) string {
	t.Helper()
	code, h, body := rawPostWith(t, hc, url, "", initBody)
	if code != http.StatusOK || h.Get("Mcp-Session-Id") == "" {
		t.Fatalf("initialize: %d %s", code, body)
	}
	return h.Get("Mcp-Session-Id")
}

func rawDelete(t *testing.T, url, sid string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodDelete, url, nil)
	if sid != "" {
		req.Header.Set("Mcp-Session-Id", sid)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// leakCheck snapshots the running goroutines; the returned func fails the
// test if any goroutine started since is still running. Use it as
// `defer leakCheck(t)()` so it runs after the subtests' cleanups.
func leakCheck(t *testing.T) func() {
	t.Helper()
	before := goleak.IgnoreCurrent()
	return func() {
		t.Helper()
		http.DefaultClient.CloseIdleConnections()
		goleak.VerifyNone(t, before)
	}
}

// Shared test support, under the names this package's tests use.
type (
	syncBuffer = fixture.Buffer
	fakeClock  = fixture.Clock
)

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	fixture.Eventually(t, what, cond)
}
