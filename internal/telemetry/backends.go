package telemetry

import (
	"context"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vmcp/vmcp/internal/session"
)

// backendMetrics are the per-backend and session-lifecycle metrics fed by
// session.Hooks. Their labels are configured backend names, methods from
// knownMethods, and fixed words (session.Outcome, the reasons below);
// tool names only when toolLabels is set.
type backendMetrics struct {
	rejected     *prometheus.CounterVec   // reason
	initDuration *prometheus.HistogramVec // backend
	initTotal    *prometheus.CounterVec   // backend, outcome, reason
	joins        *prometheus.CounterVec   // backend, trigger, outcome, reason
	callDuration *prometheus.HistogramVec // backend, method, outcome
	reinits      *prometheus.CounterVec   // backend, cause
	toolCalls    *prometheus.CounterVec   // backend, tool, outcome; nil unless toolLabels
	tokens       *prometheus.CounterVec   // backend, grant, trigger, outcome
	audit        *prometheus.CounterVec   // problem
}

func newBackendMetrics(reg *prometheus.Registry) *backendMetrics {
	b := &backendMetrics{
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vmcp_sessions_rejected_total",
			Help: "initialize requests refused before any backend was contacted, by reason: limit, identity, rate or auth.",
		}, []string{"reason"}),
		initDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "vmcp_session_backend_init_duration_seconds", Help: "Time to connect and list one backend for a new session.",
			Buckets: prometheus.ExponentialBuckets(0.001, 3, 10),
		}, []string{"backend"}),
		initTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vmcp_session_backend_init_total",
			Help: "Backend initializations for new sessions, by outcome (ok, error) and failure category (reason; empty when ok).",
		}, []string{"backend", "outcome", "reason"}),
		joins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vmcp_session_backend_joins_total",
			Help: "Backends a live session connected after it started, or tried to, by trigger (reload, retry), outcome (ok, error) and failure category (reason; empty when ok).",
		}, []string{"backend", "trigger", "outcome", "reason"}),
		callDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "vmcp_backend_call_duration_seconds", Help: "Time of one request to a backend, by method and outcome (ok or a failure category).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 3, 11),
		}, []string{"backend", "method", "outcome"}),
		reinits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vmcp_backend_reinitializations_total",
			Help: "Backend sessions replaced by new ones, by cause: session_lost, unreachable, unauthorized, not_connected.",
		}, []string{"backend", "cause"}),
		tokens: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vmcp_token_requests_total",
			Help: "Token endpoint requests for outgoing credentials, by grant (clientCredentials, tokenExchange), trigger (new, refresh) and outcome.",
		}, []string{"backend", "grant", "trigger", "outcome"}),
		audit: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vmcp_audit_events_lost_total", Help: "Audit events not written: dropped (buffer full) or write_error.",
		}, []string{"problem"}),
	}
	reg.MustRegister(b.rejected, b.initDuration, b.initTotal, b.joins, b.callDuration, b.reinits, b.tokens, b.audit)
	for _, r := range []string{"limit", "identity", "rate", "auth"} {
		b.rejected.WithLabelValues(r)
	}
	for _, p := range []string{"dropped", "write_error"} {
		b.audit.WithLabelValues(p)
	}
	return b
}

// Options are what Configure needs to know of the config.
type Options struct {
	// Backends are the configured backend names: their series exist at
	// 0 from the start, so a backend that never answered shows up.
	Backends []string
	// ToolLabels adds vmcp_backend_tool_calls_total{backend,tool,outcome}:
	// tool names come from the backends, so the set is only as bounded
	// as their catalogs.
	ToolLabels bool
	// Grants are the outgoing credential grants of the backends that have
	// one (clientCredentials or tokenExchange), by backend name.
	Grants map[string]string
}

