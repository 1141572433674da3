package session

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vmcp/vmcp/internal/backend"
	"github.com/vmcp/vmcp/internal/exampleserver"
	"github.com/vmcp/vmcp/internal/fixture"
	"github.com/vmcp/vmcp/internal/store"
)

// countingConnector is a real connector that counts its Connects, so a
// test can tell how many times a replica built a session's runtime.
type countingConnector struct {
	backend.Connector
	connects atomic.Int64
}

func (c *countingConnector) Connect(ctx context.Context, o backend.ConnectOptions) (backend.Client, *backend.InitializeResult, error) {
	c.connects.Add(1)
	return c.Connector.Connect(ctx, o)
}

// replica is one Manager over its own connectors to shared backends, as a
// vmcp process would be, sharing st with the other replicas of a test.
type replica struct {
	*Manager
	conns []*countingConnector
}

// newReplica starts a replica over the HTTP backends at urls (by name).
func newReplica(t *testing.T, st store.Store, mutate func(*ManagerOptions), urls map[string]string) *replica {
	t.Helper()
	r := &replica{}
	var bs []Backend
	for _, name := range slices.Sorted(maps.Keys(urls)) {
		c := &countingConnector{Connector: backend.NewStreamableHTTP(backend.HTTPOptions{Name: name, URL: urls[name], Timeout: 30 * time.Second})}
		r.conns = append(r.conns, c)
		bs = append(bs, Backend{Name: name, Connector: c})
	}
	log := slog.New(slog.DiscardHandler)
	opts := ManagerOptions{
		Store:   st,
		Factory: NewFactory(FactoryOptions{Backends: bs, InitTimeout: 5 * time.Second, Logger: log}),
		Shared:  true,
		Logger:  log,
	}
	if mutate != nil {
		mutate(&opts)
	}
	r.Manager = NewManager(opts)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := r.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		for _, c := range r.conns {
			c.Close()
		}
	})
	return r
}

func (r *replica) connects() int64 {
	var n int64
	for _, c := range r.conns {
		n += c.connects.Load()
	}
	return n
}

func create(t *testing.T, r *replica, identity string) string {
	t.Helper()
	s, err := r.Create(context.Background(), CreateRequest{Identity: identity, ProtocolVersion: "2025-06-18", ClientCapabilities: json.RawMessage(`{}`)})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	return s.ID()
}

// count calls tool on session id through replica r, as identity, and
// returns the text it answered and the result's _meta.
func count(t *testing.T, r *replica, id, identity, tool string) (string, map[string]json.RawMessage) {
	t.Helper()
	s, err := r.GetFor(context.Background(), id, identity)
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	raw, err := s.CallTool(context.Background(), json.RawMessage(fmt.Sprintf(`{"name":%q,"arguments":{}}`, tool)))
	if err != nil {
		t.Fatalf("call %s: %v", tool, err)
	}
	var res struct {
		Content []struct {
			Text string `json:"text"`
		} `json:"content"`
		Meta map[string]json.RawMessage `json:"_meta"`
	}
	if err := json.Unmarshal(raw, &res); err != nil || len(res.Content) == 0 {
		t.Fatalf("call %s: result %s: %v", tool, raw, err)
	}
	return res.Content[0].Text, res.Meta
}

func TestTakeoverResumesBackendSession(t *testing.T) {
	web := fixture.StartHTTP(t, exampleserver.Options{Name: "web"})
	st := store.NewMemory()
	urls := map[string]string{"web": web.URL}
	a, b := newReplica(t, st, nil, urls), newReplica(t, st, nil, urls)

	id := create(t, a, "ip:10.0.0.1")
	want := 0
	for _, r := range []*replica{a, a, b, b, a, b} {
		want++
		if got, _ := count(t, r, id, "ip:10.0.0.2", "web_counter"); got != fmt.Sprint(want) {
			t.Fatalf("counter = %s, want %d: the backend session did not carry over", got, want)
		}
	}
	if n := web.Stats.Initializes(); n != 1 {
		t.Errorf("backend saw %d initializes, want 1: a takeover must resume, not initialize", n)
	}
	if a.Len() != 1 || b.Len() != 1 {
		t.Errorf("live sessions: a %d, b %d; want 1 each", a.Len(), b.Len())
	}
}

