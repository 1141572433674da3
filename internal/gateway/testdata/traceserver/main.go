// Command traceserver is a stdio MCP server (go-sdk) that joins its
// caller's trace as MCP's SEP-414 carries it: the W3C traceparent and
// tracestate in a request's params._meta. Its tool "traced" answers with
// the traceparent it was sent and, when OTEL_EXPORTER_OTLP_ENDPOINT is
// set, exports a span of its own, a child of that traceparent, before it
// answers: a test reads the backend's view of the trace from the
// collector.
package main

import (
	"context"
	"log"
	"os"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

func main() {
	ctx := context.Background()
	var tracer trace.Tracer = noop.NewTracerProvider().Tracer("")
	if os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" {
		exp, err := otlptracehttp.New(ctx)
		if err != nil {
			log.Fatal(err)
		}
		// A syncer: the span is in the collector before the tool answers,
		// so nothing is lost when vmcp ends the process.
		tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp),
			sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", "traceserver"))))
		defer tp.Shutdown(ctx)
		tracer = tp.Tracer("traceserver")
	}
	s := mcp.NewServer(&mcp.Implementation{Name: "traceserver", Version: "1"}, nil)
	s.AddTool(&mcp.Tool{Name: "traced", Description: "joins the caller's trace", InputSchema: map[string]any{"type": "object"}},
		func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			carrier := propagation.MapCarrier{}
			for _, k := range []string{"traceparent", "tracestate"} {
				if v, ok := req.Params.Meta[k].(string); ok {
					carrier[k] = v
				}
			}
			ctx = propagation.TraceContext{}.Extract(ctx, carrier)
			_, span := tracer.Start(ctx, "traceserver tools/call", trace.WithSpanKind(trace.SpanKindServer),
				trace.WithAttributes(attribute.String("traceserver.tool", req.Params.Name)))
			span.End()
			seen := carrier["traceparent"]
			if seen == "" {
				seen = "none"
			}
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: seen}}}, nil
		})
	if err := s.Run(ctx, &mcp.StdioTransport{}); err != nil {
		log.Fatal(err)
	}
}
