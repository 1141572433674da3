// Package session holds vmcp's domain core: a Session owns one live client
// per backend and routes every call by its own catalog; a Factory builds
// complete Sessions; a Manager creates, finds, expires and closes them over
// a metadata Store. Nothing here knows about HTTP.
//
// Decorators (authorization, rate limits, and later the optimizer and
// audit) do not fork the call path: a session's Operations (Call and
// List) is the one seam they wrap. FactoryOptions.Decorators lists them;
// the Factory applies them to every Session it builds, whether for a new
// client or for a session a replica takes over, and the front end calls
// only Session.Operations. A decorator filters what the caller sees (List)
// and gates what it calls (Call); what passes reaches the Session's own
// routing and its backend clients unchanged.
package session

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/vmcp/vmcp/internal/aggregate"
	"github.com/vmcp/vmcp/internal/backend"
	"github.com/vmcp/vmcp/internal/identity"
	"github.com/vmcp/vmcp/internal/jsonrpc"
	"github.com/vmcp/vmcp/internal/recovery"
	"github.com/vmcp/vmcp/internal/store"
)

// ErrClosed is returned by calls on a session that is closing or closed.
var ErrClosed = errors.New("session closed")

// Session is one client session and the backend sessions it owns.
//
// All methods are safe for concurrent use. Close rejects new calls at once,
// waits for calls in flight, then closes every backend client exactly once.
type Session struct {
	id       string
	seq      uint64 // names the session in logs, which must not show id
	created  time.Time
	lastSeen atomic.Int64 // unix nanos

	meta *store.Metadata // guarded by mu
	// roster is the session's backends, in config order; a reload
	// replaces it (reconfigure.go) while the session is in use.
	roster  atomic.Pointer[roster]
	catalog atomic.Pointer[aggregate.Catalog]
	limiter atomic.Pointer[callLimiter] // nil: no limit on calls in flight
	// lineup is the Factory's lineup the session's backends match;
	// reconfMu serialises the reloads that change it.
	lineup   atomic.Pointer[lineup]
	reconfMu sync.Mutex
	// dropping counts the backends a reload removed or replaced that are
	// still closing, once their calls under way end; Close waits for them.
	// Its Adds happen during a reload, a call in flight, so before Close's
	// inflight.Wait returns.
	dropping sync.WaitGroup
	// outage is which backends the session could not connect; set by
	// New, replaced by each reload (reconfigure.go).
	outage atomic.Pointer[outage]
	// retry connects the backends in outage in the background (retry.go).
	retry retrier
	// instructions are the backends' initialize instructions, merged;
	// set by Factory.New, read-only afterwards.
	instructions string
	tasks        taskOwners // which backend owns each task (tasks.go)

	factory   *Factory
	ops       atomic.Pointer[Operations] // the session as decorated (operations.go)
	clientCap clientCaps
	// The session's owner, in two forms that never disagree. bound is the
	// key the session is bound to and counted by (meta.Identity, see
	// IdentityAllowed): "sub:"+iss+NUL+sub, or "ip:"+address for an
	// anonymous client; it is stored, so every replica sees the same.
	// caller is the verified identity behind a "sub:" key, as incoming
	// authentication established it for the request that built this
	// runtime (nil when anonymous); it is held in memory only, and its
	// token, a secret, is the subject of outgoing token exchanges when no
	// request is at hand. caller.Key() == bound whenever caller is set.
	// Neither changes.
	bound  string
	caller *identity.Identity
	peer   atomic.Pointer[Peer]
	ask    askState // whether the client can be sent requests (ask.go)
	// onBackendChange is set by OnBackendChange (reinit.go).
	onBackendChange atomic.Pointer[func()]

	lmu      sync.Mutex                   // guards listings, refreshSeq and refreshed
	listings map[string]aggregate.Backend // each backend's last listing
	// refreshSeq numbers the catalog refreshes as they start; refreshed
	// is, per backend, the number of the last one published (refresh.go).
	refreshSeq uint64
	refreshed  map[string]uint64
	// refreshMu serialises publishing catalogs (a refresh's, a
	// reload's); no backend I/O happens under it.
	refreshMu sync.Mutex

	// ready is closed once the session is built (ready.go); hmu guards
	// the notifications held until then.
	ready     chan struct{}
	readyOnce sync.Once
	hmu       sync.Mutex
	held      []heldNote
	heldBytes int // of the held notifications' params
	flushing  bool

	pmu      sync.Mutex      // guards progress and busy
	progress map[string]Peer // progress token -> the call's Peer
	busy     []Peer          // Peers of calls in flight, oldest first

	mu       sync.Mutex
	closed   bool
	inflight sync.WaitGroup
	done     chan struct{} // closed when Close has finished
	closeErr error
}

