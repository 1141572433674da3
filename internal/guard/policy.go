package guard

import (
	"context"
	"encoding/json"
	"log/slog"
	"strconv"
	"sync"

	"github.com/vmcp/vmcp/internal/aggregate"
	"github.com/vmcp/vmcp/internal/identity"
	"github.com/vmcp/vmcp/internal/jsonrpc"
	"github.com/vmcp/vmcp/internal/policy"
	"github.com/vmcp/vmcp/internal/session"
)

// Policy returns a decorator that applies set to every session: what the
// caller may not use is absent from its lists, and a call to it gets
// CodeForbidden, a WARN log line naming the caller, the method, the item
// and the deciding rule (never argument values), and a count in obs (nil:
// none).
//
// The rules that do not read arguments are decided once per caller and
// catalog (policy.Set.Static) and cached in the session; the cache follows
// the catalog, so a list_changed that brings a new catalog brings new
// decisions. Rules that read arguments are evaluated on each call.
func Policy(set *policy.Set, log *slog.Logger, obs Observer) session.Decorator {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	obs = orNone(obs)
	return func(s *session.Session, next session.Operations) session.Operations {
		return &policyOps{next: next, s: s, set: set, log: log, obs: obs, views: make(map[string]*view)}
	}
}

type policyOps struct {
	next session.Operations
	s    *session.Session
	set  *policy.Set
	log  *slog.Logger
	obs  Observer

	mu    sync.Mutex
	views map[string]*view // by callerKey
}

// maxViews bounds a session's cached callers. A session serves one
// identity, but each refreshed token (new claims) is a new view.
const maxViews = 8

// view is one caller's decisions for one catalog. Guarded by
// policyOps.mu.
type view struct {
	cat      *aggregate.Catalog
	verdicts map[itemKey]policy.Verdict
	src      [session.ListTasks][]json.RawMessage // the catalog lists filtered, as the session gave them
	lists    [session.ListTasks][]json.RawMessage // and filtered
}

type itemKey struct {
	kind policy.Kind
	name string
}

// callerKey names what a caller's decisions depend on: its identity, and
// for a token, the token's expiry, since a refreshed token may carry other
// claims.
func callerKey(id *identity.Identity) string {
	if id == nil {
		return ""
	}
	return id.Key() + "\x00" + strconv.FormatInt(id.Expiry.UnixNano(), 36)
}

// viewLocked returns the caller's view of the current catalog.
func (p *policyOps) viewLocked(id *identity.Identity) *view {
	key := callerKey(id)
	cat := p.s.Catalog()
	v := p.views[key]
	if v == nil || v.cat != cat {
		if v == nil && len(p.views) >= maxViews {
			clear(p.views)
		}
		v = &view{cat: cat, verdicts: make(map[itemKey]policy.Verdict)}
		p.views[key] = v
	}
	return v
}

// verdictLocked decides it statically, from the cache when it can. Only
// items of the catalog are cached, so a client's made-up names cannot grow
// the cache.
func (p *policyOps) verdictLocked(ctx context.Context, v *view, id *identity.Identity, it policy.Item) policy.Verdict {
	k := itemKey{it.Kind, it.Name}
	if vd, ok := v.verdicts[k]; ok {
		return vd
	}
	vd := p.set.Static(ctx, id, it)
	if it.Backend != "" {
		v.verdicts[k] = vd
	}
	return vd
}

// List implements session.Operations: the session's list without what the
// caller may not use.
func (p *policyOps) List(ctx context.Context, l session.List) ([]json.RawMessage, error) {
	all, err := p.next.List(ctx, l)
	if err != nil || l == session.ListTasks {
		// A caller's tasks come from calls the policy let it make.
		return all, err
	}
	id := identity.FromContext(ctx)
	p.mu.Lock()
	defer p.mu.Unlock()
	v := p.viewLocked(id)
	if sameSlice(v.src[l], all) && v.lists[l] != nil {
		return v.lists[l], nil
	}
	out := make([]json.RawMessage, 0, len(all))
	for _, raw := range all {
		if it, ok := listItem(v.cat, l, raw); ok && p.verdictLocked(ctx, v, id, it).Visible {
			out = append(out, raw)
		}
	}
	v.src[l], v.lists[l] = all, out
	return out, nil
}

// sameSlice reports whether a and b are the same slice, not merely equal:
// a new catalog has new slices.
func sameSlice(a, b []json.RawMessage) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}

