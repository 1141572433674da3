package exampleserver

import (
	"bufio"
	"bytes"
	"context"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// syncBuffer is a bytes.Buffer safe to write from exec's copying goroutine
// while the test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestBinaryStdioExitsOnSIGTERM checks that the stdio server logs to stderr
// and that SIGTERM ends it cleanly even with a call in flight.
func TestBinaryStdioExitsOnSIGTERM(t *testing.T) {
	t.Parallel()
	var stderr syncBuffer
	cmd := exec.Command(exampleBinary(t), "-transport", "stdio", "-name", "stdio1")
	cmd.Stderr = &stderr
	inFlight := make(chan struct{}, 1)
	cs := connectTransport(t, &mcp.CommandTransport{Command: cmd}, &mcp.ClientOptions{
		ProgressNotificationHandler: func(context.Context, *mcp.ProgressNotificationClientRequest) {
			inFlight <- struct{}{}
		},
	})
	checkCounter(t, cs, 1, 2)
	if got := text(t, call(t, cs, "whoami", nil)); got != "stdio1" {
		t.Errorf("whoami = %q, want stdio1", got)
	}

	done := make(chan error, 1)
	go func() {
		// Ten minutes: it can only end early if SIGTERM cancels it.
		params := &mcp.CallToolParams{Name: "sleep_ms", Arguments: map[string]any{"ms": 600_000}}
		params.SetProgressToken("sleep")
		_, err := cs.CallTool(t.Context(), params)
		done <- err
	}()
	recv(t, inFlight, "sleep_ms to start") // it notifies once it sleeps
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	recv(t, done, "the in-flight call to end after SIGTERM")
	cs.Close() // reaps the process
	if code := cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("exit code %d, want 0; stderr:\n%s", code, stderr.String())
	}
	if !strings.Contains(stderr.String(), "example server stdio1 started") {
		t.Errorf("stderr lacks the start line:\n%s", stderr.String())
	}
}

// TestBinaryHTTP starts the binary on each HTTP transport, parses the
// announced URL, uses it, and stops it with SIGTERM while a client is still
// connected.
func TestBinaryHTTP(t *testing.T) {
	t.Parallel()
	for _, transport := range []string{"http", "sse"} {
		t.Run(transport, func(t *testing.T) {
			t.Parallel()
			var stderr syncBuffer
			cmd := exec.Command(exampleBinary(t), "-transport", transport, "-listen", "127.0.0.1:0", "-name", "bin-"+transport)
			cmd.Stderr = &stderr
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })

			line, err := bufio.NewReader(stdout).ReadString('\n')
			if err != nil {
				t.Fatalf("reading listen line: %v; stderr:\n%s", err, stderr.String())
			}
			url, ok := strings.CutPrefix(strings.TrimSpace(line), "listening on ")
			wantPath := map[string]string{"http": "/mcp", "sse": "/sse"}[transport]
			if !ok || !strings.HasPrefix(url, "http://127.0.0.1:") || !strings.HasSuffix(url, wantPath) {
				t.Fatalf("listen line = %q, want listening on http://127.0.0.1:PORT%s", line, wantPath)
			}

			var tr mcp.Transport = &mcp.StreamableClientTransport{Endpoint: url}
			if transport == "sse" {
				tr = &mcp.SSEClientTransport{Endpoint: url}
			}
			cs := connectTransport(t, tr, nil)
			if got := text(t, call(t, cs, "whoami", nil)); got != "bin-"+transport {
				t.Errorf("whoami = %q", got)
			}
			checkCounter(t, cs, 1, 2)

			if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			if err := cmd.Wait(); err != nil {
				t.Errorf("exit after SIGTERM: %v; stderr:\n%s", err, stderr.String())
			}
		})
	}
}
