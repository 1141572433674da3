package audit

import (
	"context"
	"encoding/json"
	"net/url"
	"strings"
	"time"

	"github.com/vmcp/vmcp/internal/guard"
	"github.com/vmcp/vmcp/internal/identity"
	"github.com/vmcp/vmcp/internal/jsonrpc"
	"github.com/vmcp/vmcp/internal/session"
)

// Hooks returns the session hooks that record session_created,
// backend_client_initialized, session_closed (also for a session this
// replica ends without holding it) and refused initializes.
func (l *Log) Hooks() session.Hooks {
	return session.Hooks{
		BackendInitialized: func(ctx context.Context, s *session.Session, backend string, took time.Duration, err error) {
			e := l.sessionEvent(ctx, "backend_client_initialized", s)
			e.Backend, e.Outcome, e.Duration = backend, session.Outcome(err), ms(took)
			l.Record(e)
		},
		BackendJoined: func(ctx context.Context, s *session.Session, backend, trigger string, took time.Duration, err error) {
			if err != nil {
				return // a backend that stays down is retried every 30 s: metrics and the log say so
			}
			e := l.sessionEvent(ctx, "backend_client_initialized", s)
			e.Backend, e.Outcome, e.Duration, e.How = backend, session.Outcome(err), ms(took), trigger
			l.Record(e)
		},
		SessionStarted: func(ctx context.Context, s *session.Session, how string) {
			e := l.sessionEvent(ctx, "session_created", s)
			e.How = how
			failed := map[string]bool{}
			for _, u := range s.Unavailable() {
				e.Failed = append(e.Failed, u.Name)
				failed[u.Name] = true
			}
			for _, b := range s.BackendSessions() {
				if !failed[b.Name] {
					e.Backends = append(e.Backends, b.Name)
				}
			}
			l.Record(e)
		},
		SessionEnded: func(s *session.Session, reason session.EndReason) {
			e := l.sessionEvent(context.Background(), "session_closed", s)
			e.Reason = string(reason)
			l.Record(e)
		},
		StoredSessionEnded: func(_ context.Context, id, identity string, reason session.EndReason) {
			e := Event{Event: "session_closed", Session: l.SessionName(id), Reason: string(reason)}
			setSubject(&e, context.Background(), identity) // the bound caller, as for SessionEnded
			l.Record(e)
		},
		SessionRejected: func(ctx context.Context, id, reason string) {
			e := Event{Event: "session_rejected", Reason: reason}
			if reason == "rate" {
				e = Event{Event: "rate_limited", Limit: "initialize"}
			}
			setSubject(&e, ctx, id)
			l.Record(e)
		},
	}
}

// Decorator records each tools/call, prompts/get and resources/read of a
// session, and the calls a policy or rate limit refused. It must wrap the
// guards (come before them in FactoryOptions.Decorators) to see their
// refusals.
func (l *Log) Decorator() session.Decorator {
	return func(s *session.Session, next session.Operations) session.Operations {
		return &audited{l: l, s: s, next: next, name: l.SessionName(s.ID())}
	}
}

type audited struct {
	l    *Log
	s    *session.Session
	next session.Operations
	name string // the session's keyed hash
}

// The events of each method audited; the rest pass through unrecorded.
var callEvents = map[string]string{
	"tools/call":     "tool_call",
	"prompts/get":    "prompt_get",
	"resources/read": "resource_read",
}

func (a *audited) Call(ctx context.Context, method string, params json.RawMessage) (json.RawMessage, error) {
	kind, ok := callEvents[method]
	if !ok {
		return a.next.Call(ctx, method, params)
	}
	start := time.Now()
	res, err := a.next.Call(ctx, method, params)
	e := Event{Event: kind, Session: a.name, Method: method, Duration: ms(time.Since(start))}
	setSubject(&e, ctx, a.s.Identity())
	a.item(&e, method, params)
	switch code := errorCode(err); {
	case code == guard.CodeForbidden:
		e.Event, e.Decision, e.Outcome = "policy_denied", "deny", "denied"
	case code == guard.CodeRateLimited:
		e.Event, e.Limit, e.Outcome = "rate_limited", "call", "rate_limited"
	default:
		if a.l.opts.Policy {
			e.Decision = "allow"
		}
		e.Outcome = session.Outcome(err)
		if session.InvalidParams(err) { // an unknown tool, say
			e.Outcome = "invalid_params"
		} else if err == nil && method == "tools/call" && toolError(res) {
			e.Outcome = "tool_error"
		}
	}
	a.l.Record(e)
	return res, err
}

func (a *audited) List(ctx context.Context, list session.List) ([]json.RawMessage, error) {
	return a.next.List(ctx, list)
}

// item fills in what a call names and the backend that serves it.
func (a *audited) item(e *Event, method string, params json.RawMessage) {
	var p struct {
		Name      string          `json:"name"`
		URI       string          `json:"uri"`
		Arguments json.RawMessage `json:"arguments"`
	}
	json.Unmarshal(params, &p)
	cat := a.s.Catalog()
	switch method {
	case "tools/call":
		e.Tool = p.Name
		if cat != nil {
			e.Backend = cat.ToolRoutes[p.Name].Backend
		}
	case "prompts/get":
		e.Prompt = p.Name
		if cat != nil {
			e.Backend = cat.PromptRoutes[p.Name].Backend
		}
	case "resources/read":
		e.Resource = bareURI(p.URI)
		if cat != nil {
			e.Backend, _ = cat.ResourceBackend(p.URI)
		}
	}
	if a.l.opts.Arguments && len(p.Arguments) > 0 && json.Valid(p.Arguments) {
		e.Args = p.Arguments
		if a.l.opts.Redact != nil {
			e.Args = a.l.opts.Redact(p.Arguments)
		}
	}
}

// bareURI is uri without user info, query or fragment, where credentials
// are carried.
func bareURI(uri string) string {
	u, err := url.Parse(uri)
	if err != nil {
		if i := strings.IndexAny(uri, "?#"); i >= 0 {
			return uri[:i]
		}
		return uri
	}
	u.User, u.RawQuery, u.ForceQuery, u.Fragment, u.RawFragment = nil, "", false, "", ""
	return u.String()
}

func (l *Log) sessionEvent(ctx context.Context, kind string, s *session.Session) Event {
	e := Event{Event: kind, Session: l.SessionName(s.ID())}
	setSubject(&e, ctx, s.Identity())
	return e
}

// setSubject names the caller: the verified identity in ctx, else the one
// the session is bound to ("sub:" iss NUL sub, or "ip:" address).
func setSubject(e *Event, ctx context.Context, bound string) {
	if id := identity.FromContext(ctx); id != nil && id.Subject != "" {
		e.Issuer, e.Subject = id.Issuer, id.Subject
		return
	}
	switch {
	case strings.HasPrefix(bound, "sub:"):
		e.Issuer, e.Subject, _ = strings.Cut(bound[len("sub:"):], "\x00")
	case strings.HasPrefix(bound, "ip:"):
		e.Client = bound[len("ip:"):]
	}
}

func errorCode(err error) int {
	if e := jsonrpc.AsError(err); e != nil {
		return e.Code
	}
	return 0
}

// toolError reports whether a tools/call result says isError.
func toolError(result json.RawMessage) bool {
	var r struct {
		IsError bool `json:"isError"`
	}
	return json.Unmarshal(result, &r) == nil && r.IsError
}

func ms(d time.Duration) *float64 {
	f := float64(d.Microseconds()) / 1000
	return &f
}
