// Package tracing sets up vmcp's OpenTelemetry traces: an OTLP exporter
// (HTTP or gRPC) configured by telemetry.tracing or the standard OTEL_*
// environment variables, W3C trace context in and out, the span of each
// HTTP request, and a slog handler that puts the trace ID on every log
// line of a traced request.
//
// When tracing is off, Provider's Tracer is OpenTelemetry's no-op tracer
// and Handler returns its handler unwrapped: nothing is recorded,
// allocated or propagated.
package tracing

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/vmcp/vmcp/internal/config"
)

// Provider is vmcp's tracer provider, on or off. Shutdown flushes it.
type Provider struct {
	tracer trace.Tracer
	sdk    *sdktrace.TracerProvider // nil when off
}

// Propagator is the W3C Trace Context propagator (traceparent,
// tracestate) vmcp reads and writes.
var Propagator propagation.TextMapPropagator = propagation.TraceContext{}

// Enabled reports whether traces are to be exported: telemetry.tracing is
// set, or an OTLP endpoint is in the environment, and neither
// OTEL_SDK_DISABLED=true nor OTEL_TRACES_EXPORTER=none says otherwise.
func Enabled(cfg *config.Tracing, getenv func(string) string) bool {
	if strings.EqualFold(getenv("OTEL_SDK_DISABLED"), "true") || getenv("OTEL_TRACES_EXPORTER") == "none" {
		return false
	}
	return cfg != nil || getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
}

// New returns the tracer provider the config and environment ask for, off
// if Enabled says so. The exporter connects lazily: an unreachable
// collector costs dropped spans, never a failed start or a blocked call.
func New(ctx context.Context, cfg *config.Tracing, getenv func(string) string, version string) (*Provider, error) {
	if !Enabled(cfg, getenv) {
		return &Provider{tracer: noop.NewTracerProvider().Tracer("")}, nil
	}
	fromConfig := cfg != nil
	if cfg == nil {
		cfg = &config.Tracing{}
	}
	protocol := cfg.Protocol
	if protocol == "" {
		protocol = getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
	}
	if protocol == "" {
		protocol = getenv("OTEL_EXPORTER_OTLP_PROTOCOL")
	}
	var exp sdktrace.SpanExporter
	var err error
	switch protocol {
	case "", config.ProtocolHTTP:
		var opts []otlptracehttp.Option
		if cfg.Endpoint != "" {
			opts = append(opts, otlptracehttp.WithEndpointURL(tracesURL(cfg.Endpoint)))
		}
		exp, err = otlptracehttp.New(ctx, opts...)
	case config.ProtocolGRPC:
		var opts []otlptracegrpc.Option
		if cfg.Endpoint != "" {
			opts = append(opts, otlptracegrpc.WithEndpointURL(cfg.Endpoint))
		}
		exp, err = otlptracegrpc.New(ctx, opts...)
	default:
		return nil, fmt.Errorf("OTEL_EXPORTER_OTLP_PROTOCOL: %q is not one of http/protobuf, grpc", protocol)
	}
	if err != nil {
		return nil, fmt.Errorf("telemetry.tracing: %w", err)
	}
	res, err := resource.New(ctx,
		resource.WithAttributes(attribute.String("service.name", "vmcp"), attribute.String("service.version", version)),
		resource.WithFromEnv(), resource.WithTelemetrySDK())
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		return nil, fmt.Errorf("OTEL_RESOURCE_ATTRIBUTES: %w", err)
	}
	opts := []sdktrace.TracerProviderOption{sdktrace.WithBatcher(exp), sdktrace.WithResource(res)}
	if fromConfig {
		// The config's ratio, for new traces; a caller's sampled flag
		// decides for its own. Without telemetry.tracing the SDK reads
		// OTEL_TRACES_SAMPLER itself.
		opts = append(opts, sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(cfg.Sampling))))
	}
	tp := sdktrace.NewTracerProvider(opts...)
	return &Provider{tracer: tp.Tracer("github.com/vmcp/vmcp"), sdk: tp}, nil
}

// tracesURL is endpoint with OTLP's traces path when it has no path of
// its own, as the OTEL_EXPORTER_OTLP_ENDPOINT variable is read.
func tracesURL(endpoint string) string {
	u, err := url.Parse(endpoint)
	if err != nil || (u.Path != "" && u.Path != "/") {
		return endpoint
	}
	u.Path = "/v1/traces"
	return u.String()
}

// On reports whether traces are recorded and exported.
func (p *Provider) On() bool { return p.sdk != nil }

// Tracer is the tracer of vmcp's spans.
func (p *Provider) Tracer() trace.Tracer { return p.tracer }

// Shutdown exports the spans still buffered, within ctx.
func (p *Provider) Shutdown(ctx context.Context) error {
	if p.sdk == nil {
		return nil
	}
	return p.sdk.Shutdown(ctx)
}

// Handler starts the server span of each request to the MCP endpoint
// mcpPath, as a child of the request's traceparent if it carries one;
// other paths pass through untraced. With tracing off it
// returns next itself.
func (p *Provider) Handler(next http.Handler, mcpPath string) http.Handler {
	if p.sdk == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != mcpPath { // /health, /metrics and the like: no spans
			next.ServeHTTP(w, r)
			return
		}
		ctx := Propagator.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
		ctx, span := p.tracer.Start(ctx, r.Method+" "+mcpPath, trace.WithSpanKind(trace.SpanKindServer),
			trace.WithAttributes(attribute.String("http.request.method", r.Method), attribute.String("url.path", mcpPath)))
		defer span.End()
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// Inject writes the trace context of ctx's span into h, if it has one.
func Inject(ctx context.Context, h http.Header) {
	Propagator.Inject(ctx, propagation.HeaderCarrier(h))
}
