package gateway_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vmcp/vmcp/internal/config"
	"github.com/vmcp/vmcp/internal/exampleserver"
	"github.com/vmcp/vmcp/internal/fixture"
	"github.com/vmcp/vmcp/internal/gateway"
)

// jaegerConfig runs Jaeger all-in-one (memory storage) with OTLP over
// HTTP in and the query API out, on the given loopback ports only.
func jaegerConfig(otlp, query, queryGRPC, health string) string {
	return `service:
  extensions: [jaeger_storage, jaeger_query, healthcheckv2]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [jaeger_storage_exporter]
  telemetry:
    metrics:
      level: none
    logs:
      level: warn
extensions:
  healthcheckv2:
    use_v2: true
    http:
      endpoint: 127.0.0.1:` + health + `
  jaeger_query:
    storage:
      traces: mem
    http:
      endpoint: 127.0.0.1:` + query + `
    grpc:
      endpoint: 127.0.0.1:` + queryGRPC + `
  jaeger_storage:
    backends:
      mem:
        memory:
          max_traces: 1000
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:` + otlp + `
processors:
  batch:
exporters:
  jaeger_storage_exporter:
    trace_storage: mem
`
}

// traceparentRecorder is an example backend that records the traceparent
// of each request.
type traceparentRecorder struct {
	next http.Handler
	mu   sync.Mutex
	seen []string
}

func (h *traceparentRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if tp := r.Header.Get("Traceparent"); tp != "" {
		h.mu.Lock()
		h.seen = append(h.seen, tp)
		h.mu.Unlock()
	}
	h.next.ServeHTTP(w, r)
}

func (h *traceparentRecorder) has(traceID string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, tp := range h.seen {
		if strings.Contains(tp, "-"+traceID+"-") {
			return true
		}
	}
	return false
}

func tracedBackend(t *testing.T, name string) (config.Backend, *traceparentRecorder) {
	t.Helper()
	h := exampleserver.HTTPHandler(exampleserver.Options{Name: name, Stats: &exampleserver.Stats{}})
	rec := &traceparentRecorder{next: h}
	srv := httptest.NewServer(rec)
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
		h.Close()
	})
	return config.Backend{Name: name, Transport: config.TransportStreamableHTTP, URL: srv.URL + "/mcp", Timeout: config.Duration(30 * time.Second)}, rec
}

// jaegerSpan is what the test reads of a span from Jaeger's query API.
type jaegerSpan struct {
	SpanID        string `json:"spanID"`
	OperationName string `json:"operationName"`
	References    []struct {
		RefType string `json:"refType"`
		SpanID  string `json:"spanID"`
	} `json:"references"`
	Tags []struct {
		Key   string `json:"key"`
		Value any    `json:"value"`
	} `json:"tags"`
}

func (s jaegerSpan) parent() string {
	for _, r := range s.References {
		if r.RefType == "CHILD_OF" {
			return r.SpanID
		}
	}
	return ""
}

func (s jaegerSpan) tag(key string) string {
	for _, tg := range s.Tags {
		if tg.Key == key {
			v, _ := tg.Value.(string)
			return v
		}
	}
	return ""
}

