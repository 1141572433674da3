package session

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
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

// ErrNoBackends is wrapped by the error calls return when every backend
// failed to initialize.
var ErrNoBackends = errors.New("no backends available")

// Backend is one configured backend as the factory sees it.
type Backend struct {
	Name      string
	Connector backend.Connector
	// Breaker, shared by every session, gates new connections to the
	// backend; nil means none.
	Breaker *Breaker
	// Keepalive, if set, makes each session ping its client of the backend.
	Keepalive *Keepalive
	// Credentials, if set, give each session's client of the backend its
	// bearer token, resolved for the session's caller when the client is
	// made; nil: none beyond the connector's static headers.
	Credentials Credentials
	// TraceInParams puts each request's trace context in its
	// params._meta.traceparent: for stdio, which has no headers.
	TraceInParams bool
}

// FactoryOptions configure a Factory.
type FactoryOptions struct {
	Backends        []Backend
	Aggregation     aggregate.Options
	InitConcurrency int           // backends connected at once; default 10
	InitTimeout     time.Duration // per backend, connect and list; default 5s
	ClientInfo      json.RawMessage
	Logger          *slog.Logger
	// Calls bounds each session's calls in flight; the zero value sets no
	// limit.
	Calls CallLimits
	// Observer, if set, is told the outcome of every keepalive ping.
	Observer KeepaliveObserver
	// Decorators wrap every session's Operations, the first outermost
	// (see Decorator).
	Decorators []Decorator
	// Hooks are told of every session's life and backend calls, each in
	// turn (hooks.go).
	Hooks []Hooks
	// Tracer makes the spans of initialize, backend inits, calls and
	// re-initializations; nil: none.
	Tracer trace.Tracer
	// Retry spaces each session's background retries of the backends it
	// could not connect (retry.go); the zero value: 1s doubling to 30s.
	Retry Backoff
}

// KeepaliveObserver records keepalive outcomes (metrics). It must be safe
// for concurrent use.
type KeepaliveObserver interface {
	ObserveKeepalive(backend string, ok bool)
}

// Factory builds complete Sessions. It is safe for concurrent use.
type Factory struct {
	opts FactoryOptions // Backends, Aggregation, InitTimeout, Calls, Decorators: see cur
	log  *slog.Logger
	// cur is what a config reload may change (reconfigure.go); a session
	// is built from the one current when it starts.
	cur    atomic.Pointer[lineup]
	hooks  hooks
	tracer trace.Tracer
	traced bool          // opts.Tracer was set
	seq    atomic.Uint64 // numbers the sessions it makes, for logs
}

