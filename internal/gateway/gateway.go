// Package gateway assembles a running vmcp from its config: one connector
// per backend, the session factory and manager, the metadata store and the
// front end, and owns their start and orderly shutdown.
package gateway

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/propagation"

	"github.com/vmcp/vmcp/internal/aggregate"
	"github.com/vmcp/vmcp/internal/backend"
	"github.com/vmcp/vmcp/internal/certs"
	"github.com/vmcp/vmcp/internal/config"
	"github.com/vmcp/vmcp/internal/frontend"
	"github.com/vmcp/vmcp/internal/redact"
	"github.com/vmcp/vmcp/internal/session"
	"github.com/vmcp/vmcp/internal/store"
	"github.com/vmcp/vmcp/internal/telemetry"
	"github.com/vmcp/vmcp/internal/tracing"
	"github.com/vmcp/vmcp/internal/warm"
)

// Options carry what is not in the config file.
type Options struct {
	Version string
	Logger  *slog.Logger
	// Now is the clock for session expiry; tests may fake it.
	Now func() time.Time
	// SweepInterval is how often expiry runs; default 1s.
	SweepInterval time.Duration
	// Breaker tunes the circuit breaker each backend gets (a backend's
	// breaker block in the config overrides its threshold and cooldown);
	// the zero value keeps session.NewBreaker's defaults.
	Breaker session.BreakerOptions
	// ConfigHash is HashConfig of the config file's content, shown in
	// /status; empty for a config from no file.
	ConfigHash string
	// ListenOverride, if set, is the listen address given on the command
	// line: it stands in for the config file's on a reload too.
	ListenOverride string
	// BackendRetry spaces each session's background retries of the
	// backends it could not connect; the zero value: 1s doubling to 30s.
	BackendRetry session.Backoff
}

// Gateway is one vmcp instance. Serve runs it; Shutdown stops it.
type Gateway struct {
	cfg      *config.Config
	log      *slog.Logger
	store    store.Store
	manager  *session.Manager
	pool     *warm.Pool // warm sessions for 2026-07-28 requests (warm.go)
	frontend *frontend.Server
	// backends are the configured backends' connectors, breakers and
	// credentials, in config order; a reload replaces the set (reload.go).
	backends atomic.Pointer[backendSet]
	procs    *backend.ProcessLimit
	metrics  *telemetry.Metrics
	probe    prober          // the startup probe (probe.go)
	reload   reloader        // config reloads (reload.go)
	info     json.RawMessage // vmcp's clientInfo and serverInfo
	srvMu    sync.Mutex
	srv      *http.Server // set by Serve
	adminSrv *http.Server // set by ServeAdmin
	stopped  bool         // Shutdown has begun: ServeAdmin serves nothing
	tls      *tls.Config  // nil: plain HTTP
	obs      *observability
	handler  http.Handler // the front end, traced

	stopSweep context.CancelFunc
	sweepDone chan struct{}
	stopWatch context.CancelFunc // deletions announced by other replicas (store.go)
	watchDone chan struct{}
	shutdown  sync.Once
	shutErr   error
}