// A real Jaeger receives vmcp's spans over OTLP: initialize has one child
// span per backend, a tool call's span names its backend and tool, the
// client's traceparent is the root's parent, and the backends receive the
// trace context in their request headers.
func TestJaegerReceivesTheTraceOfASession(t *testing.T) {
	jaeger := requireTool(t, "VMCP_JAEGER", filepath.Join("..", "..", "bin", "jaeger"), "make jaeger")
	otlp, query, queryGRPC, health := freePort(t), freePort(t), freePort(t), freePort(t)
	confPath := filepath.Join(t.TempDir(), "jaeger.yaml")
	if err := os.WriteFile(confPath, []byte(jaegerConfig(otlp, query, queryGRPC, health)), 0o600); err != nil {
		t.Fatal(err)
	}
	startProcess(t, jaeger, "--config", confPath)
	api := "http://127.0.0.1:" + query + "/api"
	waitFor(t, "Jaeger's query API", func() bool { return fetchJSON(api+"/services", &map[string]any{}) })

	web, webSeen := tracedBackend(t, "web")
	files, filesSeen := tracedBackend(t, "files")
	legacySeen := &traceparentRecorder{}
	legacy := fixture.StartSSEBehind(t, exampleserver.Options{Name: "legacy"}, func(h http.Handler) http.Handler {
		legacySeen.next = h
		return legacySeen
	})
	cfg := baseConfig(web, files, config.Backend{Name: "legacy", Transport: config.TransportSSE, URL: legacy.URL})
	cfg.Telemetry.Tracing = &config.Tracing{Endpoint: "http://127.0.0.1:" + otlp, Protocol: config.ProtocolHTTP, Sampling: 1}
	gw := startGateway(t, cfg, gateway.Options{})

	// The client's trace: vmcp's spans join it.
	const clientTrace, clientSpan = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	hc := &http.Client{Transport: traceparentTransport{"00-" + clientTrace + "-" + clientSpan + "-01"}}
	sid := rawInitWith(t, hc, gw.URL)
	const callTrace = "5bf92f3577b34da6a3ce929d0e0e4737"
	hc = &http.Client{Transport: traceparentTransport{"00-" + callTrace + "-" + clientSpan + "-01"}}
	rawPostWith(t, hc, gw.URL, sid, `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"web_echo","arguments":{"text":"x"}}}`)
	rawPostWith(t, hc, gw.URL, sid, `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"legacy_echo","arguments":{"text":"x"}}}`)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := gw.Shutdown(ctx); err != nil { // exports the spans
		t.Fatal(err)
	}

	spans := func(traceID string) []jaegerSpan {
		var r struct {
			Data []struct {
				Spans []jaegerSpan `json:"spans"`
			} `json:"data"`
		}
		var out []jaegerSpan
		waitFor(t, "trace "+traceID+" in Jaeger", func() bool {
			if !fetchJSON(api+"/traces/"+traceID, &r) || len(r.Data) == 0 {
				return false
			}
			out = r.Data[0].Spans
			return true
		})
		return out
	}

	init := spans(clientTrace)
	t.Logf("initialize trace: %v", names(init))
	byName := map[string][]jaegerSpan{}
	for _, s := range init {
		byName[s.OperationName] = append(byName[s.OperationName], s)
	}
	if len(byName["initialize"]) != 1 || len(byName["POST /mcp"]) != 1 {
		t.Fatalf("initialize trace has spans %v", names(init))
	}
	if p := byName["POST /mcp"][0].parent(); p != clientSpan {
		t.Errorf("the HTTP span's parent is %q, want the client's span %s", p, clientSpan)
	}
	initID := byName["initialize"][0].SpanID
	children := map[string]bool{}
	for _, s := range byName["backend.initialize"] {
		if s.parent() == initID {
			children[s.tag("vmcp.backend")] = true
		}
	}
	if len(children) != 3 || !children["web"] || !children["files"] || !children["legacy"] || len(byName["backend.initialize"]) != 3 {
		t.Errorf("initialize's backend children: %v (spans %v)", children, names(init))
	}

	var call *jaegerSpan
	for _, s := range spans(callTrace) {
		if s.OperationName == "tools/call" && s.tag("vmcp.backend") == "web" {
			call = &s
		}
	}
	if call == nil || call.tag("vmcp.backend") != "web" || call.tag("vmcp.tool") != "echo" || call.tag("vmcp.outcome") != "ok" {
		t.Errorf("tools/call span = %+v", call)
	}
	if !webSeen.has(clientTrace) || !filesSeen.has(clientTrace) || !webSeen.has(callTrace) || !legacySeen.has(callTrace) {
		t.Error("the backends did not receive the trace context in traceparent")
	}
	// The debug log's lines of each request carry its trace.
	for _, want := range []string{`msg="session started" session=1 by=initialize backends=3 trace_id=` + clientTrace,
		`msg="backend call" session=1 backend=web method=tools/call name=echo`} {
		if !strings.Contains(gw.Logs.String(), want) {
			t.Errorf("debug log lacks %q:\n%s", want, gw.Logs.String())
		}
	}
	for _, line := range strings.Split(gw.Logs.String(), "\n") {
		if strings.Contains(line, `msg="backend call"`) && !strings.Contains(line, "trace_id="+callTrace) {
			t.Errorf("log line without its trace: %s", line)
		}
	}
}

func names(spans []jaegerSpan) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.OperationName)
	}
	return out
}

// traceparentTransport sends a client's traceparent with each request.
type traceparentTransport struct{ tp string }

func (h traceparentTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Traceparent", h.tp)
	return http.DefaultTransport.RoundTrip(r)
}
