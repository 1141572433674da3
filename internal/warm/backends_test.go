package warm_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/vmcp/vmcp/internal/backend"
	"github.com/vmcp/vmcp/internal/exampleserver"
	"github.com/vmcp/vmcp/internal/fixture"
	"github.com/vmcp/vmcp/internal/session"
	"github.com/vmcp/vmcp/internal/store"
	"github.com/vmcp/vmcp/internal/warm"
)

// askingServer serves a stateful go-sdk server whose tool "ask" elicits
// the caller's name and samples a greeting in the middle of the call, as
// a legacy backend may. The SDK refuses both unless the client declared
// the capability. It counts the initializes it receives.
func askingServer(t *testing.T) (url string, initializes *atomic.Int64) {
	return askingServerOver(t, func(srv *mcp.Server) http.Handler {
		return mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return srv }, nil)
	})
}

// askingServerOver is askingServer over the transport wrap gives.
func askingServerOver(t *testing.T, wrap func(*mcp.Server) http.Handler) (url string, initializes *atomic.Int64) {
	initializes = new(atomic.Int64)
	srv := mcp.NewServer(&mcp.Implementation{Name: "asker", Version: "1"}, nil)
	srv.AddReceivingMiddleware(func(next mcp.MethodHandler) mcp.MethodHandler {
		return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
			if method == "initialize" {
				initializes.Add(1)
			}
			return next(ctx, method, req)
		}
	})
	srv.AddTool(&mcp.Tool{Name: "ask", InputSchema: map[string]any{"type": "object"}},
		func(ctx context.Context, r *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			el, err := r.Session.Elicit(ctx, &mcp.ElicitParams{Message: "Your name?", RequestedSchema: map[string]any{
				"type": "object", "properties": map[string]any{"name": map[string]any{"type": "string"}},
			}})
			if err != nil {
				return nil, err
			}
			sm, err := r.Session.CreateMessage(ctx, &mcp.CreateMessageParams{MaxTokens: 10,
				Messages: []*mcp.SamplingMessage{{Role: "user", Content: &mcp.TextContent{Text: "greet"}}}})
			if err != nil {
				return nil, err
			}
			greeting, _ := sm.Content.(*mcp.TextContent)
			name, _ := el.Content["name"].(string)
			if greeting == nil {
				return nil, errors.New("sampling returned no text")
			}
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: greeting.Text + " " + name}}}, nil
		})
	ts := httptest.NewServer(wrap(srv))
	t.Cleanup(func() {
		ts.CloseClientConnections()
		ts.Close()
	})
	return ts.URL, initializes
}

// answeringPeer is a call's Peer, as the front end gives each request
// (turning what it is asked into an MRTR InputRequiredResult): it answers
// what the backend asks and records the methods.
type answeringPeer struct {
	mu     sync.Mutex
	asked  []string
	answer map[string]string
}

func (p *answeringPeer) Notify(context.Context, string, json.RawMessage) {}

func (p *answeringPeer) Request(_ context.Context, method string, _ json.RawMessage) (json.RawMessage, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.asked = append(p.asked, method)
	a, ok := p.answer[method]
	if !ok {
		return nil, errors.New("unexpected " + method)
	}
	return json.RawMessage(a), nil
}

