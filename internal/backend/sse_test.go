package backend

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestSSECallsReuseOneSession(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	f := startHTTP(t, modeLegacySSE)
	x := NewSSE(HTTPOptions{Name: "legacy", URL: f.url(), Headers: map[string]string{"X-Api-Key": "k-sse"}})
	c, res, err := x.Connect(context.Background(), ConnectOptions{Handler: newRecorder()})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(res.ServerInfo), `"fixture"`) {
		t.Errorf("serverInfo = %s", res.ServerInfo)
	}
	for _, want := range []string{"1", "2", "3"} {
		if got := mustCall(t, c, "count", nil); got != want {
			t.Fatalf("count = %s, want %s: state lost between calls", got, want)
		}
	}
	if _, ok := f.apiKeys.Load("k-sse"); !ok {
		t.Error("configured header did not reach the backend")
	}
	if err := c.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	c.Close()
	if _, err := c.Call(context.Background(), "tools/list", nil); !errors.Is(err, ErrClosed) {
		t.Errorf("Call after Close = %v, want ErrClosed", err)
	}
	x.Close()
	f.srv.Close()
}

func TestSSEProgressAndCancel(t *testing.T) {
	t.Parallel()
	f := startHTTP(t, modeLegacySSE)
	x := NewSSE(HTTPOptions{Name: "legacy", URL: f.url(), Timeout: 300 * time.Millisecond})
	defer x.Close()
	c, _ := connect(t, x, ConnectOptions{Handler: newRecorder()})

	perCall := newRecorder()
	if _, err := callTool(WithHandler(context.Background(), perCall), c, "progress", nil, map[string]any{"progressToken": "p"}); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		perCall.waitNote(t, "notifications/progress")
	}

	if _, err := callTool(context.Background(), c, "slow", nil, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("slow call = %v, want a deadline error", err)
	}
	select {
	case <-f.cancelled:
	case <-time.After(10 * time.Second):
		t.Fatal("the backend's tool never saw its context cancelled")
	}
}

func TestSSEUnavailable(t *testing.T) {
	t.Parallel()
	f := startHTTP(t, modeLegacySSE)
	x := NewSSE(HTTPOptions{Name: "legacy", URL: f.url()})
	defer x.Close()
	c, _ := connect(t, x, ConnectOptions{})
	mustCall(t, c, "count", nil)

	f.kill()
	_, err := callTool(context.Background(), c, "count", nil, nil)
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), `backend "legacy"`) {
		t.Fatalf("err = %v, want ErrUnavailable naming the backend", err)
	}
	if _, _, err := x.Connect(context.Background(), ConnectOptions{}); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Connect to a dead backend = %v, want ErrUnavailable", err)
	}
}
