// Package authn establishes who is calling vmcp: it verifies a request's
// bearer token (OIDC JWT access tokens, or opaque tokens by RFC 7662
// introspection) or API key, answers 401 and 403 as RFC 6750 and RFC 9728
// ask, and serves vmcp's Protected Resource Metadata.
//
// A token is a secret: it is never logged, never kept (the cache of
// verified tokens is keyed by a hash and holds no token), and the identity
// carries it only for the request it came with.
package authn

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/vmcp/vmcp/internal/config"
	"github.com/vmcp/vmcp/internal/identity"
)

// MetadataPath is where RFC 9728 puts Protected Resource Metadata; the
// document for a resource with a path is at MetadataPath + that path.
const MetadataPath = "/.well-known/oauth-protected-resource"

// Options carry what is not in the config.
type Options struct {
	// HTTPClient reaches the authorization server (discovery, JWKS,
	// introspection); default a client with a 10s timeout.
	HTTPClient *http.Client
	// LookupEnv resolves clientSecretEnv; default os.LookupEnv.
	LookupEnv func(string) (string, bool)
	Logger    *slog.Logger
	Now       func() time.Time
	// Observer, if set, counts refused requests (the metrics).
	Observer Observer
}

// Observer counts the requests an Authenticator refuses, by reason:
// missing_token, invalid_token or insufficient_scope. It must be safe for
// concurrent use and quick.
type Observer interface {
	ObserveAuthFailure(reason string)
}

type noObserver struct{}

func (noObserver) ObserveAuthFailure(string) {}

// Authenticator verifies requests for one incomingAuth config. Create it
// with New; it is safe for concurrent use.
type Authenticator struct {
	kind       string
	log        *slog.Logger
	required   []string
	challenge  string // WWW-Authenticate parameters every answer carries
	metadata   []byte // RFC 9728 document; nil without a resource
	jwt        *jwtVerifier
	introspect *introspector
	keys       []apiKeyEntry
	cache      *tokenCache
	obs        Observer
}

// verifyTimeout bounds verifying one token, JWKS fetch or introspection
// included, whatever the client does meanwhile.
const verifyTimeout = 10 * time.Second

// New builds an Authenticator for a validated incomingAuth of type oidc or
// apiKey. For oidc it discovers the issuer, so it needs the authorization
// server to be up; ctx bounds that.
func New(ctx context.Context, cfg *config.IncomingAuth, opts Options) (*Authenticator, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if opts.Observer == nil {
		opts.Observer = noObserver{}
	}
	a := &Authenticator{kind: cfg.Type, log: opts.Logger, obs: opts.Observer}
	if cfg.Resource != "" {
		u := metadataURL(cfg.Resource)
		a.challenge = fmt.Sprintf(`resource_metadata="%s"`, u)
		doc := map[string]any{
			"resource":                 cfg.Resource,
			"bearer_methods_supported": []string{"header"},
		}
		if cfg.Type == config.AuthOIDC {
			doc["authorization_servers"] = []string{cfg.Issuer}
			if len(cfg.ScopesSupported) > 0 {
				doc["scopes_supported"] = cfg.ScopesSupported
			}
		}
		a.metadata, _ = json.Marshal(doc)
	}
	switch cfg.Type {
	case config.AuthOIDC:
		a.required = cfg.RequiredScopes
		a.cache = newTokenCache(cfg.CacheSize, opts.Now)
		var err error
		a.jwt, err = newJWTVerifier(ctx, opts.HTTPClient, cfg.Issuer, cfg.Resource, cfg.Algorithms, cfg.ClockSkew.D(), opts.Now)
		if err != nil {
			return nil, fmt.Errorf("incomingAuth: %w", err)
		}
		if cfg.IntrospectionURL != "" {
			lookup := opts.LookupEnv
			if lookup == nil {
				lookup = lookupEnv
			}
			secret, ok := lookup(cfg.ClientSecretEnv)
			if !ok || secret == "" {
				return nil, fmt.Errorf("incomingAuth.clientSecretEnv: environment variable %s is not set", cfg.ClientSecretEnv)
			}
			a.introspect = &introspector{
				hc: opts.HTTPClient, url: cfg.IntrospectionURL, clientID: cfg.ClientID, secret: secret,
				issuer: cfg.Issuer, resource: cfg.Resource, skew: cfg.ClockSkew.D(), now: opts.Now,
			}
		}
	case config.AuthAPIKey:
		var err error
		if a.keys, err = apiKeyEntries(cfg.APIKeys); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("incomingAuth: type %q needs no authenticator", cfg.Type)
	}
	return a, nil
}

