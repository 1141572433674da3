package backend

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vmcp/vmcp/internal/credentials"
	"github.com/vmcp/vmcp/internal/exampleserver"
	testfix "github.com/vmcp/vmcp/internal/fixture"
	"github.com/vmcp/vmcp/internal/oidctest"
)

// guarded is a real MCP server behind a resource server that verifies
// bearer tokens against a real provider's JWKS, and vmcp's credentials
// from that provider (client credentials) on a clock the test moves.
type guarded struct {
	idp    *oidctest.Provider
	guard  *oidctest.Guard
	url    string
	creds  *credentials.Provider
	clock  atomic.Int64
	secret string
}

func startGuarded(t *testing.T, sse bool) *guarded {
	t.Helper()
	g := &guarded{idp: oidctest.Start(t, oidctest.Options{TokenTTL: time.Hour}), secret: "client-secret-" + t.Name()}
	g.clock.Store(time.Now().UnixNano())
	g.idp.AddClient(oidctest.Client{ID: "vmcp", Secret: g.secret, Audience: []string{"files"}})
	wrap := func(h http.Handler) http.Handler {
		g.guard = g.idp.Guard("files", h)
		return g.guard
	}
	start := testfix.StartHTTPBehind
	if sse {
		start = testfix.StartSSEBehind
	}
	g.url = start(t, exampleserver.Options{Name: "files"}, wrap).URL
	var err error
	g.creds, err = credentials.New(credentials.Options{Grant: credentials.ClientCredentials, TokenURL: g.idp.TokenURL(),
		ClientID: "vmcp", ClientSecret: g.secret, Now: func() time.Time { return time.Unix(0, g.clock.Load()) }})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func (g *guarded) connector(t *testing.T, sse bool) Connector {
	t.Helper()
	o := HTTPOptions{Name: "files", URL: g.url, Timeout: 10 * time.Second}
	x := NewStreamableHTTP(o)
	if sse {
		x = NewSSE(o)
	}
	t.Cleanup(func() { x.Close() })
	return x
}

func (g *guarded) lastToken(t *testing.T) string {
	t.Helper()
	acc := g.guard.Accepted()
	if len(acc) == 0 {
		t.Fatal("the backend accepted no request")
	}
	return acc[len(acc)-1].Token
}

func TestBearerTokenOnEveryRequest(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		sse  bool
	}{{"streamable-http", false}, {"sse", true}} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := startGuarded(t, tt.sse)
			x := g.connector(t, tt.sse)

			// Without a credential the backend refuses vmcp.
			_, _, err := x.Connect(context.Background(), ConnectOptions{})
			if !errors.Is(err, ErrUnauthorized) {
				t.Fatalf("Connect without a token: err = %v, want ErrUnauthorized", err)
			}

			src, err := g.creds.Source(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			c, _ := connect(t, x, ConnectOptions{Token: src})
			if got := mustCall(t, c, "echo", map[string]any{"text": "hi"}); got != "hi" {
				t.Fatalf("echo = %q", got)
			}
			first := g.lastToken(t)

			// Near its expiry the same client sends a fresh token: the
			// credential is asked per request, not fixed at connect.
			g.clock.Add(int64(59*time.Minute + 45*time.Second))
			mustCall(t, c, "echo", map[string]any{"text": "again"})
			if next := g.lastToken(t); next == first {
				t.Fatal("the client still sends the token it connected with")
			}

			// A backend that refuses the token: ErrUnauthorized, and the
			// error quotes neither token nor secret.
			g.guard.RevokeAll()
			_, err = callTool(context.Background(), c, "echo", map[string]any{"text": "x"}, nil)
			if !errors.Is(err, ErrUnauthorized) {
				t.Fatalf("call with a revoked token: err = %v, want ErrUnauthorized", err)
			}
			noSecrets(t, err, first, g.lastToken(t), g.secret)
		})
	}
}

func TestCredentialFailureIsNotUnavailable(t *testing.T) {
	t.Parallel()
	g := startGuarded(t, false)
	bad, err := credentials.New(credentials.Options{Grant: credentials.ClientCredentials, TokenURL: g.idp.TokenURL(),
		ClientID: "vmcp", ClientSecret: "wrong-" + g.secret})
	if err != nil {
		t.Fatal(err)
	}
	src, _ := bad.Source(context.Background())
	_, _, err = g.connector(t, false).Connect(context.Background(), ConnectOptions{Token: src})
	if !errors.Is(err, credentials.ErrCredentials) || errors.Is(err, ErrUnavailable) {
		t.Fatalf("err = %v, want ErrCredentials and not ErrUnavailable: the backend was never contacted", err)
	}
	if n := len(g.guard.Accepted()) + g.guard.Refused(); n != 0 {
		t.Errorf("the backend saw %d requests without a credential to send", n)
	}
	noSecrets(t, err, g.secret)
}
