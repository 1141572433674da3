package authn

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/vmcp/vmcp/internal/identity"
)

// introspector checks opaque access tokens by RFC 7662 introspection,
// authenticating as vmcp's own client (client_secret_basic). Safe for
// concurrent use.
type introspector struct {
	hc       *http.Client
	url      string
	clientID string
	secret   string
	issuer   string // the identity's Issuer; an answer naming another is refused
	resource string // an answer's aud must contain it
	skew     time.Duration
	now      func() time.Time
}

// maxIntrospectionTTL bounds how long an introspected token is trusted
// without asking again, so that a revoked token stops working soon.
const maxIntrospectionTTL = time.Minute

var errInactive = errors.New("token not active")

// introspection is the part of an RFC 7662 answer vmcp reads.
type introspection struct {
	Active    bool     `json:"active"`
	Subject   string   `json:"sub"`
	Issuer    string   `json:"iss"`
	Audience  audience `json:"aud"`
	Scope     string   `json:"scope"`
	Expiry    *float64 `json:"exp"`
	NotBefore *float64 `json:"nbf"`
	ClientID  string   `json:"client_id"`
}

// audience is "aud" as a string or a list of strings.
type audience []string

func (a *audience) UnmarshalJSON(b []byte) error {
	var s string
	if json.Unmarshal(b, &s) == nil {
		*a = audience{s}
		return nil
	}
	var l []string
	if err := json.Unmarshal(b, &l); err != nil {
		return errors.New("aud must be a string or a list of strings")
	}
	*a = l
	return nil
}

// verify asks the authorization server about tok. It returns the identity
// and how long the answer may be cached.
func (in *introspector) verify(ctx context.Context, tok string) (*identity.Identity, time.Time, error) {
	form := url.Values{"token": {tok}, "token_type_hint": {"access_token"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, in.url, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, time.Time{}, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.SetBasicAuth(url.QueryEscape(in.clientID), url.QueryEscape(in.secret)) // RFC 6749 §2.3.1
	resp, err := in.hc.Do(req)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("introspection: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("introspection: reading answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		// The body is not quoted: a server may echo what it was sent.
		return nil, time.Time{}, fmt.Errorf("introspection: %s", resp.Status)
	}
	var r introspection
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, time.Time{}, fmt.Errorf("introspection: bad answer: %w", err)
	}
	if !r.Active {
		return nil, time.Time{}, errInactive
	}
	now := in.now()
	var exp time.Time
	if r.Expiry != nil {
		exp = unixTime(*r.Expiry)
		if !now.Before(exp.Add(in.skew)) {
			return nil, time.Time{}, errExpired
		}
	}
	if r.NotBefore != nil && now.Add(in.skew).Before(unixTime(*r.NotBefore)) {
		return nil, time.Time{}, errNotYet
	}
	if r.Issuer != "" && r.Issuer != in.issuer {
		return nil, time.Time{}, fmt.Errorf("introspection: token issued by %q", r.Issuer)
	}
	if !slices.Contains(r.Audience, in.resource) {
		return nil, time.Time{}, fmt.Errorf("introspection: token audience %q does not contain %q", []string(r.Audience), in.resource)
	}
	if r.Subject == "" {
		return nil, time.Time{}, errNoSubject
	}
	until := now.Add(maxIntrospectionTTL)
	if !exp.IsZero() && exp.Before(until) {
		until = exp
	}
	claims := map[string]any{"sub": r.Subject, "iss": in.issuer, "aud": []string(r.Audience)}
	if r.ClientID != "" {
		claims["client_id"] = r.ClientID
	}
	if r.Scope != "" {
		claims["scope"] = r.Scope
	}
	return &identity.Identity{
		Issuer:  in.issuer,
		Subject: r.Subject,
		Claims:  claims,
		Scopes:  strings.Fields(r.Scope),
		Expiry:  exp,
	}, until, nil
}
