package oidctest

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// errUnsupported answers the browser flows this provider does not offer.
var errUnsupported = errors.New("oidctest: only client_credentials, token exchange and introspection are supported")

// clientRecord is one registered client. Immutable once stored.
type clientRecord struct {
	Client
	ttl time.Duration
}

// tokenRecord is one issued access token, kept so introspection and
// revocation can find it by its ID.
type tokenRecord struct {
	clientID string
	subject  string
	audience []string
	scopes   []string
	expires  time.Time
}

// key is one RSA signing key with its kid.
type key struct {
	id  string
	key *rsa.PrivateKey
}

func newKey() (*key, error) {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	return &key{id: rand.Text(), key: k}, nil
}

// signingKey and publicKey adapt key to op.SigningKey and op.Key.
type signingKey struct{ *key }

func (k signingKey) SignatureAlgorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (k signingKey) Key() any                                    { return k.key.key }
func (k signingKey) ID() string                                  { return k.id }

type publicKey struct{ *key }

func (k publicKey) ID() string                         { return k.id }
func (k publicKey) Algorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (k publicKey) Use() string                        { return "sig" }
func (k publicKey) Key() any                           { return &k.key.key.PublicKey }

// tokenRequest is what a client-credentials grant asks the OP to sign.
type tokenRequest struct {
	clientID string
	subject  string
	audience []string
	scopes   []string
}

func (r *tokenRequest) GetSubject() string    { return r.subject }
func (r *tokenRequest) GetAudience() []string { return r.audience }
func (r *tokenRequest) GetScopes() []string   { return r.scopes }

// storage is the in-memory op.Storage behind a Provider. All methods are
// safe for concurrent use.
type storage struct {
	defaultTTL time.Duration

	mu      sync.Mutex
	clients map[string]*clientRecord
	tokens  map[string]*tokenRecord
	keys    []*key // published in the JWKS; the last one signs
}

var (
	_ op.Storage                  = (*storage)(nil)
	_ op.ClientCredentialsStorage = (*storage)(nil)
	_ op.TokenExchangeStorage     = (*storage)(nil)
)

func (s *storage) client(id string) (*clientRecord, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.clients[id]
	return c, ok
}

func (s *storage) ttlFor(clientID string) time.Duration {
	if c, ok := s.client(clientID); ok && c.ttl != 0 {
		return c.ttl
	}
	return s.defaultTTL
}

// --- op.AuthStorage: browser flows are not offered ---

func (s *storage) CreateAuthRequest(context.Context, *oidc.AuthRequest, string) (op.AuthRequest, error) {
	return nil, errUnsupported
}
func (s *storage) AuthRequestByID(context.Context, string) (op.AuthRequest, error) {
	return nil, errUnsupported
}
func (s *storage) AuthRequestByCode(context.Context, string) (op.AuthRequest, error) {
	return nil, errUnsupported
}
func (s *storage) SaveAuthCode(context.Context, string, string) error { return errUnsupported }
func (s *storage) DeleteAuthRequest(context.Context, string) error    { return nil }

func (s *storage) CreateAccessToken(_ context.Context, req op.TokenRequest) (string, time.Time, error) {
	var clientID string
	switch r := req.(type) {
	case *tokenRequest:
		clientID = r.clientID
	case op.TokenExchangeRequest:
		clientID = r.GetClientID()
	}
	id := rand.Text()
	exp := time.Now().Add(s.ttlFor(clientID))
	s.mu.Lock()
	s.tokens[id] = &tokenRecord{
		clientID: clientID,
		subject:  req.GetSubject(),
		audience: req.GetAudience(),
		scopes:   req.GetScopes(),
		expires:  exp,
	}
	s.mu.Unlock()
	return id, exp, nil
}

func (s *storage) CreateAccessAndRefreshTokens(context.Context, op.TokenRequest, string) (string, string, time.Time, error) {
	return "", "", time.Time{}, errors.New("oidctest: refresh tokens are not issued")
}
func (s *storage) TokenRequestByRefreshToken(context.Context, string) (op.RefreshTokenRequest, error) {
	return nil, op.ErrInvalidRefreshToken
}
func (s *storage) TerminateSession(context.Context, string, string) error { return nil }

func (s *storage) RevokeToken(_ context.Context, tokenOrID, _, _ string) *oidc.Error {
	s.mu.Lock()
	delete(s.tokens, tokenOrID)
	s.mu.Unlock()
	return nil
}

func (s *storage) GetRefreshTokenInfo(context.Context, string, string) (string, string, error) {
	return "", "", op.ErrInvalidRefreshToken
}

func (s *storage) SigningKey(context.Context) (op.SigningKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return signingKey{s.keys[len(s.keys)-1]}, nil
}

func (s *storage) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{jose.RS256}, nil
}

func (s *storage) KeySet(context.Context) ([]op.Key, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]op.Key, len(s.keys))
	for i, k := range s.keys {
		out[i] = publicKey{k}
	}
	return out, nil
}

// rotate makes a new key the signing key; with keepOld the previous keys
// stay in the JWKS (as real providers do for a while), else they vanish.
func (s *storage) rotate(keepOld bool) error {
	k, err := newKey()
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if keepOld {
		s.keys = append(s.keys, k)
	} else {
		s.keys = []*key{k}
	}
	return nil
}

// --- op.OPStorage ---

func (s *storage) GetClientByClientID(_ context.Context, id string) (op.Client, error) {
	c, ok := s.client(id)
	if !ok {
		return nil, errors.New("oidctest: unknown client")
	}
	return opClient{c}, nil
}

