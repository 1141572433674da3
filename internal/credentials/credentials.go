// Package credentials obtains the bearer tokens vmcp presents to a backend:
// OAuth 2.0 client-credentials tokens (vmcp's own), and RFC 8693 exchanges
// of the calling client's validated token for one meant for the backend.
// The client's own token is never sent to a backend.
//
// A Provider serves one configured backend and is shared by every session.
// It caches tokens, per caller identity for token exchange, and fetches a
// new one shortly before the cached one expires. A Source is what one
// session's client of the backend asks for a token on each request, so a
// long session never carries a stale credential.
//
// Errors never contain a client secret, a token or the token endpoint's
// response body.
package credentials

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
	"golang.org/x/sync/singleflight"

	"github.com/vmcp/vmcp/internal/identity"
)

// Grant types a Provider can use.
const (
	ClientCredentials = "clientCredentials"
	TokenExchange     = "tokenExchange"
)

// RFC 8693 names.
const (
	grantTokenExchange  = "urn:ietf:params:oauth:grant-type:token-exchange"
	tokenTypeAccess     = "urn:ietf:params:oauth:token-type:access_token"
	defaultLeeway       = 30 * time.Second
	defaultMaxEntries   = 10000
	defaultFetchTimeout = 10 * time.Second
)

var (
	// ErrCredentials is wrapped by every error about obtaining a backend
	// credential, as opposed to the backend's own answers.
	ErrCredentials = errors.New("outgoing credentials")
	// ErrNoIdentity means token exchange was asked for without an
	// authenticated caller whose token could be exchanged.
	ErrNoIdentity = errors.New("token exchange needs an authenticated caller, and this session has none")
)

// Options configure a Provider.
type Options struct {
	// Grant is ClientCredentials or TokenExchange.
	Grant        string
	TokenURL     string
	ClientID     string
	ClientSecret string // a secret: never logged nor put in an error
	Scopes       []string
	Audience     string // sent as the "audience" parameter, if set
	Resource     string // RFC 8707 "resource" parameter, if set
	// Leeway is how long before a token's expiry a new one is fetched;
	// default 30s, and never more than a quarter of the token's lifetime.
	Leeway time.Duration
	// MaxEntries bounds the cached tokens (one per caller for token
	// exchange); default 10000.
	MaxEntries int
	// HTTPClient sends token requests; nil: a client with a 10s timeout
	// that follows no redirects.
	HTTPClient *http.Client
	// Now is the clock; default time.Now. Tests may fake it.
	Now func() time.Time
	// Observe, if set, is told of each token endpoint request: refresh
	// says a cached token was due for replacement. It must be quick.
	Observe func(grant string, refresh bool, err error)
	// Tracer, if set, makes a span of each token endpoint request, in
	// the trace of the call that needed the token.
	Tracer trace.Tracer
	// SpanAttributes are added to each of those spans (the backend's
	// name, say). None may hold a secret.
	SpanAttributes []attribute.KeyValue
}

// Provider obtains and caches one backend's tokens. It is safe for
// concurrent use and there is nothing to close: a fetch runs on a
// goroutine of its own (so that a caller giving up does not fail the
// others waiting for it), which ends within 10s.
type Provider struct {
	opts Options
	conf clientcredentials.Config // ClientCredentials only
	ctx  context.Context          // carries the HTTP client for x/oauth2

	flights singleflight.Group
	mu      sync.Mutex
	cache   map[string]*cached // by identity key ("" for client credentials)
}

// cached is a token and when to replace it.
type cached struct {
	token     string
	refreshAt time.Time // zero: until invalidated
	expiry    time.Time // zero: does not expire
}

func (c *cached) fresh(now time.Time) bool {
	return c != nil && (c.refreshAt.IsZero() || now.Before(c.refreshAt))
}

