package backend

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	testfix "github.com/vmcp/vmcp/internal/fixture"
)

// staticToken is a client's bearer token.
type staticToken string

func (s staticToken) Token(context.Context) (string, error) { return string(s), nil }

// discoverServer is a stateless go-sdk server whose server/discover answer
// carries ttl and scope, behind a recorder.
func discoverServer(t *testing.T, ttl time.Duration, scope string) (string, *testfix.Posts) {
	return startSDKServer(t, true, &mcp.ServerOptions{
		SetCacheable: func(_ context.Context, req mcp.Request, c *mcp.Cacheable) {
			if _, ok := req.GetParams().(*mcp.DiscoverParams); ok {
				c.TTLMs, c.CacheScope = int(ttl.Milliseconds()), scope
			}
		},
	}, nil)
}

// A modern backend's server/discover answer serves the clients vmcp makes
// while it is fresh (its ttlMs): a public one every client, a private one
// only the clients that send the same bearer token. A ttlMs of 0, a stale
// answer and a probe all ask the backend again.
func TestDiscoverCache(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		ttl    time.Duration
		scope  string
		tokens []string // one client each, in order
		want   int      // server/discover requests the backend gets
	}{
		{"public serves every token", time.Minute, "public", []string{"", "alice", "bob", "alice"}, 1},
		{"private per token", time.Minute, "private", []string{"alice", "alice", "bob", "bob", "alice"}, 2},
		{"private without a token", time.Minute, "private", []string{"", ""}, 1},
		{"ttl 0 is stale at once", 0, "public", []string{"", "", ""}, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			url, rec := discoverServer(t, tt.ttl, tt.scope)
			x := modernConnector(t, url, ProtocolAuto)
			for i, tok := range tt.tokens {
				opts := ConnectOptions{}
				if tok != "" {
					opts.Token = staticToken(tok)
				}
				c, res, err := x.Connect(context.Background(), opts)
				if err != nil {
					t.Fatalf("client %d: %v", i, err)
				}
				if res.ProtocolVersion != ModernProtocolVersion || len(res.Capabilities) == 0 {
					t.Fatalf("client %d: discover result %+v", i, res)
				}
				// The client works: the answer it got is the backend's.
				if got := callText(context.Background(), t, c, "greet", `{"name":"x"}`); got != "hi x" {
					t.Errorf("client %d: greet = %q", i, got)
				}
				c.Close()
			}
			if n := rec.Count("server/discover"); n != tt.want {
				t.Errorf("server/discover sent %d times for %d clients, want %d", n, len(tt.tokens), tt.want)
			}
		})
	}
}

// A cached answer goes stale after its ttlMs (capped at maxDiscoverTTL);
// a probe asks the backend whatever the cache holds; forget (what an
// "unsupported protocol version" answer does) empties the cache.
func TestDiscoverCacheExpiry(t *testing.T) {
	t.Parallel()
	url, rec := discoverServer(t, 24*time.Hour, "public")
	x := modernConnector(t, url, ProtocolAuto)
	clock := testfix.NewClock(time.Now())
	x.(*streamableConnector).discovered.now = clock.Now
	connect := func() {
		t.Helper()
		c, _, err := x.Connect(context.Background(), ConnectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
	want := func(n int, when string) {
		t.Helper()
		if got := rec.Count("server/discover"); got != n {
			t.Fatalf("%s: %d server/discover, want %d", when, got, n)
		}
	}
	connect()
	connect()
	want(1, "two clients within the ttl")
	clock.Advance(maxDiscoverTTL - time.Second)
	connect()
	want(1, "just within the cap")
	clock.Advance(time.Second)
	connect()
	want(2, "past the cap on a day's ttlMs")
	if _, err := Probe(context.Background(), x, ConnectOptions{}); err != nil {
		t.Fatal(err)
	}
	want(3, "a probe")
	connect()
	want(3, "a client after the probe")
	x.(*streamableConnector).discovered.forget()
	connect()
	want(4, "after forget")
}

// Clients made at once with the same token share one server/discover.
func TestDiscoverCacheConcurrentClients(t *testing.T) {
	t.Parallel()
	url, rec := discoverServer(t, time.Minute, "private")
	x := modernConnector(t, url, ProtocolModern)
	const n = 8
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			c, _, err := x.Connect(context.Background(), ConnectOptions{Token: staticToken("alice")})
			if err != nil {
				errs <- err
				return
			}
			c.Close()
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// Those that started after the first answer was cached found it;
	// those that started meanwhile waited for it.
	if got := rec.Count("server/discover"); got != 1 {
		t.Errorf("%d clients at once sent %d server/discover, want 1", n, got)
	}
}