// New builds a Gateway from a validated config. It starts nothing that
// listens; it does start the expiry sweep, stopped by Shutdown.
func New(cfg *config.Config, opts Options) (*Gateway, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Version == "" {
		opts.Version = "dev"
	}
	// Every log line goes through the redactor: backend text (errors, a
	// stdio child's stderr) may echo a configured secret.
	red := newRedactor(cfg, os.Getenv)
	opts.Logger = slog.New(tracing.LogHandler(red.Handler(opts.Logger.Handler())))
	g := &Gateway{cfg: cfg, log: opts.Logger, procs: backend.NewProcessLimit(cfg.Server.MaxStdioProcesses)}
	if t := cfg.Server.TLS; t != nil {
		var err error
		if g.tls, err = serverTLS(t, opts.Logger); err != nil {
			return nil, err
		}
	}
	// The metrics exist before what they count; the session gauge reads
	// the manager only at scrape time.
	metrics := telemetry.New(func() int { return g.manager.Len() })
	g.metrics = metrics
	obs, err := newObservability(cfg, metrics, red, opts.Version, os.Getenv)
	if err != nil {
		return nil, err
	}
	g.obs = obs
	built := false
	defer func() {
		if !built { // the audit file, the span exporter
			obs.close(context.Background())
		}
	}()
	auth, err := incomingAuth(cfg, opts.Logger, obs)
	if err != nil {
		return nil, err
	}
	auth = obs.authenticator(auth)
	g.reload.init(cfg, opts, red, metrics)
	// One budget for the response bytes every backend buffers at once.
	g.reload.shared = connectorShared{procs: g.procs, initTimeout: cfg.Session.BackendInitTimeout.D(), warm: true,
		budget: backend.NewBudget(cfg.Server.MaxBufferedResponseBytes, "server.maxBufferedResponseBytes"), red: red,
		prop: obs.propagator()}
	set, err := g.newBackendSet(cfg.Backends, nil)
	if err != nil {
		return nil, err
	}
	g.backends.Store(set)
	st, err := newStore(cfg.Store, cfg.Session)
	if err != nil {
		g.closeConnectors()
		return nil, err
	}
	g.store = st
	decorators, initLimiter, err := guards(cfg, g.reload.rateLimiter(st), opts.Logger, metrics)
	g.reload.decorators, g.reload.wrapped, g.reload.initLimiter = decorators, g.decorators(cfg, decorators), initLimiter
	if err != nil {
		g.closeConnectors()
		if c, ok := st.(io.Closer); ok {
			c.Close()
		}
		return nil, err
	}
	info := clientInfo(opts.Version)
	g.info = info
	metrics.ObserveBackendConnections(g.backendConnections)
	metrics.ObserveBreakers(g.breakerStates)
	factory := session.NewFactory(session.FactoryOptions{
		Observer:        metrics,
		Backends:        set.session,
		Aggregation:     aggregationOptions(cfg.Aggregation),
		InitConcurrency: cfg.Session.BackendInitConcurrency,
		InitTimeout:     cfg.Session.BackendInitTimeout.D(),
		ClientInfo:      info,
		Logger:          opts.Logger,
		Calls: session.CallLimits{
			MaxConcurrent: cfg.Session.MaxConcurrentCalls,
			QueueTimeout:  cfg.Session.CallQueueTimeout.D(),
		},
		Decorators: g.reload.wrapped,
		Hooks:      obs.hooks(),
		Tracer:     obs.tracer(),
		Retry:      opts.BackendRetry,
	})
	g.pool = newWarmPool(cfg, factory, opts, metrics, func(id string) session.Peer { return g.frontend.ModernPeer(id) })
	g.manager = session.NewManager(session.ManagerOptions{
		Store:          g.store,
		Factory:        factory,
		TTL:            cfg.Session.TTL.D(),
		IdleTimeout:    cfg.Session.IdleTimeout.D(),
		MaxSessions:    cfg.Session.MaxSessions,
		MaxPerIdentity: cfg.Session.MaxSessionsPerIdentity,
		SweepInterval:  opts.SweepInterval,
		Now:            opts.Now,
		Logger:         opts.Logger,
		Shared:         cfg.Store.Type == config.StoreRedis,
		InitLimiter:    initLimiter,
	})
	g.watchStore()
	modern, err := modernOptions(cfg)
	if err != nil {
		return nil, err
	}
	g.frontend = frontend.New(frontend.Options{
		Auth:            auth,
		Metrics:         metrics.Handler(),
		Observer:        metrics,
		Manager:         g.manager,
		Path:            cfg.Path,
		MaxBodyBytes:    cfg.Server.MaxBodyBytes,
		ReadTimeout:     cfg.Server.ReadTimeout.D(),
		MaxMessageDepth: cfg.Server.MaxMessageDepth,
		EventBuffer:     cfg.Server.EventBuffer,
		AlwaysStream:    cfg.Server.SSEResponses == config.SSEAlways,
		// Against DNS rebinding: a gateway on loopback only answers to
		// loopback host names, plus any configured.
		ProtectLocalhost: isLoopbackListen(cfg.Listen),
		AllowedHosts:     cfg.Server.AllowedHosts,
		AllowedOrigins:   cfg.Server.AllowedOrigins,
		RetryAfter:       cfg.Session.RetryAfter.D(),
		ServerInfo:       info,
		Status:           g.status,
		Ready:            g.ready,
		SeparateAdmin:    cfg.Server.AdminListen != "",
		Debug:            pprofHandler(cfg.Server.Pprof),
		Redactor:         red,
		Logger:           opts.Logger,
		Pool:             g.pool,
		Modern:           modern,
	})
	observeMRTR(metrics, g.frontend)
	g.handler = obs.tracing.Handler(g.frontend, cfg.Path)
	ctx, cancel := context.WithCancel(context.Background())
	g.stopSweep, g.sweepDone = cancel, make(chan struct{})
	go func() {
		defer close(g.sweepDone)
		g.manager.Run(ctx)
	}()
	built = true
	return g, nil
}

