package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/vmcp/vmcp/internal/audit"
	"github.com/vmcp/vmcp/internal/config"
	"github.com/vmcp/vmcp/internal/credentials"
	"github.com/vmcp/vmcp/internal/frontend"
	"github.com/vmcp/vmcp/internal/identity"
	"github.com/vmcp/vmcp/internal/redact"
	"github.com/vmcp/vmcp/internal/session"
	"github.com/vmcp/vmcp/internal/telemetry"
	"github.com/vmcp/vmcp/internal/tracing"
)

// observability is what the gateway tells about itself beyond its logs:
// the metrics, the audit trail (nil when not configured) and traces.
type observability struct {
	metrics *telemetry.Metrics
	audit   *audit.Log
	tracing *tracing.Provider
}

// newObservability opens the audit trail and sets up tracing. An audit
// path vmcp cannot write is an error here, before vmcp listens.
func newObservability(cfg *config.Config, metrics *telemetry.Metrics, red *redact.Redactor, version string, getenv func(string) string) (*observability, error) {
	names := make([]string, len(cfg.Backends))
	grants := map[string]string{}
	for i, b := range cfg.Backends {
		names[i] = b.Name
		switch o := b.OutgoingAuth; {
		case o == nil:
		case o.Type == config.OutgoingTokenExchange:
			grants[b.Name] = credentials.TokenExchange
		case o.Type != "" && o.Type != config.OutgoingNone:
			grants[b.Name] = credentials.ClientCredentials
		}
	}
	metrics.Configure(telemetry.Options{Backends: names, ToolLabels: cfg.Telemetry.ToolLabels, Grants: grants})
	o := &observability{metrics: metrics}
	var err error
	if o.tracing, err = tracing.New(context.Background(), cfg.Telemetry.Tracing, getenv, version); err != nil {
		return nil, err
	}
	if a := cfg.Audit; a != nil {
		opts := audit.Options{Path: a.Path, Arguments: a.Arguments, Redact: red.RedactJSON, Observer: metrics,
			Policy: len(cfg.Authorization.Policies) > 0}
		if a.HashKeyEnv != "" {
			key := getenv(a.HashKeyEnv)
			if key == "" {
				o.tracing.Shutdown(context.Background())
				return nil, fmt.Errorf("audit.hashKeyEnv: environment variable %s is not set or empty", a.HashKeyEnv)
			}
			opts.Key = []byte(key)
		}
		if o.audit, err = audit.Open(opts); err != nil {
			o.tracing.Shutdown(context.Background())
			return nil, err
		}
	}
	return o, nil
}

// hooks are the session hooks: metrics, then the audit trail.
func (o *observability) hooks() []session.Hooks {
	hs := []session.Hooks{o.metrics.Hooks()}
	if o.audit != nil {
		hs = append(hs, o.audit.Hooks())
	}
	return hs
}

// decorate puts the audit decorator outside ds (the guards), so that it
// sees what they refuse.
func (o *observability) decorate(ds []session.Decorator) []session.Decorator {
	if o.audit == nil {
		return ds
	}
	return append([]session.Decorator{o.audit.Decorator()}, ds...)
}

// propagator is the trace context propagator for backend requests; nil
// with tracing off.
func (o *observability) propagator() propagation.TextMapPropagator {
	if o == nil || !o.tracing.On() {
		return nil
	}
	return tracing.Propagator
}

// tracer is the sessions' tracer; nil with tracing off, so that they
// skip even building span options.
func (o *observability) tracer() trace.Tracer {
	if !o.tracing.On() {
		return nil
	}
	return o.tracing.Tracer()
}

// credentialOptions adds token request metrics and spans to a backend's
// credentials.
func (o *observability) credentialOptions(backend string, opts *credentials.Options) {
	if o == nil {
		return
	}
	opts.Observe = func(grant string, refresh bool, err error) {
		o.metrics.ObserveTokenRequest(backend, grant, refresh, err)
	}
	if o.tracing.On() {
		opts.Tracer = o.tracing.Tracer()
		opts.SpanAttributes = []attribute.KeyValue{attribute.String("vmcp.backend", backend)}
	}
}

// ObserveAuthFailure counts and audits a request refused by incoming
// authentication (authn.Observer).
func (o *observability) ObserveAuthFailure(reason string) {
	o.metrics.ObserveAuthFailure(reason)
	if o.audit != nil {
		o.audit.ObserveAuthFailure(reason)
	}
}

// authenticator counts in vmcp_sessions_rejected_total{reason="auth"} the
// refused requests that would have started a session: POSTs without an
// Mcp-Session-Id.
func (o *observability) authenticator(a frontend.Authenticator) frontend.Authenticator {
	if a == nil {
		return nil
	}
	return rejectCounter{a, o.metrics}
}

type rejectCounter struct {
	frontend.Authenticator
	m *telemetry.Metrics
}

func (c rejectCounter) Authenticate(w http.ResponseWriter, r *http.Request) (*identity.Identity, bool) {
	id, ok := c.Authenticator.Authenticate(w, r)
	if !ok && r.Method == http.MethodPost && r.Header.Get("Mcp-Session-Id") == "" {
		c.m.ObserveRejectedByAuth()
	}
	return id, ok
}

// close flushes the audit trail and the spans; the sessions have ended.
func (o *observability) close(ctx context.Context) error {
	var errs []error
	if o.audit != nil {
		if err := o.audit.Close(); err != nil {
			errs = append(errs, fmt.Errorf("closing the audit trail: %w", err))
		}
	}
	if err := o.tracing.Shutdown(ctx); err != nil {
		errs = append(errs, fmt.Errorf("exporting spans: %w", err))
	}
	return errors.Join(errs...)
}

// breakerStates feeds vmcp_backend_breaker_state.
func (g *Gateway) breakerStates() map[string]int {
	set := g.backends.Load()
	out := make(map[string]int, len(set.breakers))
	for i, b := range set.breakers {
		out[set.cfg[i].Name] = breakerValue(b.Health().State)
	}
	return out
}

// breakerValue is the gauge value of a breaker state.
func breakerValue(state string) int {
	switch state {
	case "open":
		return 2
	case "half-open":
		return 1
	}
	return 0
}
