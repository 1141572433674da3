package backend

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	sdkjsonrpc "github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/vmcp/vmcp/internal/jsonrpc"
)

func TestStreamableCallsReuseOneSession(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		mode httpMode
	}{
		{"sse-responses", modeSSEResponses},
		{"json-responses", modeJSONResponses},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := startHTTP(t, tc.mode)
			x := NewStreamableHTTP(HTTPOptions{Name: "files", URL: f.url(), Headers: map[string]string{"X-Api-Key": "k-123"}})
			defer x.Close()
			c, res := connect(t, x, ConnectOptions{})

			if res.ProtocolVersion != LatestProtocolVersion || res.Resumed {
				t.Errorf("initialize result = %+v", res)
			}
			if !strings.Contains(string(res.ServerInfo), `"fixture"`) {
				t.Errorf("serverInfo = %s", res.ServerInfo)
			}
			if c.SessionID() == "" {
				t.Error("no backend session ID captured")
			}
			if got := mustCall(t, c, "echo", map[string]string{"text": "hi"}); got != "hi" {
				t.Errorf("echo = %q", got)
			}
			for want := 1; want <= 3; want++ {
				if got := mustCall(t, c, "count", nil); got != fmt.Sprint(want) {
					t.Fatalf("count = %s, want %d: state lost between calls", got, want)
				}
			}
			if _, ok := f.apiKeys.Load("k-123"); !ok {
				t.Error("configured header did not reach the backend")
			}
		})
	}
}

func TestStreamableBackendErrorPassesThrough(t *testing.T) {
	t.Parallel()
	_, c := filesClient(t, modeSSEResponses)

	_, err := c.Call(context.Background(), "tools/call", json.RawMessage(`{"name":"no-such-tool","arguments":{}}`))
	var rpcErr *jsonrpc.Error
	if !errors.As(err, &rpcErr) || rpcErr.Code != jsonrpc.CodeInvalidParams || !strings.HasPrefix(rpcErr.Message, `backend "files": `) {
		t.Fatalf("err = %v, want the backend's invalid-params *jsonrpc.Error, naming the backend", err)
	}
}

func TestStreamableCloseSendsOneDelete(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	f := startHTTP(t, modeSSEResponses)
	x := NewStreamableHTTP(HTTPOptions{Name: "files", URL: f.url()})
	c, _, err := x.Connect(context.Background(), ConnectOptions{Handler: newRecorder()})
	if err != nil {
		t.Fatal(err)
	}
	mustCall(t, c, "count", nil)
	if err := c.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if n := f.deletes.Load(); n != 1 {
		t.Errorf("DELETE sent %d times, want 1", n)
	}
	if _, err := c.Call(context.Background(), "tools/list", nil); !errors.Is(err, ErrClosed) {
		t.Errorf("Call after Close = %v, want ErrClosed", err)
	}
	x.Close()
	f.srv.Close()
}

func TestStreamableForgottenSession(t *testing.T) {
	t.Parallel()
	f, c := filesClient(t, modeSSEResponses)
	mustCall(t, c, "count", nil)

	f.swap(modeSSEResponses) // the backend restarts and forgets its sessions
	_, err := callTool(context.Background(), c, "count", nil, nil)
	if !errors.Is(err, ErrSessionNotFound) {
		t.Fatalf("err = %v, want ErrSessionNotFound", err)
	}
	if !strings.Contains(err.Error(), `backend "files"`) {
		t.Errorf("error does not name the backend: %v", err)
	}
	noSecrets(t, err, c.SessionID())
}

func TestStreamableSessionNotFoundRPCError(t *testing.T) {
	t.Parallel()
	f := startHTTP(t, modeSSEResponses)
	f.server.AddTool(&mcp.Tool{Name: "gone", InputSchema: json.RawMessage(`{"type":"object"}`)},
		func(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return nil, &sdkjsonrpc.Error{Code: -32001, Message: "Session not found"}
		})
	x := NewStreamableHTTP(HTTPOptions{Name: "files", URL: f.url()})
	defer x.Close()
	c, _ := connect(t, x, ConnectOptions{})
	_, err := callTool(context.Background(), c, "gone", nil, nil)
	if !errors.Is(err, ErrSessionNotFound) || jsonrpc.AsError(err) == nil {
		t.Fatalf("err = %v, want both ErrSessionNotFound and the *jsonrpc.Error", err)
	}
}

