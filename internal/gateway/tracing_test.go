package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vmcp/vmcp/internal/config"
	"github.com/vmcp/vmcp/internal/exampleserver"
	"github.com/vmcp/vmcp/internal/fixture"
	"github.com/vmcp/vmcp/internal/gateway"
)

// traceparentRecorder is an example backend that records the traceparent
// of each request, and the one in its params._meta if any.
type traceparentRecorder struct {
	next http.Handler
	mu   sync.Mutex
	seen []string
	meta []string
}

func (h *traceparentRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	var msg struct {
		Params struct {
			Meta struct {
				Traceparent string `json:"traceparent"`
			} `json:"_meta"`
		} `json:"params"`
	}
	json.Unmarshal(body, &msg)
	h.mu.Lock()
	if tp := r.Header.Get("Traceparent"); tp != "" {
		h.seen = append(h.seen, tp)
	}
	if tp := msg.Params.Meta.Traceparent; tp != "" {
		h.meta = append(h.meta, tp)
	}
	h.mu.Unlock()
	h.next.ServeHTTP(w, r)
}

// metaTraceparents are the params._meta.traceparent values h was sent.
func (h *traceparentRecorder) metaTraceparents() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.meta)
}

// traceparents are the traceparent headers h was sent, in order.
func (h *traceparentRecorder) traceparents() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.seen)
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

// A real Jaeger receives vmcp's spans over OTLP: initialize has one child
// span per backend, a tool call's span names its backend and tool, the
// client's traceparent is the root's parent, and the backends receive the
// trace context in their request headers. A traceparent the client put in
// params._meta (SEP-414) reaches the backend as vmcp's call span, as the
// header does.
func TestJaegerReceivesTheTraceOfASession(t *testing.T) {
	j := startJaeger(t)

	web, webSeen := tracedBackend(t, "web")
	files, filesSeen := tracedBackend(t, "files")
	legacySeen := &traceparentRecorder{}
	legacy := fixture.StartSSEBehind(t, exampleserver.Options{Name: "legacy"}, func(h http.Handler) http.Handler {
		legacySeen.next = h
		return legacySeen
	})
	cfg := baseConfig(web, files, config.Backend{Name: "legacy", Transport: config.TransportSSE, URL: legacy.URL})
	cfg.Telemetry.Tracing = j.config()
	gw := startGateway(t, cfg, gateway.Options{})

	// The client's trace: vmcp's spans join it.
	clientTrace, clientSpan := newTraceID(), "00f067aa0ba902b7"
	hc := &http.Client{Transport: traceparentTransport{"00-" + clientTrace + "-" + clientSpan + "-01", ""}}
	sid := rawInitWith(t, hc, gw.URL)
	callTrace := newTraceID()
	hc = &http.Client{Transport: traceparentTransport{"00-" + callTrace + "-" + clientSpan + "-01", ""}}
	rawPostWith(t, hc, gw.URL, sid, `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"web_echo","arguments":{"text":"x"},`+
		`"_meta":{"traceparent":"00-`+callTrace+`-`+clientSpan+`-01","progressToken":"p"}}}`)
	rawPostWith(t, hc, gw.URL, sid, `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"legacy_echo","arguments":{"text":"x"}}}`)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := gw.Shutdown(ctx); err != nil { // exports the spans
		t.Fatal(err)
	}

	checkInitializeTrace(t, j, clientTrace, clientSpan, "web", "files", "legacy")

	var call *jaegerSpan
	for _, s := range j.spans(t, callTrace, "tools/call") {
		if s.OperationName == "tools/call" && s.tag("vmcp.backend") == "web" {
			call = &s
		}
	}
	if call == nil || call.tag("vmcp.backend") != "web" || call.tag("vmcp.tool") != "echo" || call.tag("vmcp.outcome") != "ok" {
		t.Errorf("tools/call span = %+v", call)
	}
	if call != nil {
		if got, want := webSeen.metaTraceparents(), "00-"+callTrace+"-"+call.SpanID+"-01"; !slices.Equal(got, []string{want}) {
			t.Errorf("the web backend's params._meta.traceparent: %v, want [%s] (vmcp's call span)", got, want)
		}
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

// checkInitializeTrace waits for the trace traceID of an initialize and
// checks it: one POST /mcp span, a child of the client's span clientSpan,
// with one initialize span whose children are one backend.initialize per
// backend of backends.
func checkInitializeTrace(t *testing.T, j *jaeger, traceID, clientSpan string, backends ...string) {
	t.Helper()
	init := j.spans(t, traceID, "POST /mcp", "initialize", "backend.initialize")
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
	var children []string
	for _, s := range byName["backend.initialize"] {
		if s.parent() == initID {
			children = append(children, s.tag("vmcp.backend"))
		}
	}
	slices.Sort(children)
	backends = slices.Sorted(slices.Values(backends))
	if !slices.Equal(children, backends) || len(byName["backend.initialize"]) != len(backends) {
		t.Errorf("initialize's backend children: %v, want %v (spans %v)", children, backends, names(init))
	}
}

func names(spans []jaegerSpan) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.OperationName)
	}
	return out
}

// traceparentTransport sends a client's traceparent with each request,
// and its bearer token if it has one.
type traceparentTransport struct{ tp, token string }

func (h traceparentTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Traceparent", h.tp)
	if h.token != "" {
		r.Header.Set("Authorization", "Bearer "+h.token)
	}
	return http.DefaultTransport.RoundTrip(r)
}

// tracedClient is an HTTP client whose requests are in trace traceID, as
// children of span 00f067aa0ba902b7, with bearer token tok if set.
func tracedClient(traceID, tok string) *http.Client {
	return &http.Client{Transport: traceparentTransport{"00-" + traceID + "-00f067aa0ba902b7-01", tok}}
}
