package session_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vmcp/vmcp/internal/backend"
	"github.com/vmcp/vmcp/internal/credentials"
	"github.com/vmcp/vmcp/internal/exampleserver"
	"github.com/vmcp/vmcp/internal/fixture"
	"github.com/vmcp/vmcp/internal/identity"
	"github.com/vmcp/vmcp/internal/oidctest"
	"github.com/vmcp/vmcp/internal/session"
	"github.com/vmcp/vmcp/internal/store"
)

// authed is a real MCP backend behind a resource server that verifies
// bearer tokens for audience "files" against a real OAuth provider, and
// vmcp's credentials for it from that provider.
type authed struct {
	idp     *oidctest.Provider
	guard   *oidctest.Guard
	backend *fixture.Backend
	creds   *credentials.Provider
	clock   atomic.Int64 // the credentials' clock, unix nanos
	secret  string
}

func startAuthed(t *testing.T, grant string) *authed {
	t.Helper()
	a := &authed{idp: oidctest.Start(t, oidctest.Options{TokenTTL: time.Hour}), secret: "vmcp-secret-" + t.Name()}
	a.clock.Store(time.Now().UnixNano())
	a.idp.AddClient(oidctest.Client{ID: "vmcp", Secret: a.secret, Audience: []string{"files"}})
	a.backend = fixture.StartHTTPBehind(t, exampleserver.Options{Name: "files"}, func(h http.Handler) http.Handler {
		a.guard = a.idp.Guard("files", h)
		return a.guard
	})
	var err error
	a.creds, err = credentials.New(credentials.Options{Grant: grant, TokenURL: a.idp.TokenURL(), ClientID: "vmcp",
		ClientSecret: a.secret, Audience: "files", Now: func() time.Time { return time.Unix(0, a.clock.Load()) }})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// sessionBackend is the backend as the gateway configures it.
func (a *authed) sessionBackend() session.Backend {
	b := httpBackend("files", a.backend.URL)
	b.Credentials = credentialsFunc(func(ctx context.Context) (session.CredentialSource, error) {
		src, err := a.creds.Source(ctx)
		if err != nil {
			return nil, err
		}
		return src, nil
	})
	return b
}

type credentialsFunc func(context.Context) (session.CredentialSource, error)

func (f credentialsFunc) Source(ctx context.Context) (session.CredentialSource, error) { return f(ctx) }

// caller is an identity as incoming authentication makes it from the
// provider's token for subject.
func (a *authed) caller(t *testing.T, subject string) *identity.Identity {
	t.Helper()
	tok := a.idp.Token(t, subject, []string{"vmcp"}, nil, 0)
	return &identity.Identity{Issuer: a.idp.Issuer(), Subject: subject, Token: tok, Expiry: time.Now().Add(time.Hour)}
}

// subjects returns the sub of every request the backend let through.
func (a *authed) subjects() map[string]bool {
	subs := map[string]bool{}
	for _, acc := range a.guard.Accepted() {
		subs[acc.Subject] = true
	}
	return subs
}

// sessionFor builds a session as the front end's initialize would, with
// the caller (nil: anonymous) in the context.
func sessionFor(t *testing.T, f *session.Factory, caller *identity.Identity) *session.Session {
	t.Helper()
	id, err := session.NewID()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if caller != nil {
		ctx = identity.NewContext(ctx, caller)
	}
	now := time.Now()
	s, err := f.New(ctx, &store.Metadata{ID: id, Created: now, LastSeen: now, Identity: caller.Key()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestTokenExchangeReachesTheBackendAsTheCaller(t *testing.T) {
	leakCheck(t)
	a := startAuthed(t, credentials.TokenExchange)
	var logs fixture.Buffer
	f := newFactory(t, &logs, session.CallLimits{}, a.sessionBackend())
	alice, bob := a.caller(t, "alice"), a.caller(t, "bob")

	sa := sessionFor(t, f, alice)
	ctx := identity.NewContext(context.Background(), alice)
	if r, err := callTool(ctx, sa, "files_echo", map[string]any{"text": "hi"}); err != nil || r.Content[0].Text != "hi" {
		t.Fatalf("alice's call: %v, %v", r, err)
	}
	if subs := a.subjects(); len(subs) != 1 || !subs["alice"] {
		t.Fatalf("the backend saw subjects %v, want alice only", subs)
	}
	sb := sessionFor(t, f, bob)
	if _, err := callTool(identity.NewContext(context.Background(), bob), sb, "files_echo", map[string]any{"text": "hi"}); err != nil {
		t.Fatal(err)
	}
	if subs := a.subjects(); !subs["bob"] {
		t.Fatalf("bob's session reached the backend as %v", subs)
	}
	// Neither caller's own token ever reached the backend.
	for _, acc := range a.guard.Accepted() {
		if acc.Token == alice.Token || acc.Token == bob.Token {
			t.Fatal("a caller's token was passed through to the backend")
		}
	}

	// Without a caller there is nothing to exchange: the backend fails to
	// connect, clearly, and the session carries on without it.
	anon := sessionFor(t, f, nil)
	_, err := callTool(context.Background(), anon, "files_echo", map[string]any{"text": "hi"})
	if !errors.Is(err, session.ErrNoBackends) {
		t.Fatalf("anonymous session's call: err = %v, want ErrNoBackends", err)
	}
	if !strings.Contains(err.Error(), "files: token exchange needs an authenticated caller") {
		t.Errorf("error does not say which backend and why: %v", err)
	}
	for _, secret := range []string{alice.Token, bob.Token, a.secret} {
		if strings.Contains(logs.String(), secret) {
			t.Fatal("a token or secret is in the log")
		}
	}
}

func TestLongSessionRefreshesItsCredential(t *testing.T) {
	leakCheck(t)
	a := startAuthed(t, credentials.TokenExchange)
	f := newFactory(t, nil, session.CallLimits{}, a.sessionBackend())
	alice := a.caller(t, "alice")
	s := sessionFor(t, f, alice)
	inits := a.backend.Stats.Initializes()
	first := a.guard.Accepted()[0].Token

	// The exchanged token is good for an hour; 59 minutes 45 seconds
	// later (on the credentials' clock) it is due for refresh, and the
	// next call carries a new one, on the same backend session.
	a.clock.Add(int64(59*time.Minute + 45*time.Second))
	ctx := identity.NewContext(context.Background(), alice)
	if _, err := callTool(ctx, s, "files_counter", nil); err != nil {
		t.Fatal(err)
	}
	acc := a.guard.Accepted()
	last := acc[len(acc)-1]
	if last.Token == first {
		t.Fatal("the session still carries the token it started with")
	}
	if last.Subject != "alice" {
		t.Errorf("refreshed token is for %q", last.Subject)
	}
	if n := a.backend.Stats.Initializes(); n != inits {
		t.Errorf("refreshing the credential re-initialized the backend (%d initializes, want %d)", n, inits)
	}
}

func TestRefusedCredentialRecreatesTheClientOnce(t *testing.T) {
	leakCheck(t)
	a := startAuthed(t, credentials.TokenExchange)
	var logs fixture.Buffer
	f := newFactory(t, &logs, session.CallLimits{}, a.sessionBackend())
	alice := a.caller(t, "alice")
	s := sessionFor(t, f, alice)
	ctx := identity.NewContext(context.Background(), alice)
	if _, err := callTool(ctx, s, "files_counter", nil); err != nil {
		t.Fatal(err)
	}
	inits := a.backend.Stats.Initializes()

	// The backend stops taking every token it has seen (revoked, say).
	a.guard.RevokeAll()
	const calls = 20
	results := make([]toolResult, calls)
	errs := make([]error, calls)
	var wg sync.WaitGroup
	for i := range calls {
		wg.Go(func() { results[i], errs[i] = callTool(ctx, s, "files_echo", map[string]any{"text": "x"}) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("call %d after the refusal: %v", i, err)
		}
		if got := reinitialized(t, results[i]); len(got) != 1 || got[0] != "files" {
			t.Errorf("call %d: _meta says re-initialized %v, want [files]", i, got)
		}
	}
	if n := a.backend.Stats.Initializes() - inits; n != 1 {
		t.Errorf("%d concurrent refused calls made %d new backend sessions, want 1", calls, n)
	}
	if n := strings.Count(logs.String(), "making a new client with fresh credentials"); n != 1 {
		t.Errorf("%d retry log lines, want 1:\n%s", n, logs.String())
	}
	acc := a.guard.Accepted()
	if last := acc[len(acc)-1]; last.Subject != "alice" {
		t.Errorf("fresh token is for %q", last.Subject)
	}
	if strings.Contains(logs.String(), acc[len(acc)-1].Token) || strings.Contains(logs.String(), alice.Token) {
		t.Fatal("a token is in the log")
	}
}

func TestRefusedThreeTimesGivesUpAndCounts(t *testing.T) {
	leakCheck(t)
	a := startAuthed(t, credentials.ClientCredentials)
	var logs fixture.Buffer
	b := a.sessionBackend()
	b.Breaker = session.NewBreaker(session.BreakerOptions{Threshold: 100})
	f := newFactory(t, &logs, session.CallLimits{}, b)
	s := sessionFor(t, f, nil)
	if _, err := callTool(context.Background(), s, "files_echo", map[string]any{"text": "x"}); err != nil {
		t.Fatal(err)
	}
	// From now on the backend refuses every token, each new one too.
	a.guard.RefuseAll()
	_, err := callTool(context.Background(), s, "files_echo", map[string]any{"text": "x"})
	if !errors.Is(err, backend.ErrUnauthorized) {
		t.Fatalf("err = %v, want ErrUnauthorized", err)
	}
	if n := strings.Count(logs.String(), "making a new client with fresh credentials"); n != 3 {
		t.Errorf("%d retry log lines, want 3", n)
	}
	if h := b.Breaker.Health(); h.ConsecutiveFailures != 3 || h.LastFailureReason != "credential refused" {
		t.Errorf("breaker counted %d consecutive failures (last %q), want the three new clients refused", h.ConsecutiveFailures, h.LastFailureReason)
	}
}

func TestTakeoverExchangesForTheSameCaller(t *testing.T) {
	leakCheck(t)
	a := startAuthed(t, credentials.TokenExchange)
	st := store.NewMemory()
	managers := make([]*session.Manager, 2)
	for i := range managers {
		managers[i] = session.NewManager(session.ManagerOptions{Store: st, Shared: true,
			Factory: newFactory(t, nil, session.CallLimits{}, a.sessionBackend())})
		t.Cleanup(func() { managers[i].Shutdown(context.Background()) })
	}
	alice := a.caller(t, "alice")
	ctx := identity.NewContext(context.Background(), alice)
	s, err := managers[0].Create(ctx, session.CreateRequest{Identity: alice.Key()})
	if err != nil {
		t.Fatal(err)
	}
	before := len(a.guard.Accepted())
	// Another replica serves alice's next request: it rebuilds the
	// runtime, resolving the credential for alice from the request.
	other, err := managers[1].GetFor(ctx, s.ID(), alice.Key())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := callTool(ctx, other, "files_echo", map[string]any{"text": "x"}); err != nil {
		t.Fatal(err)
	}
	acc := a.guard.Accepted()[before:]
	if len(acc) == 0 {
		t.Fatal("the second replica never reached the backend")
	}
	for _, r := range acc {
		if r.Subject != "alice" {
			t.Errorf("after takeover the backend saw %q", r.Subject)
		}
	}
}
