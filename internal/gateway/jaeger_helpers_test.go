package gateway_test

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/vmcp/vmcp/internal/config"
)

// jaegerConfig runs Jaeger all-in-one (memory storage) with OTLP over
// HTTP and gRPC in and the query API out, on the given loopback ports
// only, and no traces of its own.
func jaegerConfig(otlp, otlpGRPC, query, queryGRPC, health string) string {
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
    enable_tracing: false # its own spans would go to 127.0.0.1:4317
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
          max_traces: 10000
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:` + otlp + `
      grpc:
        endpoint: 127.0.0.1:` + otlpGRPC + `
processors:
  batch:
exporters:
  jaeger_storage_exporter:
    trace_storage: mem
`
}

// jaeger is a real Jaeger all-in-one, shared by the tests of this binary:
// tests tell their traces apart by trace ID (newTraceID), never by what
// else is stored.
type jaeger struct {
	otlp     string // OTLP/HTTP base URL
	otlpGRPC string // OTLP/gRPC endpoint URL
	api      string // query API base URL
}

// sharedJaeger is the Jaeger startJaeger started, stopped by TestMain.
var sharedJaeger struct {
	once sync.Once
	j    *jaeger
	cmd  *exec.Cmd
	dir  string // its config and output
	err  error
}

// startJaeger returns the test binary's Jaeger, running bin/jaeger (make
// jaeger) on free loopback ports the first time, and waits for its query
// API. If the test fails, it logs Jaeger's output.
func startJaeger(t *testing.T) *jaeger {
	t.Helper()
	bin := requireTool(t, "VMCP_JAEGER", filepath.Join("..", "..", "bin", "jaeger"), "make jaeger")
	s := &sharedJaeger
	s.once.Do(func() { s.j, s.err = launchJaeger(bin) })
	if s.err != nil {
		t.Fatalf("starting Jaeger: %v", s.err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := os.ReadFile(filepath.Join(s.dir, "output"))
			t.Logf("Jaeger output:\n%s", out)
		}
	})
	waitFor(t, "Jaeger's query API", func() bool { return fetchJSON(s.j.api+"/services", &map[string]any{}) })
	return s.j
}

// launchJaeger starts bin. Its output goes to a file, not a pipe, so that
// no goroutine of this process copies it (goleak checks see none).
func launchJaeger(bin string) (*jaeger, error) {
	var ports [5]string
	for i := range ports {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer ln.Close() // after the loop: five distinct ports
		ports[i] = strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	}
	otlp, otlpGRPC, query, queryGRPC, health := ports[0], ports[1], ports[2], ports[3], ports[4]
	dir, err := os.MkdirTemp("", "vmcp-jaeger-")
	if err != nil {
		return nil, err
	}
	sharedJaeger.dir = dir
	confPath := filepath.Join(dir, "jaeger.yaml")
	if err := os.WriteFile(confPath, []byte(jaegerConfig(otlp, otlpGRPC, query, queryGRPC, health)), 0o600); err != nil {
		return nil, err
	}
	out, err := os.Create(filepath.Join(dir, "output"))
	if err != nil {
		return nil, err
	}
	defer out.Close() // the child has its own copy
	cmd := exec.Command(bin, "--config", confPath)
	cmd.Stdout, cmd.Stderr = out, out
	// Not the OTEL_* a test set for vmcp (t.Setenv) when it came first.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "OTEL_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: %w", bin, err)
	}
	sharedJaeger.cmd = cmd
	return &jaeger{otlp: "http://127.0.0.1:" + otlp, otlpGRPC: "http://127.0.0.1:" + otlpGRPC,
		api: "http://127.0.0.1:" + query + "/api"}, nil
}

// stopJaeger stops the shared Jaeger, if a test started it.
func stopJaeger() {
	s := &sharedJaeger
	if s.cmd != nil {
		s.cmd.Process.Kill()
		s.cmd.Wait()
	}
	if s.dir != "" {
		os.RemoveAll(s.dir)
	}
}

// config is telemetry.tracing sending every new trace to j over OTLP/HTTP.
func (j *jaeger) config() *config.Tracing {
	return &config.Tracing{Endpoint: j.otlp, Protocol: config.ProtocolHTTP, Sampling: 1}
}

// grpcConfig is config over OTLP/gRPC.
func (j *jaeger) grpcConfig() *config.Tracing {
	return &config.Tracing{Endpoint: j.otlpGRPC, Protocol: config.ProtocolGRPC, Sampling: 1}
}

// newTraceID is a random W3C trace ID, so that traces of tests sharing
// the Jaeger (and of -count runs) never merge.
func newTraceID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// absent reports whether Jaeger has no trace traceID, failing the test if
// its query API gives no clear answer. Call it only once a trace exported
// after traceID's would-be spans is in Jaeger: that proves vmcp flushed
// them, so absence is not merely lateness.
func (j *jaeger) absent(t *testing.T, traceID string) bool {
	t.Helper()
	resp, err := http.Get(j.api + "/traces/" + traceID)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusNotFound:
		return true
	case http.StatusOK:
		return false
	}
	body, _ := io.ReadAll(resp.Body)
	t.Fatalf("GET trace %s: %s %s", traceID, resp.Status, body)
	return false
}

// trace waits for trace traceID to be in Jaeger with a span of each of
// the operations ops (Jaeger stores the batches of a trace as they come)
// and returns its spans, each with its service's name, and the query
// API's JSON of it as it came.
func (j *jaeger) trace(t *testing.T, traceID string, ops ...string) ([]jaegerSpan, []byte) {
	t.Helper()
	var spans []jaegerSpan
	var raw []byte
	waitFor(t, "trace "+traceID+" in Jaeger", func() bool {
		resp, err := http.Get(j.api + "/traces/" + traceID)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		raw, err = io.ReadAll(resp.Body)
		var r struct {
			Data []struct {
				Spans     []jaegerSpan `json:"spans"`
				Processes map[string]struct {
					ServiceName string `json:"serviceName"`
				} `json:"processes"`
			} `json:"data"`
		}
		if err != nil || resp.StatusCode != http.StatusOK || json.Unmarshal(raw, &r) != nil || len(r.Data) == 0 {
			return false
		}
		spans = r.Data[0].Spans
		for i := range spans {
			spans[i].Service = r.Data[0].Processes[spans[i].ProcessID].ServiceName
		}
		for _, op := range ops {
			if find(spans, op) == nil {
				return false
			}
		}
		return true
	})
	return spans, raw
}

// spans is trace without the JSON.
func (j *jaeger) spans(t *testing.T, traceID string, ops ...string) []jaegerSpan {
	t.Helper()
	spans, _ := j.trace(t, traceID, ops...)
	return spans
}

// jaegerSpan is what the test reads of a span from Jaeger's query API.
type jaegerSpan struct {
	SpanID        string `json:"spanID"`
	OperationName string `json:"operationName"`
	ProcessID     string `json:"processID"`
	Service       string `json:"-"` // from the trace's processes
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
			return fmt.Sprint(tg.Value) // "true" for a bool
		}
	}
	return ""
}

// find is the span of spans named op whose tags include tags; nil if none.
func find(spans []jaegerSpan, op string, tags ...string) *jaegerSpan {
next:
	for i, s := range spans {
		if s.OperationName != op {
			continue
		}
		for k := 0; k+1 < len(tags); k += 2 {
			if s.tag(tags[k]) != tags[k+1] {
				continue next
			}
		}
		return &spans[i]
	}
	return nil
}
