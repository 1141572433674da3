package authn

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"

	"github.com/vmcp/vmcp/internal/identity"
)

// jwtVerifier checks JWT access tokens from one issuer. go-oidc checks
// the signature (with keySet, which caches the issuer's JWKS and follows
// its rotation) against the allow-list of algorithms, iss and aud; exp and
// nbf are checked here, with vmcp's leeway. Safe for concurrent use.
type jwtVerifier struct {
	v    *oidc.IDTokenVerifier
	skew time.Duration
	now  func() time.Time
}

// newJWTVerifier discovers issuer (its /.well-known/openid-configuration,
// whose issuer must match) for its jwks_uri.
func newJWTVerifier(ctx context.Context, hc *http.Client, issuer, resource string, algs []string, skew time.Duration, now func() time.Time) (*jwtVerifier, error) {
	p, err := oidc.NewProvider(oidc.ClientContext(ctx, hc), issuer)
	if err != nil {
		return nil, fmt.Errorf("discovering issuer %s: %w", issuer, err)
	}
	var doc struct {
		JWKSURI string `json:"jwks_uri"`
	}
	if err := p.Claims(&doc); err != nil || doc.JWKSURI == "" {
		return nil, fmt.Errorf("discovering issuer %s: no jwks_uri", issuer)
	}
	ks := &keySet{hc: hc, url: doc.JWKSURI, minInterval: jwksMinInterval, now: now}
	for _, a := range algs {
		ks.algs = append(ks.algs, jose.SignatureAlgorithm(a))
	}
	v := oidc.NewVerifier(issuer, ks, &oidc.Config{
		ClientID:             resource, // aud must contain vmcp's resource
		SupportedSigningAlgs: algs,
		SkipExpiryCheck:      true, // checked below, with vmcp's leeway
		Now:                  now,
	})
	return &jwtVerifier{v: v, skew: skew, now: now}, nil
}

// accessClaims are the claims vmcp reads beyond go-oidc's.
type accessClaims struct {
	Expiry    *float64 `json:"exp"`
	NotBefore *float64 `json:"nbf"`
	Scope     string   `json:"scope"`
	SCP       any      `json:"scp"` // Okta, Entra: a list or a string
}

var (
	errExpired   = errors.New("token expired")
	errNotYet    = errors.New("token not valid yet")
	errNoExpiry  = errors.New("token has no exp")
	errNoSubject = errors.New("token has no sub")
)

func (j *jwtVerifier) verify(ctx context.Context, tok string) (*identity.Identity, error) {
	t, err := j.v.Verify(ctx, tok)
	if err != nil {
		return nil, err
	}
	var c accessClaims
	var all map[string]any
	if err := t.Claims(&c); err != nil {
		return nil, err
	}
	if err := t.Claims(&all); err != nil {
		return nil, err
	}
	now := j.now()
	if c.Expiry == nil {
		return nil, errNoExpiry
	}
	exp := unixTime(*c.Expiry)
	if !now.Before(exp.Add(j.skew)) {
		return nil, errExpired
	}
	if c.NotBefore != nil && now.Add(j.skew).Before(unixTime(*c.NotBefore)) {
		return nil, errNotYet
	}
	if t.Subject == "" {
		return nil, errNoSubject
	}
	return &identity.Identity{
		Issuer:  t.Issuer,
		Subject: t.Subject,
		Claims:  all,
		Scopes:  scopes(c.Scope, c.SCP),
		Expiry:  exp,
	}, nil
}

func unixTime(f float64) time.Time {
	sec := int64(f)
	return time.Unix(sec, int64((f-float64(sec))*1e9))
}

// scopes reads the granted scopes: RFC 9068's space-separated "scope", or
// else "scp" as some providers send it.
func scopes(scope string, scp any) []string {
	if scope != "" {
		return strings.Fields(scope)
	}
	switch v := scp.(type) {
	case string:
		return strings.Fields(v)
	case []any:
		var out []string
		for _, s := range v {
			if s, ok := s.(string); ok && s != "" {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// hasScopes reports whether granted includes every scope of required.
func hasScopes(granted, required []string) bool {
	for _, r := range required {
		if !slices.Contains(granted, r) {
			return false
		}
	}
	return true
}
