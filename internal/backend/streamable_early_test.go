package backend

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	testfix "github.com/vmcp/vmcp/internal/fixture"
)

// TestStreamableRequestRightAfterInitializedArrives: a go-sdk HTTP server
// that asks for roots as soon as it hears notifications/initialized, as
// server-filesystem does, reaches the connect-time handler. The go-sdk
// drops a request it has no stream for, so this works only if the
// standalone GET stream is open before initialized is sent.
func TestStreamableRequestRightAfterInitializedArrives(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return testfix.RootsServer("web") }, nil))
	t.Cleanup(srv.Close)
	x := NewStreamableHTTP(HTTPOptions{Name: "web", URL: srv.URL})
	t.Cleanup(func() { x.Close() })
	h := newRecorder()
	h.roots = "file:///early"
	c, _ := connect(t, x, ConnectOptions{Handler: h, Capabilities: json.RawMessage(`{"roots":{}}`)})
	// The tool reports the session's first answer to roots/list; the
	// bound only turns a dropped request into a failure, not a hang.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	got, err := callTool(ctx, c, "roots", nil, nil)
	if err != nil || got != "roots: file:///early" {
		t.Errorf("roots = %q, %v; want the handler's answer to the request sent right after initialized", got, err)
	}
}

// askedHandler answers a backend's request, telling asked which handler
// got it; with release set it answers only once released and reports on
// live whether the request was still live then.
type askedHandler struct {
	name    string
	asked   chan<- string
	release <-chan struct{}
	live    chan<- bool
}

func (h *askedHandler) Notify(context.Context, string, json.RawMessage) {}

func (h *askedHandler) Request(ctx context.Context, method string, _ json.RawMessage) (json.RawMessage, error) {
	h.asked <- h.name
	if h.release != nil {
		<-h.release
		h.live <- ctx.Err() == nil
	}
	if method == "roots/list" {
		return json.RawMessage(`{"roots":[]}`), nil
	}
	return json.RawMessage(`{}`), nil
}

// askingServer is a go-sdk HTTP server that, while it serves tools/list
// or the tool "soon", sends a request related to that one (so it travels
// on that POST's response stream) and answers as soon as vmcp has the
// request, without waiting for its answer: the request outlives the POST.
// The tool's result names the handler that got the request. Each of the
// server's requests reports on answered once vmcp's answer is in.
func askingServer(t *testing.T, asked <-chan string, answered chan<- error) string {
	t.Helper()
	s := mcp.NewServer(&mcp.Implementation{Name: "asking", Version: "1"}, nil)
	s.AddTool(&mcp.Tool{Name: "soon", InputSchema: map[string]any{"type": "object"}},
		func(ctx context.Context, r *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			go func() {
				_, err := r.Session.ListRoots(context.WithoutCancel(ctx), nil)
				answered <- err
			}()
			return textResult(<-asked), nil
		})
	s.AddReceivingMiddleware(func(next mcp.MethodHandler) mcp.MethodHandler {
		return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
			if method == "tools/list" {
				ss := req.GetSession().(*mcp.ServerSession)
				go func() { answered <- ss.Ping(context.WithoutCancel(ctx), nil) }()
				<-asked
			}
			return next(ctx, method, req)
		}
	})
	srv := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil))
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestStreamableRequestOnAPOSTStreamOutlivesThePOST: as on stdio and SSE
// (TestRequestOutsideACallOutlivesTheCallPendingMeanwhile), a backend's
// request on the stream of a POST that belongs to no client call (vmcp's
// own listing) does not end with that POST; nor does a roots/list on a
// client call's stream, which is the session's.
func TestStreamableRequestOnAPOSTStreamOutlivesThePOST(t *testing.T) {
	t.Parallel()
	asked := make(chan string)
	release, live := make(chan struct{}), make(chan bool, 1)
	answered := make(chan error, 2)
	x := NewStreamableHTTP(HTTPOptions{Name: "asking", URL: askingServer(t, asked, answered)})
	t.Cleanup(func() { x.Close() })
	session := &askedHandler{name: "session", asked: asked, release: release, live: live}
	c, _ := connect(t, x, ConnectOptions{Handler: session, Capabilities: json.RawMessage(`{"roots":{}}`)})

	// vmcp's listing: a call with no handler of its own.
	ctx, cancel := context.WithCancel(context.Background())
	if _, err := c.Call(ctx, "tools/list", json.RawMessage(`{}`)); err != nil {
		t.Fatal(err)
	}
	cancel()
	release <- struct{}{}
	if !<-live {
		t.Error("the backend's ping on the listing's stream was cancelled when the listing ended")
	}
	// The answer must reach the backend too. (Closing the client before
	// it has would leave the go-sdk server's DELETE waiting on the
	// request forever, and the test hanging in its cleanup.)
	if err := <-answered; err != nil {
		t.Errorf("the backend's ping got %v, want vmcp's answer", err)
	}

	// A client's call with a handler of its own: roots/list still goes
	// to the session's handler, and outlives the call.
	call := &askedHandler{name: "call", asked: asked}
	ctx, cancel = context.WithCancel(WithHandler(context.Background(), call))
	got, err := callTool(ctx, c, "soon", nil, nil)
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	if got != "session" {
		t.Fatalf("roots/list on a call's stream went to the %s handler, want the session's", got)
	}
	release <- struct{}{}
	if !<-live {
		t.Error("the backend's roots/list on a call's stream was cancelled when the call ended")
	}
	if err := <-answered; err != nil {
		t.Errorf("the backend's roots/list got %v, want vmcp's answer", err)
	}
}