// ID returns the session's Mcp-Session-Id. It is a secret: never log it.
func (s *Session) ID() string { return s.id }

// Metadata returns a copy of the session's persistent metadata.
func (s *Session) Metadata() *store.Metadata {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.meta.Clone()
	m.LastSeen = s.LastSeen()
	return m
}

// Created returns when the session was created.
func (s *Session) Created() time.Time { return s.created }

// LastSeen returns when the session last served a request.
func (s *Session) LastSeen() time.Time { return time.Unix(0, s.lastSeen.Load()) }

// Touch records activity at t.
func (s *Session) Touch(t time.Time) { s.lastSeen.Store(t.UnixNano()) }

// Catalog returns the session's current aggregated catalog.
func (s *Session) Catalog() *aggregate.Catalog { return s.catalog.Load() }

// Tools returns the aggregated tool list, or the init error if every
// backend failed.
func (s *Session) Tools() ([]json.RawMessage, error) {
	return s.list(func(c *aggregate.Catalog) []json.RawMessage { return c.Tools })
}

// Resources returns the aggregated resources.
func (s *Session) Resources() ([]json.RawMessage, error) {
	return s.list(func(c *aggregate.Catalog) []json.RawMessage { return c.Resources })
}

// ResourceTemplates returns the aggregated resource templates.
func (s *Session) ResourceTemplates() ([]json.RawMessage, error) {
	return s.list(func(c *aggregate.Catalog) []json.RawMessage { return c.ResourceTemplates })
}

// Prompts returns the aggregated prompts.
func (s *Session) Prompts() ([]json.RawMessage, error) {
	return s.list(func(c *aggregate.Catalog) []json.RawMessage { return c.Prompts })
}

func (s *Session) list(f func(*aggregate.Catalog) []json.RawMessage) ([]json.RawMessage, error) {
	if err := s.noBackends(); err != nil {
		return nil, err
	}
	if s.isClosed() {
		return nil, ErrClosed
	}
	return f(s.catalog.Load()), nil
}

// MetaBackends is the _meta key of vmcp's initialize result that tells a
// client which backends its session started without:
// "vmcp/backends": {"unavailable": [{"name": "files", "reason": "timeout"}]}.
const MetaBackends = "vmcp/backends"

// UnavailableBackend is a configured backend a session started without.
// Reason is a category (backend.Category, or "circuit open"), never the
// backend's own text.
type UnavailableBackend struct {
	Name   string `json:"name"`
	Reason string `json:"reason"`
}

// Unavailable lists, in config order, the backends the session could not
// connect: at its start, or at the last reload that connected them. The
// slice must not be modified.
func (s *Session) Unavailable() []UnavailableBackend {
	if o := s.outage.Load(); o != nil {
		return o.unavailable
	}
	return nil
}

// outage is a session's backends that failed to connect. It is never
// modified once published.
type outage struct {
	unavailable []UnavailableBackend
	// err is set when every backend failed: calls return it.
	err error
}

// newOutage is the outage of a session whose configured backends, numbered
// n, include the failed ones in unavailable.
func newOutage(n int, unavailable []UnavailableBackend) *outage {
	o := &outage{unavailable: unavailable}
	if n > 0 && len(unavailable) == n {
		failures := make([]string, len(unavailable))
		for i, u := range unavailable {
			failures[i] = u.Name + ": " + u.Reason
		}
		o.err = fmt.Errorf("%w: all %d backends failed to initialize: %s", ErrNoBackends, n, strings.Join(failures, "; "))
	}
	return o
}

// noBackends is the error calls return while every backend has failed to
// connect, nil otherwise.
func (s *Session) noBackends() error {
	if o := s.outage.Load(); o != nil {
		return o.err
	}
	return nil
}

// BackendSession describes one backend session for bookkeeping. Its
// SessionID is a secret.
type BackendSession struct {
	Name      string
	SessionID string
	Connected bool
}

// BackendSessions lists the session's backends in config order.
func (s *Session) BackendSessions() []BackendSession {
	ms := s.roster.Load().members()
	out := make([]BackendSession, 0, len(ms))
	for _, m := range ms {
		c := m.current()
		bs := BackendSession{Name: m.name, Connected: c != nil}
		if c != nil {
			bs.SessionID = c.SessionID()
		}
		out = append(out, bs)
	}
	return out
}

// acquire registers a call in flight, failing once Close has begun. The
// WaitGroup Add happens under mu, so Close's Wait cannot miss it.
func (s *Session) acquire() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	s.inflight.Add(1)
	return nil
}

