package session

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/vmcp/vmcp/internal/backend"
	"github.com/vmcp/vmcp/internal/identity"
	"github.com/vmcp/vmcp/internal/jsonrpc"
	"github.com/vmcp/vmcp/internal/redact"
)

// Credentials resolve one backend's outgoing credential for a session
// (package credentials provides them). Safe for concurrent use.
type Credentials interface {
	// Source returns the credential of a session's client of the
	// backend, for the caller identified in ctx. It fetches nothing yet.
	Source(ctx context.Context) (CredentialSource, error)
}

// CredentialSource is one session's credential for one backend: its
// clients ask it for a token on every request. Safe for concurrent use.
type CredentialSource interface {
	backend.TokenSource
	// Invalidate drops the token handed out last (the backend refused
	// it), so that the next Token fetches a new one.
	Invalidate()
	// Redactor hides the tokens handed out lately.
	Redactor() *redact.Redactor
}

// scrub keeps the tokens src handed out from reaching logs and clients in
// a backend's JSON-RPC error, which may quote the request it refused.
func scrub(src CredentialSource, err error) error {
	if src == nil || err == nil {
		return err
	}
	red := src.Redactor()
	e, ok := err.(*jsonrpc.Error)
	if !ok {
		// A wrapped answer, as a listing's: its text is all that is
		// shown, and it loses its type only if it quoted a token.
		if msg := red.Redact(err.Error()); msg != err.Error() {
			return errors.New(msg)
		}
		return err
	}
	return red.Error(e)
}

// refusedBackoff is how long vmcp waits before each new client it makes
// with fresh credentials after a backend refused them: RFC-38's 100, 200
// and 400 ms, three tries at most.
var refusedBackoff = [...]time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond}

// retryRefused is what happens when a backend answered 401 or 403 to a
// client with src's credential: up to three times, after the backoff, it
// drops the cached token and calls connect, which makes a new client
// with src (and records the outcome in the breaker). It stops at the
// first outcome other than a refusal, and returns it.
func (f *Factory) retryRefused(ctx context.Context, name string, src CredentialSource, br *Breaker, connect func() error) error {
	err := fmt.Errorf("backend %q: %w", name, backend.ErrUnauthorized)
	for i, wait := range refusedBackoff {
		f.log.WarnContext(ctx, "backend refused vmcp's credential; making a new client with fresh credentials",
			"backend", name, "try", i+1, "of", len(refusedBackoff), "after", wait)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w; gave up waiting to retry: %w", err, ctx.Err())
		}
		if !br.Allow() {
			return circuitOpen(name, br)
		}
		src.Invalidate()
		if err = connect(); !errors.Is(err, backend.ErrUnauthorized) {
			return err
		}
	}
	return err
}

// resolve returns backend name's credential source for a session whose
// caller is caller; nil, nil when the backend has no credentials.
func resolve(ctx context.Context, name string, creds Credentials, caller *identity.Identity) (CredentialSource, error) {
	if creds == nil {
		return nil, nil
	}
	if caller != nil {
		ctx = identity.NewContext(ctx, caller)
	}
	src, err := creds.Source(ctx)
	if err != nil {
		return nil, fmt.Errorf("backend %q: %w", name, err)
	}
	return src, nil
}

// credential returns the member's credential source, resolving it if
// an earlier attempt could not (the member then has no client either).
func (m *member) credential(ctx context.Context) (CredentialSource, error) {
	m.mu.Lock()
	src := m.creds
	m.mu.Unlock()
	if src != nil || m.credentials == nil {
		return src, nil
	}
	src, err := resolve(ctx, m.name, m.credentials, m.s.caller)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	m.creds = src
	m.mu.Unlock()
	return src, nil
}

// refused reports whether err is a backend's 401 or 403 to a member with
// a credential that fresh tokens may fix.
func (m *member) refused(err error) bool {
	return m.credentials != nil && errors.Is(err, backend.ErrUnauthorized)
}

// scrub is scrub with the member's credential source.
func (m *member) scrub(err error) error {
	m.mu.Lock()
	src := m.creds
	m.mu.Unlock()
	return scrub(src, err)
}
