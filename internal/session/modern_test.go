package session_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/vmcp/vmcp/internal/backend"
	"github.com/vmcp/vmcp/internal/fixture"
	"github.com/vmcp/vmcp/internal/jsonrpc"
	"github.com/vmcp/vmcp/internal/session"
	"github.com/vmcp/vmcp/internal/store"
)

// A session in front of a 2026-07-28 backend: a go-sdk v1.8.0 server in
// stateless mode, in process, counting the methods it is sent.

func startModernBackend(t *testing.T, opts *mcp.ServerOptions) (string, *fixture.Posts) {
	t.Helper()
	s := mcp.NewServer(&mcp.Implementation{Name: "modern", Version: "test"}, opts)
	mcp.AddTool(s, &mcp.Tool{Name: "ask_name"}, func(ctx context.Context, req *mcp.CallToolRequest, _ any) (*mcp.CallToolResult, any, error) {
		if r, ok := req.Params.InputResponses["name"].(*mcp.ElicitResult); ok && r.Action == "accept" {
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "Hello, " + r.Content["name"].(string) + "!"}}}, nil, nil
		}
		return &mcp.CallToolResult{InputRequests: mcp.InputRequestMap{
			"name": &mcp.ElicitParams{Message: "What is your name?", RequestedSchema: map[string]any{"type": "object"}},
		}}, nil, nil
	})
	s.AddPrompt(&mcp.Prompt{Name: "hello"}, func(context.Context, *mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
		return &mcp.GetPromptResult{Messages: []*mcp.PromptMessage{{Role: "user", Content: &mcp.TextContent{Text: "hello"}}}}, nil
	})
	counts := &fixture.Posts{}
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, &mcp.StreamableHTTPOptions{Stateless: true})
	srv := httptest.NewServer(counts.Wrap(h))
	t.Cleanup(srv.Close)
	return srv.URL, counts
}

// asker is the client in front: it answers an elicitation.
type asker struct {
	mu    sync.Mutex
	asked []string
}

func (a *asker) Notify(context.Context, string, json.RawMessage) {}

func (a *asker) Request(_ context.Context, method string, params json.RawMessage) (json.RawMessage, error) {
	a.mu.Lock()
	a.asked = append(a.asked, method+" "+string(params))
	a.mu.Unlock()
	if method != "elicitation/create" {
		return nil, errors.New("unexpected " + method)
	}
	return json.RawMessage(`{"action":"accept","content":{"name":"Alice"}}`), nil
}

func newSessionWithCaps(t *testing.T, f *session.Factory, caps string) *session.Session {
	t.Helper()
	id, err := session.NewID()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	s, err := f.New(context.Background(), &store.Metadata{ID: id, Created: now, LastSeen: now, ClientCapabilities: json.RawMessage(caps)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// Keepalive pings legacy backend sessions, never a modern backend, which
// has none (and no ping method). The legacy backend in the same session
// is the witness that the keepalive ran.
func TestKeepaliveDoesNotPingModernBackends(t *testing.T) {
	leakCheck(t)
	web := fixture.StartFaulty(t, "web")
	url, counts := startModernBackend(t, nil)
	k := session.Keepalive{Interval: 5 * time.Millisecond}
	modern := httpBackend("modern", url)
	modern.Keepalive = &k
	s := newSession(t, newFactory(t, nil, session.CallLimits{}, keepaliveBackend(web, k), modern))
	fixture.Eventually(t, "keepalive pings the legacy backend", func() bool { return web.Pings.Load() >= 3 })
	if n := counts.Count("ping"); n != 0 {
		t.Errorf("%d pings sent to the modern backend", n)
	}
	if n := counts.Count("initialize"); n != 0 {
		t.Errorf("%d initialize sent to the modern backend", n)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// A modern backend's 404 with -32601 is its answer, passed on: the
// session does not take it for a lost backend session, so the backend is
// not connected again and later results do not say it was.
func TestModernMethodNotFoundIsNotALostSession(t *testing.T) {
	t.Parallel()
	url, counts := startModernBackend(t, nil)
	s := newSession(t, newFactory(t, nil, session.CallLimits{}, httpBackend("modern", url)))
	_, err := s.Complete(context.Background(), json.RawMessage(`{"ref":{"type":"ref/prompt","name":"modern_hello"},"argument":{"name":"a","value":"b"}}`))
	if e := jsonrpc.AsError(err); e == nil || e.Code != jsonrpc.CodeMethodNotFound {
		t.Fatalf("completion/complete: %v, want -32601", err)
	}
	if counts.Count("completion/complete") != 1 {
		t.Fatal("completion/complete did not reach the backend")
	}
	raw, err := s.GetPrompt(context.Background(), json.RawMessage(`{"name":"modern_hello"}`))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte(session.MetaBackendReinitialized)) {
		t.Errorf("result says the backend was re-initialized: %s", raw)
	}
	if n := counts.Count("server/discover"); n != 1 {
		t.Errorf("%d server/discover: the backend was connected again", n)
	}
}

// A modern backend's InputRequiredResult reaches the client in front as
// the elicitation/create it knows, on the call's Peer, and its answer
// completes the call.
func TestModernInputRequiredAsksTheCallsPeer(t *testing.T) {
	t.Parallel()
	url, counts := startModernBackend(t, nil)
	s := newSessionWithCaps(t, newFactory(t, nil, session.CallLimits{}, httpBackend("modern", url)), `{"elicitation":{}}`)
	peer := &asker{}
	r, err := callTool(session.WithPeer(context.Background(), peer), s, "modern_ask_name", nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.Content[0].Text != "Hello, Alice!" {
		t.Errorf("result %q", r.Content[0].Text)
	}
	if len(peer.asked) != 1 || !bytes.Contains([]byte(peer.asked[0]), []byte("What is your name?")) {
		t.Errorf("peer asked %q", peer.asked)
	}
	if n := counts.Count("tools/call"); n != 2 {
		t.Errorf("%d tools/call sent, want the call and its retry", n)
	}
	// A client that did not declare elicitation is not asked.
	s2 := newSession(t, newFactory(t, nil, session.CallLimits{}, httpBackend("modern", url)))
	other := &asker{}
	if _, err := callTool(session.WithPeer(context.Background(), other), s2, "modern_ask_name", nil); err == nil || len(other.asked) != 0 {
		t.Errorf("without the capability: %v, asked %q", err, other.asked)
	}
}

// The session merges its backends' list caching hints, and has none
// while a legacy backend (which gives none) is in it.
func TestSessionListCache(t *testing.T) {
	t.Parallel()
	url, _ := startModernBackend(t, &mcp.ServerOptions{SetCacheable: func(_ context.Context, req mcp.Request, c *mcp.Cacheable) {
		c.TTLMs, c.CacheScope = 30000, "private"
	}})
	s := newSession(t, newFactory(t, nil, session.CallLimits{}, httpBackend("modern", url)))
	if h, ok := s.ListCache(session.ListTools); !ok || h != (backend.Cacheability{TTL: 30 * time.Second, Scope: "private"}) {
		t.Errorf("ListCache = %+v, %v", h, ok)
	}
	web := fixture.StartFaulty(t, "web")
	mixed := newSession(t, newFactory(t, nil, session.CallLimits{}, httpBackend("modern", url), httpBackend("web", web.URL)))
	if h, ok := mixed.ListCache(session.ListTools); ok {
		t.Errorf("with a legacy backend: ListCache = %+v, want none", h)
	}
}
