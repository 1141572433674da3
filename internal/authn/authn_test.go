package authn

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/vmcp/vmcp/internal/config"
	"github.com/vmcp/vmcp/internal/fixture"
	"github.com/vmcp/vmcp/internal/identity"
	"github.com/vmcp/vmcp/internal/oidctest"
)

const resource = "https://vmcp.test/mcp"

// clock is a settable clock for the verifier; the OP keeps real time.
type clock struct {
	mu  sync.Mutex
	off time.Duration
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return time.Now().Add(c.off) }
func (c *clock) set(d time.Duration) {
	c.mu.Lock()
	c.off = d
	c.mu.Unlock()
}

func oidcAuth(p *oidctest.Provider) *config.IncomingAuth {
	return &config.IncomingAuth{
		Type: config.AuthOIDC, Issuer: p.Issuer(), Resource: resource,
		Algorithms: config.DefaultAlgorithms, ClockSkew: config.Duration(30 * time.Second), CacheSize: 100,
	}
}

// authenticate runs a on a request carrying tok and returns the identity
// or the answer's status.
func authenticate(a *Authenticator, tok string) (*identity.Identity, int) {
	r := httptest.NewRequest(http.MethodPost, "/mcp", nil)
	if tok != "" {
		r.Header.Set("Authorization", "Bearer "+tok)
	}
	w := httptest.NewRecorder()
	id, ok := a.Authenticate(w, r)
	if !ok {
		return nil, w.Code
	}
	return id, http.StatusOK
}