// A pooled session declares elicitation and sampling, so a legacy backend
// may ask mid-call; what it asks reaches the request's own Peer, and no
// request costs an initialize after the first.
func TestBackendAsksMidCallThroughTheRequestsPeer(t *testing.T) {
	leakCheck(t)
	url, inits := askingServer(t)
	p := newPool(t, warm.Options{Factory: newFactory(session.FactoryOptions{}, httpBackend(t, "asker", url))})
	ctx, id := caller("alice")
	for i := range 3 {
		peer := &answeringPeer{answer: map[string]string{
			"elicitation/create":     `{"action":"accept","content":{"name":"Ada"}}`,
			"sampling/createMessage": `{"role":"assistant","model":"m","content":{"type":"text","text":"Hello"}}`,
		}}
		s, release, err := p.Acquire(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		params := json.RawMessage(`{"name":"asker_ask","arguments":{}}`)
		raw, err := s.Operations().Call(session.WithPeer(ctx, peer), "tools/call", params)
		release()
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		var res struct {
			Content []struct{ Text string } `json:"content"`
			IsError bool                    `json:"isError"`
		}
		if err := json.Unmarshal(raw, &res); err != nil || res.IsError || len(res.Content) == 0 || res.Content[0].Text != "Hello Ada" {
			t.Fatalf("request %d: result %s, want \"Hello Ada\"", i, raw)
		}
		if want := []string{"elicitation/create", "sampling/createMessage"}; !slices.Equal(peer.asked, want) {
			t.Errorf("request %d: the request's Peer was asked %v, want %v", i, peer.asked, want)
		}
	}
	if n := inits.Load(); n != 1 {
		t.Errorf("backend initializes = %d for 3 requests, want 1", n)
	}
}

// A backend on a shared connection (legacy SSE) asks mid-call too, and
// the request reaches the request's own Peer: the connection hands it to
// the call in flight.
func TestSharedConnectionBackendAsksTheCallInFlight(t *testing.T) {
	leakCheck(t)
	url, inits := askingServerOver(t, func(srv *mcp.Server) http.Handler {
		return mcp.NewSSEHandler(func(*http.Request) *mcp.Server { return srv }, nil)
	})
	c := backend.NewSSE(backend.HTTPOptions{Name: "asker", URL: url, Timeout: 30 * time.Second})
	t.Cleanup(func() { c.Close() })
	p := newPool(t, warm.Options{Factory: newFactory(session.FactoryOptions{}, session.Backend{Name: "asker", Connector: c})})
	ctx, id := caller("alice")
	for i := range 2 {
		peer := &answeringPeer{answer: map[string]string{
			"elicitation/create":     `{"action":"accept","content":{"name":"Ada"}}`,
			"sampling/createMessage": `{"role":"assistant","model":"m","content":{"type":"text","text":"Hello"}}`,
		}}
		s, release, err := p.Acquire(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := s.Operations().Call(session.WithPeer(ctx, peer), "tools/call", json.RawMessage(`{"name":"asker_ask","arguments":{}}`))
		release()
		if err != nil || !bytes.Contains(raw, []byte("Hello Ada")) || bytes.Contains(raw, []byte(`"isError":true`)) {
			t.Fatalf("request %d: result %s, err %v; want \"Hello Ada\"", i, raw, err)
		}
		if len(peer.asked) != 2 {
			t.Errorf("request %d: the request's Peer was asked %v, want elicitation and sampling", i, peer.asked)
		}
	}
	if n := inits.Load(); n != 1 {
		t.Errorf("backend initializes = %d for 2 requests, want 1", n)
	}
}

// A pooled session whose backend lost it re-initializes as any session
// does: the request is served, says the backend state is gone, and later
// requests reuse the new backend session.
func TestPooledSessionReinitializesALostBackendSession(t *testing.T) {
	leakCheck(t)
	web := startHTTP(t, "web")
	p := newPool(t, warm.Options{Factory: newFactory(session.FactoryOptions{}, httpBackend(t, "web", web.URL))})
	ctx, id := caller("alice")
	acquireCount(t, p, ctx, id, "web_counter")
	acquireCount(t, p, ctx, id, "web_counter")
	web.Handler.Forget() // the backend restarts and forgets every session

	s, release, err := p.Acquire(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := s.Operations().Call(ctx, "tools/call", json.RawMessage(`{"name":"web_counter","arguments":{}}`))
	release()
	if err != nil {
		t.Fatal(err)
	}
	var res struct {
		Content []struct{ Text string }    `json:"content"`
		Meta    map[string]json.RawMessage `json:"_meta"`
	}
	if err := json.Unmarshal(raw, &res); err != nil || len(res.Content) == 0 || res.Content[0].Text != "1" {
		t.Fatalf("after the backend lost its session: %s, want counter 1", raw)
	}
	if got := string(res.Meta[session.MetaBackendReinitialized]); got != `["web"]` {
		t.Errorf("_meta[%s] = %s, want [\"web\"]", session.MetaBackendReinitialized, got)
	}
	if n := acquireCount(t, p, ctx, id, "web_counter"); n != 2 {
		t.Errorf("next request: counter = %d, want 2 (the new backend session kept)", n)
	}
	if n := web.Stats.Initializes(); n != 2 {
		t.Errorf("backend initializes = %d, want 2 (the first and the re-initialize)", n)
	}
	if st := p.Stats(); st.Sessions != 1 || st.Misses != 1 {
		t.Errorf("stats = %+v, want the one pooled session", st)
	}
}

// denyCounter is a decorator that refuses every call to web_counter.
func denyCounter(_ *session.Session, next session.Operations) session.Operations {
	return denying{next}
}

type denying struct{ session.Operations }

var errDenied = errors.New("denied by policy")

func (d denying) Call(ctx context.Context, method string, params json.RawMessage) (json.RawMessage, error) {
	if method == "tools/call" && bytes.Contains(params, []byte(`"web_counter"`)) {
		return nil, errDenied
	}
	return d.Operations.Call(ctx, method, params)
}

// The factory's decorators (policy, rate limits) wrap pooled sessions as
// they wrap any session.
func TestDecoratorsApplyToPooledSessions(t *testing.T) {
	t.Parallel()
	web := startHTTP(t, "web")
	f := newFactory(session.FactoryOptions{Decorators: []session.Decorator{denyCounter}}, httpBackend(t, "web", web.URL))
	p := newPool(t, warm.Options{Factory: f})
	ctx, id := caller("alice")
	s, release, err := p.Acquire(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	if _, err := counter(ctx, s, "web_counter"); !errors.Is(err, errDenied) {
		t.Errorf("denied call: %v, want the decorator's error", err)
	}
	if n := web.Stats.Calls("counter"); n != 0 {
		t.Errorf("backend saw %d counter calls, want 0", n)
	}
}

// A session none of whose backends could be initialized is not pooled:
// the caller gets the error, and the pool holds nothing.
func TestFailedBuildIsNotPooled(t *testing.T) {
	t.Parallel()
	p := newPool(t, warm.Options{Factory: newFactory(session.FactoryOptions{}, httpBackend(t, "dead", fixture.DeadURL(t)))})
	ctx, id := caller("alice")
	if _, _, err := p.Acquire(ctx, id); !errors.Is(err, session.ErrNoBackends) {
		t.Fatalf("Acquire with every backend down: %v, want ErrNoBackends", err)
	}
	if st := p.Stats(); st.Sessions != 0 || st.Identities != 0 || st.Failed != 1 || st.Building != 0 {
		t.Errorf("stats = %+v, want nothing pooled, 1 failed", st)
	}
}

// A caller that gives up while its session is built does not waste it:
// the session joins the pool and serves the next request.
func TestAbandonedBuildJoinsThePool(t *testing.T) {
	leakCheck(t)
	web := fixture.StartHTTP(t, exampleserver.Options{Name: "web", InitDelay: 100 * time.Millisecond})
	p := newPool(t, warm.Options{Factory: newFactory(session.FactoryOptions{}, httpBackend(t, "web", web.URL))})
	ctx, id := caller("alice")
	gone, cancel := context.WithCancel(ctx)
	cancel()
	if _, _, err := p.Acquire(gone, id); !errors.Is(err, context.Canceled) {
		t.Fatalf("Acquire with a cancelled context: %v, want context.Canceled", err)
	}
	fixture.Eventually(t, "abandoned session pooled", func() bool { return p.Stats().Sessions == 1 })
	if n := acquireCount(t, p, ctx, id, "web_counter"); n != 1 {
		t.Errorf("counter = %d, want 1", n)
	}
	if st := p.Stats(); st.Hits != 1 || st.Misses != 1 || web.Stats.Initializes() != 1 {
		t.Errorf("stats = %+v, initializes %d; want the abandoned session reused", st, web.Stats.Initializes())
	}
}

// A session past MaxAge is not handed out again: the next request gets a
// new one and the old one is closed.
func TestMaxAgeRetiresSessions(t *testing.T) {
	leakCheck(t)
	web := startHTTP(t, "web")
	clock := fixture.NewClock(time.Unix(1_700_000_000, 0))
	p := newPool(t, warm.Options{Factory: newFactory(session.FactoryOptions{}, httpBackend(t, "web", web.URL)),
		MaxAge: time.Hour, IdleTimeout: 2 * time.Hour, Now: clock.Now, SweepInterval: time.Hour})
	ctx, id := caller("alice")
	acquireCount(t, p, ctx, id, "web_counter")
	clock.Advance(time.Hour)
	if n := acquireCount(t, p, ctx, id, "web_counter"); n != 1 {
		t.Errorf("counter after MaxAge = %d, want 1 (a new backend session)", n)
	}
	fixture.Eventually(t, "retired session closed", func() bool { return web.Stats.Deletes() == 1 })
	if st := p.Stats(); st.Sessions != 1 || st.Misses != 2 {
		t.Errorf("stats = %+v, want 1 session after 2 misses", st)
	}
}

// A session that passes MaxAge while a request holds it does not hold its
// identity's place: the next request gets a new session at once, and the
// old one closes when released.
func TestMaxAgeMidRequestFreesTheIdentitysPlace(t *testing.T) {
	leakCheck(t)
	web := startHTTP(t, "web")
	clock := fixture.NewClock(time.Unix(1_700_000_000, 0))
	p := newPool(t, warm.Options{Factory: newFactory(session.FactoryOptions{}, httpBackend(t, "web", web.URL)),
		MaxPerIdentity: 1, MaxAge: time.Hour, IdleTimeout: 2 * time.Hour, Now: clock.Now, SweepInterval: time.Hour})
	ctx, id := caller("alice")
	old, releaseOld, err := p.Acquire(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Hour)
	if n := acquireCount(t, p, ctx, id, "web_counter"); n != 1 {
		t.Errorf("counter = %d, want 1 (a new session, not the retired one shared)", n)
	}
	releaseOld()
	fixture.Eventually(t, "retired session closed on release", func() bool {
		select {
		case <-old.Done():
			return true
		default:
			return false
		}
	})
	if st := p.Stats(); st.Sessions != 1 || st.Misses != 2 || st.Shared != 0 {
		t.Errorf("stats = %+v, want 1 session after 2 misses, none shared", st)
	}
}

// reloadRig is a pool over backend "web", and a session manager over the
// same factory whose reload adds backend "more".
type reloadRig struct {
	web     *fixture.Backend
	pool    *warm.Pool
	addMore func(context.Context)
}

func newReloadRig(t *testing.T) reloadRig {
	t.Helper()
	web, more := startHTTP(t, "web"), startHTTP(t, "more")
	webBackend := httpBackend(t, "web", web.URL)
	factory := newFactory(session.FactoryOptions{}, webBackend)
	p := newPool(t, warm.Options{Factory: factory, IdleTimeout: time.Hour, SweepInterval: time.Hour})
	m := session.NewManager(session.ManagerOptions{Store: store.NewMemory(), Factory: factory, SweepInterval: time.Hour})
	return reloadRig{web: web, pool: p, addMore: func(ctx context.Context) {
		m.Reconfigure(ctx, session.Lineup{Backends: []session.Backend{webBackend, httpBackend(t, "more", more.URL)}}, session.Limits{})
	}}
}

// A session on a lineup a reload replaced is not handed out again, even
// one the pool's RetireAll missed (built while the reload ran): the next
// request gets a session with the reload's backends.
func TestOutdatedSessionsAreNotHandedOut(t *testing.T) {
	leakCheck(t)
	r := newReloadRig(t)
	web, p := r.web, r.pool
	ctx, id := caller("alice")
	acquireCount(t, p, ctx, id, "web_counter")
	r.addMore(ctx)
	if n := acquireCount(t, p, ctx, id, "more_counter"); n != 1 {
		t.Errorf("more_counter = %d, want 1", n)
	}
	if n := acquireCount(t, p, ctx, id, "web_counter"); n != 1 {
		t.Errorf("web_counter = %d, want 1: a new session, not the outdated one", n)
	}
	fixture.Eventually(t, "the outdated session closed", func() bool { return web.Stats.Deletes() == 1 })
	if st := p.Stats(); st.Sessions != 1 || st.Misses != 2 {
		t.Errorf("stats = %+v, want 1 session after 2 misses", st)
	}
}
