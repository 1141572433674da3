// Package optimizer provides the session decorator that puts a large
// catalog behind two tools (RFC THV-0038, Appendix A): the client lists
// only find_tool, which searches the catalog by what the caller means, and
// call_tool, which runs a tool it found. Every other tool stays callable by
// its own name too, for clients that already know it.
//
// call_tool is not a second call path: it becomes the tools/call of the
// named tool and goes on through the decorators inside this one and the
// session's own routing, so authorization, rate limits, audit and backend
// re-initialization treat it exactly as a direct call. The optimizer must
// therefore be the outermost of those decorators, and find_tool returns
// only tools that the caller's decorated tools/list (which the policy
// decorator filters per caller) contains.
//
// The search index is built once per catalog, keyed by a hash of its
// tools, and shared by every session whose catalog is the same; a session
// whose catalog changes (a backend's list_changed) looks up, or builds,
// the index of its new catalog.
package optimizer

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"

	"github.com/vmcp/vmcp/internal/jsonrpc"
	"github.com/vmcp/vmcp/internal/session"
	"github.com/vmcp/vmcp/internal/toolsearch"
)

// Names of the optimizer's own tools.
const (
	FindTool = "find_tool"
	CallTool = "call_tool"
)

// Defaults of Options.
const (
	DefaultLimit    = 5
	DefaultMaxLimit = 20
	// DefaultCatalogs is how many catalogs' indexes are kept. Sessions
	// over the same backends nearly always share one catalog; a few more
	// cover backends whose lists differ per session or change.
	DefaultCatalogs = 16
)

// Ranker ranks one catalog's tools against a query; BM25
// (*toolsearch.Index) is the one there is, and an embeddings ranker would
// be another. It must be safe for concurrent use.
type Ranker interface {
	// Search returns up to limit of the tools that match query, best
	// first, each by its position in the docs the Ranker was built from.
	// allow, if not nil, says which positions may be returned.
	Search(query string, limit int, allow func(doc int) bool) []toolsearch.Hit
}

// Builder builds the Ranker of one catalog; docs[i] describes the
// catalog's i-th tool.
type Builder func(docs []toolsearch.Doc) Ranker

// BM25 builds a BM25 index with toolsearch's default weights.
func BM25(docs []toolsearch.Doc) Ranker { return toolsearch.NewIndex(docs, toolsearch.Weights{}) }

// Options configure an Optimizer. Zero values take the defaults.
type Options struct {
	DefaultLimit int     // find_tool's limit when the caller gives none
	MaxLimit     int     // the most find_tool returns
	Catalogs     int     // how many catalogs' indexes are kept
	Build        Builder // nil: BM25
	Logger       *slog.Logger
}

// Optimizer holds what every optimized session shares: its options and
// the indexes of the catalogs seen. Safe for concurrent use.
type Optimizer struct {
	opts  Options
	cache *cache
	list  []json.RawMessage // find_tool and call_tool, as tools/list shows them
}

