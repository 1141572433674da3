package session

import (
	"context"
	"encoding/json"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// withTraceMeta returns params with the trace context of ctx's span in
// params._meta (traceparent, and tracestate if any), as MCP's SEP-414
// carries it where there are no HTTP headers (stdio), in place of any the
// client sent. Other _meta members stay.
// params without a span, or that are not an object, come back as they
// were.
func withTraceMeta(ctx context.Context, params json.RawMessage) json.RawMessage {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return params
	}
	carrier := propagation.MapCarrier{}
	propagation.TraceContext{}.Inject(ctx, carrier)
	meta := mustRaw(params, "_meta")
	if meta == nil || string(meta) == "null" {
		meta = json.RawMessage(`{}`)
	}
	var err error
	for _, k := range []string{"traceparent", "tracestate"} {
		if v := carrier.Get(k); v != "" {
			if meta, err = setParam(meta, k, v); err != nil {
				return params
			}
		}
	}
	if len(params) == 0 || string(params) == "null" {
		params = json.RawMessage(`{}`)
	}
	out, err := setRaw(params, "_meta", meta)
	if err != nil {
		return params
	}
	return out
}