// NewFactory returns a Factory.
func NewFactory(opts FactoryOptions) *Factory {
	if opts.InitConcurrency <= 0 {
		opts.InitConcurrency = 10
	}
	if opts.InitTimeout <= 0 {
		opts.InitTimeout = 5 * time.Second
	}
	if opts.ClientInfo == nil {
		opts.ClientInfo = json.RawMessage(`{"name":"vmcp","version":"dev"}`)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	f := &Factory{opts: opts, log: opts.Logger, hooks: opts.Hooks, tracer: tracerOr(opts.Tracer), traced: opts.Tracer != nil}
	f.cur.Store(newLineup(Lineup{Backends: opts.Backends, Aggregation: opts.Aggregation, InitTimeout: opts.InitTimeout,
		Calls: opts.Calls, Decorators: opts.Decorators}))
	return f
}

// Backends returns the configured backend names in order.
func (f *Factory) Backends() []string {
	bs := f.lineup().Backends
	names := make([]string, len(bs))
	for i, b := range bs {
		names[i] = b.Name
	}
	return names
}

// backendInit is the outcome of connecting one backend.
type backendInit struct {
	client       backend.Client
	creds        CredentialSource
	stored       store.Backend
	listing      aggregate.Backend
	instructions string
	took         time.Duration
	err          error
}

// New connects every backend in parallel and returns a ready Session built
// around meta. Backends that fail are left out and logged, except that a
// stdio backend refused by the process limit fails the whole session with
// an error wrapping backend.ErrProcessLimit; if all fail the session still
// exists but its calls return an error wrapping ErrNoBackends until a
// background retry (retry.go) or a reload (Manager.Reconfigure) connects
// one. If meta already lists backend
// sessions, each is resumed by its stored ID instead of initialized anew.
//
// The caller owns the returned Session and must Close it.
func (f *Factory) New(ctx context.Context, meta *store.Metadata) (*Session, error) {
	start := time.Now()
	l := f.lineup()
	resume := make(map[string]store.Backend, len(meta.Backends))
	for _, b := range meta.Backends {
		resume[b.Name] = b
	}
	// The session exists before its backends connect: each backend client
	// delivers server-to-client messages to the session from the start.
	s := &Session{
		id:        meta.ID,
		seq:       f.seq.Add(1),
		created:   meta.Created,
		done:      make(chan struct{}),
		ready:     make(chan struct{}),
		factory:   f,
		listings:  make(map[string]aggregate.Backend, len(l.Backends)),
		clientCap: parseClientCaps(meta.ClientCapabilities),
		bound:     meta.Identity,
	}
	if id := identity.FromContext(ctx); id.Key() != "" && id.Key() == meta.Identity {
		// Only the owner's own identity may stand for the session: its
		// token is exchanged for backend credentials.
		s.caller = id
	}
	s.lineup.Store(l)
	s.decorate(l.Decorators)
	s.limiter.Store(newCallLimiter(l.Calls))
	results := make([]backendInit, len(l.Backends))
	sem := make(chan struct{}, f.opts.InitConcurrency)
	var wg sync.WaitGroup
	for i, b := range l.Backends {
		wg.Go(func() {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				results[i].err = ctx.Err()
				return
			}
			defer func() { <-sem }()
			ctx, span := f.tracer.Start(ctx, "backend.initialize", trace.WithAttributes(attribute.String("vmcp.backend", b.Name)))
			began := time.Now()
			defer func() {
				results[i].took = time.Since(began)
				endSpan(span, results[i].err)
			}()
			defer recovery.Recover(f.log, func(err error) { results[i] = backendInit{err: fmt.Errorf("backend %q: initialize: %w", b.Name, err)} }, "backend", b.Name)
			results[i] = f.connect(ctx, l, b, meta, resume[b.Name], &relay{s: s, backend: b.Name})
		})
	}
	wg.Wait()
	for _, r := range results {
		if errors.Is(r.err, backend.ErrProcessLimit) {
			// vmcp, not the backend, is out of room: a session without the
			// backend would be a worse answer than "retry later".
			for _, r := range results {
				if r.client != nil {
					r.client.Close()
				}
			}
			return nil, r.err
		}
	}

	// The session counts as seen when it is ready, not when its creation
	// began: connecting the backends may take longer than a short
	// idleTimeout. That is meta's clock (which tests may fake) plus the
	// real time the connecting took.
	seen := meta.Created
	if meta.LastSeen.After(seen) {
		seen = meta.LastSeen
	}
	s.Touch(seen.Add(time.Since(start)))
	var listings []aggregate.Backend
	var instructions []aggregate.Instructions
	var unavailable []UnavailableBackend
	stored := make([]store.Backend, 0, len(results))
	ros := &roster{byName: make(map[string]*member, len(l.Backends))}
	for i, r := range results {
		b := l.Backends[i]
		ros.order = append(ros.order, b.Name)
		ros.byName[b.Name] = newMember(s, b, r)
		f.hooks.initialized(ctx, s, b.Name, r.took, r.err)
		if r.err != nil {
			f.log.WarnContext(ctx, "backend failed to initialize; session continues without it", "backend", b.Name, "err", r.err)
			unavailable = append(unavailable, UnavailableBackend{Name: b.Name, Reason: reason(r.err)})
			continue
		}
		il := l.catalogs.intern(r.listing)
		listings = append(listings, il)
		s.listings[b.Name] = il
		stored = append(stored, r.stored)
		instructions = append(instructions, aggregate.Instructions{Backend: b.Name, Text: r.instructions})
	}
	s.roster.Store(ros)
	s.instructions = aggregate.MergeInstructions(instructions)
	s.outage.Store(newOutage(len(l.Backends), unavailable))
	cat, fresh, err := l.catalogs.catalog(listings)
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("aggregating backend capabilities: %w", err)
	}
	if fresh {
		for _, w := range cat.Warnings {
			f.log.WarnContext(ctx, "aggregation", "warning", w)
		}
	}
	s.catalog.Store(cat)
	m := meta.Clone()
	m.Backends = stored
	s.mu.Lock()
	s.meta = m
	s.mu.Unlock()
	s.markReady()
	for _, m := range ros.members() {
		m.startKeepalive()
	}
	if len(unavailable) > 0 {
		s.retryLater()
	}
	return s, nil
}

// connect starts one backend's client for a new session (or resumes its
// stored backend session) and lists what it offers. A backend whose breaker
// is open is skipped at once; the outcome, success or failure, counts
// towards its breaker.
func (f *Factory) connect(ctx context.Context, l *lineup, b Backend, meta *store.Metadata, prev store.Backend, h backend.Handler) backendInit {
	if !b.Breaker.Allow() {
		return backendInit{err: circuitOpen(b.Name, b.Breaker)}
	}
	ctx, cancel := context.WithTimeoutCause(ctx, l.InitTimeout, l.initTimeout())
	defer cancel()
	// Credentials are resolved as the session's client is made (RFC-38),
	// for the caller of the initialize, or of the takeover, in ctx.
	src, err := resolve(ctx, b.Name, b.Credentials, nil)
	if err != nil {
		return backendInit{err: err}
	}
	var r backendInit
	attempt := func() error {
		r = f.connectAndList(ctx, b, meta, prev, h, src)
		if r.err != nil && prev.SessionID != "" && errors.Is(r.err, backend.ErrSessionNotFound) {
			// The stored backend session is gone (it expired, or the
			// backend restarted): start a new one.
			r = f.connectAndList(ctx, b, meta, store.Backend{}, h, src)
		}
		b.Breaker.record(r.err, true)
		return r.err
	}
	if err := attempt(); src != nil && errors.Is(err, backend.ErrUnauthorized) {
		// A cached token the backend no longer takes (revoked, say).
		if err := f.retryRefused(ctx, b.Name, src, b.Breaker, attempt); err != nil {
			r = backendInit{err: err}
		}
	}
	r.creds, r.err = src, scrub(src, r.err)
	return r
}