// New returns an Optimizer; opts are checked by the config (package
// config), so New only fills in defaults.
func New(opts Options) *Optimizer {
	switch {
	case opts.MaxLimit <= 0 && opts.DefaultLimit <= 0:
		opts.DefaultLimit, opts.MaxLimit = DefaultLimit, DefaultMaxLimit
	case opts.MaxLimit <= 0:
		opts.MaxLimit = max(DefaultMaxLimit, opts.DefaultLimit)
	case opts.DefaultLimit <= 0:
		opts.DefaultLimit = min(DefaultLimit, opts.MaxLimit)
	}
	opts.DefaultLimit = min(opts.DefaultLimit, opts.MaxLimit)
	if opts.Catalogs <= 0 {
		opts.Catalogs = DefaultCatalogs
	}
	if opts.Build == nil {
		opts.Build = BM25
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Optimizer{opts: opts, cache: newCache(opts.Build, opts.Catalogs, opts.Logger), list: ownTools(opts.DefaultLimit, opts.MaxLimit)}
}

// Decorator returns the decorator that optimizes each session. It must
// come before (outside) authorization and rate limits in
// FactoryOptions.Decorators, so that call_tool meets them as a direct call
// does.
func (o *Optimizer) Decorator() session.Decorator {
	return func(s *session.Session, next session.Operations) session.Operations {
		return o.Wrap(next, func() []json.RawMessage {
			if c := s.Catalog(); c != nil {
				return c.Tools
			}
			return nil
		})
	}
}

// Wrap optimizes next. catalog returns the session's whole tool list as it
// is now (before any caller's filtering), which the shared index is built
// from; the caller's view is next.List.
func (o *Optimizer) Wrap(next session.Operations, catalog func() []json.RawMessage) session.Operations {
	return &ops{next: next, o: o, catalog: catalog}
}

type ops struct {
	next    session.Operations
	o       *Optimizer
	catalog func() []json.RawMessage

	mu    sync.Mutex
	src   []json.RawMessage // the catalog last seen
	idx   *index            // its index (built from src or an equal catalog)
	views []allowView       // for idx: the caller views seen, newest last
}

// allowView is which of idx's tools one caller's tools/list holds.
type allowView struct {
	list  []json.RawMessage
	allow bitset
}

// maxQueryBytes bounds find_tool's query: a search costs in proportion to
// its words.
const maxQueryBytes = 1024

// maxViews bounds a session's remembered views, as the policy decorator
// bounds its callers.
const maxViews = 8

// List implements session.Operations: tools/list shows the optimizer's two
// tools (while the session can list at all); other lists pass through.
func (p *ops) List(ctx context.Context, l session.List) ([]json.RawMessage, error) {
	if l != session.ListTools {
		return p.next.List(ctx, l)
	}
	if _, err := p.next.List(ctx, l); err != nil {
		return nil, err
	}
	return p.o.list, nil
}

// Call implements session.Operations. Members are read by their exact
// names, as the session routes them.
func (p *ops) Call(ctx context.Context, method string, params json.RawMessage) (json.RawMessage, error) {
	if method != "tools/call" {
		return p.next.Call(ctx, method, params)
	}
	switch name, _ := stringMember(params, "name"); name {
	case FindTool:
		args, _ := jsonrpc.Member(params, "arguments")
		return p.findTool(ctx, args)
	case CallTool:
		return p.callTool(ctx, params)
	}
	return p.next.Call(ctx, method, params)
}

func (p *ops) findTool(ctx context.Context, args json.RawMessage) (json.RawMessage, error) {
	var in struct {
		Query *string `json:"query"`
		Limit *int    `json:"limit"`
	}
	if err := unmarshalArgs(args, &in); err != nil {
		return toolError("find_tool: arguments must be an object with query (a string) and limit (an integer)"), nil
	}
	if in.Query == nil || *in.Query == "" {
		return toolError("find_tool: query is required: say what you want to do, for example \"read the contents of a file\""), nil
	}
	if len(*in.Query) > maxQueryBytes {
		return toolError(fmt.Sprintf("find_tool: query is too long: at most %d bytes; say in a few words what you want to do", maxQueryBytes)), nil
	}
	limit := p.o.opts.DefaultLimit
	if in.Limit != nil {
		if *in.Limit < 1 {
			return toolError("find_tool: limit must be 1 or more"), nil
		}
		limit = min(*in.Limit, p.o.opts.MaxLimit)
	}
	visible, err := p.next.List(ctx, session.ListTools)
	if err != nil {
		return nil, err
	}
	idx, allow := p.view(visible)
	hits := idx.ranker.Search(*in.Query, limit, allow)
	found := make([]json.RawMessage, 0, len(hits))
	for _, h := range hits {
		found = append(found, idx.summary(h.Doc))
	}
	return findResult(found), nil
}

// view returns the index of the session's current catalog and which of its
// tools the caller may see (nil: all).
func (p *ops) view(visible []json.RawMessage) (*index, func(int) bool) {
	tools := p.catalog()
	p.mu.Lock()
	idx, src := p.idx, p.src
	p.mu.Unlock()
	if idx == nil || !sameSlice(src, tools) {
		// Built (or waited for) without the session's lock: another
		// session may be building the same index meanwhile.
		idx = p.o.cache.get(tools)
		p.mu.Lock()
		if p.idx != idx {
			p.idx, p.views = idx, nil
		}
		p.src = tools
		p.mu.Unlock()
	}
	if sameSlice(visible, tools) || sameSlice(visible, idx.tools) {
		return idx, nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	var allow bitset
	for _, v := range p.views {
		if sameSlice(v.list, visible) {
			allow = v.allow
		}
	}
	if allow == nil {
		allow = idx.allowed(visible)
		if p.idx == idx {
			if len(p.views) == maxViews {
				p.views = p.views[1:]
			}
			p.views = append(p.views, allowView{list: visible, allow: allow})
		}
	}
	return idx, allow.has
}

// callTool runs the named tool through next, as a tools/call of its own:
// its params are the name and arguments call_tool was given, and the
// call's _meta (its progress token) and task, and nothing else, so that
// every decorator and the backend read the same name and arguments.
func (p *ops) callTool(ctx context.Context, params json.RawMessage) (json.RawMessage, error) {
	args, err := jsonrpc.Member(params, "arguments")
	if err != nil {
		return p.next.Call(ctx, "tools/call", params) // the session answers -32602
	}
	const usage = "call_tool: arguments must be an object with name (a string, a tool that find_tool returned) and arguments (an object)"
	if len(args) == 0 || string(args) == "null" {
		return toolError(usage), nil
	}
	name, ok := stringMember(args, "name")
	if !ok || name == "" {
		return toolError(usage), nil
	}
	a, err := jsonrpc.Member(args, "arguments")
	if err != nil {
		return toolError(usage), nil
	}
	if len(a) == 0 || string(a) == "null" {
		a = json.RawMessage(`{}`)
	} else if bytes.TrimLeft(a, " \t\r\n")[0] != '{' {
		return toolError(usage), nil
	}
	inner := append(jsonrpc.AppendString([]byte(`{"name":`), name), `,"arguments":`...)
	inner = append(inner, a...)
	for _, key := range []string{"_meta", "task"} {
		if v, _ := jsonrpc.Member(params, key); v != nil {
			inner = append(jsonrpc.AppendString(append(inner, ','), key), ':')
			inner = append(inner, v...)
		}
	}
	return p.next.Call(ctx, "tools/call", append(inner, '}'))
}

func stringMember(obj json.RawMessage, key string) (string, bool) {
	raw, err := jsonrpc.Member(obj, key)
	if err != nil || raw == nil {
		return "", false
	}
	return jsonrpc.Unquote(raw)
}

// unmarshalArgs decodes a call's arguments; absent or null arguments are
// an empty object.
func unmarshalArgs(args json.RawMessage, v any) error {
	if len(args) == 0 || string(args) == "null" {
		return nil
	}
	return json.Unmarshal(args, v)
}

// sameSlice reports whether a and b are the same slice, not merely equal:
// a new catalog, or a caller's new view, is a new slice.
func sameSlice(a, b []json.RawMessage) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}