func (s *Session) release() { s.inflight.Done() }

func (s *Session) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// Done is closed once the session has fully closed.
func (s *Session) Done() <-chan struct{} { return s.done }

// Close rejects new calls, waits for the ones in flight, then closes each
// backend client once. Later calls wait for the first to finish and return
// its result.
func (s *Session) Close() error { return s.closeWith(nil) }

// closeWith is Close, with before run on each member once no call (and
// no reload) is in flight, before the members close.
func (s *Session) closeWith(before func(*member)) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		<-s.done
		return s.closeErr
	}
	s.closed = true
	s.mu.Unlock()
	s.stopAsking()
	s.stopRetry()

	// Refreshes and backend requests waiting for the session to be ready
	// count as in flight: let them run (and see it closed) rather than
	// wait forever.
	s.markReady()
	s.inflight.Wait()
	// Their calls were in flight: the backends a reload let go of are
	// closed now, or about to be.
	s.dropping.Wait()
	// No reload can change the roster now: each runs as a call in flight.
	ms := s.roster.Load().members()
	var wg sync.WaitGroup
	errs := make([]error, len(ms))
	for i, m := range ms {
		if before != nil {
			before(m)
		}
		wg.Go(func() {
			defer recovery.Recover(s.factory.log, func(err error) { errs[i] = err }, "backend", m.name)
			errs[i] = m.close()
		})
	}
	wg.Wait()
	s.closeErr = errors.Join(errs...)
	close(s.done)
	return s.closeErr
}

// call sends one request to the named backend within the session's
// draining discipline.
func (s *Session) call(ctx context.Context, backendName, method string, params json.RawMessage) (json.RawMessage, error) {
	if err := s.noBackends(); err != nil {
		return nil, err
	}
	if err := s.acquire(); err != nil {
		return nil, err
	}
	defer s.release()
	m := s.member(backendName)
	if m == nil {
		return nil, fmt.Errorf("backend %q: %w", backendName, backend.ErrUnavailable)
	}
	if p := peerFrom(ctx); p != nil {
		defer s.trackCall(p, params)()
		ctx = backend.WithHandler(ctx, &relay{s: s, backend: backendName, peer: p})
	}
	f := s.factory
	var tool string
	if (method == "tools/call" || method == "prompts/get") && (f.traced || len(f.hooks) > 0) {
		tool, _ = paramString(params, "name")
	}
	var span trace.Span = noSpan // tracing off: not even the options are built
	if f.traced {
		ctx, span = f.tracer.Start(ctx, method, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(
			attribute.String("vmcp.backend", backendName), attribute.String("rpc.method", method), attribute.String("vmcp.tool", tool)))
	}
	if m.traceMeta || (f.traced && bytes.Contains(params, []byte(`"traceparent"`))) {
		// stdio has only _meta for the trace context; elsewhere a
		// traceparent the client put there (SEP-414) is replaced, so that
		// _meta and the traceparent header name the same parent: vmcp's
		// call span.
		params = withTraceMeta(ctx, params)
	}
	start := time.Now()
	res, retried, err := m.call(ctx, method, params)
	took := time.Since(start)
	if f.traced {
		endSpan(span, err, attribute.Bool("vmcp.retried", retried))
	}
	if len(f.hooks) > 0 {
		f.hooks.called(ctx, &Call{Session: s, Backend: backendName, Method: method, Tool: tool, Took: took, Retried: retried, Err: err})
	}
	s.logCall(ctx, backendName, method, params, res, start, err)
	return res, err
}

// Errors for requests the catalog cannot route. They map to -32602.
var (
	ErrUnknownTool     = errors.New("unknown tool")
	ErrUnknownPrompt   = errors.New("unknown prompt")
	ErrUnknownResource = errors.New("unknown resource")
)

// InvalidParams reports whether err should be answered with -32602.
func InvalidParams(err error) bool {
	return errors.Is(err, ErrUnknownTool) || errors.Is(err, ErrUnknownPrompt) ||
		errors.Is(err, ErrUnknownResource) || errors.Is(err, ErrUnknownTask) || errors.Is(err, errBadParams)
}

var errBadParams = errors.New("invalid params")

// CallTool routes tools/call to the owning backend under its original name.
// A task-augmented call (params.task) passes through as it is; the owner of
// the task its CreateTaskResult names is recorded for tasks/get and the
// like (tasks.go).
func (s *Session) CallTool(ctx context.Context, params json.RawMessage) (json.RawMessage, error) {
	b, params, err := s.routeNamed(params, ErrUnknownTool, func(c *aggregate.Catalog) map[string]aggregate.Route { return c.ToolRoutes })
	if err != nil {
		return nil, err
	}
	res, err := s.call(ctx, b, "tools/call", params)
	if err == nil {
		s.noteTask(b, params, res)
	}
	return res, err
}

