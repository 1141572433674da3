package credentials_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vmcp/vmcp/internal/credentials"
	"github.com/vmcp/vmcp/internal/identity"
	"github.com/vmcp/vmcp/internal/oidctest"
)

// clock is a settable clock for the providers' refresh decisions; the
// tokens themselves keep the real provider's real expiry.
type clock struct{ ns atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ns.Store(time.Now().UnixNano())
	return c
}
func (c *clock) Now() time.Time      { return time.Unix(0, c.ns.Load()) }
func (c *clock) Add(d time.Duration) { c.ns.Add(int64(d)) }

// fixture is a real provider with vmcp registered as a confidential
// client.
type fixture struct {
	idp    *oidctest.Provider
	secret string
}

func start(t *testing.T, ttl time.Duration) fixture {
	t.Helper()
	idp := oidctest.Start(t, oidctest.Options{TokenTTL: ttl})
	f := fixture{idp: idp, secret: "vmcp-client-secret-" + t.Name()}
	idp.AddClient(oidctest.Client{ID: "vmcp", Secret: f.secret, Subject: "vmcp-service", Audience: []string{"files"}})
	return f
}

func (f fixture) provider(t *testing.T, o credentials.Options) *credentials.Provider {
	t.Helper()
	o.TokenURL, o.ClientID = f.idp.TokenURL(), "vmcp"
	if o.ClientSecret == "" {
		o.ClientSecret = f.secret
	}
	p, err := credentials.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// caller is an identity as incoming authentication makes it: the real
// provider's token for subject, meant for vmcp.
func (f fixture) caller(t *testing.T, subject string) *identity.Identity {
	t.Helper()
	tok := f.idp.Token(t, subject, []string{"vmcp"}, []string{"openid"}, 0)
	claims, err := f.idp.Verify(tok, "vmcp")
	if err != nil {
		t.Fatal(err)
	}
	exp, _ := claims["exp"].(float64)
	return &identity.Identity{Issuer: f.idp.Issuer(), Subject: subject, Claims: claims, Token: tok, Expiry: time.Unix(int64(exp), 0)}
}

func token(t *testing.T, ctx context.Context, p *credentials.Provider) string {
	t.Helper()
	src, err := p.Source(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := src.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestClientCredentialsTokenVerifies(t *testing.T) {
	t.Parallel()
	f := start(t, 0)
	p := f.provider(t, credentials.Options{Grant: credentials.ClientCredentials, Scopes: []string{"files.read"}})
	tok := token(t, context.Background(), p)
	claims, err := f.idp.Verify(tok, "files")
	if err != nil {
		t.Fatalf("the backend would refuse the token: %v", err)
	}
	if claims["sub"] != "vmcp-service" || claims["scope"] != "files.read" {
		t.Errorf("claims = %v, want sub vmcp-service and scope files.read", claims)
	}
	// Every session shares vmcp's one token while it is fresh.
	if again := token(t, context.Background(), p); again != tok {
		t.Error("a second session fetched another token while the first was fresh")
	}
}

func TestRefreshesShortlyBeforeExpiry(t *testing.T) {
	t.Parallel()
	f := start(t, time.Hour)
	clk := newClock()
	p := f.provider(t, credentials.Options{Grant: credentials.ClientCredentials, Leeway: time.Minute, Now: clk.Now})
	src, err := p.Source(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	first, err := src.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	clk.Add(58 * time.Minute) // still more than the leeway to go
	if tok, _ := src.Token(context.Background()); tok != first {
		t.Fatal("refreshed a token with more than the leeway left")
	}
	clk.Add(90 * time.Second) // inside the last minute
	tok, err := src.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if tok == first {
		t.Fatal("the same session kept a token about to expire")
	}
	if _, err := f.idp.Verify(tok, "files"); err != nil {
		t.Fatalf("refreshed token does not verify: %v", err)
	}
}

func TestTokenExchangeIsPerCaller(t *testing.T) {
	t.Parallel()
	f := start(t, 0)
	p := f.provider(t, credentials.Options{Grant: credentials.TokenExchange, Audience: "files", Scopes: []string{"files.read"}})
	alice, bob := f.caller(t, "alice"), f.caller(t, "bob")
	actx := identity.NewContext(context.Background(), alice)
	aliceTok := token(t, actx, p)
	bobTok := token(t, identity.NewContext(context.Background(), bob), p)
	for _, c := range []struct {
		tok, sub string
		from     *identity.Identity
	}{{aliceTok, "alice", alice}, {bobTok, "bob", bob}} {
		claims, err := f.idp.Verify(c.tok, "files")
		if err != nil {
			t.Fatalf("%s's exchanged token: %v", c.sub, err)
		}
		if claims["sub"] != c.sub {
			t.Errorf("exchanged token sub = %v, want %s", claims["sub"], c.sub)
		}
		if c.tok == c.from.Token {
			t.Errorf("%s's own token would be passed through", c.sub)
		}
	}
	// Another session of alice's shares her exchanged token; bob's is his.
	if token(t, actx, p) != aliceTok {
		t.Error("alice's second session exchanged again while her token was fresh")
	}
	if aliceTok == bobTok {
		t.Error("two callers share one exchanged token")
	}
}

func TestTokenExchangeUsesTheFreshestCallerToken(t *testing.T) {
	t.Parallel()
	f := start(t, time.Hour)
	clk := newClock()
	p := f.provider(t, credentials.Options{Grant: credentials.TokenExchange, Audience: "files", Now: clk.Now})
	// The session began with a token that has expired since.
	expired := f.idp.Token(t, "alice", []string{"vmcp"}, nil, -time.Minute)
	first := &identity.Identity{Issuer: f.idp.Issuer(), Subject: "alice", Token: expired, Expiry: time.Now().Add(-time.Minute)}
	src, err := p.Source(identity.NewContext(context.Background(), first))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := src.Token(context.Background()); err == nil {
		t.Fatal("the provider exchanged an expired subject token")
	}
	// The client refreshed its token; its next request carries it.
	tok, err := src.Token(identity.NewContext(context.Background(), f.caller(t, "alice")))
	if err != nil {
		t.Fatalf("exchange with the refreshed caller token: %v", err)
	}
	if claims, err := f.idp.Verify(tok, "files"); err != nil || claims["sub"] != "alice" {
		t.Fatalf("claims %v, err %v", claims, err)
	}
	// A request from someone else never changes whose token is exchanged.
	mallory := f.caller(t, "mallory")
	clk.Add(2 * time.Hour)
	tok, err = src.Token(identity.NewContext(context.Background(), mallory))
	if err != nil {
		t.Fatal(err)
	}
	if claims, _ := f.idp.Verify(tok, "files"); claims["sub"] != "alice" {
		t.Errorf("after a request by mallory the session's token is for %v", claims["sub"])
	}
}

func TestTokenExchangeNeedsAnIdentity(t *testing.T) {
	t.Parallel()
	f := start(t, 0)
	p := f.provider(t, credentials.Options{Grant: credentials.TokenExchange, Audience: "files"})
	for _, ctx := range []context.Context{
		context.Background(),
		identity.NewContext(context.Background(), &identity.Identity{Issuer: identity.IssuerAPIKey, Subject: "ci-bot"}),
	} {
		if _, err := p.Source(ctx); !errors.Is(err, credentials.ErrNoIdentity) || !errors.Is(err, credentials.ErrCredentials) {
			t.Errorf("Source without a caller token: err = %v, want ErrNoIdentity", err)
		}
	}
}

func TestConcurrentRequestsShareOneFetch(t *testing.T) {
	t.Parallel()
	f := start(t, 0)
	p := f.provider(t, credentials.Options{Grant: credentials.TokenExchange, Audience: "files"})
	ctx := identity.NewContext(context.Background(), f.caller(t, "alice"))
	src, err := p.Source(ctx)
	if err != nil {
		t.Fatal(err)
	}
	toks := make([]string, 20)
	var wg sync.WaitGroup
	for i := range toks {
		wg.Go(func() { toks[i], _ = src.Token(ctx) })
	}
	wg.Wait()
	for _, tok := range toks {
		if tok == "" || tok != toks[0] {
			t.Fatal("20 concurrent requests did not share one exchange")
		}
	}
	// A refused token is dropped: the next request gets a new one.
	src.Invalidate()
	if tok, err := src.Token(ctx); err != nil || tok == toks[0] {
		t.Fatalf("after Invalidate: same token %v, err %v", tok == toks[0], err)
	}
}

func TestErrorsCarryNoSecret(t *testing.T) {
	t.Parallel()
	f := start(t, 0)
	const wrong = "wrong-secret-value-42"
	alice := f.caller(t, "alice")
	ctx := identity.NewContext(context.Background(), alice)
	cases := map[string]*credentials.Provider{
		"wrong secret, client credentials": f.provider(t, credentials.Options{Grant: credentials.ClientCredentials, ClientSecret: wrong}),
		"wrong secret, exchange":           f.provider(t, credentials.Options{Grant: credentials.TokenExchange, ClientSecret: wrong}),
	}
	unreachable, err := credentials.New(credentials.Options{Grant: credentials.TokenExchange, TokenURL: "http://127.0.0.1:1/token",
		ClientID: "vmcp", ClientSecret: wrong})
	if err != nil {
		t.Fatal(err)
	}
	cases["unreachable"] = unreachable
	for name, p := range cases {
		src, err := p.Source(ctx)
		if err != nil {
			t.Fatal(err)
		}
		_, err = src.Token(ctx)
		if !errors.Is(err, credentials.ErrCredentials) {
			t.Errorf("%s: err = %v, want ErrCredentials", name, err)
			continue
		}
		msg := err.Error()
		for _, secret := range []string{wrong, f.secret, alice.Token, "127.0.0.1"} {
			if strings.Contains(msg, secret) {
				t.Errorf("%s: error %q carries a secret or an address", name, msg)
			}
		}
		t.Logf("%s: %v", name, err)
	}
}