// connectorShared is what every connector of a gateway shares.
type connectorShared struct {
	procs       *backend.ProcessLimit
	initTimeout time.Duration
	warm        bool                          // false: no warm pools (vmcp validate --probe)
	budget      *backend.Budget               // buffered response bytes, all backends
	red         *redact.Redactor              // every configured secret (a stdio child's stderr)
	prop        propagation.TextMapPropagator // trace context to HTTP backends; nil: none
}

func newConnector(b config.Backend, log *slog.Logger, sh connectorShared) (backend.Connector, error) {
	switch b.Transport {
	case config.TransportStreamableHTTP, config.TransportSSE:
		o := backend.HTTPOptions{
			Name: b.Name, URL: b.URL, Headers: b.Headers, Timeout: b.Timeout.D(),
			MaxConnsPerHost: b.MaxConnections, MaxMessageBytes: b.MaxResponseBytes,
			Budget: sh.budget, Logger: log, Propagator: sh.prop, Protocol: b.Protocol,
		}
		if b.TLS != nil {
			tc, err := b.TLS.ClientConfig()
			if err != nil {
				return nil, fmt.Errorf("backend %q: %w", b.Name, err)
			}
			o.TLS = tc
		}
		if b.Transport == config.TransportSSE {
			return backend.NewSSE(o), nil
		}
		return backend.NewStreamableHTTP(o), nil
	case config.TransportStdio:
		o := backend.StdioOptions{Name: b.Name, Command: b.Command, Env: b.Env, Timeout: b.Timeout.D(), Logger: log,
			Redactor: sh.red, MaxMessageBytes: b.MaxResponseBytes, Processes: sh.procs, InitTimeout: sh.initTimeout}
		o.InheritEnv = b.InheritEnv
		if b.Stdio != nil && sh.warm {
			o.Warm, o.WarmIdleTimeout = b.Stdio.Warm, b.Stdio.IdleTimeout.D()
		}
		return backend.NewStdio(o), nil
	}
	return nil, fmt.Errorf("backend %q: unknown transport %q", b.Name, b.Transport)
}

func aggregationOptions(a config.Aggregation) aggregate.Options {
	o := aggregate.Options{
		Strategy:      a.ConflictResolution,
		PrefixFormat:  a.PrefixFormat,
		PriorityOrder: a.PriorityOrder,
		Tools:         make(map[string]aggregate.ToolRule, len(a.Tools)),
	}
	for _, t := range a.Tools {
		r := aggregate.ToolRule{Filter: t.Filter, Overrides: make(map[string]aggregate.Override, len(t.Overrides))}
		for k, v := range t.Overrides {
			r.Overrides[k] = aggregate.Override{Name: v.Name, Description: v.Description}
		}
		o.Tools[t.Backend] = r
	}
	return o
}

// Logger is the gateway's logger: the one in Options, behind the
// redactor of the configured secrets.
func (g *Gateway) Logger() *slog.Logger { return g.log }

