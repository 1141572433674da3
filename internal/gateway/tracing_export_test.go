package gateway_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/vmcp/vmcp/internal/config"
	"github.com/vmcp/vmcp/internal/gateway"
)

// vmcp exports over OTLP/gRPC to a real Jaeger's gRPC receiver, set up
// by telemetry.tracing or by the standard OTEL_* variables alone: the
// session's initialize has one backend.initialize child per backend, and
// a tool call's span names its backend and tool.
func TestJaegerReceivesTracesOverOTLPGRPC(t *testing.T) {
	j := startJaeger(t)
	for _, tt := range []struct {
		name    string
		tracing *config.Tracing
		env     map[string]string
	}{
		{"telemetry.tracing", j.grpcConfig(), nil},
		{"OTEL variables", nil, map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": j.otlpGRPC, "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			web, _ := tracedBackend(t, "web")
			files, _ := tracedBackend(t, "files")
			cfg := baseConfig(web, files)
			cfg.Telemetry.Tracing = tt.tracing
			gw := startGateway(t, cfg, gateway.Options{})

			initTrace, callTrace := newTraceID(), newTraceID()
			sid := rawInitWith(t, tracedClient(initTrace, ""), gw.URL)
			if code, _, body := rawPostWith(t, tracedClient(callTrace, ""), gw.URL, sid,
				`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"files_echo","arguments":{"text":"x"}}}`); code != http.StatusOK {
				t.Fatalf("tools/call: %d %s", code, body)
			}
			shutdown(t, gw)

			checkInitializeTrace(t, j, initTrace, "00f067aa0ba902b7", "web", "files")
			spans := j.spans(t, callTrace, "tools/call")
			if call := find(spans, "tools/call", "vmcp.backend", "files", "vmcp.tool", "echo"); call == nil || call.Service != "vmcp" {
				t.Errorf("call trace has spans %v; want vmcp's tools/call to files' echo", names(spans))
			}
		})
	}
}

// With sampling 0, vmcp starts no trace of its own, yet follows a
// caller's sampled flag (parent-based sampling): a request with no
// traceparent, or with one flagged 00, leaves no trace in Jaeger, while
// one flagged 01 is recorded under the caller's trace ID. Backends get
// the flag as decided. The same holds with the SDK's own
// OTEL_TRACES_SAMPLER instead of telemetry.tracing.
func TestJaegerSamplingFollowsTheCallersFlag(t *testing.T) {
	j := startJaeger(t)
	unsampled := j.config()
	unsampled.Sampling = 0
	for _, tt := range []struct {
		name    string
		tracing *config.Tracing
		env     map[string]string
	}{
		{"telemetry.tracing sampling 0", unsampled, nil},
		{"OTEL_TRACES_SAMPLER", nil, map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": j.otlp,
			"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			web, seen := tracedBackend(t, "web")
			cfg := baseConfig(web)
			cfg.Telemetry.Tracing = tt.tracing
			gw := startGateway(t, cfg, gateway.Options{})
			const clientSpan = "00f067aa0ba902b7"
			flagged := func(traceID, flags string) *http.Client {
				return &http.Client{Transport: traceparentTransport{"00-" + traceID + "-" + clientSpan + "-" + flags, ""}}
			}
			call := func(hc *http.Client, sid string) {
				t.Helper()
				if code, _, body := rawPostWith(t, hc, gw.URL, sid,
					`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"web_echo","arguments":{"text":"x"}}}`); code != http.StatusOK {
					t.Fatalf("tools/call: %d %s", code, body)
				}
			}

			// The unsampled requests come first, the sampled one last, so
			// that its trace in Jaeger proves theirs were exported if
			// recorded at all. vmcp's own trace IDs, for the requests
			// without a traceparent, are in what the backend was sent.
			sid := rawInitWith(t, http.DefaultClient, gw.URL)
			call(http.DefaultClient, sid)
			notSampled := newTraceID()
			call(flagged(notSampled, "00"), sid)
			unsampledSeen := seen.traceparents()
			sampled := newTraceID()
			call(flagged(sampled, "01"), sid)
			shutdown(t, gw)

			spans := j.spans(t, sampled, "POST /mcp", "tools/call")
			httpSpan, callSpan := find(spans, "POST /mcp"), find(spans, "tools/call", "vmcp.backend", "web")
			if httpSpan == nil || callSpan == nil || httpSpan.parent() != clientSpan {
				t.Fatalf("sampled trace has spans %v; want POST /mcp under the client's span and web's tools/call", names(spans))
			}
			if want := "00-" + sampled + "-" + callSpan.SpanID + "-01"; !slices.Contains(seen.traceparents(), want) {
				t.Errorf("the backend was not sent %s; got %v", want, seen.traceparents())
			}

			own := map[string]bool{} // vmcp's trace IDs, for requests without traceparent
			for _, tp := range unsampledSeen {
				parts := strings.Split(tp, "-")
				if len(parts) != 4 {
					t.Fatalf("the backend was sent traceparent %q", tp)
				}
				if parts[3] != "00" {
					t.Errorf("the backend was sent traceparent %s in an unsampled request; want flags 00", tp)
				}
				if parts[1] != notSampled {
					own[parts[1]] = true
				}
			}
			if !slices.ContainsFunc(unsampledSeen, func(tp string) bool { return strings.Contains(tp, "-"+notSampled+"-") }) {
				t.Errorf("the backend was not sent the caller's unsampled trace %s: %v", notSampled, unsampledSeen)
			}
			if len(own) < 2 { // the initialize's and the call's
				t.Fatalf("vmcp's own traces, seen by the backend: %v; want those of the initialize and the call", own)
			}
			for id := range own {
				if !j.absent(t, id) {
					t.Errorf("Jaeger has trace %s of a request without traceparent, with sampling 0", id)
				}
			}
			if !j.absent(t, notSampled) {
				t.Errorf("Jaeger has trace %s, whose caller's traceparent was flagged 00", notSampled)
			}
		})
	}
}
