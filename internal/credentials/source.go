package credentials

import (
	"context"
	"sync"

	"github.com/vmcp/vmcp/internal/identity"
	"github.com/vmcp/vmcp/internal/redact"
)

// Source is the credential of one session's client of a backend. The
// client asks it for a token on every request; it answers from its
// Provider's cache, which fetches a new token shortly before the old one
// expires. Safe for concurrent use.
type Source struct {
	p   *Provider
	key string // the caller's identity key; "" for client credentials

	mu sync.Mutex
	// caller is the freshest verified identity seen for key: its token is
	// the subject token of the next exchange. It is held in memory only,
	// for as long as the session's client is.
	caller *identity.Identity
	last   string           // the token last handed out
	prev   string           // the one before, which requests in flight may still carry
	red    *redact.Redactor // hides last and prev; rebuilt when they change
}

// Token returns the bearer token to send. When ctx carries the session's
// caller with a newer token (each request of a client does), that token
// becomes the subject token of later exchanges; an identity with another
// key is ignored.
func (s *Source) Token(ctx context.Context) (string, error) {
	var caller *identity.Identity
	if s.key != "" {
		caller = s.freshest(identity.FromContext(ctx))
	}
	tok, err := s.p.token(ctx, s.key, caller)
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	if tok != s.last {
		s.prev, s.last = s.last, tok
		s.red = redact.New(s.last, s.prev)
	}
	s.mu.Unlock()
	return tok, nil
}

// Redactor hides the tokens this source handed out lately (and any bearer
// credential): a backend may quote the credential it was sent in an
// error. It is immutable; a newer token comes with a new one.
func (s *Source) Redactor() *redact.Redactor {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.red
}

// freshest records id if it is the session's caller with a token that
// outlives the one held, and returns the caller to exchange for.
func (s *Source) freshest(id *identity.Identity) *identity.Identity {
	s.mu.Lock()
	defer s.mu.Unlock()
	if id != nil && id.Token != "" && id.Token != s.caller.Token && id.Key() == s.key &&
		(s.caller.Expiry.IsZero() || !id.Expiry.Before(s.caller.Expiry)) {
		s.caller = id
	}
	return s.caller
}

// Invalidate drops the token this source last handed out (the backend
// refused it), so that the next Token fetches a new one. Another source's
// newer token for the same caller is kept.
func (s *Source) Invalidate() {
	s.mu.Lock()
	last := s.last
	s.mu.Unlock()
	s.p.invalidate(s.key, last)
}
