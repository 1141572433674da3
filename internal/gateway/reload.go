package gateway

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"reflect"
	"sync"
	"time"

	"github.com/vmcp/vmcp/internal/backend"
	"github.com/vmcp/vmcp/internal/config"
	"github.com/vmcp/vmcp/internal/credentials"
	"github.com/vmcp/vmcp/internal/ratelimit"
	"github.com/vmcp/vmcp/internal/redact"
	"github.com/vmcp/vmcp/internal/session"
	"github.com/vmcp/vmcp/internal/telemetry"
)

// backendSet is the gateway's backends, in config order: each one's
// config, connector, breaker and credentials, and the session.Backend the
// Factory gets. It is never modified once made; a reload makes another,
// which shares the entries of the backends it did not change.
type backendSet struct {
	cfg        []config.Backend
	connectors []backend.Connector
	breakers   []*session.Breaker
	creds      []*credentials.Provider // nil: none
	session    []session.Backend
}

// newBackendSet builds the backends of bs, reusing prev's entry for each
// backend whose config is unchanged. On error it closes what it made.
func (g *Gateway) newBackendSet(bs []config.Backend, prev *backendSet) (*backendSet, error) {
	set := &backendSet{}
	var made []backend.Connector
	fail := func(err error) (*backendSet, error) {
		for _, c := range made {
			c.Close()
		}
		return nil, err
	}
	for _, b := range bs {
		if i := prev.index(b.Name); i >= 0 && reflect.DeepEqual(prev.cfg[i], b) {
			set.add(b, prev.connectors[i], prev.breakers[i], prev.creds[i], prev.session[i])
			continue
		}
		c, err := newConnector(b, g.log, g.reload.shared)
		if err != nil {
			return fail(err)
		}
		made = append(made, c)
		bo := g.reload.breaker
		if cb := b.Breaker; cb != nil {
			bo.Threshold, bo.Cooldown = cb.FailureThreshold, cb.Cooldown.D()
		}
		br := session.NewBreaker(bo)
		creds, err := outgoingCredentials(b, g.obs)
		if err != nil {
			return fail(err)
		}
		set.add(b, c, br, creds, session.Backend{Name: b.Name, Connector: c, Breaker: br, Keepalive: keepalive(b.Keepalive),
			Credentials: forSessions(creds), TraceInParams: b.Transport == config.TransportStdio && g.obs.tracing.On()})
	}
	return set, nil
}

func (s *backendSet) add(b config.Backend, c backend.Connector, br *session.Breaker, creds *credentials.Provider, sb session.Backend) {
	s.cfg = append(s.cfg, b)
	s.connectors = append(s.connectors, c)
	s.breakers = append(s.breakers, br)
	s.creds = append(s.creds, creds)
	s.session = append(s.session, sb)
}

// index is the position of the backend named name, -1 if none (or s nil).
func (s *backendSet) index(name string) int {
	if s == nil {
		return -1
	}
	for i, b := range s.cfg {
		if b.Name == name {
			return i
		}
	}
	return -1
}

// close closes the connectors of s that next does not use (all of them
// when next is nil) and returns the names of their backends.
func (s *backendSet) close(next *backendSet) []string {
	var names []string
	for i, c := range s.connectors {
		if next != nil && next.uses(c) {
			continue
		}
		c.Close()
		names = append(names, s.cfg[i].Name)
	}
	return names
}

func (s *backendSet) uses(c backend.Connector) bool {
	for _, x := range s.connectors {
		if x == c {
			return true
		}
	}
	return false
}

// reloader is what a config reload needs beyond the Gateway's fields, and
// the record of the last one. Reloads are serialised by mu.
type reloader struct {
	mu          sync.Mutex
	cfg         *config.Config // the config in effect, as loaded
	red         *redact.Redactor
	metrics     *telemetry.ConfigReloads
	breaker     session.BreakerOptions
	shared      connectorShared
	decorators  []session.Decorator // the guards
	wrapped     []session.Decorator // every decorator (Gateway.decorators); kept while unchanged, so sessions are not re-decorated
	initLimiter session.InitializeLimiter
	limiter     ratelimit.Limiter // the rate limits' buckets (rateLimiter)
	getenv      func(string) string
	listen      string // Options.ListenOverride

	stopWatch context.CancelFunc // set by WatchConfig (watch.go)
	watchDone chan struct{}

	smu      sync.Mutex // guards hash and loadedAt
	hash     string     // SHA-256 of the config file in effect; "" if none
	loadedAt time.Time
}

