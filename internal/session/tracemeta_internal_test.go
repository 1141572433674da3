package session

import (
	"context"
	"encoding/json"
	"testing"

	"go.opentelemetry.io/otel/trace"
)

func TestTraceMetaJoinsParamsMeta(t *testing.T) {
	tid, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	traced := trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled}))
	const tp = `"traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"`
	tests := []struct {
		name   string
		ctx    context.Context
		params string
		want   string
	}{
		{"no span", context.Background(), `{"name":"x"}`, `{"name":"x"}`},
		{"no _meta", traced, `{"name":"x"}`, `{"name":"x","_meta":{` + tp + `}}`},
		{"other _meta kept", traced, `{"name":"x","_meta":{"progressToken":7}}`, `{"name":"x","_meta":{"progressToken":7,` + tp + `}}`},
		{"client's traceparent replaced", traced, `{"_meta":{"traceparent":"00-5bf92f3577b34da6a3ce929d0e0e4737-1111111111111111-01"}}`, `{"_meta":{` + tp + `}}`},
		{"null _meta", traced, `{"_meta":null}`, `{"_meta":{` + tp + `}}`},
		{"not an object", traced, `[1]`, `[1]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := canonical(withTraceMeta(tt.ctx, []byte(tt.params))); got != canonical([]byte(tt.want)) {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
}

// canonical is raw re-encoded with sorted keys: member order does not
// matter.
func canonical(raw []byte) string {
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return string(raw)
	}
	b, _ := json.Marshal(v)
	return string(b)
}