// metadataURL is the RFC 9728 §3.1 URL of a resource's metadata: the
// well-known path inserted between its host and its path.
func metadataURL(resource string) string {
	u, err := url.Parse(resource)
	if err != nil {
		return resource // validated by config; not reached
	}
	p := strings.TrimSuffix(u.EscapedPath(), "/")
	return u.Scheme + "://" + u.Host + MetadataPath + p
}

// Metadata returns the Protected Resource Metadata document (RFC 9728),
// or nil when no resource is configured.
func (a *Authenticator) Metadata() []byte { return a.metadata }

// Authenticate establishes the caller of r. On success it returns the
// identity, whose Token is the presented bearer token (empty for an API
// key). Otherwise it answers the request itself, 401 or 403, and returns
// false.
func (a *Authenticator) Authenticate(w http.ResponseWriter, r *http.Request) (*identity.Identity, bool) {
	var id *identity.Identity
	var err error
	if a.kind == config.AuthAPIKey {
		id, err = a.apiKey(r)
	} else {
		id, err = a.bearer(r)
	}
	if err != nil {
		a.unauthorized(w, r, err)
		return nil, false
	}
	if !hasScopes(id.Scopes, a.required) {
		a.log.Info("request refused: missing scope", "caller", id, "remote", r.RemoteAddr)
		a.forbidden(w)
		return nil, false
	}
	return id, true
}

func (a *Authenticator) bearer(r *http.Request) (*identity.Identity, error) {
	tok, err := bearerToken(r.Header)
	if err != nil {
		return nil, err
	}
	k := sha256.Sum256([]byte(tok))
	if id, ok := a.cache.get(k, tok); ok {
		return id, nil
	}
	// Verification may fetch keys or introspect, and its result serves
	// other requests too: a client that hangs up does not cut it short.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), verifyTimeout)
	defer cancel()
	var id *identity.Identity
	var until time.Time
	switch {
	case looksLikeJWT(tok):
		id, err = a.jwt.verify(ctx, tok)
		if err == nil {
			until = id.Expiry
		}
	case a.introspect != nil:
		id, until, err = a.introspect.verify(ctx, tok)
	default:
		err = errors.New("opaque token and no introspectionURL")
	}
	if err != nil {
		return nil, err
	}
	a.cache.put(k, id, until)
	id.Token = tok
	return id, nil
}

// unauthorized answers 401. The answer says only what RFC 6750 lets it:
// invalid_token when a token was presented, nothing when none was. The
// reason goes to the log, without the token.
func (a *Authenticator) unauthorized(w http.ResponseWriter, r *http.Request, err error) {
	params := a.challenge
	if errors.Is(err, errNoCredentials) {
		a.obs.ObserveAuthFailure("missing_token")
	} else {
		a.obs.ObserveAuthFailure("invalid_token")
		params = join(`error="invalid_token"`, params)
		a.log.Info("request refused: invalid credentials", "reason", err, "remote", r.RemoteAddr)
	}
	h := w.Header()
	h.Set("WWW-Authenticate", strings.TrimSpace("Bearer "+params))
	writeError(w, http.StatusUnauthorized, "Unauthorized")
}

// forbidden answers 403 insufficient_scope, naming the scopes required
// (RFC 6750 §3.1).
func (a *Authenticator) forbidden(w http.ResponseWriter) {
	a.obs.ObserveAuthFailure("insufficient_scope")
	params := join(`error="insufficient_scope"`, fmt.Sprintf(`scope="%s"`, strings.Join(a.required, " ")))
	params = join(params, a.challenge)
	w.Header().Set("WWW-Authenticate", "Bearer "+params)
	writeError(w, http.StatusForbidden, "Forbidden: insufficient scope")
}

func join(a, b string) string {
	if b == "" {
		return a
	}
	return a + ", " + b
}

// writeError writes a JSON-RPC error body, as vmcp's other HTTP errors.
func writeError(w http.ResponseWriter, status int, msg string) {
	b, _ := json.Marshal(map[string]any{
		"jsonrpc": "2.0", "id": nil,
		"error": map[string]any{"code": -32001, "message": msg},
	})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(b)
}
