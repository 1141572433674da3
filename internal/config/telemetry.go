package config

import "net/url"

// Telemetry configures what vmcp tells about itself beyond the fixed
// metrics: tool-name labels and traces.
type Telemetry struct {
	// ToolLabels adds vmcp_backend_tool_calls_total{backend,tool,outcome}.
	// Off by default: tool names come from the backends, so the label set
	// is as large as their catalogs.
	ToolLabels bool `yaml:"toolLabels"`
	// Tracing, if set, exports OpenTelemetry traces over OTLP. Without it
	// traces are exported only when OTEL_EXPORTER_OTLP_ENDPOINT (or
	// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is set; with neither, vmcp
	// traces nothing and it costs nothing.
	Tracing *Tracing `yaml:"tracing"`
}

// Tracing is the OTLP trace exporter. Empty fields fall back to the
// standard OTEL_* environment variables, then to the SDK's defaults.
type Tracing struct {
	// Endpoint is the collector's URL, such as http://127.0.0.1:4318 for
	// http/protobuf or http://127.0.0.1:4317 for grpc.
	Endpoint string `yaml:"endpoint"`
	// Protocol is http/protobuf (the default) or grpc.
	Protocol string `yaml:"protocol"`
	// Sampling is the ratio of new traces sampled, 0 to 1 (default 1); a
	// request carrying a traceparent follows its sampled flag.
	Sampling float64 `yaml:"sampling"`
}

func (t *Tracing) setDefaults() { t.Sampling = 1 }

// Tracing protocols.
const (
	ProtocolHTTP = "http/protobuf"
	ProtocolGRPC = "grpc"
)

// observability checks telemetry and audit.
func (v *validator) observability(cfg *Config) {
	if t := cfg.Telemetry.Tracing; t != nil {
		const p = "telemetry.tracing"
		if t.Endpoint != "" {
			if u, err := url.Parse(t.Endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				v.fail(p+".endpoint", "must be an http or https URL such as http://127.0.0.1:4318 (got %s)", v.got(p+".endpoint", t.Endpoint))
			}
		}
		switch t.Protocol {
		case "", ProtocolHTTP, ProtocolGRPC:
		default:
			v.fail(p+".protocol", "must be one of http/protobuf, grpc (got %s)", v.got(p+".protocol", t.Protocol))
		}
		if !(t.Sampling >= 0 && t.Sampling <= 1) {
			v.fail(p+".sampling", "must be a ratio from 0 to 1 (got %v)", t.Sampling)
		}
	}
	if a := cfg.Audit; a != nil {
		v.audit(a)
	}
}
