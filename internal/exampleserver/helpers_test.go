package exampleserver

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// binDir holds the vmcp-example-server binary, built on first use.
var (
	binDir   string
	binOnce  sync.Once
	binPath  string
	binError error
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "exampleserver-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// exampleBinary builds cmd/vmcp-example-server once per test run.
func exampleBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		binPath = filepath.Join(binDir, "vmcp-example-server")
		cmd := exec.Command("go", "build", "-o", binPath, "github.com/vmcp/vmcp/cmd/vmcp-example-server")
		if out, err := cmd.CombinedOutput(); err != nil {
			binError = fmt.Errorf("go build: %w\n%s", err, out)
		}
	})
	if binError != nil {
		t.Fatal(binError)
	}
	return binPath
}

// fixture is an example server behind a real loopback HTTP server.
type fixture struct {
	handler *Handler
	url     string
	client  *http.Client // own transport, so idle connections can be closed
	stats   *Stats
}

// startHTTP serves HTTPHandler (or SSEHandler if sse) on loopback. Cleanup
// closes sessions, the server and idle client connections.
func startHTTP(t *testing.T, opts Options, sse bool) *fixture {
	t.Helper()
	if opts.Stats == nil {
		opts.Stats = &Stats{}
	}
	h := HTTPHandler(opts)
	if sse {
		h = SSEHandler(opts)
	}
	srv := httptest.NewServer(h)
	client := &http.Client{Transport: &http.Transport{}}
	t.Cleanup(func() {
		h.Close()
		srv.Close()
		client.CloseIdleConnections()
	})
	return &fixture{handler: h, url: srv.URL, client: client, stats: opts.Stats}
}

func (f *fixture) connect(t *testing.T, copts *mcp.ClientOptions) *mcp.ClientSession {
	t.Helper()
	return connectTransport(t, &mcp.StreamableClientTransport{Endpoint: f.url, HTTPClient: f.client}, copts)
}

func (f *fixture) connectSSE(t *testing.T, copts *mcp.ClientOptions) *mcp.ClientSession {
	t.Helper()
	return connectTransport(t, &mcp.SSEClientTransport{Endpoint: f.url, HTTPClient: f.client}, copts)
}

// connectStdio starts the example binary as a child process over stdio.
func connectStdio(t *testing.T, name string, copts *mcp.ClientOptions) *mcp.ClientSession {
	t.Helper()
	cmd := exec.Command(exampleBinary(t), "-transport", "stdio", "-name", name)
	return connectTransport(t, &mcp.CommandTransport{Command: cmd}, copts)
}

func connectTransport(t *testing.T, tr mcp.Transport, copts *mcp.ClientOptions) *mcp.ClientSession {
	t.Helper()
	c := mcp.NewClient(&mcp.Implementation{Name: "exampleserver-test", Version: "0"}, copts)
	cs, err := c.Connect(t.Context(), tr, nil)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { cs.Close() })
	return cs
}

// call calls a tool and fails the test on a protocol error.
func call(t *testing.T, cs *mcp.ClientSession, tool string, args map[string]any) *mcp.CallToolResult {
	t.Helper()
	res, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: tool, Arguments: args})
	if err != nil {
		t.Fatalf("call %s: %v", tool, err)
	}
	return res
}

// text returns the text of a result's single text content.
func text(t *testing.T, res *mcp.CallToolResult) string {
	t.Helper()
	if len(res.Content) == 0 {
		t.Fatalf("result has no content")
	}
	tc, ok := res.Content[0].(*mcp.TextContent)
	if !ok {
		t.Fatalf("content[0] is %T, want text", res.Content[0])
	}
	return tc.Text
}

// eventually waits until cond holds. It exists to wait for asynchronous
// bookkeeping (a session's close being noticed); the deadline only keeps a
// broken test from hanging and is not an assertion about speed.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// postRaw sends one JSON-RPC message as a Streamable HTTP POST.
func postRaw(t *testing.T, f *fixture, sessionID, body string) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, f.url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Mcp-Protocol-Version", "2025-06-18")
	if sessionID != "" {
		req.Header.Set("Mcp-Session-Id", sessionID)
	}
	resp, err := f.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// recv receives from ch. Like eventually, its deadline only keeps a broken
// test from hanging.
func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(30 * time.Second):
		t.Fatalf("gave up waiting for %s", what)
		panic("unreachable")
	}
}
