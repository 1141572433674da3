package gateway_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

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
	return startExampleProcOver(t, bin, "http", name, listen)
}

// startExampleProcOver is startExampleProc over transport http or sse.
func startExampleProcOver(t *testing.T, bin, transport, name, listen string) *exampleProc {
	t.Helper()
	cmd := exec.Command(bin, "-transport", transport, "-listen", listen, "-name", name)
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
		p.Addr, _, _ = strings.Cut(strings.TrimPrefix(u, "http://"), "/")
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
