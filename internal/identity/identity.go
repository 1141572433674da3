// Package identity describes who is calling vmcp, as established by
// incoming authentication, and carries it through a request's context.
//
// An Identity is created once per request by the front end's
// authentication and is read-only afterwards, so it is safe to share
// between goroutines.
package identity

import (
	"context"
	"log/slog"
	"time"
)

// Identity is a verified caller.
type Identity struct {
	// Issuer and Subject name the caller: a token's iss and sub, or for
	// an API key IssuerAPIKey and the key's configured subject.
	Issuer  string
	Subject string
	// Claims are the verified token's claims (nil for an API key). Read
	// only.
	Claims map[string]any
	// Scopes are the token's granted scopes.
	Scopes []string
	// Token is the caller's verified bearer token. It is a secret: it is
	// never logged, stored or forwarded to a backend as it is. Outgoing
	// token exchange uses it as the subject token. Empty for API keys.
	Token string
	// Expiry is when the token expires (zero: it does not).
	Expiry time.Time
}

// IssuerAPIKey is the Issuer of identities established by an API key.
const IssuerAPIKey = "apikey"

// Key is the value a session is bound to: the caller's (iss, sub), never
// the token bytes, which change on refresh (THV-0073). A nil Identity is
// anonymous and has key "".
func (id *Identity) Key() string {
	if id == nil || id.Subject == "" {
		return ""
	}
	return "sub:" + id.Issuer + "\x00" + id.Subject
}

// String names the caller without any secret.
func (id *Identity) String() string {
	if id == nil || id.Subject == "" {
		return "anonymous"
	}
	return id.Issuer + " " + id.Subject
}

// LogValue keeps the token out of every log line.
func (id *Identity) LogValue() slog.Value {
	if id == nil || id.Subject == "" {
		return slog.StringValue("anonymous")
	}
	return slog.GroupValue(slog.String("iss", id.Issuer), slog.String("sub", id.Subject))
}

type ctxKey struct{}

// NewContext returns a context that carries id.
func NewContext(ctx context.Context, id *Identity) context.Context {
	return context.WithValue(ctx, ctxKey{}, id)
}

// FromContext returns the caller in ctx, or nil for an anonymous one.
func FromContext(ctx context.Context) *Identity {
	id, _ := ctx.Value(ctxKey{}).(*Identity)
	return id
}
