package backend

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	testfix "github.com/vmcp/vmcp/internal/fixture"
)

// Fixtures: real go-sdk MCP servers on loopback HTTP, and a real stdio
// server binary built once per test run.

func TestMain(m *testing.M) {
	code := m.Run()
	testfix.RemoveBinaries()
	os.Exit(code)
}

// stdioServer returns the path of the built testdata/stdioserver binary.
func stdioServer(t *testing.T) string {
	t.Helper()
	return testfix.Binary(t, "./internal/backend/testdata/stdioserver")
}

// fixture is the state shared by the tools of one in-process server.
type fixture struct {
	server    *mcp.Server
	cancelled chan struct{} // receives when the slow tool sees its ctx end

	mu     sync.Mutex
	counts map[*mcp.ServerSession]int
}

type textArgs struct {
	Text string `json:"text"`
}

func textResult(s string) *mcp.CallToolResult {
	return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: s}}}
}

func newFixture() *fixture {
	f := &fixture{
		server:    mcp.NewServer(&mcp.Implementation{Name: "fixture", Version: "test"}, nil),
		cancelled: make(chan struct{}, 8),
		counts:    make(map[*mcp.ServerSession]int),
	}
	mcp.AddTool(f.server, &mcp.Tool{Name: "echo"}, func(_ context.Context, _ *mcp.CallToolRequest, in textArgs) (*mcp.CallToolResult, any, error) {
		return textResult(in.Text), nil, nil
	})
	mcp.AddTool(f.server, &mcp.Tool{Name: "count"}, func(_ context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, any, error) {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.counts[req.Session]++
		return textResult(strconv.Itoa(f.counts[req.Session])), nil, nil
	})
	mcp.AddTool(f.server, &mcp.Tool{Name: "slow"}, func(ctx context.Context, _ *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, any, error) {
		select {
		case <-ctx.Done():
			f.cancelled <- struct{}{}
			return nil, nil, ctx.Err()
		case <-time.After(time.Minute):
			return textResult("done"), nil, nil
		}
	})
	mcp.AddTool(f.server, &mcp.Tool{Name: "progress"}, func(ctx context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, any, error) {
		if tok := req.Params.GetProgressToken(); tok != nil {
			for i := range 3 {
				_ = req.Session.NotifyProgress(ctx, &mcp.ProgressNotificationParams{ProgressToken: tok, Progress: float64(i + 1), Total: 3})
			}
		}
		return textResult("done"), nil, nil
	})
	mcp.AddTool(f.server, &mcp.Tool{Name: "roots"}, func(ctx context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, any, error) {
		res, err := req.Session.ListRoots(ctx, nil)
		if err != nil {
			return nil, nil, err
		}
		if len(res.Roots) == 0 {
			return textResult(""), nil, nil
		}
		return textResult(res.Roots[0].URI), nil, nil
	})
	// hop ends its response stream before answering, as SSE polling
	// servers do; the client must resume the stream to get the result.
	mcp.AddTool(f.server, &mcp.Tool{Name: "hop"}, func(ctx context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, any, error) {
		if req.Extra == nil || req.Extra.CloseSSEStream == nil {
			return nil, nil, fmt.Errorf("no SSE stream to close")
		}
		req.Extra.CloseSSEStream(mcp.CloseSSEStreamArgs{RetryAfter: 10 * time.Millisecond})
		select {
		case <-time.After(50 * time.Millisecond):
		case <-ctx.Done():
		}
		return textResult("after hop"), nil, nil
	})
	return f
}

// httpFixture is a go-sdk server on a loopback httptest server. Its MCP
// handler can be swapped, which makes the server forget all sessions.
type httpFixture struct {
	*fixture
	srv     *httptest.Server
	handler atomic.Pointer[http.Handler]
	deletes atomic.Int64
	resumes atomic.Int64 // GETs carrying Last-Event-ID
	apiKeys sync.Map     // X-Api-Key values seen

	mu            sync.Mutex
	open, maxOpen int // concurrently open connections
	accepted      int
}

type httpMode int

const (
	modeSSEResponses  httpMode = iota // Streamable HTTP, text/event-stream responses
	modeJSONResponses                 // Streamable HTTP, application/json responses
	modeLegacySSE                     // 2024-11-05 HTTP+SSE
	modeResumable                     // Streamable HTTP with an event store
)

