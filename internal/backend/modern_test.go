package backend

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	neturl "net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"go.uber.org/goleak"

	testfix "github.com/vmcp/vmcp/internal/fixture"
	"github.com/vmcp/vmcp/internal/jsonrpc"
)

// Modern (2026-07-28) backends: the go-sdk v1.8.0 conformance
// everything-server as a child process, and go-sdk servers in process
// behind a postLog that keeps what vmcp sent.

// startSDKServer serves a go-sdk server over Streamable HTTP, stateless
// (2026-07-28 and legacy) or stateful (legacy only), behind a postLog.
func startSDKServer(t *testing.T, stateless bool, opts *mcp.ServerOptions, setup func(*mcp.Server)) (string, *testfix.Posts) {
	t.Helper()
	s := mcp.NewServer(&mcp.Implementation{Name: "sdk", Version: "test"}, opts)
	mcp.AddTool(s, &mcp.Tool{Name: "greet"}, func(ctx context.Context, req *mcp.CallToolRequest, in struct {
		Name string `json:"name"`
	}) (*mcp.CallToolResult, any, error) {
		return textResult("hi " + in.Name), nil, nil
	})
	if setup != nil {
		setup(s)
	}
	rec := &testfix.Posts{}
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, &mcp.StreamableHTTPOptions{Stateless: stateless})
	srv := httptest.NewServer(rec.Wrap(h))
	t.Cleanup(srv.Close)
	return srv.URL, rec
}

func modernConnector(t *testing.T, url, protocol string) Connector {
	t.Helper()
	x := NewStreamableHTTP(HTTPOptions{Name: "m", URL: url, Timeout: 30 * time.Second, Protocol: protocol})
	t.Cleanup(func() { x.Close() })
	return x
}

// answerer is the client in front, as a backend Handler sees it: it
// answers what a backend asks (an elicitation, say).
type answerer struct {
	mu    sync.Mutex
	asked []string
	fn    func(method string, params json.RawMessage) (json.RawMessage, error)
}

func (a *answerer) Notify(context.Context, string, json.RawMessage) {}

func (a *answerer) Request(_ context.Context, method string, params json.RawMessage) (json.RawMessage, error) {
	a.mu.Lock()
	a.asked = append(a.asked, method+" "+string(params))
	a.mu.Unlock()
	return a.fn(method, params)
}

func acceptName(name string) *answerer {
	return &answerer{fn: func(method string, _ json.RawMessage) (json.RawMessage, error) {
		if method != "elicitation/create" {
			return nil, jsonrpc.Errorf(jsonrpc.CodeMethodNotFound, "no %s", method)
		}
		return json.RawMessage(`{"action":"accept","content":{"name":"` + name + `"}}`), nil
	}}
}

var elicitCaps = json.RawMessage(`{"elicitation":{"form":{}}}`)

func callText(ctx context.Context, t *testing.T, c Client, name string, args string) string {
	t.Helper()
	raw, err := c.Call(ctx, "tools/call", json.RawMessage(`{"name":"`+name+`","arguments":`+args+`}`))
	if err != nil {
		t.Fatalf("tools/call %s: %v", name, err)
	}
	var res mcp.CallToolResult
	if err := json.Unmarshal(raw, &res); err != nil {
		t.Fatalf("tools/call %s: %v in %s", name, err, raw)
	}
	if res.IsError || len(res.Content) == 0 {
		t.Fatalf("tools/call %s: %s", name, raw)
	}
	return res.Content[0].(*mcp.TextContent).Text
}

