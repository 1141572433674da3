package session

import (
	"context"
	"encoding/json"

	"github.com/vmcp/vmcp/internal/jsonrpc"
)

// Operations is what a client can ask of a session once it exists: run a
// request, or read one of the catalog's lists. It is the seam decorators
// wrap (authorization, rate limits, later the optimizer and audit): each
// decorator is an Operations that calls the next one, and the innermost is
// the Session itself, so every request still takes the one call path
// front end -> manager -> session (decorated) -> backend connector.
//
// Implementations must be safe for concurrent use. The caller's identity,
// if any, is in ctx (identity.FromContext).
type Operations interface {
	// Call runs one request: tools/call, prompts/get, resources/read,
	// completion/complete, resources/subscribe, resources/unsubscribe,
	// logging/setLevel, or tasks/get, tasks/result, tasks/cancel. params
	// is never empty.
	Call(ctx context.Context, method string, params json.RawMessage) (json.RawMessage, error)
	// List returns the whole of one list, before paging. The slice and its
	// items must not be modified.
	List(ctx context.Context, list List) ([]json.RawMessage, error)
}

// List names one of a session's catalog lists.
type List int

const (
	ListTools List = iota
	ListResources
	ListResourceTemplates
	ListPrompts
	ListTasks // the backends' tasks, merged (tasks.go)
)

// Decorator wraps a session's Operations. It is called once per Session,
// by the Factory that builds it: when a client initializes, and again when
// a replica rebuilds a session it takes over, so both are decorated alike.
// s is the session being decorated (for its catalog and bound identity);
// next is what the decorator calls on. What it returns lives as long as
// s; it must start nothing that outlives s.Done.
type Decorator func(s *Session, next Operations) Operations

// Operations returns the session's operations with every configured
// decorator applied, outermost first in FactoryOptions.Decorators.
func (s *Session) Operations() Operations { return *s.ops.Load() }

// Identity is the identity the session is bound to ("sub:…" or "ip:…",
// see IdentityAllowed). It never changes.
func (s *Session) Identity() string { return s.bound }

// decorate wraps s in decorators, the first outermost, and makes that
// what Operations returns; a reload that changes them decorates s anew.
func (s *Session) decorate(decorators []Decorator) {
	var ops Operations = s
	for i := len(decorators) - 1; i >= 0; i-- {
		ops = decorators[i](s, ops)
	}
	s.ops.Store(&ops)
}

// Call runs one request on the session, undecorated. It implements
// Operations; clients reach it through Session.Operations.
func (s *Session) Call(ctx context.Context, method string, params json.RawMessage) (json.RawMessage, error) {
	switch method {
	case "tools/call":
		return s.CallTool(ctx, params)
	case "prompts/get":
		return s.GetPrompt(ctx, params)
	case "resources/read":
		return s.ReadResource(ctx, params)
	case "completion/complete":
		return s.Complete(ctx, params)
	case "resources/subscribe":
		return s.Subscribe(ctx, params)
	case "resources/unsubscribe":
		return s.Unsubscribe(ctx, params)
	case "logging/setLevel":
		if err := s.Broadcast(ctx, method, params); err != nil {
			return nil, err
		}
		return json.RawMessage(`{}`), nil
	case "tasks/get", "tasks/result", "tasks/cancel":
		return s.Task(ctx, method, params)
	}
	return nil, jsonrpc.Errorf(jsonrpc.CodeMethodNotFound, "method not found: %s", method)
}

// List returns one of the session's lists, undecorated. It implements
// Operations.
func (s *Session) List(ctx context.Context, l List) ([]json.RawMessage, error) {
	switch l {
	case ListTasks:
		return s.ListTasks(ctx)
	case ListResources:
		return s.Resources()
	case ListResourceTemplates:
		return s.ResourceTemplates()
	case ListPrompts:
		return s.Prompts()
	}
	return s.Tools()
}