func (f *Factory) connectAndList(ctx context.Context, b Backend, meta *store.Metadata, prev store.Backend, h backend.Handler, src CredentialSource) backendInit {
	opts := f.connectOptions(meta.ClientCapabilities, prev.SessionID, h)
	if src != nil {
		opts.Token = src
	}
	c, res, err := b.Connector.Connect(ctx, opts)
	if err != nil {
		return backendInit{err: err}
	}
	st := store.Backend{Name: b.Name, SessionID: c.SessionID(), Capabilities: res.Capabilities, ProtocolVersion: res.ProtocolVersion}
	if res.Resumed {
		st.Capabilities, st.ProtocolVersion = prev.Capabilities, prev.ProtocolVersion
	}
	listing, err := f.list(ctx, c, b.Name, st.Capabilities)
	if err != nil {
		c.Close()
		return backendInit{err: err}
	}
	return backendInit{client: c, stored: st, listing: listing, instructions: res.Instructions}
}

// list fetches everything a backend offers, following pagination cursors.
// The lists are independent, so they are fetched at once: a backend's
// listing costs one round trip per page instead of four in a row.
func (f *Factory) list(ctx context.Context, c backend.Client, name string, capsRaw json.RawMessage) (aggregate.Backend, error) {
	var caps struct {
		Tools     json.RawMessage `json:"tools"`
		Resources json.RawMessage `json:"resources"`
		Prompts   json.RawMessage `json:"prompts"`
	}
	if len(capsRaw) > 0 {
		if err := json.Unmarshal(capsRaw, &caps); err != nil {
			return aggregate.Backend{}, fmt.Errorf("backend %q: invalid capabilities: %w", name, err)
		}
	}
	out := aggregate.Backend{Name: name}
	type job struct {
		method, key string
		dst         *[]json.RawMessage
		err         error
	}
	jobs := make([]job, 0, 4)
	if caps.Tools != nil {
		jobs = append(jobs, job{method: "tools/list", key: "tools", dst: &out.Tools})
	}
	if caps.Resources != nil {
		jobs = append(jobs, job{method: "resources/list", key: "resources", dst: &out.Resources},
			job{method: "resources/templates/list", key: "resourceTemplates", dst: &out.ResourceTemplates})
	}
	if caps.Prompts != nil {
		jobs = append(jobs, job{method: "prompts/list", key: "prompts", dst: &out.Prompts})
	}
	run := func(j *job) {
		defer recovery.Recover(f.log, func(err error) { j.err = err }, "backend", name, "during", j.method)
		*j.dst, j.err = listAll(ctx, c.Call, name, j.method, j.key)
	}
	if len(jobs) == 1 {
		run(&jobs[0])
	} else {
		var wg sync.WaitGroup
		for i := range jobs {
			wg.Go(func() { run(&jobs[i]) })
		}
		wg.Wait()
	}
	for _, j := range jobs {
		if j.err != nil {
			return out, j.err
		}
	}
	return out, nil
}

// maxPages bounds pagination so a backend that always returns a cursor
// cannot hold a session's initialize forever.
const maxPages = 1000

// listAll collects the items under key of every page of a list method,
// sent with call. Its errors name the backend and the method (call's own
// errors do already).
func listAll(ctx context.Context, call func(context.Context, string, json.RawMessage) (json.RawMessage, error), name, method, key string) ([]json.RawMessage, error) {
	var items []json.RawMessage
	params := json.RawMessage(`{}`)
	for range maxPages {
		res, err := call(ctx, method, params)
		if err != nil {
			return nil, err
		}
		raw, err := jsonrpc.Member(res, key)
		if err != nil {
			return nil, fmt.Errorf("backend %q: %s: invalid result: %w", name, method, err)
		}
		if raw != nil && string(raw) != "null" {
			pageItems, err := jsonrpc.Elements(raw)
			if err != nil {
				return nil, fmt.Errorf("backend %q: %s: invalid %s: %w", name, method, key, err)
			}
			items = append(items, pageItems...)
		}
		next, _ := jsonrpc.Member(res, "nextCursor")
		cursor, _ := jsonrpc.Unquote(next)
		if cursor == "" {
			return items, nil
		}
		params = jsonrpc.AppendString([]byte(`{"cursor":`), cursor)
		params = append(params, '}')
	}
	return nil, fmt.Errorf("backend %q: %s: more than %d pages", name, method, maxPages)
}

// initTimeout is the cause of a backend connect's deadline: the error then
// names the setting to change.
func (l *lineup) initTimeout() error {
	return &backend.SettingTimeout{Setting: "session.backendInitTimeout", After: l.InitTimeout}
}