// The everything-server in its default mode is a 2026-07-28 server: vmcp
// reaches it with no session, lists its tools, calls them (one that needs
// an Mcp-Param header, one that asks for input), all on the one client.
func TestModernEverythingServer(t *testing.T) {
	t.Parallel()
	url := testfix.StartEverything(t, true)
	for _, protocol := range []string{ProtocolModern, ProtocolAuto} {
		t.Run(protocol, func(t *testing.T) {
			x := modernConnector(t, url, protocol)
			ctx := context.Background()
			front := acceptName("Alice")
			c, res, err := x.Connect(ctx, ConnectOptions{Capabilities: elicitCaps, Handler: front})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if res.ProtocolVersion != ModernProtocolVersion || c.SessionID() != "" || !Stateless(c) {
				t.Fatalf("connected as %q, session %q, stateless %v", res.ProtocolVersion, c.SessionID(), Stateless(c))
			}
			if !strings.Contains(string(res.ServerInfo), "mcp-conformance-test-server") || !strings.Contains(string(res.Capabilities), "tools") {
				t.Errorf("discover result: info %s caps %s", res.ServerInfo, res.Capabilities)
			}
			list, err := c.Call(ctx, "tools/list", nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, name := range []string{"test_simple_text", "test_x_mcp_header", "test_input_required_result_elicitation"} {
				if !strings.Contains(string(list), `"`+name+`"`) {
					t.Errorf("tools/list lacks %s", name)
				}
			}
			if got := callText(ctx, t, c, "test_simple_text", "{}"); got == "" {
				t.Error("empty text")
			}
			// The server rejects this call unless Mcp-Param-Region mirrors
			// the argument.
			callText(ctx, t, c, "test_x_mcp_header", `{"region":"us-west1"}`)
			if got := callText(ctx, t, c, "test_input_required_result_elicitation", "{}"); got != "Hello, Alice!" {
				t.Errorf("input-required call = %q", got)
			}
			if len(front.asked) != 1 || !strings.HasPrefix(front.asked[0], "elicitation/create ") || !strings.Contains(front.asked[0], "What is your name?") {
				t.Errorf("the client in front was asked %q", front.asked)
			}
		})
	}
}

// auto asks server/discover once per backend for a legacy one, and falls
// back to initialize: the everything-server in stateful mode answers
// discover with legacy versions only, a go-sdk stateful server likewise.
func TestAutoPicksTheBackendsEra(t *testing.T) {
	t.Parallel()
	t.Run("everything-server stateful is legacy", func(t *testing.T) {
		t.Parallel()
		x := modernConnector(t, testfix.StartEverything(t, false), ProtocolAuto)
		c, res, err := x.Connect(context.Background(), ConnectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if IsModern(res.ProtocolVersion) || c.SessionID() == "" || Stateless(c) {
			t.Fatalf("got %q, session %v, stateless %v; want legacy", res.ProtocolVersion, c.SessionID() != "", Stateless(c))
		}
		callText(context.Background(), t, c, "test_simple_text", "{}")
	})
	t.Run("legacy probed once", func(t *testing.T) {
		t.Parallel()
		url, rec := startSDKServer(t, false, nil, nil)
		x := modernConnector(t, url, ProtocolAuto)
		for i := range 3 {
			c, res, err := x.Connect(context.Background(), ConnectOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if IsModern(res.ProtocolVersion) || c.SessionID() == "" {
				t.Fatalf("session %d: %q, want legacy", i, res.ProtocolVersion)
			}
			if got := callText(context.Background(), t, c, "greet", `{"name":"x"}`); got != "hi x" {
				t.Errorf("greet = %q", got)
			}
			c.Close()
		}
		if n, m := rec.Count("server/discover"), rec.Count("initialize"); n != 1 || m != 3 {
			t.Errorf("%d server/discover and %d initialize for 3 sessions; want 1 and 3", n, m)
		}
	})
	t.Run("modern never initializes", func(t *testing.T) {
		t.Parallel()
		url, rec := startSDKServer(t, true, nil, nil)
		x := modernConnector(t, url, ProtocolAuto)
		for range 2 {
			c, res, err := x.Connect(context.Background(), ConnectOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if !IsModern(res.ProtocolVersion) {
				t.Fatalf("got %q, want modern", res.ProtocolVersion)
			}
			callText(context.Background(), t, c, "greet", `{"name":"y"}`)
			c.Close()
		}
		if n := rec.Count("initialize"); n != 0 {
			t.Errorf("%d initialize sent to a modern backend", n)
		}
		if s := rec.Last("tools/call"); s.Header.Get(hdrSessionID) != "" {
			t.Error("a modern request carried Mcp-Session-Id")
		}
	})
	t.Run("modern required", func(t *testing.T) {
		t.Parallel()
		url, rec := startSDKServer(t, false, nil, nil)
		x := modernConnector(t, url, ProtocolModern)
		_, _, err := x.Connect(context.Background(), ConnectOptions{})
		if err == nil || !strings.Contains(err.Error(), "protocol: modern") {
			t.Fatalf("Connect = %v, want an error naming protocol: modern", err)
		}
		if n := rec.Count("initialize"); n != 0 {
			t.Errorf("%d initialize sent with protocol: modern", n)
		}
	})
}

// notModern decides the probe by the spec's rule.
func TestNotModern(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"discover offers legacy only", opError("b", "server/discover", errNotModern), true},
		{"method not found", &jsonrpc.Error{Code: jsonrpc.CodeMethodNotFound, Message: "no"}, true},
		{"invalid request", &jsonrpc.Error{Code: jsonrpc.CodeInvalidRequest, Message: "no session"}, true},
		{"unsupported, legacy offered", &jsonrpc.Error{Code: codeUnsupportedVersion, Data: json.RawMessage(`{"supported":["2025-11-25"]}`)}, true},
		{"unsupported, modern offered", &jsonrpc.Error{Code: codeUnsupportedVersion, Data: json.RawMessage(`{"supported":["2026-07-28"]}`)}, false},
		{"header mismatch", &jsonrpc.Error{Code: codeHeaderMismatch}, false},
		{"missing capability", &jsonrpc.Error{Code: codeMissingCapability}, false},
		{"400 without a body", &statusCodeError{http.StatusBadRequest}, true},
		{"404", &statusCodeError{http.StatusNotFound}, true},
		{"405", &statusCodeError{http.StatusMethodNotAllowed}, true},
		{"429", &statusCodeError{http.StatusTooManyRequests}, false},
		{"5xx", unavailable(&HTTPStatusError{502}), false},
		{"refused credential", refused(401), false},
		{"unreachable", unavailable(errors.New("connection refused")), false},
		{"timeout", opError("b", "server/discover", context.DeadlineExceeded), false},
		{"not JSON-RPC", opError("b", "server/discover", errors.New("invalid JSON-RPC response")), true},
		{"no response", opError("b", "server/discover", ErrNoResponse), true},
	} {
		if got := notModern(tc.err); got != tc.want {
			t.Errorf("%s: notModern = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// Every modern request carries vmcp's _meta (with the client's own
// members kept) and the headers the transport asks for; the log level a
// legacy client set is remembered and sent with each request.
func TestModernRequestsCarryMetaAndHeaders(t *testing.T) {
	t.Parallel()
	url, rec := startSDKServer(t, true, nil, nil)
	x := modernConnector(t, url, ProtocolModern)
	ctx := context.Background()
	c, _, err := x.Connect(ctx, ConnectOptions{ClientInfo: json.RawMessage(`{"name":"front","version":"9"}`), Capabilities: elicitCaps})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Call(ctx, "logging/setLevel", json.RawMessage(`{"level":"debug"}`)); err != nil {
		t.Fatal(err)
	}
	if n := rec.Count("logging/setLevel"); n != 0 {
		t.Errorf("logging/setLevel sent to a modern backend %d times", n)
	}
	if _, err := c.Call(ctx, "tools/call", json.RawMessage(`{"name":"greet","arguments":{"name":"z"},"_meta":{"progressToken":7,"io.modelcontextprotocol/logLevel":"error"}}`)); err != nil {
		t.Fatal(err)
	}
	s := rec.Last("tools/call")
	for k, want := range map[string]string{"Mcp-Protocol-Version": ModernProtocolVersion, "Mcp-Method": "tools/call", "Mcp-Name": "greet", "Mcp-Session-Id": ""} {
		if got := s.Header.Get(k); got != want {
			t.Errorf("header %s = %q, want %q", k, got, want)
		}
	}
	if n := strings.Count(string(s.Body), metaLogLevel); n != 1 {
		t.Errorf("%s appears %d times in %s", metaLogLevel, n, s.Body)
	}
	var body struct {
		Params struct {
			Meta map[string]json.RawMessage `json:"_meta"`
		} `json:"params"`
	}
	if err := json.Unmarshal(s.Body, &body); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{
		metaProtocolVersion:    `"2026-07-28"`,
		metaClientInfo:         `{"name":"front","version":"9"}`,
		metaClientCapabilities: string(elicitCaps),
		metaLogLevel:           `"debug"`,
		"progressToken":        "7",
	} {
		if got := string(body.Params.Meta[k]); got != want {
			t.Errorf("_meta %s = %s, want %s", k, got, want)
		}
	}
	// ping is gone in 2026-07-28: answered without a request.
	if _, err := c.Call(ctx, "ping", nil); err != nil || rec.Count("ping") != 0 {
		t.Errorf("ping: %v, %d sent", err, rec.Count("ping"))
	}
}

// A modern backend answers an unknown method with 404 and -32601: that is
// the backend's error, passed on, never a lost session.
func TestModernMethodNotFoundIsNotALostSession(t *testing.T) {
	t.Parallel()
	url, rec := startSDKServer(t, true, nil, nil)
	x := modernConnector(t, url, ProtocolModern)
	c, _, err := x.Connect(context.Background(), ConnectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = c.Call(context.Background(), "completion/complete", json.RawMessage(`{"ref":{"type":"ref/prompt","name":"p"},"argument":{"name":"a","value":"b"}}`))
	e := jsonrpc.AsError(err)
	if e == nil || e.Code != jsonrpc.CodeMethodNotFound || errors.Is(err, ErrSessionNotFound) {
		t.Fatalf("error = %v, want -32601 and not ErrSessionNotFound", err)
	}
	if rec.Count("completion/complete") != 1 {
		t.Error("the call did not reach the backend")
	}
}

// The input-required loop: several rounds, the backend's requestState
// echoed as it was, an answer the client refuses, and a backend that
// never stops asking.
func TestModernInputRequired(t *testing.T) {
	t.Parallel()
	url, _ := startSDKServer(t, true, nil, func(s *mcp.Server) {
		mcp.AddTool(s, &mcp.Tool{Name: "two_rounds"}, func(ctx context.Context, req *mcp.CallToolRequest, _ any) (*mcp.CallToolResult, any, error) {
			ask := func(id, state string) (*mcp.CallToolResult, any, error) {
				return &mcp.CallToolResult{RequestState: state, InputRequests: mcp.InputRequestMap{
					id: &mcp.ElicitParams{Message: id, RequestedSchema: map[string]any{"type": "object"}},
				}}, nil, nil
			}
			switch req.Params.RequestState {
			case "":
				return ask("first", "after-first")
			case "after-first":
				if r, ok := req.Params.InputResponses["first"].(*mcp.ElicitResult); ok && r.Action == "accept" {
					return ask("second", "after-second")
				}
			case "after-second":
				if _, ok := req.Params.InputResponses["second"]; ok {
					return textResult("done"), nil, nil
				}
			}
			return nil, nil, errors.New("bad state " + req.Params.RequestState)
		})
		mcp.AddTool(s, &mcp.Tool{Name: "forever"}, func(ctx context.Context, req *mcp.CallToolRequest, _ any) (*mcp.CallToolResult, any, error) {
			return &mcp.CallToolResult{InputRequests: mcp.InputRequestMap{
				"again": &mcp.ElicitParams{Message: "again", RequestedSchema: map[string]any{"type": "object"}},
			}}, nil, nil
		})
	})
	x := modernConnector(t, url, ProtocolModern)
	ctx := context.Background()
	front := acceptName("n")
	c, _, err := x.Connect(ctx, ConnectOptions{Capabilities: elicitCaps, Handler: front})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := callText(ctx, t, c, "two_rounds", "{}"); got != "done" || len(front.asked) != 2 {
		t.Errorf("two_rounds = %q after %d questions", got, len(front.asked))
	}
	_, err = c.Call(ctx, "tools/call", json.RawMessage(`{"name":"forever"}`))
	if !errors.Is(err, ErrInputRounds) {
		t.Errorf("forever: %v, want ErrInputRounds", err)
	}
	// The call's own handler (the call's stream) wins over the
	// connect-time one, and its refusal fails the call with its code.
	refuse := &answerer{fn: func(string, json.RawMessage) (json.RawMessage, error) {
		return nil, jsonrpc.Errorf(jsonrpc.CodeMethodNotFound, "client does not support elicitation")
	}}
	_, err = c.Call(WithHandler(ctx, refuse), "tools/call", json.RawMessage(`{"name":"two_rounds"}`))
	if e := jsonrpc.AsError(err); e == nil || e.Code != jsonrpc.CodeMethodNotFound || len(refuse.asked) != 1 {
		t.Errorf("refused: %v after %d questions", err, len(refuse.asked))
	}
}

// List results keep their caching hints for the front end.
func TestModernListCache(t *testing.T) {
	t.Parallel()
	url, _ := startSDKServer(t, true, &mcp.ServerOptions{SetCacheable: func(_ context.Context, req mcp.Request, c *mcp.Cacheable) {
		if _, ok := req.(*mcp.ListToolsRequest); ok {
			c.TTLMs, c.CacheScope = 60000, "private"
		}
	}}, nil)
	x := modernConnector(t, url, ProtocolModern)
	c, _, err := x.Connect(context.Background(), ConnectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Call(context.Background(), "tools/list", nil); err != nil {
		t.Fatal(err)
	}
	lc := c.(interface {
		ListCache(string) (Cacheability, bool)
	})
	if h, ok := lc.ListCache("tools/list"); !ok || h.TTL != time.Minute || h.Scope != "private" {
		t.Errorf("ListCache = %+v, %v", h, ok)
	}
}

func TestEncodeHeaderValue(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"us-west1":           "us-west1",
		"Hello, 世界":          "=?base64?SGVsbG8sIOS4lueVjA==?=",
		" padded ":           "=?base64?IHBhZGRlZCA=?=",
		"line1\nline2":       "=?base64?bGluZTEKbGluZTI=?=",
		"=?base64?literal?=": "=?base64?PT9iYXNlNjQ/bGl0ZXJhbD89?=",
	} {
		if got := encodeHeaderValue(in); got != want {
			t.Errorf("encodeHeaderValue(%q) = %q, want %q", in, got, want)
		}
	}
}

// The session's list changes and resource subscriptions travel on one
// subscriptions/listen stream: the everything-server's tool-change
// trigger and its watched resource (updated every 3 s) reach the
// connect-time Handler, and the acknowledgment stays in vmcp.
func TestModernSubscriptionsListen(t *testing.T) {
	t.Parallel()
	url := testfix.StartEverything(t, true)
	x := modernConnector(t, url, ProtocolModern)
	ctx := context.Background()
	h := newRecorder()
	c, _, err := x.Connect(ctx, ConnectOptions{Handler: h})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Call(ctx, "resources/subscribe", json.RawMessage(`{"uri":"test://watched-resource"}`)); err != nil {
		t.Fatal(err)
	}
	h.waitNote(t, "notifications/resources/updated")
	callText(ctx, t, c, "test_trigger_tool_change", "{}")
	h.waitNote(t, "notifications/tools/list_changed")
	if _, err := c.Call(ctx, "resources/unsubscribe", json.RawMessage(`{"uri":"test://watched-resource"}`)); err != nil {
		t.Fatal(err)
	}
	for {
		select {
		case m := <-h.notes:
			if m == "notifications/subscriptions/acknowledged" {
				t.Fatal("the acknowledgment reached the handler")
			}
			continue
		default:
		}
		break
	}
}

// A modern client owns its subscriptions/listen stream: Close ends it and
// waits for it, later calls fail at once with ErrClosed, and nothing is
// left running.
func TestModernClientLifecycle(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	s := mcp.NewServer(&mcp.Implementation{Name: "sdk", Version: "test"}, nil)
	mcp.AddTool(s, &mcp.Tool{Name: "greet"}, func(context.Context, *mcp.CallToolRequest, any) (*mcp.CallToolResult, any, error) {
		return textResult("hi"), nil, nil
	})
	rec := &testfix.Posts{}
	srv := httptest.NewServer(rec.Wrap(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, &mcp.StreamableHTTPOptions{Stateless: true})))
	x := NewStreamableHTTP(HTTPOptions{Name: "m", URL: srv.URL, Protocol: ProtocolModern})
	c, _, err := x.Connect(context.Background(), ConnectOptions{Handler: newRecorder()})
	if err != nil {
		t.Fatal(err)
	}
	testfix.Eventually(t, "the subscriptions/listen stream", func() bool { return rec.Count("subscriptions/listen") >= 1 })
	callText(context.Background(), t, c, "greet", "{}")
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Call(context.Background(), "tools/list", nil); !errors.Is(err, ErrClosed) {
		t.Errorf("call after Close: %v, want ErrClosed", err)
	}
	if n := rec.Count("subscriptions/listen"); n != 1 {
		t.Errorf("%d subscriptions/listen: the stream was opened again", n)
	}
	x.Close()
	srv.CloseClientConnections()
	srv.Close()
}

// A backend that refuses subscriptions/listen (a fault injector answering
// 404 -32601) makes resources/subscribe fail with its code at once,
// rather than wait for an acknowledgment that cannot come.
func TestModernSubscribeRefused(t *testing.T) {
	t.Parallel()
	url, _ := startSDKServer(t, true, nil, nil)
	target, _ := neturl.Parse(url)
	proxy := httputil.NewSingleHostReverseProxy(target)
	refusing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			if method, _ := testfix.ReadMethod(r); method == "subscriptions/listen" {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusNotFound)
				io.WriteString(w, `{"jsonrpc":"2.0","id":1,"error":{"code":-32601,"message":"no"}}`)
				return
			}
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(refusing.Close)
	x := modernConnector(t, refusing.URL, ProtocolModern)
	c, _, err := x.Connect(context.Background(), ConnectOptions{Handler: newRecorder()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// The stream for the tool list, opened at connect, is refused first.
	sub := c.(*modernClient).h.sub
	testfix.Eventually(t, "the first stream refused", func() bool {
		sub.mu.Lock()
		defer sub.mu.Unlock()
		return sub.refused
	})
	_, err = c.Call(context.Background(), "resources/subscribe", json.RawMessage(`{"uri":"test://x"}`))
	if e := jsonrpc.AsError(err); e == nil || e.Code != jsonrpc.CodeMethodNotFound {
		t.Fatalf("subscribe: %v, want -32601", err)
	}
	callText(context.Background(), t, c, "greet", `{"name":"still"}`)
}

// With every stream slot taken by other sessions, a subscribe is
// recorded and answered at once; the subscription is in force as soon as
// the session's stream gets a slot.
func TestModernSubscribeWhileStreamsAreFull(t *testing.T) {
	t.Parallel()
	url := testfix.StartEverything(t, true)
	x := NewStreamableHTTP(HTTPOptions{Name: "m", URL: url, Protocol: ProtocolModern, MaxStreams: 1})
	t.Cleanup(func() { x.Close() })
	ctx := context.Background()
	a, _, err := x.Connect(ctx, ConnectOptions{Handler: newRecorder()})
	if err != nil {
		t.Fatal(err)
	}
	testfix.Eventually(t, "the first session's stream holds the slot", func() bool {
		sub := a.(*modernClient).h.sub
		sub.mu.Lock()
		defer sub.mu.Unlock()
		return sub.running
	})
	h := newRecorder()
	b, _, err := x.Connect(ctx, ConnectOptions{Handler: h})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	sctx, cancel := context.WithTimeout(ctx, subscribeWait/2)
	defer cancel()
	if _, err := b.Call(sctx, "resources/subscribe", json.RawMessage(`{"uri":"test://watched-resource"}`)); err != nil {
		t.Fatalf("subscribe while the stream waits for a slot: %v", err)
	}
	a.Close() // frees the slot
	h.waitNote(t, "notifications/resources/updated")
}