func (r *reloader) init(cfg *config.Config, opts Options, red *redact.Redactor, m *telemetry.Metrics) {
	r.cfg, r.red, r.breaker, r.getenv = cfg, red, opts.Breaker, os.Getenv
	r.metrics = m.NewConfigReloads()
	r.loadedAt = time.Now()
	r.hash, r.listen = opts.ConfigHash, opts.ListenOverride
}

// ConfigStatus is the config part of /status.
type ConfigStatus struct {
	// Hash is "sha256:" and the hex SHA-256 of the config file in effect,
	// as `sha256sum` prints it; empty for a config that came from no file.
	Hash     string    `json:"hash,omitempty"`
	LoadedAt time.Time `json:"loadedAt"`
}

// currentHash is HashConfig of the config file in effect.
func (r *reloader) currentHash() string {
	r.smu.Lock()
	defer r.smu.Unlock()
	return r.hash
}

func (r *reloader) status() ConfigStatus {
	r.smu.Lock()
	defer r.smu.Unlock()
	st := ConfigStatus{LoadedAt: r.loadedAt}
	if r.hash != "" {
		st.Hash = "sha256:" + r.hash
	}
	return st
}

// HashConfig is the hash /status shows of a config file's content.
func HashConfig(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// ReloadFile loads the config at path and, if it is valid, applies it
// (Reload), whatever its content. If it is not, vmcp keeps running on the config in effect: each
// error is logged with its file and line, and the failure counted in
// vmcp_config_reloads_total{outcome="invalid"}. It returns the error.
func (g *Gateway) ReloadFile(ctx context.Context, path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		g.log.Error("config reload: reading the file; still running on the previous config", "file", path, "err", err)
		g.reload.metrics.Observe(telemetry.ReloadInvalid)
		return fmt.Errorf("config: %w", err)
	}
	hash := HashConfig(data)
	cfg, err := config.Load(path)
	if err != nil {
		g.rejectConfig(path, err)
		return err
	}
	if g.reload.listen != "" {
		cfg.Listen = g.reload.listen
	}
	if err := g.Reload(ctx, cfg); err != nil {
		return err
	}
	g.reload.smu.Lock()
	g.reload.hash = hash
	g.reload.smu.Unlock()
	return nil
}

// rejectConfig logs each error of an invalid config on a line of its own
// and counts the reload.
func (g *Gateway) rejectConfig(path string, err error) {
	var errs []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	} else {
		errs = []error{err}
	}
	for _, e := range errs {
		g.log.Error("config reload: invalid config; still running on the previous one", "file", path, "err", e)
	}
	g.reload.metrics.Observe(telemetry.ReloadInvalid)
}