func TestStreamableUnavailable(t *testing.T) {
	t.Parallel()
	f := startHTTP(t, modeSSEResponses)
	x := NewStreamableHTTP(HTTPOptions{Name: "files", URL: f.url(), Headers: map[string]string{"X-Api-Key": "k-secret"}})
	defer x.Close()
	c, _ := connect(t, x, ConnectOptions{})
	mustCall(t, c, "count", nil)

	f.kill() // the backend dies
	_, err := callTool(context.Background(), c, "count", nil, nil)
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
	if !strings.Contains(err.Error(), `backend "files"`) {
		t.Errorf("error does not name the backend: %v", err)
	}
	noSecrets(t, err, c.SessionID(), "k-secret")

	// Connecting to a dead backend fails the same way.
	_, _, err = x.Connect(context.Background(), ConnectOptions{})
	if !errors.Is(err, ErrUnavailable) {
		t.Errorf("Connect to a dead backend = %v, want ErrUnavailable", err)
	}
}

func TestStreamableTimeoutCancelsBackendWork(t *testing.T) {
	t.Parallel()
	f := startHTTP(t, modeSSEResponses)
	x := NewStreamableHTTP(HTTPOptions{Name: "files", URL: f.url(), Timeout: 300 * time.Millisecond})
	defer x.Close()
	c, _ := connect(t, x, ConnectOptions{})

	_, err := callTool(context.Background(), c, "slow", nil, nil)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), `backend "files"`) ||
		!strings.Contains(err.Error(), "no answer within backends[].timeout (300ms)") {
		t.Fatalf("err = %v, want a deadline error naming the backend and the setting", err)
	}
	select {
	case <-f.cancelled:
	case <-time.After(10 * time.Second):
		t.Fatal("the backend's tool never saw its context cancelled")
	}
	// The session is still usable.
	mustCall(t, c, "count", nil)
}

func TestStreamableProgressReachesCallHandler(t *testing.T) {
	t.Parallel()
	f := startHTTP(t, modeSSEResponses)
	x := NewStreamableHTTP(HTTPOptions{Name: "files", URL: f.url()})
	defer x.Close()
	sessionWide := newRecorder()
	c, _ := connect(t, x, ConnectOptions{Handler: sessionWide})

	perCall := newRecorder()
	ctx := WithHandler(context.Background(), perCall)
	if _, err := callTool(ctx, c, "progress", nil, map[string]any{"progressToken": "p1"}); err != nil {
		t.Fatal(err)
	}
	// Notifications sent on the call's own stream arrive before its result.
	if n := len(perCall.notes); n != 3 {
		t.Errorf("call handler got %d progress notifications, want 3", n)
	}
	for len(sessionWide.notes) > 0 {
		if m := <-sessionWide.notes; m == "notifications/progress" {
			t.Error("progress went to the session handler instead of the call's")
		}
	}
}

func TestStreamableServerRequestsAnswered(t *testing.T) {
	t.Parallel()
	f := startHTTP(t, modeSSEResponses)
	x := NewStreamableHTTP(HTTPOptions{Name: "files", URL: f.url()})
	defer x.Close()
	c, _ := connect(t, x, ConnectOptions{Capabilities: json.RawMessage(`{"roots":{}}`)})

	h := newRecorder()
	h.roots = "file:///work"
	got, err := callTool(WithHandler(context.Background(), h), c, "roots", nil, nil)
	if err != nil || got != "file:///work" {
		t.Fatalf("roots tool = %q, %v; want the handler's answer", got, err)
	}
	// With no handler the backend's request gets method-not-found.
	_, err = callTool(context.Background(), c, "roots", nil, nil)
	if err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("roots without a handler = %v, want a method-not-found failure", err)
	}
}