func TestConcurrentFirstRequestsBuildOnce(t *testing.T) {
	web := fixture.StartHTTP(t, exampleserver.Options{Name: "web"})
	st := store.NewMemory()
	urls := map[string]string{"web": web.URL}
	a, b := newReplica(t, st, nil, urls), newReplica(t, st, nil, urls)
	id := create(t, a, "ip:10.0.0.1")

	const n = 20
	got := make([]*Session, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			s, err := b.GetFor(context.Background(), id, "ip:10.0.0.1")
			if err != nil {
				t.Errorf("get: %v", err)
			}
			got[i] = s
		})
	}
	close(start)
	wg.Wait()
	for _, s := range got {
		if s != got[0] {
			t.Fatal("concurrent first requests got different runtimes")
		}
	}
	if c := b.connects(); c != 1 {
		t.Errorf("replica b connected its backend %d times, want 1 (one build)", c)
	}
	if i := web.Stats.Initializes(); i != 1 {
		t.Errorf("backend saw %d initializes, want 1", i)
	}
}

func TestIdentityAllowed(t *testing.T) {
	cases := []struct {
		bound, caller string
		want          bool
	}{
		{"sub:alice", "sub:alice", true},
		{"sub:alice", "sub:bob", false},
		{"sub:alice", "ip:10.0.0.1", false},
		{"sub:alice", "", false},
		{"sub:alice", "sub:alice2", false},
		{"ip:10.0.0.1", "ip:10.0.0.2", true}, // anonymous: addresses change behind NAT and LBs
		{"ip:10.0.0.1", "sub:bob", true},
		{"", "ip:10.0.0.2", true},
	}
	for _, c := range cases {
		if got := IdentityAllowed(c.bound, c.caller); got != c.want {
			t.Errorf("IdentityAllowed(%q, %q) = %v, want %v", c.bound, c.caller, got, c.want)
		}
	}
}

func TestIdentityCheckedOnBothPaths(t *testing.T) {
	web := fixture.StartHTTP(t, exampleserver.Options{Name: "web"})
	st := store.NewMemory()
	urls := map[string]string{"web": web.URL}
	a, b := newReplica(t, st, nil, urls), newReplica(t, st, nil, urls)
	id := create(t, a, "sub:alice")

	for name, r := range map[string]*replica{"holder": a, "takeover": b} {
		if _, err := r.GetFor(context.Background(), id, "sub:mallory"); !errors.Is(err, ErrNotFound) {
			t.Errorf("%s: another subject got %v, want ErrNotFound", name, err)
		}
		if err := r.DeleteFor(context.Background(), id, "sub:mallory"); !errors.Is(err, ErrNotFound) {
			t.Errorf("%s: another subject's DELETE got %v, want ErrNotFound", name, err)
		}
	}
	if c := b.connects(); c != 0 {
		t.Errorf("a refused caller made replica b build the session (%d connects)", c)
	}
	if got, _ := count(t, b, id, "sub:alice", "web_counter"); got != "1" {
		t.Errorf("the owner's call on b = %s, want 1", got)
	}
}

func TestDeleteEndsSessionEverywhere(t *testing.T) {
	web := fixture.StartHTTP(t, exampleserver.Options{Name: "web"})
	st := store.NewMemory()
	urls := map[string]string{"web": web.URL}
	a, b, c := newReplica(t, st, nil, urls), newReplica(t, st, nil, urls), newReplica(t, st, nil, urls)
	id := create(t, a, "ip:10.0.0.1")
	count(t, b, id, "", "web_counter") // b holds a runtime too

	// c holds nothing: it ends the backend session from the metadata.
	if err := c.DeleteFor(context.Background(), id, ""); err != nil {
		t.Fatal(err)
	}
	for name, r := range map[string]*replica{"a": a, "b": b, "c": c} {
		r.Deleted(id) // what the Redis subscription delivers to every replica
		if _, err := r.GetFor(context.Background(), id, ""); !errors.Is(err, ErrNotFound) {
			t.Errorf("%s: get after delete = %v, want ErrNotFound", name, err)
		}
	}
	waitFor(t, "backend session closed", func() bool { return web.Stats.ActiveSessions() == 0 })
	if n := web.Stats.SessionsClosed(); n != 1 {
		t.Errorf("backend closed %d sessions, want 1", n)
	}
	// Only the replica that handled the DELETE sent one; the holders let go.
	if n := web.Stats.Deletes(); n != 1 {
		t.Errorf("backend saw %d DELETEs, want 1", n)
	}
	if a.Len()+b.Len()+c.Len() != 0 {
		t.Errorf("runtimes still held: a %d b %d c %d", a.Len(), b.Len(), c.Len())
	}
}