// GetPrompt routes prompts/get to the owning backend under its original name.
func (s *Session) GetPrompt(ctx context.Context, params json.RawMessage) (json.RawMessage, error) {
	b, params, err := s.routeNamed(params, ErrUnknownPrompt, func(c *aggregate.Catalog) map[string]aggregate.Route { return c.PromptRoutes })
	if err != nil {
		return nil, err
	}
	return s.call(ctx, b, "prompts/get", params)
}

// routeNamed finds the backend that owns the item params.name names and
// returns params with the backend's own name for it.
func (s *Session) routeNamed(params json.RawMessage, unknown error, routes func(*aggregate.Catalog) map[string]aggregate.Route) (string, json.RawMessage, error) {
	if err := s.noBackends(); err != nil {
		return "", nil, err
	}
	name, err := paramString(params, "name")
	if err != nil {
		return "", nil, err
	}
	r, ok := routes(s.catalog.Load())[name]
	if !ok {
		return "", nil, fmt.Errorf("%w: %q", unknown, name)
	}
	if r.Name != name {
		if params, err = setParam(params, "name", r.Name); err != nil {
			return "", nil, err
		}
	}
	return r.Backend, params, nil
}

// ReadResource routes resources/read by URI.
func (s *Session) ReadResource(ctx context.Context, params json.RawMessage) (json.RawMessage, error) {
	return s.byURI(ctx, "resources/read", params)
}

func (s *Session) byURI(ctx context.Context, method string, params json.RawMessage) (json.RawMessage, error) {
	if err := s.noBackends(); err != nil {
		return nil, err
	}
	uri, err := paramString(params, "uri")
	if err != nil {
		return nil, err
	}
	b, ok := s.catalog.Load().ResourceBackend(uri)
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownResource, uri)
	}
	return s.call(ctx, b, method, params)
}

// Complete routes completion/complete by its ref: a prompt name or a
// resource template.
func (s *Session) Complete(ctx context.Context, params json.RawMessage) (json.RawMessage, error) {
	if err := s.noBackends(); err != nil {
		return nil, err
	}
	var p struct {
		Ref struct {
			Type string `json:"type"`
			Name string `json:"name"`
			URI  string `json:"uri"`
		} `json:"ref"`
	}
	if err := json.Unmarshal(params, &p); err != nil {
		return nil, fmt.Errorf("%w: %v", errBadParams, err)
	}
	c := s.catalog.Load()
	switch p.Ref.Type {
	case "ref/prompt":
		r, ok := c.PromptRoutes[p.Ref.Name]
		if !ok {
			return nil, fmt.Errorf("%w: %q", ErrUnknownPrompt, p.Ref.Name)
		}
		if r.Name != p.Ref.Name {
			ref, err := setParam(mustRaw(params, "ref"), "name", r.Name)
			if err != nil {
				return nil, err
			}
			if params, err = setRaw(params, "ref", ref); err != nil {
				return nil, err
			}
		}
		return s.call(ctx, r.Backend, "completion/complete", params)
	case "ref/resource":
		b, ok := c.TemplateBackend(p.Ref.URI)
		if !ok {
			if b, ok = c.ResourceBackend(p.Ref.URI); !ok {
				return nil, fmt.Errorf("%w: %q", ErrUnknownResource, p.Ref.URI)
			}
		}
		return s.call(ctx, b, "completion/complete", params)
	default:
		return nil, fmt.Errorf("%w: unknown ref type %q", errBadParams, p.Ref.Type)
	}
}

// Subscribe routes resources/subscribe to the backend owning the URI.
func (s *Session) Subscribe(ctx context.Context, params json.RawMessage) (json.RawMessage, error) {
	return s.byURI(ctx, "resources/subscribe", params)
}

// Unsubscribe routes resources/unsubscribe to the backend owning the URI.
func (s *Session) Unsubscribe(ctx context.Context, params json.RawMessage) (json.RawMessage, error) {
	return s.byURI(ctx, "resources/unsubscribe", params)
}

// Broadcast sends a request to every connected backend and returns the
// first error; used for logging/setLevel.
func (s *Session) Broadcast(ctx context.Context, method string, params json.RawMessage) error {
	if err := s.noBackends(); err != nil {
		return err
	}
	var errs []error
	for _, m := range s.roster.Load().members() {
		if m.current() == nil {
			continue
		}
		if _, err := s.call(ctx, m.name, method, params); err != nil && jsonrpc.AsError(err) == nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