func startHTTP(t testing.TB, mode httpMode) *httpFixture {
	t.Helper()
	f := &httpFixture{fixture: newFixture()}
	f.swap(mode)
	f.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodDelete {
			f.deletes.Add(1)
		}
		if r.Method == http.MethodGet && r.Header.Get("Last-Event-ID") != "" {
			f.resumes.Add(1)
		}
		if k := r.Header.Get("X-Api-Key"); k != "" {
			f.apiKeys.Store(k, true)
		}
		(*f.handler.Load()).ServeHTTP(w, r)
	}))
	f.srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		f.mu.Lock()
		defer f.mu.Unlock()
		switch s {
		case http.StateNew:
			f.accepted++
			f.open++
			f.maxOpen = max(f.maxOpen, f.open)
		case http.StateClosed, http.StateHijacked:
			f.open--
		}
	}
	f.srv.Start()
	t.Cleanup(f.srv.Close)
	return f
}

// swap installs a fresh handler for the same server: sessions are lost.
func (f *httpFixture) swap(mode httpMode) {
	get := func(*http.Request) *mcp.Server { return f.server }
	var h http.Handler
	switch mode {
	case modeLegacySSE:
		h = mcp.NewSSEHandler(get, nil)
	case modeResumable:
		h = mcp.NewStreamableHTTPHandler(get, &mcp.StreamableHTTPOptions{EventStore: mcp.NewMemoryEventStore(nil)})
	default:
		h = mcp.NewStreamableHTTPHandler(get, &mcp.StreamableHTTPOptions{JSONResponse: mode == modeJSONResponses})
	}
	f.handler.Store(&h)
}

func (f *httpFixture) url() string { return f.srv.URL + "/mcp" }

// kill stops the server abruptly, dropping open streams.
func (f *httpFixture) kill() {
	f.srv.CloseClientConnections()
	f.srv.Close()
}

// recorder is a Handler that records what it receives.
type recorder struct {
	notes chan string // method names of notifications
	roots string      // answer to roots/list, if set
}

func newRecorder() *recorder { return &recorder{notes: make(chan string, 64)} }

func (r *recorder) Notify(_ context.Context, method string, _ json.RawMessage) {
	select {
	case r.notes <- method:
	default:
	}
}

func (r *recorder) Request(_ context.Context, method string, _ json.RawMessage) (json.RawMessage, error) {
	if method == "roots/list" && r.roots != "" {
		return json.Marshal(map[string]any{"roots": []map[string]string{{"uri": r.roots, "name": "root"}}})
	}
	return nil, fmt.Errorf("unexpected request %s", method)
}

// waitNote waits for a notification with the given method.
func (r *recorder) waitNote(t *testing.T, method string) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case m := <-r.notes:
			if m == method {
				return
			}
		case <-deadline:
			t.Fatalf("no %s notification", method)
		}
	}
}

// logBuffer is a concurrency-safe buffer for a text slog handler.
type logBuffer struct{ testfix.Buffer }

func (l *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// connect connects and registers Close as cleanup.
func connect(t *testing.T, x Connector, opts ConnectOptions) (Client, *InitializeResult) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, res, err := x.Connect(ctx, opts)
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c, res
}

// filesClient starts a fixture in mode and connects a client to it through
// a Streamable HTTP connector named "files"; both close at test end.
func filesClient(t *testing.T, mode httpMode) (*httpFixture, Client) {
	t.Helper()
	f := startHTTP(t, mode)
	x := NewStreamableHTTP(HTTPOptions{Name: "files", URL: f.url()})
	t.Cleanup(func() { x.Close() })
	c, _ := connect(t, x, ConnectOptions{})
	return f, c
}

// callTool calls a tool and returns the text of its first content block.
func callTool(ctx context.Context, c Client, name string, args any, meta map[string]any) (string, error) {
	p := map[string]any{"name": name, "arguments": args}
	if args == nil {
		p["arguments"] = map[string]any{}
	}
	if meta != nil {
		p["_meta"] = meta
	}
	params, _ := json.Marshal(p)
	raw, err := c.Call(ctx, "tools/call", params)
	if err != nil {
		return "", err
	}
	var res struct {
		Content []struct {
			Text string `json:"text"`
		} `json:"content"`
		IsError bool `json:"isError"`
	}
	if err := json.Unmarshal(raw, &res); err != nil {
		return "", err
	}
	text := ""
	if len(res.Content) > 0 {
		text = res.Content[0].Text
	}
	if res.IsError {
		return "", fmt.Errorf("tool error: %s", text)
	}
	return text, nil
}

func mustCall(t *testing.T, c Client, name string, args any) string {
	t.Helper()
	out, err := callTool(context.Background(), c, name, args, nil)
	if err != nil {
		t.Fatalf("call %s: %v", name, err)
	}
	return out
}

// noSecrets fails if err's text contains any of the secrets.
func noSecrets(t *testing.T, err error, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if s != "" && strings.Contains(err.Error(), s) {
			t.Errorf("error %q contains a secret", err)
		}
	}
}
