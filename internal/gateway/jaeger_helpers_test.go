package gateway_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/vmcp/vmcp/internal/config"
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

// jaeger is a real Jaeger all-in-one, running until the test ends.
type jaeger struct {
	otlp string // OTLP/HTTP base URL
	api  string // query API base URL
}

// startJaeger runs bin/jaeger (make jaeger) on free loopback ports and
// waits for its query API.
func startJaeger(t *testing.T) *jaeger {
	t.Helper()
	bin := requireTool(t, "VMCP_JAEGER", filepath.Join("..", "..", "bin", "jaeger"), "make jaeger")
	otlp, query, queryGRPC, health := freePort(t), freePort(t), freePort(t), freePort(t)
	confPath := filepath.Join(t.TempDir(), "jaeger.yaml")
	if err := os.WriteFile(confPath, []byte(jaegerConfig(otlp, query, queryGRPC, health)), 0o600); err != nil {
		t.Fatal(err)
	}
	startProcess(t, bin, "--config", confPath)
	j := &jaeger{otlp: "http://127.0.0.1:" + otlp, api: "http://127.0.0.1:" + query + "/api"}
	waitFor(t, "Jaeger's query API", func() bool { return fetchJSON(j.api+"/services", &map[string]any{}) })
	return j
}

// config is telemetry.tracing sending every trace to j.
func (j *jaeger) config() *config.Tracing {
	return &config.Tracing{Endpoint: j.otlp, Protocol: config.ProtocolHTTP, Sampling: 1}
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