// listItem names a list entry and finds its backend.
func listItem(cat *aggregate.Catalog, l session.List, raw json.RawMessage) (policy.Item, bool) {
	var it policy.Item
	var member string
	switch l {
	case session.ListTools:
		it.Kind, member = policy.Tool, "name"
	case session.ListPrompts:
		it.Kind, member = policy.Prompt, "name"
	case session.ListResources:
		it.Kind, member = policy.Resource, "uri"
	case session.ListResourceTemplates:
		it.Kind, member = policy.Resource, "uriTemplate"
	}
	name, ok := stringMember(raw, member)
	if !ok {
		return it, false
	}
	it.Name = name
	switch l {
	case session.ListTools:
		it.Backend = cat.ToolRoutes[name].Backend
	case session.ListPrompts:
		it.Backend = cat.PromptRoutes[name].Backend
	case session.ListResources:
		it.Backend = cat.ResourceRoutes[name]
	case session.ListResourceTemplates:
		it.Backend, _ = cat.TemplateBackend(name)
	}
	return it, true
}

func stringMember(obj json.RawMessage, key string) (string, bool) {
	raw, err := jsonrpc.Member(obj, key)
	if err != nil || raw == nil {
		return "", false
	}
	return jsonrpc.Unquote(raw)
}

// Call implements session.Operations: a call the caller may not make is
// answered CodeForbidden and logged; the rest go on.
func (p *policyOps) Call(ctx context.Context, method string, params json.RawMessage) (json.RawMessage, error) {
	it, argsMember, ok := p.callItem(method, params)
	if !ok {
		// Not an item call (logging/setLevel), or params the session will
		// refuse with its own -32602.
		return p.next.Call(ctx, method, params)
	}
	id := identity.FromContext(ctx)
	p.mu.Lock()
	vd := p.verdictLocked(ctx, p.viewLocked(id), id, it)
	p.mu.Unlock()
	d := vd.Decision
	switch {
	case !vd.Visible:
		d.Allow = false
	case vd.Final:
	default:
		var raw json.RawMessage
		if argsMember != "" {
			raw, _ = jsonrpc.Member(params, argsMember)
		}
		args, err := decodeArguments(raw)
		if err != nil {
			return nil, invalidParams(err.Error())
		}
		d = p.set.Decide(ctx, id, it, args)
	}
	if !d.Allow {
		p.log.WarnContext(ctx, "call denied by policy", "caller", id,
			"method", method, "kind", it.Kind.String(), "name", clip(it.Name), "backend", it.Backend, "rule", d.Rule)
		p.obs.ObservePolicyDenial(it.Kind.String())
		return nil, jsonrpc.Errorf(CodeForbidden, "Forbidden: %s %q is not allowed for this caller", it.Kind, it.Name)
	}
	return p.next.Call(ctx, method, params)
}

// callItem names the item a call is about and the params member holding
// its arguments ("" when it has none: rules see empty arguments).
func (p *policyOps) callItem(method string, params json.RawMessage) (policy.Item, string, bool) {
	cat := p.s.Catalog()
	switch method {
	case "tools/call":
		name, ok := stringMember(params, "name")
		return policy.Item{Kind: policy.Tool, Name: name, Backend: cat.ToolRoutes[name].Backend}, "arguments", ok
	case "prompts/get":
		name, ok := stringMember(params, "name")
		return policy.Item{Kind: policy.Prompt, Name: name, Backend: cat.PromptRoutes[name].Backend}, "arguments", ok
	case "resources/read", "resources/subscribe", "resources/unsubscribe":
		uri, ok := stringMember(params, "uri")
		b, _ := cat.ResourceBackend(uri)
		return policy.Item{Kind: policy.Resource, Name: uri, Backend: b}, "", ok
	case "completion/complete":
		ref, err := jsonrpc.Member(params, "ref")
		if err != nil || ref == nil {
			return policy.Item{}, "", false
		}
		typ, _ := stringMember(ref, "type")
		switch typ {
		case "ref/prompt":
			name, ok := stringMember(ref, "name")
			return policy.Item{Kind: policy.Prompt, Name: name, Backend: cat.PromptRoutes[name].Backend}, "", ok
		case "ref/resource":
			uri, ok := stringMember(ref, "uri")
			b, found := cat.TemplateBackend(uri)
			if !found {
				b, _ = cat.ResourceBackend(uri)
			}
			return policy.Item{Kind: policy.Resource, Name: uri, Backend: b}, "", ok
		}
	}
	return policy.Item{}, "", false
}

// clip bounds a client-chosen name in a log line.
func clip(s string) string {
	const limit = 200
	if len(s) <= limit {
		return s
	}
	return s[:limit] + "…"
}