func (s *storage) AuthorizeClientIDSecret(_ context.Context, id, secret string) error {
	c, ok := s.client(id)
	if !ok || c.Secret != secret {
		return errors.New("oidctest: wrong client or secret")
	}
	return nil
}

func (s *storage) SetUserinfoFromScopes(context.Context, *oidc.UserInfo, string, string, []string) error {
	return nil
}

func (s *storage) SetUserinfoFromToken(_ context.Context, info *oidc.UserInfo, _, subject, _ string) error {
	info.Subject = subject
	return nil
}

// SetIntrospectionFromToken answers RFC 7662 for any authenticated client,
// as a resource server's introspection would.
func (s *storage) SetIntrospectionFromToken(_ context.Context, resp *oidc.IntrospectionResponse, tokenID, subject, _ string) error {
	s.mu.Lock()
	tok, ok := s.tokens[tokenID]
	s.mu.Unlock()
	if !ok {
		return errors.New("oidctest: unknown token")
	}
	if !time.Now().Before(tok.expires) {
		return errors.New("oidctest: token expired")
	}
	resp.Subject = subject
	resp.Scope = tok.scopes
	resp.Audience = tok.audience
	resp.ClientID = tok.clientID
	resp.Expiration = oidc.FromTime(tok.expires)
	resp.TokenType = oidc.BearerToken
	return nil
}

func (s *storage) GetPrivateClaimsFromScopes(_ context.Context, _, _ string, scopes []string) (map[string]any, error) {
	return scopeClaim(scopes), nil
}

func (s *storage) GetKeyByIDAndClientID(context.Context, string, string) (*jose.JSONWebKey, error) {
	return nil, errUnsupported
}

func (s *storage) ValidateJWTProfileScopes(_ context.Context, _ string, scopes []string) ([]string, error) {
	return scopes, nil
}

func (s *storage) Health(context.Context) error { return nil }

// scopeClaim puts the scopes in the access token's "scope" claim
// (RFC 9068 §2.2.3); the op package leaves it to storage.
func scopeClaim(scopes []string) map[string]any {
	if len(scopes) == 0 {
		return nil
	}
	return map[string]any{"scope": strings.Join(scopes, " ")}
}

// --- op.ClientCredentialsStorage ---

func (s *storage) ClientCredentials(_ context.Context, id, secret string) (op.Client, error) {
	c, ok := s.client(id)
	if !ok || c.Secret != secret {
		return nil, errors.New("oidctest: wrong client or secret")
	}
	return opClient{c}, nil
}

func (s *storage) ClientCredentialsTokenRequest(_ context.Context, id string, scopes []string) (op.TokenRequest, error) {
	c, ok := s.client(id)
	if !ok {
		return nil, errors.New("oidctest: unknown client")
	}
	subject := c.Subject
	if subject == "" {
		subject = c.ID
	}
	if len(scopes) == 0 {
		scopes = c.Scopes
	}
	return &tokenRequest{clientID: c.ID, subject: subject, audience: c.Audience, scopes: scopes}, nil
}

// --- op.TokenExchangeStorage (RFC 8693) ---

// ValidateTokenExchangeRequest issues an access token for the subject of
// the exchanged token, for the requested audience and scopes (delegation
// without an actor). The OP has already verified the subject token.
func (s *storage) ValidateTokenExchangeRequest(_ context.Context, req op.TokenExchangeRequest) error {
	if req.GetRequestedTokenType() == "" {
		req.SetRequestedTokenType(oidc.AccessTokenType)
	}
	if req.GetRequestedTokenType() != oidc.AccessTokenType {
		return fmt.Errorf("oidctest: requested_token_type %q is not issued", req.GetRequestedTokenType())
	}
	req.SetCurrentScopes(req.GetScopes())
	return nil
}

func (s *storage) CreateTokenExchangeRequest(context.Context, op.TokenExchangeRequest) error {
	return nil
}

func (s *storage) GetPrivateClaimsFromTokenExchangeRequest(_ context.Context, req op.TokenExchangeRequest) (map[string]any, error) {
	return scopeClaim(req.GetScopes()), nil
}

func (s *storage) SetUserinfoFromTokenExchangeRequest(_ context.Context, info *oidc.UserInfo, req op.TokenExchangeRequest) error {
	info.Subject = req.GetSubject()
	return nil
}

// opClient adapts a clientRecord to op.Client: a confidential machine
// client that may use client_credentials and token exchange.
type opClient struct{ c *clientRecord }

func (o opClient) GetID() string                       { return o.c.ID }
func (o opClient) RedirectURIs() []string              { return nil }
func (o opClient) PostLogoutRedirectURIs() []string    { return nil }
func (o opClient) ApplicationType() op.ApplicationType { return op.ApplicationTypeWeb }
func (o opClient) AuthMethod() oidc.AuthMethod         { return oidc.AuthMethodBasic }
func (o opClient) ResponseTypes() []oidc.ResponseType  { return nil }
func (o opClient) GrantTypes() []oidc.GrantType {
	return []oidc.GrantType{oidc.GrantTypeClientCredentials, oidc.GrantTypeTokenExchange}
}
func (o opClient) LoginURL(string) string { return "" }
func (o opClient) AccessTokenType() op.AccessTokenType {
	if o.c.Opaque {
		return op.AccessTokenTypeBearer
	}
	return op.AccessTokenTypeJWT
}
func (o opClient) IDTokenLifetime() time.Duration { return time.Hour }
func (o opClient) DevMode() bool                  { return false }
func (o opClient) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
func (o opClient) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
func (o opClient) IsScopeAllowed(string) bool           { return true }
func (o opClient) IDTokenUserinfoClaimsAssertion() bool { return false }
func (o opClient) ClockSkew() time.Duration             { return 0 }
