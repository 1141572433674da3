// Package oidctest runs a real OAuth 2.0 / OpenID Connect provider on a
// loopback port for tests.
//
// The provider is the op package of github.com/zitadel/oidc/v3 over an
// in-memory storage. It serves discovery, JWKS, the token endpoint
// (client_credentials and RFC 8693 token exchange) and RFC 7662
// introspection. Access tokens are JWTs signed with RS256 by the current
// key, or opaque for clients registered with Opaque set. Browser flows
// (authorization code, device) are not offered.
//
// Subjects and client IDs must not contain ':' (the op package's opaque
// token format uses it as a separator).
package oidctest

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zitadel/oidc/v3/pkg/op"
)

// Options configures a Provider. The zero value is usable.
type Options struct {
	// TokenTTL is the lifetime of access tokens whose client sets none;
	// 0 means 5 minutes.
	TokenTTL time.Duration
}

// Client is a registered OAuth client. It authenticates with HTTP Basic
// (client_secret_basic) and may use client_credentials and token exchange.
type Client struct {
	ID     string
	Secret string
	// Subject is the "sub" of tokens from its client_credentials grant;
	// empty means ID.
	Subject string
	// Audience is the "aud" of tokens from its client_credentials grant;
	// empty means the client ID (the op package's default).
	Audience []string
	// Scopes are granted when a client_credentials request names none.
	Scopes []string
	// TTL is the lifetime of its tokens; 0 means Options.TokenTTL. A
	// negative TTL issues tokens that have already expired.
	TTL time.Duration
	// Opaque makes its access tokens opaque (checkable only by
	// introspection) instead of JWTs.
	Opaque bool
}

// Provider is a running OP. Its methods are safe for concurrent use. It
// stops when the test ends.
type Provider struct {
	srv     *httptest.Server
	store   *storage
	issuer  string
	scratch string // prefix for clients that Token registers
}

// Start runs a provider on 127.0.0.1 with one RSA signing key. It stops
// when the test ends.
func Start(t testing.TB, opts Options) *Provider {
	t.Helper()
	p, err := Serve(opts)
	if err != nil {
		t.Fatalf("oidctest: %v", err)
	}
	t.Cleanup(p.Close)
	return p
}

// Serve is Start for a program that is not a test (the bench): the
// caller owns the provider and must Close it.
func Serve(opts Options) (*Provider, error) {
	ttl := opts.TokenTTL
	if ttl == 0 {
		ttl = 5 * time.Minute
	}
	k, err := newKey()
	if err != nil {
		return nil, err
	}
	st := &storage{
		defaultTTL: ttl,
		clients:    make(map[string]*clientRecord),
		tokens:     make(map[string]*tokenRecord),
		keys:       []*key{k},
	}
	// The issuer must be known before the handler exists, so take the
	// listener first and start serving after.
	srv := httptest.NewUnstartedServer(nil)
	issuer := "http://" + srv.Listener.Addr().String()
	var cryptoKey [32]byte
	if _, err := rand.Read(cryptoKey[:]); err != nil {
		srv.Close()
		return nil, err
	}
	provider, err := op.NewProvider(&op.Config{
		CryptoKey:      cryptoKey,
		CodeMethodS256: true,
		AuthMethodPost: true,
	}, st, op.StaticIssuer(issuer), op.WithAllowInsecure())
	if err != nil {
		srv.Close()
		return nil, fmt.Errorf("new provider: %w", err)
	}
	srv.Config.Handler = provider
	srv.Start()
	return &Provider{srv: srv, store: st, issuer: issuer, scratch: "oidctest-" + rand.Text()[:8]}, nil
}

// Close stops the provider. Start's providers close themselves.
func (p *Provider) Close() { p.srv.Close() }

// Issuer is the issuer URL ("iss" of its tokens, base of discovery).
func (p *Provider) Issuer() string { return p.issuer }

// TokenURL is the token endpoint.
func (p *Provider) TokenURL() string { return p.issuer + "/oauth/token" }

// IntrospectionURL is the RFC 7662 introspection endpoint. Any registered
// client may introspect any token.
func (p *Provider) IntrospectionURL() string { return p.issuer + "/oauth/introspect" }

// JWKSURL is the key set endpoint.
func (p *Provider) JWKSURL() string { return p.issuer + "/keys" }

// AddClient registers (or replaces) a client.
func (p *Provider) AddClient(c Client) {
	p.store.mu.Lock()
	defer p.store.mu.Unlock()
	p.store.clients[c.ID] = &clientRecord{Client: c, ttl: c.TTL}
}