// Configure applies opts; call it once, before serving.
func (m *Metrics) Configure(opts Options) {
	b := m.backends
	for _, name := range opts.Backends {
		b.initDuration.WithLabelValues(name)
		b.reinits.WithLabelValues(name, string(session.ReinitSessionLost))
	}
	for name, grant := range opts.Grants {
		b.tokens.WithLabelValues(name, grant, "new", "ok")
	}
	if opts.ToolLabels {
		b.toolCalls = prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vmcp_backend_tool_calls_total", Help: "tools/call and prompts/get requests to a backend, by tool or prompt name and outcome.",
		}, []string{"backend", "tool", "outcome"})
		m.reg.MustRegister(b.toolCalls)
	}
}

// method is method if it is one of knownMethods, else "other".
func method(name string) string {
	if slices.Contains(knownMethods, name) {
		return name
	}
	return "other"
}

// Hooks returns the session hooks that feed the per-backend metrics.
func (m *Metrics) Hooks() session.Hooks {
	b := m.backends
	return session.Hooks{
		SessionRejected: func(_ context.Context, _ string, reason string) {
			b.rejected.WithLabelValues(reason).Inc()
		},
		BackendInitialized: func(_ context.Context, _ *session.Session, backend string, took time.Duration, err error) {
			outcome, reason := "ok", ""
			if err != nil {
				outcome, reason = "error", session.Outcome(err)
			}
			b.initTotal.WithLabelValues(backend, outcome, reason).Inc()
			if err == nil {
				b.initDuration.WithLabelValues(backend).Observe(took.Seconds())
			}
		},
		BackendJoined: func(_ context.Context, _ *session.Session, backend, trigger string, _ time.Duration, err error) {
			outcome, reason := "ok", ""
			if err != nil {
				outcome, reason = "error", session.Outcome(err)
			}
			b.joins.WithLabelValues(backend, trigger, outcome, reason).Inc()
		},
		BackendCalled: func(_ context.Context, c *session.Call) {
			outcome := session.Outcome(c.Err)
			b.callDuration.WithLabelValues(c.Backend, method(c.Method), outcome).Observe(c.Took.Seconds())
			if b.toolCalls != nil && c.Tool != "" {
				b.toolCalls.WithLabelValues(c.Backend, c.Tool, outcome).Inc()
			}
		},
		BackendReinitialized: func(backend string, cause session.ReinitCause, err error) {
			if err == nil {
				b.reinits.WithLabelValues(backend, string(cause)).Inc()
			}
		},
	}
}

// ObserveTokenRequest counts one token endpoint request for backend:
// grant is clientCredentials or tokenExchange; refresh says a cached token
// was due for replacement.
func (m *Metrics) ObserveTokenRequest(backend, grant string, refresh bool, err error) {
	trigger, outcome := "new", "ok"
	if refresh {
		trigger = "refresh"
	}
	if err != nil {
		outcome = "error"
	}
	m.backends.tokens.WithLabelValues(backend, grant, trigger, outcome).Inc()
}

// ObserveRejectedByAuth counts an initialize refused by incoming
// authentication in vmcp_sessions_rejected_total{reason="auth"}.
func (m *Metrics) ObserveRejectedByAuth() { m.backends.rejected.WithLabelValues("auth").Inc() }

// AuditDropped counts an audit event dropped because the writer fell
// behind.
func (m *Metrics) AuditDropped() { m.backends.audit.WithLabelValues("dropped").Inc() }

// AuditWriteFailed counts audit events lost to a write error.
func (m *Metrics) AuditWriteFailed(n int) {
	m.backends.audit.WithLabelValues("write_error").Add(float64(n))
}

// ObserveBreakers registers vmcp_backend_breaker_state{backend}: 0 closed,
// 1 half-open, 2 open, as states reports them at scrape time. states must
// be safe for concurrent use; call this once.
func (m *Metrics) ObserveBreakers(states func() map[string]int) {
	m.reg.MustRegister(gaugeMap{
		desc: prometheus.NewDesc("vmcp_backend_breaker_state",
			"Each backend's circuit breaker: 0 closed, 1 half-open (probing), 2 open (refusing).", []string{"backend"}, nil),
		values: states,
	})
}