func TestStreamableStandaloneStream(t *testing.T) {
	t.Parallel()
	f := startHTTP(t, modeSSEResponses)
	x := NewStreamableHTTP(HTTPOptions{Name: "files", URL: f.url()})
	defer x.Close()
	h := newRecorder()
	connect(t, x, ConnectOptions{Handler: h})

	// list_changed is sent outside any call, so it can only arrive on the
	// standalone GET stream. Keep changing the list until the stream is up.
	for i := 0; ; i++ {
		f.server.AddTool(&mcp.Tool{Name: fmt.Sprintf("extra%d", i), InputSchema: json.RawMessage(`{"type":"object"}`)},
			func(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) { return textResult(""), nil })
		select {
		case m := <-h.notes:
			if m == "notifications/tools/list_changed" {
				return
			}
		case <-time.After(100 * time.Millisecond):
		}
		if i == 100 {
			t.Fatal("no list_changed notification on the standalone stream")
		}
	}
}

func TestStreamableResume(t *testing.T) {
	t.Parallel()
	f := startHTTP(t, modeSSEResponses)
	x := NewStreamableHTTP(HTTPOptions{Name: "files", URL: f.url()})
	defer x.Close()
	a, _ := connect(t, x, ConnectOptions{})
	mustCall(t, a, "count", nil)

	b, res := connect(t, x, ConnectOptions{ResumeSessionID: a.SessionID()})
	if !res.Resumed || b.SessionID() != a.SessionID() {
		t.Fatalf("resume: result %+v", res)
	}
	if got := mustCall(t, b, "count", nil); got != "2" {
		t.Errorf("count on resumed session = %s, want 2", got)
	}

	stale, _ := connect(t, x, ConnectOptions{ResumeSessionID: "no-such-session"})
	if _, err := callTool(context.Background(), stale, "count", nil, nil); !errors.Is(err, ErrSessionNotFound) {
		t.Errorf("call on unknown resumed session = %v, want ErrSessionNotFound", err)
	}
}