// Reload applies a validated config to the running gateway: backends
// added, removed or changed, aggregation, authorization and rate limits,
// and the session limits and timeouts (see session.Manager.Reconfigure).
// What cannot change while vmcp runs (listen, path, store, server,
// incomingAuth) keeps its old value, with a WARN naming it. If the new
// backends cannot be built (a TLS file that does not load, say), nothing
// changes and the error is returned. Reloads are serialised.
func (g *Gateway) Reload(ctx context.Context, cfg *config.Config) error {
	r := &g.reload
	r.mu.Lock()
	defer r.mu.Unlock()
	old := r.cfg
	for _, k := range fixedKeys(old, cfg) {
		g.log.Warn("config reload: this setting cannot change while vmcp runs; keeping the old value until a restart", "key", k)
	}
	r.red.Add(secretValues(cfg, r.getenv)...)
	r.shared.initTimeout = cfg.Session.BackendInitTimeout.D()
	prev := g.backends.Load()
	set, err := g.newBackendSet(cfg.Backends, prev)
	if err != nil {
		g.log.Error("config reload: building the backends failed; still running on the previous config", "err", err)
		r.metrics.Observe(telemetry.ReloadFailed)
		return err
	}
	decorators, initLimiter := r.decorators, r.initLimiter
	guardsChanged := !reflect.DeepEqual(old.Authorization, cfg.Authorization) || !reflect.DeepEqual(old.RateLimits, cfg.RateLimits)
	if guardsChanged {
		d, l, err := guards(cfg, r.rateLimiter(g.store), g.log, g.metrics)
		if err != nil {
			set.close(prev)
			g.log.Error("config reload: authorization or rate limits failed; still running on the previous config", "err", err)
			r.metrics.Observe(telemetry.ReloadFailed)
			return err
		}
		decorators, initLimiter = d, l
	}
	wrapped := r.wrapped
	if guardsChanged || !reflect.DeepEqual(old.Optimizer, cfg.Optimizer) {
		wrapped = g.decorators(cfg, decorators)
	}
	g.backends.Store(set)
	s := cfg.Session
	res := g.manager.Reconfigure(ctx, session.Lineup{
		Backends:    set.session,
		Aggregation: aggregationOptions(cfg.Aggregation),
		InitTimeout: s.BackendInitTimeout.D(),
		Calls:       session.CallLimits{MaxConcurrent: s.MaxConcurrentCalls, QueueTimeout: s.CallQueueTimeout.D()},
		Decorators:  wrapped,
	}, session.Limits{TTL: s.TTL.D(), IdleTimeout: s.IdleTimeout.D(), MaxSessions: s.MaxSessions,
		MaxPerIdentity: s.MaxSessionsPerIdentity, InitLimiter: initLimiter})
	// Warm sessions for 2026-07-28 requests are not the manager's: they
	// are rebuilt on the new lineup as requests come.
	g.pool.RetireAll()
	// Every live session has let go of the backends removed or changed.
	closed := prev.close(set)
	for _, name := range closed {
		g.probe.forget(name)
	}
	// What could not change stays as it was.
	applied := *cfg
	applied.Listen, applied.Path, applied.Store, applied.Server, applied.IncomingAuth = old.Listen, old.Path, old.Store, old.Server, old.IncomingAuth
	applied.Telemetry, applied.Audit = old.Telemetry, old.Audit
	applied.Session.BackendInitConcurrency, applied.Session.RetryAfter = old.Session.BackendInitConcurrency, old.Session.RetryAfter
	r.cfg, r.decorators, r.wrapped, r.initLimiter = &applied, decorators, wrapped, initLimiter
	r.smu.Lock()
	r.loadedAt = time.Now()
	r.smu.Unlock()
	r.metrics.Observe(telemetry.ReloadOK)
	g.log.Info("config reloaded", "backends", len(set.cfg), "added", added(prev, set), "removed", removed(prev, set),
		"changed", changed(prev, set), "sessions", res.Sessions)
	return nil
}

// fixedKeys names the settings that differ between a and b but cannot
// change while vmcp runs.
func fixedKeys(a, b *config.Config) []string {
	var out []string
	for _, k := range []struct {
		name string
		a, b any
	}{
		{"listen", a.Listen, b.Listen},
		{"path", a.Path, b.Path},
		{"store", a.Store, b.Store},
		{"server", a.Server, b.Server},
		{"incomingAuth", a.IncomingAuth, b.IncomingAuth},
		{"session.backendInitConcurrency", a.Session.BackendInitConcurrency, b.Session.BackendInitConcurrency},
		{"session.retryAfter", a.Session.RetryAfter, b.Session.RetryAfter},
		// The metrics, traces and audit trail are set up once, at start.
		{"telemetry", a.Telemetry, b.Telemetry},
		{"audit", a.Audit, b.Audit},
	} {
		if !reflect.DeepEqual(k.a, k.b) {
			out = append(out, k.name)
		}
	}
	// The Redis keys' TTL follows the session timeouts it was opened with.
	if a.Store.Type == config.StoreRedis && redisTTL(a.Session) != redisTTL(b.Session) {
		out = append(out, "session.ttl/idleTimeout (the Redis keys' TTL)")
	}
	return out
}

func added(prev, next *backendSet) []string {
	var out []string
	for _, b := range next.cfg {
		if prev.index(b.Name) < 0 {
			out = append(out, b.Name)
		}
	}
	return out
}

func removed(prev, next *backendSet) []string { return added(next, prev) }

func changed(prev, next *backendSet) []string {
	var out []string
	for i, b := range next.cfg {
		if j := prev.index(b.Name); j >= 0 && prev.connectors[j] != next.connectors[i] {
			out = append(out, b.Name)
		}
	}
	return out
}