// New returns a Provider. It checks only that the options are complete;
// the token endpoint is first contacted when a token is needed.
func New(opts Options) (*Provider, error) {
	if opts.Grant != ClientCredentials && opts.Grant != TokenExchange {
		return nil, fmt.Errorf("%w: unknown grant %q", ErrCredentials, opts.Grant)
	}
	if opts.TokenURL == "" || opts.ClientID == "" {
		return nil, fmt.Errorf("%w: tokenURL and clientID are required", ErrCredentials)
	}
	if opts.Leeway <= 0 {
		opts.Leeway = defaultLeeway
	}
	if opts.MaxEntries <= 0 {
		opts.MaxEntries = defaultMaxEntries
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{
			Timeout: defaultFetchTimeout,
			// A redirect could carry the client secret to another host.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	p := &Provider{
		opts:  opts,
		ctx:   context.WithValue(context.Background(), oauth2.HTTPClient, opts.HTTPClient),
		cache: make(map[string]*cached),
	}
	p.conf = clientcredentials.Config{
		ClientID: opts.ClientID, ClientSecret: opts.ClientSecret, TokenURL: opts.TokenURL,
		Scopes: opts.Scopes, EndpointParams: p.params(nil),
		// RFC 6749 2.3.1: servers must support Basic, and it keeps the
		// secret out of the form. Detection would send every failing
		// request twice.
		AuthStyle: oauth2.AuthStyleInHeader,
	}
	return p, nil
}

// Grant returns the grant the provider uses.
func (p *Provider) Grant() string { return p.opts.Grant }

// params are the request's parameters beyond grant_type and scope.
func (p *Provider) params(extra url.Values) url.Values {
	v := url.Values{}
	if p.opts.Audience != "" {
		v.Set("audience", p.opts.Audience)
	}
	if p.opts.Resource != "" {
		v.Set("resource", p.opts.Resource)
	}
	for k, vs := range extra {
		v[k] = vs
	}
	return v
}

// Source returns the token source for one session's client of the
// backend. For token exchange the caller is the identity in ctx, and an
// error wrapping ErrNoIdentity is returned if there is none (or it has no
// token). No token is fetched yet.
func (p *Provider) Source(ctx context.Context) (*Source, error) {
	s := &Source{p: p}
	if p.opts.Grant == TokenExchange {
		id := identity.FromContext(ctx)
		if id.Key() == "" || id.Token == "" {
			return nil, fmt.Errorf("%w: %w", ErrCredentials, ErrNoIdentity)
		}
		s.key = id.Key()
		s.caller = id
	}
	return s, nil
}

// token returns the cached token for key, fetching one if there is none
// or it is due for refresh. Concurrent requests for one key share one
// fetch, which a caller giving up does not cancel for the others.
func (p *Provider) token(ctx context.Context, key string, caller *identity.Identity) (string, error) {
	p.mu.Lock()
	c := p.cache[key]
	p.mu.Unlock()
	if c.fresh(p.opts.Now()) {
		return c.token, nil
	}
	refresh := c != nil
	parent := trace.SpanContextFromContext(ctx)
	ch := p.flights.DoChan(key, func() (any, error) {
		fctx, cancel := context.WithTimeout(trace.ContextWithSpanContext(p.ctx, parent), defaultFetchTimeout)
		defer cancel()
		var span trace.Span
		if p.opts.Tracer != nil {
			fctx, span = p.opts.Tracer.Start(fctx, "token."+p.opts.Grant, trace.WithSpanKind(trace.SpanKindClient),
				trace.WithAttributes(p.opts.SpanAttributes...),
				trace.WithAttributes(attribute.String("vmcp.grant", p.opts.Grant), attribute.Bool("vmcp.refresh", refresh)))
		}
		tok, err := p.fetch(fctx, key, caller)
		if span != nil {
			if err != nil {
				span.SetStatus(codes.Error, "token request failed")
			}
			span.End()
		}
		if p.opts.Observe != nil {
			p.opts.Observe(p.opts.Grant, refresh, err)
		}
		return tok, err
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return "", r.Err
		}
		return r.Val.(string), nil
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// fetch asks the token endpoint for a new token and caches it.
func (p *Provider) fetch(ctx context.Context, key string, caller *identity.Identity) (string, error) {
	conf := &p.conf
	if p.opts.Grant == TokenExchange {
		// grant_type may be overridden in EndpointParams, which turns the
		// client-credentials request into an RFC 8693 one with the same
		// client authentication and error handling.
		conf = &clientcredentials.Config{
			ClientID: p.conf.ClientID, ClientSecret: p.conf.ClientSecret, TokenURL: p.conf.TokenURL,
			Scopes: p.conf.Scopes, AuthStyle: p.conf.AuthStyle,
			EndpointParams: p.params(url.Values{
				"grant_type":           {grantTokenExchange},
				"subject_token":        {caller.Token},
				"subject_token_type":   {tokenTypeAccess},
				"requested_token_type": {tokenTypeAccess},
			}),
		}
	}
	start := p.opts.Now()
	t, err := conf.Token(ctx)
	if err != nil {
		return "", p.scrub(err)
	}
	if t.AccessToken == "" {
		return "", fmt.Errorf("%w: the token endpoint returned no access token", ErrCredentials)
	}
	if p.opts.Grant == TokenExchange && t.AccessToken == caller.Token {
		// Passing the client's token through is what exchange is for
		// avoiding: the MCP spec forbids it.
		return "", fmt.Errorf("%w: the token endpoint returned the caller's own token; it is not passed through", ErrCredentials)
	}
	c := &cached{token: t.AccessToken, expiry: t.Expiry}
	if !t.Expiry.IsZero() {
		leeway := min(p.opts.Leeway, t.Expiry.Sub(start)/4)
		c.refreshAt = t.Expiry.Add(-leeway)
	}
	p.mu.Lock()
	if _, ok := p.cache[key]; !ok && len(p.cache) >= p.opts.MaxEntries {
		p.evictLocked()
	}
	p.cache[key] = c
	p.mu.Unlock()
	return c.token, nil
}

// evictLocked makes room: first every token past its refresh time, and if
// none is, one arbitrary entry.
func (p *Provider) evictLocked() {
	now := p.opts.Now()
	for k, c := range p.cache {
		if !c.fresh(now) {
			delete(p.cache, k)
		}
	}
	if len(p.cache) < p.opts.MaxEntries {
		return
	}
	for k := range p.cache {
		delete(p.cache, k)
		return
	}
}

// invalidate drops key's cached token if it is still tok, so that the
// next request fetches a new one; a token fetched meanwhile is kept.
func (p *Provider) invalidate(key, tok string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if c := p.cache[key]; c != nil && (tok == "" || c.token == tok) {
		delete(p.cache, key)
	}
}

// errorCodeRE matches the RFC 6749 error codes worth repeating; anything
// else from the endpoint is left out, as it could echo what was sent.
var errorCodeRE = regexp.MustCompile(`^[a-z_]{1,64}$`)

// scrub turns an error from x/oauth2 into one that carries neither the
// response body (which may echo the secret or the subject token) nor the
// token URL.
func (p *Provider) scrub(err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		msg := "the token endpoint refused the request"
		if re.Response != nil {
			msg += fmt.Sprintf(" (HTTP %d)", re.Response.StatusCode)
		}
		if errorCodeRE.MatchString(re.ErrorCode) {
			msg += ": " + re.ErrorCode
		}
		return fmt.Errorf("%w: %s", ErrCredentials, msg)
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return fmt.Errorf("%w: the token endpoint did not answer in time", ErrCredentials)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%w: the token endpoint could not be reached", ErrCredentials)
	}
	return fmt.Errorf("%w: the token endpoint's answer could not be used", ErrCredentials)
}
