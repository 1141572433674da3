package tracing_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"
	"go.uber.org/goleak"

	"github.com/vmcp/vmcp/internal/config"
	"github.com/vmcp/vmcp/internal/tracing"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func env(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }

func TestEnabled(t *testing.T) {
	t.Parallel()
	cfg := &config.Tracing{Sampling: 1}
	tests := []struct {
		name string
		cfg  *config.Tracing
		env  map[string]string
		want bool
	}{
		{"nothing", nil, nil, false},
		{"config", cfg, nil, true},
		{"endpoint variable", nil, map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, true},
		{"traces endpoint variable", nil, map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"}, true},
		{"SDK disabled", cfg, map[string]string{"OTEL_SDK_DISABLED": "true"}, false},
		{"exporter none", cfg, map[string]string{"OTEL_TRACES_EXPORTER": "none"}, false},
	}
	for _, tt := range tests {
		if got := tracing.Enabled(tt.cfg, env(tt.env)); got != tt.want {
			t.Errorf("%s: Enabled = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// handler is comparable, so the test can see Handler hand it back.
type handler struct{}

func (*handler) ServeHTTP(http.ResponseWriter, *http.Request) {}

// Off, tracing is not in the request path at all.
func TestOffIsNoOp(t *testing.T) {
	t.Parallel()
	p, err := tracing.New(context.Background(), nil, env(nil), "test")
	if err != nil {
		t.Fatal(err)
	}
	h := &handler{}
	if p.On() || p.Handler(h, "/mcp") != http.Handler(h) {
		t.Error("tracing off still wraps the handler")
	}
	_, span := p.Tracer().Start(context.Background(), "x")
	if span.IsRecording() {
		t.Error("tracing off records spans")
	}
	if err := p.Shutdown(context.Background()); err != nil {
		t.Error(err)
	}
}

func TestLogLinesCarryTheTraceID(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	log := slog.New(tracing.LogHandler(slog.NewTextHandler(&buf, nil)))
	tid, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	ctx := trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid}))
	log.With("a", 1).InfoContext(ctx, "traced")
	log.Info("untraced")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "trace_id=4bf92f3577b34da6a3ce929d0e0e4736") || strings.Contains(lines[1], "trace_id") {
		t.Errorf("log:\n%s", buf.String())
	}
}

// On, requests to the MCP endpoint get a server span under the caller's
// traceparent; other paths pass through. Shutdown stops the exporter.
func TestOnTracesTheMCPEndpoint(t *testing.T) {
	t.Parallel()
	p, err := tracing.New(context.Background(), &config.Tracing{Endpoint: "http://127.0.0.1:1", Sampling: 1}, env(nil), "test")
	if err != nil {
		t.Fatal(err)
	}
	var seen []trace.SpanContext
	h := p.Handler(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		seen = append(seen, trace.SpanContextFromContext(r.Context()))
	}), "/mcp")
	for _, path := range []string{"/mcp", "/health"} {
		r := httptest.NewRequest(http.MethodPost, path, nil)
		r.Header.Set("Traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
		h.ServeHTTP(httptest.NewRecorder(), r)
	}
	if !p.On() || len(seen) != 2 || seen[0].TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" ||
		seen[0].SpanID().String() == "00f067aa0ba902b7" || seen[1].IsValid() {
		t.Errorf("span contexts seen by the handler: %v", seen)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	p.Shutdown(ctx) // the collector is unreachable: the error is expected
}