func TestClockSkew(t *testing.T) {
	t.Parallel()
	p := oidctest.Start(t, oidctest.Options{})
	c := &clock{}
	a, err := New(context.Background(), oidcAuth(p), Options{Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	tok := p.Token(t, "alice", []string{resource}, []string{"s1", "s2"}, 10*time.Second)
	id, code := authenticate(a, tok)
	if code != http.StatusOK || id.Subject != "alice" || id.Issuer != p.Issuer() || id.Token != tok || !slices.Equal(id.Scopes, []string{"s1", "s2"}) {
		t.Fatalf("fresh token: %d %+v", code, id)
	}
	// The cache holds the identity, never the token.
	k := sha256.Sum256([]byte(tok))
	if e := a.cache.m[k]; e.id == nil || e.id.Token != "" {
		t.Fatalf("cache entry %+v", e)
	}
	c.set(35 * time.Second) // 25s past exp, within the 30s leeway
	if _, code := authenticate(a, tok); code != http.StatusOK {
		t.Fatalf("within leeway: %d", code)
	}
	c.set(45 * time.Second)
	if _, code := authenticate(a, tok); code != http.StatusUnauthorized {
		t.Fatalf("past exp and leeway: %d", code)
	}
	// nbf: a token "from the future" is refused beyond the leeway.
	c.set(-time.Minute)
	if _, code := authenticate(a, p.Token(t, "alice", []string{resource}, nil, time.Hour)); code != http.StatusUnauthorized {
		t.Fatalf("before nbf: %d", code)
	}
	c.set(-20 * time.Second)
	if _, code := authenticate(a, p.Token(t, "alice", []string{resource}, nil, time.Hour)); code != http.StatusOK {
		t.Fatalf("nbf within leeway: %d", code)
	}
}

func TestRequiredScopes(t *testing.T) {
	t.Parallel()
	p := oidctest.Start(t, oidctest.Options{})
	cfg := oidcAuth(p)
	cfg.RequiredScopes = []string{"a", "b"}
	a, err := New(context.Background(), cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		scopes []string
		want   int
	}{{[]string{"a", "b", "c"}, 200}, {[]string{"a"}, 403}, {nil, 403}} {
		if _, code := authenticate(a, p.Token(t, "u", []string{resource}, tt.scopes, time.Hour)); code != tt.want {
			t.Errorf("scopes %v: %d, want %d", tt.scopes, code, tt.want)
		}
	}
}

func TestDiscoveryFailure(t *testing.T) {
	t.Parallel()
	cfg := &config.IncomingAuth{Type: config.AuthOIDC, Issuer: fixture.DeadURL(t), Resource: resource, Algorithms: []string{"RS256"}, CacheSize: 1}
	if _, err := New(context.Background(), cfg, Options{}); err == nil || !strings.Contains(err.Error(), "discovering issuer") {
		t.Fatalf("New with the issuer down: %v", err)
	}
	p := oidctest.Start(t, oidctest.Options{})
	cfg = oidcAuth(p)
	cfg.IntrospectionURL, cfg.ClientID, cfg.ClientSecretEnv = p.IntrospectionURL(), "c", "VMCP_UNSET_SECRET"
	_, err := New(context.Background(), cfg, Options{LookupEnv: func(string) (string, bool) { return "", false }})
	if err == nil || !strings.Contains(err.Error(), "VMCP_UNSET_SECRET is not set") {
		t.Fatalf("New without the client secret: %v", err)
	}
}

func TestTokenCacheBound(t *testing.T) {
	t.Parallel()
	now := time.Now()
	c := newTokenCache(3, func() time.Time { return now })
	for i := range 10 {
		c.put(sha256.Sum256([]byte{byte(i)}), &identity.Identity{Subject: "s", Token: "secret"}, now.Add(time.Hour))
		if c.len() > 3 {
			t.Fatalf("cache holds %d > 3", c.len())
		}
	}
	k := sha256.Sum256([]byte("expired"))
	c.put(k, &identity.Identity{Subject: "s"}, now)
	if _, ok := c.get(k, "t"); ok {
		t.Fatal("expired entry returned")
	}
	k = sha256.Sum256([]byte("live"))
	c.put(k, &identity.Identity{Subject: "s", Token: "secret"}, now.Add(time.Minute))
	id, ok := c.get(k, "presented")
	if !ok || id.Token != "presented" {
		t.Fatalf("get = %+v %v", id, ok)
	}
	for _, e := range c.m {
		if e.id.Token != "" {
			t.Fatal("cache holds a token")
		}
	}
}

func TestMetadataURL(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"https://vmcp.example.com/mcp":      "https://vmcp.example.com/.well-known/oauth-protected-resource/mcp",
		"https://vmcp.example.com":          "https://vmcp.example.com/.well-known/oauth-protected-resource",
		"https://vmcp.example.com/":         "https://vmcp.example.com/.well-known/oauth-protected-resource",
		"http://127.0.0.1:4483/team/a/mcp/": "http://127.0.0.1:4483/.well-known/oauth-protected-resource/team/a/mcp",
	} {
		if got := metadataURL(in); got != want {
			t.Errorf("metadataURL(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestScopesClaim(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		scope string
		scp   any
		want  []string
	}{
		{"a b", nil, []string{"a", "b"}},
		{"", "c d", []string{"c", "d"}},
		{"", []any{"e", 1, "", "f"}, []string{"e", "f"}},
		{"", nil, nil},
	} {
		if got := scopes(tt.scope, tt.scp); !slices.Equal(got, tt.want) {
			t.Errorf("scopes(%q, %v) = %v, want %v", tt.scope, tt.scp, got, tt.want)
		}
	}
}

func TestAPIKeys(t *testing.T) {
	t.Parallel()
	a, err := New(context.Background(), &config.IncomingAuth{Type: config.AuthAPIKey, APIKeys: []config.APIKey{
		{Subject: "ci-bot", SHA256: HashKey("key-1")}, {Subject: "ops", SHA256: strings.ToUpper(HashKey("key-2"))},
	}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if a.Metadata() != nil {
		t.Error("metadata without a resource")
	}
	for key, want := range map[string]string{"key-1": "ci-bot", "key-2": "ops", "key-3": ""} {
		id, code := authenticate(a, key)
		switch {
		case want == "" && code != http.StatusUnauthorized:
			t.Errorf("%s: %d, want 401", key, code)
		case want != "" && (code != 200 || id.Subject != want || id.Issuer != identity.IssuerAPIKey || id.Token != ""):
			t.Errorf("%s: %d %+v, want subject %s", key, code, id, want)
		}
	}
	if _, err := apiKeyEntries([]config.APIKey{{Subject: "x", SHA256: "zz"}}); err == nil {
		t.Error("bad hash accepted")
	}
}

// countingTransport counts requests by path.
type countingTransport struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.mu.Lock()
	c.n[r.URL.Path]++
	c.mu.Unlock()
	return http.DefaultTransport.RoundTrip(r)
}

func (c *countingTransport) count(path string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[path]
}

// TestUnknownKeysDoNotFloodTheIssuer: tokens signed by keys the issuer
// never published each miss the JWKS cache, but a burst of them shares
// one or two fetches, and a real token verifies afterwards. (The
// once-a-second bound between fetches is not asserted: that would be a
// timed assertion.)
func TestUnknownKeysDoNotFloodTheIssuer(t *testing.T) {
	t.Parallel()
	p := oidctest.Start(t, oidctest.Options{})
	ct := &countingTransport{n: map[string]int{}}
	a, err := New(context.Background(), oidcAuth(p), Options{HTTPClient: &http.Client{Transport: ct, Timeout: 10 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	forged := func(i int) string {
		signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key},
			(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", fmt.Sprintf("made-up-%d", i)))
		if err != nil {
			t.Fatal(err)
		}
		payload, _ := json.Marshal(map[string]any{"iss": p.Issuer(), "sub": "mallory", "aud": resource, "exp": time.Now().Add(time.Hour).Unix()})
		jws, err := signer.Sign(payload)
		if err != nil {
			t.Fatal(err)
		}
		s, _ := jws.CompactSerialize()
		return s
	}
	const n = 30
	toks := make([]string, n)
	for i := range toks {
		toks[i] = forged(i)
	}
	var wg sync.WaitGroup
	codes := make([]int, n)
	for i := range n {
		wg.Go(func() { _, codes[i] = authenticate(a, toks[i]) })
	}
	wg.Wait()
	for i, c := range codes {
		if c != http.StatusUnauthorized {
			t.Fatalf("forged token %d: %d", i, c)
		}
	}
	jwks := strings.TrimPrefix(p.JWKSURL(), p.Issuer())
	if got := ct.count(jwks); got < 1 || got > 3 {
		t.Fatalf("%d tokens with unknown keys made %d JWKS fetches, want 1 to 3", n, got)
	}
	// A real token still verifies.
	if _, code := authenticate(a, p.Token(t, "alice", []string{resource}, nil, time.Hour)); code != http.StatusOK {
		t.Fatalf("real token after the burst: %d", code)
	}
}
