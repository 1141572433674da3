package gateway_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/vmcp/vmcp/internal/exampleserver"
)

// switchedBackend is a real example server over Streamable HTTP behind a
// switch that injects faults: it can hang every request or hold tool calls,
// and it counts what reaches it.
type switchedBackend struct {
	URL     string
	Stats   *exampleserver.Stats
	Handler *exampleserver.Handler

	hang      atomic.Bool
	callGate  atomic.Pointer[chan struct{}] // if set, tools/call requests wait for it to close
	requests  atomic.Int64
	calls     atomic.Int64 // tools/call requests
	cancelled atomic.Int64 // notifications/cancelled received
	stopped   chan struct{}
}

func startSwitched(t *testing.T, name string) *switchedBackend {
	t.Helper()
	b := &switchedBackend{Stats: &exampleserver.Stats{}, stopped: make(chan struct{})}
	b.Handler = exampleserver.HTTPHandler(exampleserver.Options{Name: name, Stats: b.Stats})
	srv := httptest.NewServer(http.HandlerFunc(b.serve))
	t.Cleanup(func() {
		close(b.stopped)
		srv.CloseClientConnections()
		srv.Close()
		b.Handler.Close()
	})
	b.URL = srv.URL + "/mcp"
	return b
}

func (b *switchedBackend) serve(w http.ResponseWriter, r *http.Request) {
	b.requests.Add(1)
	if r.Method == http.MethodPost {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		var msg struct {
			Method string `json:"method"`
		}
		_ = json.Unmarshal(body, &msg)
		switch msg.Method {
		case "notifications/cancelled":
			b.cancelled.Add(1)
		case "tools/call":
			b.calls.Add(1)
			if g := b.callGate.Load(); g != nil && !b.wait(r, *g) {
				return
			}
		}
	}
	if b.hang.Load() {
		io.Copy(io.Discard, r.Body) // so that net/http notices the client hanging up
		b.wait(r, nil)
		return
	}
	b.Handler.ServeHTTP(w, r)
}

// wait blocks until gate closes (true), or the request or backend ends.
func (b *switchedBackend) wait(r *http.Request, gate chan struct{}) bool {
	select {
	case <-gate:
		return true
	case <-r.Context().Done():
	case <-b.stopped:
	}
	return false
}

// exampleProc is the example server binary serving Streamable HTTP in its
// own process, so that it can be killed with SIGKILL and restarted.
type exampleProc struct {
	cmd  *exec.Cmd
	URL  string
	Addr string // host:port
}

// startExampleProc starts the example server on listen (127.0.0.1:0 for
// any port) and waits for its "listening on URL" line.
func startExampleProc(t *testing.T, bin, name, listen string) *exampleProc {
	t.Helper()
	cmd := exec.Command(bin, "-transport", "http", "-listen", listen, "-name", name)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &exampleProc{cmd: cmd}
	t.Cleanup(func() { p.kill() })
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(out).ReadString('\n')
		line <- s
		io.Copy(io.Discard, out)
	}()
	select {
	case s := <-line:
		u, ok := strings.CutPrefix(strings.TrimSpace(s), "listening on ")
		if !ok {
			t.Fatalf("example server: unexpected first line %q", s)
		}
		p.URL = u
		p.Addr = strings.TrimSuffix(strings.TrimPrefix(u, "http://"), "/mcp")
	case <-time.After(15 * time.Second):
		t.Fatal("example server did not start listening")
	}
	return p
}

// kill sends SIGKILL and reaps the process; it is idempotent.
func (p *exampleProc) kill() {
	if p.cmd.ProcessState != nil {
		return
	}
	p.cmd.Process.Signal(syscall.SIGKILL)
	p.cmd.Wait()
}

// callResult calls a tool and returns the result or the error.
func callResult(cs *mcp.ClientSession, name string, args map[string]any) (*mcp.CallToolResult, error) {
	return cs.CallTool(context.Background(), &mcp.CallToolParams{Name: name, Arguments: args})
}

// reinitialized is the backends a result's _meta says were re-initialized.
func reinitialized(res *mcp.CallToolResult) []string {
	v, _ := res.Meta["vmcp/backendReinitialized"].([]any)
	out := make([]string, 0, len(v))
	for _, x := range v {
		s, _ := x.(string)
		out = append(out, s)
	}
	if v == nil {
		return nil
	}
	return out
}

func text(res *mcp.CallToolResult) string {
	if res == nil || len(res.Content) == 0 {
		return ""
	}
	if t, ok := res.Content[0].(*mcp.TextContent); ok {
		return t.Text
	}
	return ""
}

// getJSON fetches a JSON endpoint of the gateway.
func getJSON(t *testing.T, url string, v any) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if v != nil {
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("%s: %v: %s", url, err, b)
		}
	}
	return resp.StatusCode
}