func TestStreamablePoolBoundsSockets(t *testing.T) {
	t.Parallel()
	const pool, clients = 4, 50
	f := startHTTP(t, modeSSEResponses)
	x := NewStreamableHTTP(HTTPOptions{Name: "files", URL: f.url(), MaxConnsPerHost: pool})
	defer x.Close()

	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, _, err := x.Connect(context.Background(), ConnectOptions{})
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			for j := range 3 {
				want := fmt.Sprint(i, j)
				if got, err := callTool(context.Background(), c, "echo", map[string]string{"text": want}, nil); err != nil || got != want {
					errs <- fmt.Errorf("echo = %q, %v", got, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.maxOpen > pool {
		t.Errorf("%d connections open at once, want at most %d", f.maxOpen, pool)
	}
	t.Logf("connections accepted in total: %d", f.accepted)
}

func TestStreamableInvalidURL(t *testing.T) {
	t.Parallel()
	x := NewStreamableHTTP(HTTPOptions{Name: "files", URL: "ftp://user:secret@host/x"})
	_, _, err := x.Connect(context.Background(), ConnectOptions{})
	if err == nil || strings.Contains(err.Error(), "secret") {
		t.Fatalf("err = %v, want an error without the URL", err)
	}
}

func TestStreamableResumesDroppedResponseStream(t *testing.T) {
	t.Parallel()
	f, c := filesClient(t, modeResumable)
	if got := mustCall(t, c, "hop", nil); got != "after hop" {
		t.Errorf("hop = %q, want the result sent after the stream was resumed", got)
	}
	if f.resumes.Load() == 0 {
		t.Error("the response stream was not resumed with Last-Event-ID")
	}
	if got := mustCall(t, c, "count", nil); got != "1" {
		t.Errorf("count = %s after a resumed stream", got)
	}
}

// TestStreamableUnresumableStreamEnd: a backend with no event store that
// ends a response stream mid-call loses that result, but it is reachable:
// the call fails with ErrNoResponse, not ErrUnavailable (which would count
// against its breaker), and the session carries on.
func TestStreamableUnresumableStreamEnd(t *testing.T) {
	t.Parallel()
	_, c := filesClient(t, modeSSEResponses)
	mustCall(t, c, "count", nil)
	_, err := callTool(context.Background(), c, "hop", nil, nil)
	if !errors.Is(err, ErrNoResponse) || errors.Is(err, ErrUnavailable) {
		t.Fatalf("hop on a backend with no event store: %v, want ErrNoResponse and not ErrUnavailable", err)
	}
	if got := mustCall(t, c, "count", nil); got != "2" {
		t.Errorf("count = %s after the lost response, want 2 on the same backend session", got)
	}
}

func TestStreamableResponseSizeCap(t *testing.T) {
	t.Parallel()
	for _, mode := range []httpMode{modeSSEResponses, modeJSONResponses} {
		f := startHTTP(t, mode)
		x := NewStreamableHTTP(HTTPOptions{Name: "files", URL: f.url(), MaxMessageBytes: 4096})
		defer x.Close()
		c, _ := connect(t, x, ConnectOptions{})
		_, err := callTool(context.Background(), c, "echo", map[string]string{"text": strings.Repeat("x", 8192)}, nil)
		if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), `backend "files"`) {
			t.Errorf("mode %d: err = %v, want ErrTooLarge naming the backend", mode, err)
		}
		mustCall(t, c, "echo", map[string]string{"text": "small"})
	}
}

// BenchmarkStreamableCall measures the client side of one tools/call over
// loopback (the in-process go-sdk server's cost is included).
func BenchmarkStreamableCall(b *testing.B) {
	for _, tc := range []struct {
		name string
		mode httpMode
	}{{"sse", modeSSEResponses}, {"json", modeJSONResponses}} {
		b.Run(tc.name, func(b *testing.B) {
			fx := startHTTP(b, tc.mode)
			x := NewStreamableHTTP(HTTPOptions{Name: "files", URL: fx.url()})
			defer x.Close()
			c, _, err := x.Connect(context.Background(), ConnectOptions{})
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			params := json.RawMessage(`{"name":"echo","arguments":{"text":"hello"}}`)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if _, err := c.Call(context.Background(), "tools/call", params); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func TestStreamableStandaloneStreamsDoNotStarveCalls(t *testing.T) {
	t.Parallel()
	const pool, clients = 4, 10 // more sessions with a handler than sockets
	f := startHTTP(t, modeSSEResponses)
	x := NewStreamableHTTP(HTTPOptions{Name: "files", URL: f.url(), MaxConnsPerHost: pool})
	defer x.Close()
	var cs []Client
	for range clients {
		c, _ := connect(t, x, ConnectOptions{Handler: newRecorder()})
		cs = append(cs, c)
	}
	for i, c := range cs {
		if got := mustCall(t, c, "echo", map[string]string{"text": fmt.Sprint(i)}); got != fmt.Sprint(i) {
			t.Errorf("echo = %q", got)
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.maxOpen > pool {
		t.Errorf("%d connections open at once, want at most %d", f.maxOpen, pool)
	}
}

func TestStreamableDetachLeavesSessionForAnotherReplica(t *testing.T) {
	t.Parallel()
	f := startHTTP(t, modeSSEResponses)
	x := NewStreamableHTTP(HTTPOptions{Name: "files", URL: f.url()})
	defer x.Close()
	a, _ := connect(t, x, ConnectOptions{Handler: newRecorder()}) // with a standalone stream
	mustCall(t, a, "count", nil)
	sid := a.SessionID()
	if err := a.(interface{ Detach() error }).Detach(); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil { // after Detach, Close does nothing
		t.Fatal(err)
	}
	if n := f.deletes.Load(); n != 0 {
		t.Fatalf("Detach sent %d DELETEs; the session must stay open", n)
	}
	if _, err := callTool(context.Background(), a, "count", nil, nil); !errors.Is(err, ErrClosed) {
		t.Errorf("call after Detach = %v, want ErrClosed", err)
	}
	// Another connector (another replica) resumes the same backend session.
	y := NewStreamableHTTP(HTTPOptions{Name: "files", URL: f.url()})
	defer y.Close()
	b, _ := connect(t, y, ConnectOptions{ResumeSessionID: sid})
	if got := mustCall(t, b, "count", nil); got != "2" {
		t.Errorf("count after takeover = %s, want 2", got)
	}
}
