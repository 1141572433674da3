package oidctest_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/vmcp/vmcp/internal/oidctest"
)

// getJSON fetches u and decodes its JSON body into v.
func getJSON(t *testing.T, u string, v any) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", u, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}

// verify checks tok's signature against the provider's current JWKS and
// returns its claims; ok is false when no published key verifies it.
func verify(t *testing.T, p *oidctest.Provider, tok string) (claims map[string]any, ok bool) {
	t.Helper()
	jws, err := jose.ParseSignedCompact(tok, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		t.Fatalf("parse token: %v", err)
	}
	var set jose.JSONWebKeySet
	getJSON(t, p.JWKSURL(), &set)
	keys := set.Key(jws.Signatures[0].Header.KeyID)
	if len(keys) == 0 {
		return nil, false
	}
	payload, err := jws.Verify(keys[0])
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	return claims, true
}

func TestDiscovery(t *testing.T) {
	t.Parallel()
	p := oidctest.Start(t, oidctest.Options{})
	var doc struct {
		Issuer        string   `json:"issuer"`
		TokenEndpoint string   `json:"token_endpoint"`
		JWKSURI       string   `json:"jwks_uri"`
		Introspection string   `json:"introspection_endpoint"`
		GrantTypes    []string `json:"grant_types_supported"`
	}
	getJSON(t, p.Issuer()+"/.well-known/openid-configuration", &doc)
	if doc.Issuer != p.Issuer() || doc.TokenEndpoint != p.TokenURL() || doc.JWKSURI != p.JWKSURL() || doc.Introspection != p.IntrospectionURL() {
		t.Fatalf("discovery = %+v", doc)
	}
	grants := strings.Join(doc.GrantTypes, " ")
	for _, g := range []string{"client_credentials", "urn:ietf:params:oauth:grant-type:token-exchange"} {
		if !strings.Contains(grants, g) {
			t.Errorf("grant %q not advertised: %v", g, doc.GrantTypes)
		}
	}
}

func TestTokenClaims(t *testing.T) {
	t.Parallel()
	p := oidctest.Start(t, oidctest.Options{})
	tok := p.Token(t, "alice", []string{"https://vmcp.test/mcp"}, []string{"tools.read", "tools.call"}, time.Minute)
	claims, ok := verify(t, p, tok)
	if !ok {
		t.Fatal("token not signed by a published key")
	}
	if claims["iss"] != p.Issuer() || claims["sub"] != "alice" || claims["scope"] != "tools.read tools.call" {
		t.Fatalf("claims = %v", claims)
	}
	aud, _ := claims["aud"].([]any)
	if len(aud) != 1 || aud[0] != "https://vmcp.test/mcp" {
		t.Fatalf("aud = %v", claims["aud"])
	}
	exp, _ := claims["exp"].(float64)
	if left := time.Until(time.Unix(int64(exp), 0)); left <= 0 || left > time.Minute+time.Second {
		t.Fatalf("exp %v from now, want about 1m", left)
	}

	expired := p.Token(t, "alice", []string{"x"}, nil, -time.Minute)
	claims, _ = verify(t, p, expired)
	if exp, _ := claims["exp"].(float64); time.Unix(int64(exp), 0).After(time.Now()) {
		t.Fatalf("negative TTL gave exp in the future: %v", claims)
	}
}

func TestRotateKeys(t *testing.T) {
	t.Parallel()
	p := oidctest.Start(t, oidctest.Options{})
	before := p.Token(t, "bob", []string{"r"}, nil, 0)
	if err := p.RotateKeys(); err != nil {
		t.Fatal(err)
	}
	after := p.Token(t, "bob", []string{"r"}, nil, 0)
	kid := func(tok string) string {
		jws, err := jose.ParseSignedCompact(tok, []jose.SignatureAlgorithm{jose.RS256})
		if err != nil {
			t.Fatal(err)
		}
		return jws.Signatures[0].Header.KeyID
	}
	if kid(before) == kid(after) {
		t.Fatal("rotation did not change the signing key")
	}
	if _, ok := verify(t, p, before); !ok {
		t.Fatal("old token no longer verifies after RotateKeys")
	}
	if _, ok := verify(t, p, after); !ok {
		t.Fatal("new token does not verify")
	}
	if err := p.DropOldKeys(); err != nil {
		t.Fatal(err)
	}
	if _, ok := verify(t, p, after); ok {
		t.Fatal("token still verifies after DropOldKeys")
	}
}

func TestClientCredentialsAndExchange(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p := oidctest.Start(t, oidctest.Options{})
	p.AddClient(oidctest.Client{ID: "vmcp", Secret: "s3cret", Audience: []string{"backend-a"}})

	if _, err := oidctest.ClientCredentials(ctx, p.TokenURL(), "vmcp", "wrong", nil); err == nil {
		t.Fatal("wrong secret accepted")
	}
	cc, err := oidctest.ClientCredentials(ctx, p.TokenURL(), "vmcp", "s3cret", []string{"a"})
	if err != nil {
		t.Fatal(err)
	}
	claims, _ := verify(t, p, cc.AccessToken)
	if claims["sub"] != "vmcp" {
		t.Fatalf("client_credentials claims = %v", claims)
	}

	user := p.Token(t, "carol", []string{"vmcp-resource"}, []string{"openid"}, 0)
	ex, err := oidctest.Exchange(ctx, p.TokenURL(), "vmcp", "s3cret", user, []string{"backend-b"}, []string{"b.read"})
	if err != nil {
		t.Fatal(err)
	}
	if ex.IssuedTokenType != "urn:ietf:params:oauth:token-type:access_token" {
		t.Fatalf("issued_token_type = %q", ex.IssuedTokenType)
	}
	claims, _ = verify(t, p, ex.AccessToken)
	aud, _ := claims["aud"].([]any)
	if claims["sub"] != "carol" || len(aud) != 1 || aud[0] != "backend-b" || claims["scope"] != "b.read" {
		t.Fatalf("exchanged claims = %v", claims)
	}
	if _, err := oidctest.Exchange(ctx, p.TokenURL(), "vmcp", "s3cret", "not-a-token", []string{"b"}, nil); err == nil {
		t.Fatal("exchange of garbage subject token succeeded")
	}
}

func TestIntrospectOpaque(t *testing.T) {
	t.Parallel()
	p := oidctest.Start(t, oidctest.Options{})
	p.AddClient(oidctest.Client{ID: "rs", Secret: "rs-secret"})
	opaque := p.OpaqueToken(t, "dave", []string{"vmcp-resource"}, []string{"tools.call"}, time.Minute)
	if strings.Count(opaque, ".") == 2 {
		t.Fatalf("opaque token looks like a JWT: %q", opaque)
	}
	introspect := func(tok string) map[string]any {
		req, _ := http.NewRequest(http.MethodPost, p.IntrospectionURL(), strings.NewReader(url.Values{"token": {tok}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth("rs", "rs-secret")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	got := introspect(opaque)
	if got["active"] != true || got["sub"] != "dave" || got["scope"] != "tools.call" {
		t.Fatalf("introspection = %v", got)
	}
	if got := introspect("garbage"); got["active"] != false {
		t.Fatalf("garbage introspected as %v", got)
	}
	expired := p.OpaqueToken(t, "dave", nil, nil, -time.Minute)
	if got := introspect(expired); got["active"] != false {
		t.Fatalf("expired introspected as %v", got)
	}
}