func TestSharedShutdownKeepsSessions(t *testing.T) {
	web := fixture.StartHTTP(t, exampleserver.Options{Name: "web"})
	st := store.NewMemory()
	urls := map[string]string{"web": web.URL}
	a, b := newReplica(t, st, nil, urls), newReplica(t, st, nil, urls)
	id := create(t, a, "")
	count(t, a, id, "", "web_counter")

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if n := web.Stats.Deletes(); n != 0 {
		t.Errorf("a replica shutting down sent %d backend DELETEs; the session lives on elsewhere", n)
	}
	if got, _ := count(t, b, id, "", "web_counter"); got != "2" {
		t.Errorf("counter on b after a shut down = %s, want 2", got)
	}
}

func TestSharedIdleEviction(t *testing.T) {
	web := fixture.StartHTTP(t, exampleserver.Options{Name: "web"})
	st := store.NewMemory()
	clock := fixture.NewClock(time.Unix(1_700_000_000, 0))
	idle := func(o *ManagerOptions) { o.IdleTimeout, o.Now = time.Minute, clock.Now }
	urls := map[string]string{"web": web.URL}
	a, b := newReplica(t, st, idle, urls), newReplica(t, st, idle, urls)

	used := create(t, a, "")
	gone := create(t, a, "")
	count(t, a, used, "", "web_counter")
	// gone's metadata expired in the store (Redis drops idle keys itself).
	if _, err := st.Delete(context.Background(), gone); err != nil {
		t.Fatal(err)
	}
	clock.Advance(2 * time.Minute)
	if n := a.Sweep(context.Background()); n != 2 {
		t.Fatalf("sweep handled %d sessions, want 2", n)
	}
	if a.Len() != 0 {
		t.Fatalf("a still holds %d sessions", a.Len())
	}
	// The session the store still has was only released: its backend
	// session lives on for the replica that serves it next.
	waitFor(t, "expired session's backend closed", func() bool { return web.Stats.SessionsClosed() == 1 })
	if got, _ := count(t, b, used, "", "web_counter"); got != "2" {
		t.Errorf("counter on b = %s, want 2", got)
	}
}

func TestReinitializedBackendIsPersisted(t *testing.T) {
	web := fixture.StartHTTP(t, exampleserver.Options{Name: "web"})
	st := store.NewMemory()
	urls := map[string]string{"web": web.URL}
	a, b := newReplica(t, st, nil, urls), newReplica(t, st, nil, urls)
	id := create(t, a, "")
	count(t, a, id, "", "web_counter")
	before := storedSessionID(t, st, id)

	web.Handler.Forget() // the backend restarts and forgets its sessions
	if got, _ := count(t, a, id, "", "web_counter"); got != "1" {
		t.Fatalf("counter after the backend restarted = %s, want 1", got)
	}
	waitFor(t, "new backend session ID stored", func() bool { return storedSessionID(t, st, id) != before })
	// b resumes the new backend session, not the lost one.
	if got, meta := count(t, b, id, "", "web_counter"); got != "2" || meta[MetaBackendRestarted] != nil {
		t.Errorf("counter on b = %s (meta %v), want 2 with no restart", got, meta)
	}
	if n := web.Stats.Initializes(); n != 2 {
		t.Errorf("backend saw %d initializes, want 2 (create, re-init)", n)
	}
}

func storedSessionID(t *testing.T, st store.Store, id string) string {
	t.Helper()
	m, err := st.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return m.Backends[0].SessionID
}

func TestWithMeta(t *testing.T) {
	cases := []struct{ in, want string }{
		{`{"content":[]}`, `{"_meta":{"k":["x"]},"content":[]}`},
		{`{"_meta":{"other":1},"a":"<b>"}`, `{"_meta":{"k":["x"],"other":1},"a":"<b>"}`},
		{`{"_meta":null}`, `{"_meta":{"k":["x"]}}`},
	}
	for _, c := range cases {
		got, ok := withMeta(json.RawMessage(c.in), "k", []string{"x"})
		if !ok || string(got) != c.want {
			t.Errorf("withMeta(%s) = %s, %v; want %s", c.in, got, ok, c.want)
		}
	}
	for _, in := range []string{`[]`, `"s"`, `{"_meta":"x"}`} {
		if got, ok := withMeta(json.RawMessage(in), "k", 1); ok || string(got) != in {
			t.Errorf("withMeta(%s) = %s, %v; want it unchanged", in, got, ok)
		}
	}
}

// waitFor polls cond until it holds or a generous deadline passes: it waits
// for background work, it does not time anything.

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	fixture.Eventually(t, what, cond)
}
