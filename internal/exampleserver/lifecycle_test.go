package exampleserver

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"go.uber.org/goleak"
)

func TestCounterIsolatedPerSession(t *testing.T) {
	t.Parallel()
	f := startHTTP(t, Options{Name: "counter"}, false)
	a := f.connect(t, nil)
	b := f.connect(t, nil)
	checkCounter(t, a, 1, 2)
	checkCounter(t, b, 1)
	checkCounter(t, a, 3)
	checkCounter(t, b, 2)

	call(t, a, "note_add", map[string]any{"text": "only in a"})
	if got := text(t, call(t, b, "note_list", nil)); got != "(no notes in this session)" {
		t.Errorf("b sees notes %q", got)
	}
}

func TestStatsCountInitializesCallsAndDeletes(t *testing.T) {
	t.Parallel()
	f := startHTTP(t, Options{Name: "stats"}, false)
	a := f.connect(t, nil)
	b := f.connect(t, nil)
	call(t, a, "echo", map[string]any{"text": "x"})
	call(t, a, "echo", map[string]any{"text": "y"})
	call(t, b, "counter", nil)

	if got := f.stats.Initializes(); got != 2 {
		t.Errorf("Initializes = %d, want 2", got)
	}
	if got := f.stats.Calls("echo"); got != 2 {
		t.Errorf("Calls(echo) = %d, want 2", got)
	}
	if got := f.stats.Calls("counter"); got != 1 {
		t.Errorf("Calls(counter) = %d, want 1", got)
	}
	if got := f.stats.ActiveSessions(); got != 2 {
		t.Errorf("ActiveSessions = %d, want 2", got)
	}

	if err := a.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if got := f.stats.Deletes(); got != 1 {
		t.Errorf("Deletes after client close = %d, want 1", got)
	}
	eventually(t, "the closed session to be counted", func() bool { return f.stats.SessionsClosed() == 1 })
	if got := f.stats.ActiveSessions(); got != 1 {
		t.Errorf("ActiveSessions = %d, want 1", got)
	}

	// A DELETE for a session the server does not know still counts.
	req, _ := http.NewRequest(http.MethodDelete, f.url, nil)
	req.Header.Set("Mcp-Session-Id", "no-such-session")
	resp, err := f.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("DELETE unknown session: status %d, want 404", resp.StatusCode)
	}
	if got := f.stats.Deletes(); got != 2 {
		t.Errorf("Deletes = %d, want 2", got)
	}
}

func TestForgetDropsSessions(t *testing.T) {
	t.Parallel()
	f := startHTTP(t, Options{Name: "forget"}, false)
	old := f.connect(t, nil)
	checkCounter(t, old, 1, 2)
	oldID := old.ID()

	f.handler.Forget()

	resp := postRaw(t, f, oldID, `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"counter"}}`)
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("old session after Forget: status %d, want 404", resp.StatusCode)
	}
	if _, err := old.CallTool(t.Context(), &mcp.CallToolParams{Name: "counter"}); err == nil {
		t.Error("old client session still works after Forget")
	}

	fresh := f.connect(t, nil)
	checkCounter(t, fresh, 1)
	if got := f.stats.Initializes(); got != 2 {
		t.Errorf("Initializes = %d, want 2 (stats survive Forget)", got)
	}
}

func TestForgetSSE(t *testing.T) {
	t.Parallel()
	f := startHTTP(t, Options{Name: "forget-sse"}, true)
	old := f.connectSSE(t, nil)
	checkCounter(t, old, 1)
	f.handler.Forget()
	if _, err := old.CallTool(t.Context(), &mcp.CallToolParams{Name: "counter"}); err == nil {
		t.Error("old SSE session still works after Forget")
	}
	checkCounter(t, f.connectSSE(t, nil), 1)
}

func TestForgetCancelsInFlightCalls(t *testing.T) {
	t.Parallel()
	f := startHTTP(t, Options{Name: "inflight"}, false)
	cs := f.connect(t, nil)
	done := make(chan error, 1)
	go func() {
		// Ten minutes: the call can only come back early if it is cancelled.
		res, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: "sleep_ms", Arguments: map[string]any{"ms": 600_000}})
		if err == nil && !res.IsError {
			err = errors.New("sleep_ms completed normally")
		} else {
			err = nil
		}
		done <- err
	}()
	eventually(t, "sleep_ms to start", func() bool { return f.stats.Calls("sleep_ms") == 1 })
	go f.handler.Forget() // it waits for in-flight calls, so it must cancel them
	if err := recv(t, done, "the in-flight call to be cancelled by Forget"); err != nil {
		t.Error(err)
	}
}

func TestCloseRejectsRequests(t *testing.T) {
	t.Parallel()
	f := startHTTP(t, Options{}, false)
	f.handler.Close()
	f.handler.Forget() // stays closed
	resp := postRaw(t, f, "", `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"x","version":"0"}}}`)
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("after Close: status %d, want 503", resp.StatusCode)
	}
}

func TestInitDelay(t *testing.T) {
	t.Parallel()
	const delay = 50 * time.Millisecond
	f := startHTTP(t, Options{InitDelay: delay}, false)
	start := time.Now()
	cs := f.connect(t, nil)
	if elapsed := time.Since(start); elapsed < delay {
		t.Errorf("connect took %v, less than InitDelay %v", elapsed, delay)
	}
	if got := text(t, call(t, cs, "whoami", nil)); got != "example" {
		t.Errorf("default name = %q, want example", got)
	}
}

// TestLifecycleNoLeaks runs whole session lifecycles over both HTTP
// transports and checks that nothing is left running once everything is
// closed. It must not be parallel: goleak sees every goroutine in the process.
func TestLifecycleNoLeaks(t *testing.T) {
	for _, sse := range []bool{false, true} {
		t.Run(map[bool]string{false: "streamable", true: "sse"}[sse], func(t *testing.T) {
			f := startHTTP(t, Options{Name: "leak"}, sse)
			connect := f.connect
			if sse {
				connect = f.connectSSE
			}
			a, b := connect(t, nil), connect(t, nil)
			checkCounter(t, a, 1, 2)
			checkCounter(t, b, 1)
			if err := a.Close(); err != nil {
				t.Errorf("close a: %v", err)
			}
			eventually(t, "session a to close", func() bool { return f.stats.SessionsClosed() == 1 })
			// b is still open: Handler.Close must end it from the server side.
			f.handler.Close()
			eventually(t, "session b to close", func() bool { return f.stats.SessionsClosed() == 2 })
			if _, err := b.CallTool(t.Context(), &mcp.CallToolParams{Name: "counter"}); err == nil {
				t.Error("session b still works after Close")
			}
		})
	}
	goleak.VerifyNone(t)
}