// Handler returns the gateway's HTTP handler.
func (g *Gateway) Handler() http.Handler { return g.handler }

// Manager returns the session manager.
func (g *Gateway) Manager() *session.Manager { return g.manager }

// idleConnTimeout closes a client connection that carried no request for
// this long, so abandoned keep-alive connections do not hold descriptors.
const idleConnTimeout = 2 * time.Minute

// Serve accepts connections on ln until Shutdown. It returns nil after a
// clean shutdown.
func (g *Gateway) Serve(ln net.Listener) error {
	srv := &http.Server{
		Handler:           g.handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       idleConnTimeout,
		MaxHeaderBytes:    g.cfg.Server.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(g.log.Handler(), slog.LevelWarn),
		ConnState:         g.frontend.ConnState,
		TLSConfig:         g.tls,
	}
	// Long-lived SSE streams must not hold the drain open at shutdown.
	srv.RegisterOnShutdown(g.frontend.CloseStreams)
	g.srvMu.Lock()
	if g.stopped {
		// Shutdown came first (it found no server to stop): serve nothing.
		g.srvMu.Unlock()
		ln.Close()
		return nil
	}
	g.srv = srv
	g.srvMu.Unlock()
	var err error
	if g.tls != nil {
		// The certificate comes from TLSConfig; ServeTLS adds HTTP/2
		// to the protocols offered by ALPN.
		err = srv.ServeTLS(ln, "", "")
	} else {
		err = srv.Serve(ln)
	}
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// ServeAdmin serves the admin listener (server.adminListen) on ln until
// Shutdown: /health, /readyz, /status, /metrics and, with server.pprof,
// /debug/pprof/, in plain HTTP. It returns nil after a clean shutdown.
func (g *Gateway) ServeAdmin(ln net.Listener) error {
	srv := &http.Server{
		Handler:           g.frontend.AdminHandler(isLoopbackListen(ln.Addr().String())),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       idleConnTimeout,
		MaxHeaderBytes:    g.cfg.Server.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(g.log.Handler(), slog.LevelWarn),
	}
	g.srvMu.Lock()
	if g.stopped {
		g.srvMu.Unlock()
		ln.Close()
		return nil
	}
	g.adminSrv = srv
	g.srvMu.Unlock()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// TLS reports whether Serve speaks HTTPS.
func (g *Gateway) TLS() bool { return g.tls != nil }

// serverTLS is the listener's TLS config: the certificate from files,
// reloaded when they change, and with a client CA, mutual TLS.
func serverTLS(t *config.TLS, log *slog.Logger) (*tls.Config, error) {
	r, err := certs.NewReloader(t.CertFile, t.KeyFile, 0, log)
	if err != nil {
		return nil, fmt.Errorf("server.tls: %w", err)
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: r.GetCertificate}
	if t.ClientCAFile != "" {
		pool, err := certs.LoadPool(t.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("server.tls.clientCAFile: %w", err)
		}
		c.ClientCAs, c.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return c, nil
}

// Shutdown stops accepting, lets requests in flight finish within ctx,
// closes every session (and so every backend session), then releases the
// connectors. With store.type redis it ends no session: it releases each
// runtime, and the sessions carry on on the other replicas. It is safe to
// call more than once.
func (g *Gateway) Shutdown(ctx context.Context) error {
	g.shutdown.Do(func() {
		var errs []error
		g.srvMu.Lock()
		g.stopped = true
		srv, admin := g.srv, g.adminSrv
		g.srvMu.Unlock()
		if srv != nil {
			if err := srv.Shutdown(ctx); err != nil {
				errs = append(errs, fmt.Errorf("draining requests: %w", err))
			}
		}
		if admin != nil {
			// Nothing there holds state worth draining; a CPU profile
			// being taken must not hold the shutdown.
			admin.Close()
		}
		g.probe.stop()
		g.reload.stopWatching()
		g.stopSweep()
		<-g.sweepDone
		if err := g.closePool(ctx); err != nil {
			errs = append(errs, err)
		}
		if err := g.manager.Shutdown(ctx); err != nil {
			errs = append(errs, err)
		}
		g.closeStore()
		g.closeConnectors()
		if err := g.obs.close(ctx); err != nil {
			errs = append(errs, err)
		}
		g.shutErr = errors.Join(errs...)
	})
	return g.shutErr
}

func (g *Gateway) closeConnectors() {
	if set := g.backends.Load(); set != nil {
		set.close(nil)
	}
}

func keepalive(k *config.Keepalive) *session.Keepalive {
	if k == nil {
		return nil
	}
	return &session.Keepalive{Interval: k.Interval.D(), MaxFailures: k.MaxFailures}
}

// status is the gateway part of GET /status. It holds no secret: no session
// IDs, no headers, no URLs' credentials, no error text from backends.
func (g *Gateway) status() any {
	type backendStatus struct {
		Name      string                `json:"name"`
		Transport string                `json:"transport"`
		Health    session.BreakerHealth `json:"health"`
		Probe     *ProbeStatus          `json:"probe,omitempty"`
		// Processes counts a stdio backend's running processes.
		Processes *int `json:"processes,omitempty"`
		// OutgoingAuth is the outgoingAuth type, when not none; never a
		// secret.
		OutgoingAuth string `json:"outgoingAuth,omitempty"`
		// Protocol is the era vmcp speaks to it, "legacy" or "modern",
		// once known (auto decides at the first session).
		Protocol string `json:"protocol,omitempty"`
	}
	set := g.backends.Load()
	bs := make([]backendStatus, 0, len(set.cfg))
	for i, b := range set.cfg {
		st := backendStatus{Name: b.Name, Transport: b.Transport, Health: set.breakers[i].Health(), Probe: g.probe.status(b.Name)}
		if n, ok := connections(set.connectors[i]); ok && b.Transport == config.TransportStdio {
			st.Processes = &n
		}
		if set.creds[i] != nil {
			st.OutgoingAuth = b.OutgoingAuth.Type
		}
		st.Protocol = backend.Era(set.connectors[i])
		bs = append(bs, st)
	}
	stdio := map[string]int{"processes": g.procs.Running(), "maxProcesses": g.procs.Max()}
	return map[string]any{"backends": bs, "store": g.storeType(), "stdio": stdio, "config": g.reload.status(), "warmPool": g.pool.Stats()}
}

// connections is what a connector reports it holds open, if it counts.
func connections(c backend.Connector) (int, bool) {
	if cc, ok := c.(interface{ Connections() int }); ok {
		return cc.Connections(), true
	}
	return 0, false
}

// backendConnections feeds vmcp_backend_connections.
func (g *Gateway) backendConnections() map[string]int {
	set := g.backends.Load()
	out := make(map[string]int, len(set.connectors))
	for i, c := range set.connectors {
		if n, ok := connections(c); ok {
			out[set.cfg[i].Name] = n
		}
	}
	return out
}

// decorators are what wraps every session: the optimizer outermost, so
// call_tool reaches the audit trail, policy and rate limits as the tool it
// names; then the audit trail; then guards, the policy and rate limits.
func (g *Gateway) decorators(cfg *config.Config, guards []session.Decorator) []session.Decorator {
	return withOptimizer(cfg, g.log, g.obs.decorate(guards))
}

// ready is /readyz: ready unless every backend's circuit breaker is
// refusing connections, when a new session could reach none of them. Once
// a breaker's cooldown is over it counts as ready again, so that traffic
// can come and probe it. /health stays pure liveness.
func (g *Gateway) ready() error {
	breakers := g.backends.Load().breakers
	for _, b := range breakers {
		if !b.Refusing() {
			return nil
		}
	}
	if len(breakers) == 0 {
		return nil
	}
	return errors.New("every backend's circuit breaker is open")
}

func (g *Gateway) storeType() string {
	if g.cfg.Store.Type == "" {
		return "memory"
	}
	return g.cfg.Store.Type
}

// isLoopbackListen reports whether a listen address binds loopback only.
func isLoopbackListen(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
