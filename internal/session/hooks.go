package session

import (
	"context"
	"errors"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/vmcp/vmcp/internal/credentials"
)

// Hooks are told of a session's life and of its backends' work: the
// metrics and the audit trail listen here, as net/http/httptrace's
// ClientTrace listens to a request. Every field is optional. The funcs run
// on the goroutine doing the work, with no lock held: they must be safe
// for concurrent use, quick, and must not block.
//
// A Session's ID is a secret: a hook that records sessions names them by
// a keyed hash of it (see package audit), never by the ID.
type Hooks struct {
	// SessionStarted: a session reached its client. how is "initialize",
	// or "takeover" for one rebuilt from the Store on this replica.
	SessionStarted func(ctx context.Context, s *Session, how string)
	// SessionEnded: this replica let go of s, for reason.
	SessionEnded func(s *Session, reason EndReason)
	// StoredSessionEnded: this replica ended, for reason (EndDelete or
	// EndTTL), a session it does not hold, from its metadata in the
	// Store; identity is the one the session is bound to. The replica
	// holding it, if any, reports SessionEnded with EndEvicted.
	StoredSessionEnded func(ctx context.Context, id, identity string, reason EndReason)
	// SessionRejected: an initialize was refused before any backend was
	// contacted: reason is "limit" (server.maxSessions), "identity"
	// (maxSessionsPerIdentity) or "rate" (the initialize rate limit).
	SessionRejected func(ctx context.Context, identity, reason string)
	// BackendInitialized: one backend's client for s was made (err nil)
	// or failed, taking took, as s started. It runs once per configured
	// backend, in config order, before SessionStarted.
	BackendInitialized func(ctx context.Context, s *Session, backend string, took time.Duration, err error)
	// BackendJoined: live session s connected a backend after it started
	// (err nil), or tried to: one it had not connected, or one a reload
	// changed. trigger is "reload" or "retry" (retry.go).
	BackendJoined func(ctx context.Context, s *Session, backend, trigger string, took time.Duration, err error)
	// BackendCalled: one request went to a backend.
	BackendCalled func(ctx context.Context, c *Call)
	// BackendReinitialized: a session's client of a backend was replaced
	// by a new backend session (err nil), or the attempt failed. cause is
	// a ReinitCause.
	BackendReinitialized func(backend string, cause ReinitCause, err error)
}

// Call describes one request a session sent to a backend.
type Call struct {
	Session *Session
	Backend string
	Method  string
	Tool    string // the backend's name for the tool or prompt, if any
	Took    time.Duration
	Retried bool  // sent again on a new backend session
	Err     error // nil: the backend answered with a result
}

// EndReason says why a replica let go of a session.
type EndReason string

// The reasons a session ends here.
const (
	EndDelete   EndReason = "delete"   // the client's DELETE
	EndTTL      EndReason = "ttl"      // session.ttl passed
	EndIdle     EndReason = "idle"     // session.idleTimeout passed
	EndShutdown EndReason = "shutdown" // vmcp is stopping
	// EndEvicted: this replica released its runtime, and the session
	// lives on elsewhere (shared store), or another replica deleted it.
	EndEvicted EndReason = "evicted"
)

// ReinitCause says why a backend session was replaced.
type ReinitCause string

// The causes of a re-initialization.
const (
	ReinitSessionLost  ReinitCause = "session_lost" // the backend forgot the session (404)
	ReinitUnreachable  ReinitCause = "unreachable"  // a call found the backend unreachable
	ReinitUnauthorized ReinitCause = "unauthorized" // the backend refused the credential
	ReinitNotConnected ReinitCause = "not_connected"
)

// hooks runs the factory's hooks; the zero value runs none.
type hooks []Hooks

func (h hooks) started(ctx context.Context, s *Session, how string) {
	for _, x := range h {
		if x.SessionStarted != nil {
			x.SessionStarted(ctx, s, how)
		}
	}
}

func (h hooks) ended(s *Session, reason EndReason) {
	for _, x := range h {
		if x.SessionEnded != nil {
			x.SessionEnded(s, reason)
		}
	}
}

func (h hooks) storedEnded(ctx context.Context, id, identity string, reason EndReason) {
	for _, x := range h {
		if x.StoredSessionEnded != nil {
			x.StoredSessionEnded(ctx, id, identity, reason)
		}
	}
}

func (h hooks) rejected(ctx context.Context, identity string, err error) {
	reason := ""
	switch {
	case errors.Is(err, ErrAtCapacity):
		reason = "limit"
	case errors.Is(err, ErrIdentityAtCapacity):
		reason = "identity"
	case errors.Is(err, ErrRateLimited):
		reason = "rate"
	default:
		return
	}
	for _, x := range h {
		if x.SessionRejected != nil {
			x.SessionRejected(ctx, identity, reason)
		}
	}
}

func (h hooks) initialized(ctx context.Context, s *Session, backend string, took time.Duration, err error) {
	for _, x := range h {
		if x.BackendInitialized != nil {
			x.BackendInitialized(ctx, s, backend, took, err)
		}
	}
}

// The triggers of BackendJoined.
const (
	joinedOnReload = "reload"
	joinedOnRetry  = "retry"
)

func (h hooks) joined(ctx context.Context, s *Session, backend, trigger string, took time.Duration, err error) {
	for _, x := range h {
		if x.BackendJoined != nil {
			x.BackendJoined(ctx, s, backend, trigger, took, err)
		}
	}
}

func (h hooks) called(ctx context.Context, c *Call) {
	for _, x := range h {
		if x.BackendCalled != nil {
			x.BackendCalled(ctx, c)
		}
	}
}

func (h hooks) reinitialized(backend string, cause ReinitCause, err error) {
	for _, x := range h {
		if x.BackendReinitialized != nil {
			x.BackendReinitialized(backend, cause, err)
		}
	}
}

// Outcome is the category of a call's or an initialize's error for
// metrics, audit and spans: "ok", or one of a fixed set of words
// (reason's, in snake case), never the backend's own text.
func Outcome(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, ErrClosed):
		return "closed"
	case errors.Is(err, credentials.ErrNoIdentity):
		return "no_identity"
	}
	return strings.ReplaceAll(reason(err), " ", "_")
}

// noSpan stands for a span when tracing is off.
var noSpan trace.Span = noop.Span{}

// tracerOr is t, or a tracer that records nothing.
func tracerOr(t trace.Tracer) trace.Tracer {
	if t == nil {
		return noop.NewTracerProvider().Tracer("")
	}
	return t
}

// endSpan ends span with err's outcome as its status, and attrs.
func endSpan(span trace.Span, err error, attrs ...attribute.KeyValue) {
	if !span.IsRecording() {
		span.End()
		return
	}
	span.SetAttributes(append(attrs, attribute.String("vmcp.outcome", Outcome(err)))...)
	if err != nil {
		span.SetStatus(codes.Error, Outcome(err))
	}
	span.End()
}
