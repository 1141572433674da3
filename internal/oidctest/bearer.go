package oidctest

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Verify checks a JWT access token as a resource server would: its RS256
// signature against the provider's published JWKS (fetched anew), its
// issuer, its expiry, and, when audience is set, that "aud" names it. It
// returns the token's claims.
func (p *Provider) Verify(token, audience string) (map[string]any, error) {
	jws, err := jose.ParseSignedCompact(token, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		return nil, fmt.Errorf("not a signed JWT: %w", err)
	}
	resp, err := http.Get(p.JWKSURL())
	if err != nil {
		return nil, err
	}
	var set jose.JSONWebKeySet
	err = json.NewDecoder(resp.Body).Decode(&set)
	resp.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("JWKS: %w", err)
	}
	keys := set.Key(jws.Signatures[0].Header.KeyID)
	if len(keys) == 0 {
		return nil, errors.New("signed by a key the provider does not publish")
	}
	payload, err := jws.Verify(keys[0])
	if err != nil {
		return nil, err
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		return nil, err
	}
	if claims["iss"] != p.issuer {
		return nil, fmt.Errorf("issuer %v", claims["iss"])
	}
	if exp, _ := claims["exp"].(float64); time.Now().After(time.Unix(int64(exp), 0)) {
		return nil, errors.New("expired")
	}
	if audience != "" && !audienceHas(claims["aud"], audience) {
		return nil, fmt.Errorf("audience %v", claims["aud"])
	}
	return claims, nil
}

func audienceHas(aud any, want string) bool {
	switch a := aud.(type) {
	case string:
		return a == want
	case []any:
		return slices.Contains(a, any(want))
	}
	return false
}

// Guard is an OAuth 2.0 resource server in front of an http.Handler (a
// real MCP server in tests): a request passes only with a bearer token
// that Verify accepts for the guard's audience and that was not revoked;
// others get 401. It records what it accepted. Safe for concurrent use.
type Guard struct {
	p        *Provider
	audience string
	next     http.Handler

	mu        sync.Mutex
	refuseAll bool
	revoked   map[string]bool
	accepted  []Accepted
	refused   int
}

// Accepted is one request the guard let through.
type Accepted struct {
	Token   string
	Subject string
	Claims  map[string]any
}

// Guard returns a Guard that verifies bearer tokens for audience (empty:
// any audience) before passing requests to next.
func (p *Provider) Guard(audience string, next http.Handler) *Guard {
	return &Guard{p: p, audience: audience, next: next, revoked: map[string]bool{}}
}

func (g *Guard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	scheme, tok, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	var claims map[string]any
	err := errors.New("no bearer token")
	if strings.EqualFold(scheme, "Bearer") && tok != "" {
		claims, err = g.p.Verify(tok, g.audience)
	}
	g.mu.Lock()
	if err == nil && (g.revoked[tok] || g.refuseAll) {
		err = errors.New("revoked")
	}
	if err != nil {
		g.refused++
		g.mu.Unlock()
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	sub, _ := claims["sub"].(string)
	g.accepted = append(g.accepted, Accepted{Token: tok, Subject: sub, Claims: claims})
	g.mu.Unlock()
	g.next.ServeHTTP(w, r)
}

// RevokeAll makes every token accepted so far answer 401 from now on.
func (g *Guard) RevokeAll() {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, a := range g.accepted {
		g.revoked[a.Token] = true
	}
}

// RefuseAll makes every request answer 401 from now on, whatever its
// token.
func (g *Guard) RefuseAll() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.refuseAll = true
}

// Accepted returns the requests let through so far, in order.
func (g *Guard) Accepted() []Accepted {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.accepted)
}

// Refused is how many requests got 401.
func (g *Guard) Refused() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.refused
}