// RotateKeys makes a fresh RSA key the signing key. The previous keys stay
// in the JWKS, so tokens signed before still verify; use DropOldKeys to
// retire them.
func (p *Provider) RotateKeys() error { return p.store.rotate(true) }

// DropOldKeys makes a fresh key the only key: tokens signed before no
// longer verify.
func (p *Provider) DropOldKeys() error { return p.store.rotate(false) }

// Token mints a signed JWT access token for subject through a real
// client_credentials grant, with "aud" = audience (none: the scratch
// client's ID), "scope" = scopes and lifetime ttl (0: Options.TokenTTL;
// negative: already expired). It fails the test on error.
func (p *Provider) Token(t testing.TB, subject string, audience []string, scopes []string, ttl time.Duration) string {
	t.Helper()
	return p.mint(t, subject, audience, scopes, ttl, false)
}

// OpaqueToken is Token for an opaque access token, which only
// introspection can check.
func (p *Provider) OpaqueToken(t testing.TB, subject string, audience []string, scopes []string, ttl time.Duration) string {
	t.Helper()
	return p.mint(t, subject, audience, scopes, ttl, true)
}

func (p *Provider) mint(t testing.TB, subject string, audience, scopes []string, ttl time.Duration, opaque bool) string {
	t.Helper()
	tok, err := p.issue(context.Background(), subject, audience, scopes, ttl, opaque)
	if err != nil {
		t.Fatalf("oidctest: %v", err)
	}
	return tok
}

// Mint is Token for a program that is not a test: it returns the error.
func (p *Provider) Mint(ctx context.Context, subject string, audience, scopes []string, ttl time.Duration) (string, error) {
	return p.issue(ctx, subject, audience, scopes, ttl, false)
}

func (p *Provider) issue(ctx context.Context, subject string, audience, scopes []string, ttl time.Duration, opaque bool) (string, error) {
	c := Client{
		ID:       p.scratch + "-" + rand.Text()[:10],
		Secret:   rand.Text(),
		Subject:  subject,
		Audience: audience,
		Scopes:   scopes,
		TTL:      ttl,
		Opaque:   opaque,
	}
	p.AddClient(c)
	tok, err := ClientCredentials(ctx, p.TokenURL(), c.ID, c.Secret, scopes)
	if err != nil {
		return "", fmt.Errorf("mint token for %q: %w", subject, err)
	}
	return tok.AccessToken, nil
}

// TokenResponse is the part of a token endpoint answer tests look at.
type TokenResponse struct {
	AccessToken     string `json:"access_token"`
	TokenType       string `json:"token_type"`
	IssuedTokenType string `json:"issued_token_type"`
	ExpiresIn       uint64 `json:"expires_in"` // wraps for already-expired tokens, as the op package sends it
	Scope           string `json:"scope"`
}

// ClientCredentials runs a client_credentials grant against tokenURL with
// HTTP Basic client authentication. It is a plain HTTP client, usable
// against any OAuth server.
func ClientCredentials(ctx context.Context, tokenURL, clientID, secret string, scopes []string) (*TokenResponse, error) {
	form := url.Values{"grant_type": {"client_credentials"}}
	if len(scopes) > 0 {
		form.Set("scope", strings.Join(scopes, " "))
	}
	return postToken(ctx, tokenURL, clientID, secret, form)
}

// Exchange runs an RFC 8693 token exchange of subjectToken (an access
// token) for an access token with the given audience and scopes.
func Exchange(ctx context.Context, tokenURL, clientID, secret, subjectToken string, audience, scopes []string) (*TokenResponse, error) {
	form := url.Values{
		"grant_type":           {"urn:ietf:params:oauth:grant-type:token-exchange"},
		"subject_token":        {subjectToken},
		"subject_token_type":   {"urn:ietf:params:oauth:token-type:access_token"},
		"requested_token_type": {"urn:ietf:params:oauth:token-type:access_token"},
	}
	for _, a := range audience {
		form.Add("audience", a)
	}
	if len(scopes) > 0 {
		form.Set("scope", strings.Join(scopes, " "))
	}
	return postToken(ctx, tokenURL, clientID, secret, form)
}

func postToken(ctx context.Context, tokenURL, clientID, secret string, form url.Values) (*TokenResponse, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, tokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(clientID), url.QueryEscape(secret))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("token endpoint: %s: %s", resp.Status, strconv.Quote(string(body)))
	}
	var tr TokenResponse
	if err := json.Unmarshal(body, &tr); err != nil {
		return nil, fmt.Errorf("token endpoint: %w", err)
	}
	if tr.AccessToken == "" {
		return nil, fmt.Errorf("token endpoint: no access_token in answer")
	}
	return &tr, nil
}
