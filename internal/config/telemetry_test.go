package config

import "testing"

func TestTelemetryAndAuditConfig(t *testing.T) {
	t.Parallel()
	cfg, err := Parse([]byte(minimal + `telemetry:
  toolLabels: true
  tracing:
    endpoint: http://127.0.0.1:4318
audit:
  path: /var/log/vmcp/audit.jsonl
`))
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.Telemetry.ToolLabels || cfg.Telemetry.Tracing.Sampling != 1 || cfg.Audit.Path != "/var/log/vmcp/audit.jsonl" || cfg.Audit.Arguments {
		t.Errorf("telemetry %+v, tracing %+v, audit %+v", cfg.Telemetry, cfg.Telemetry.Tracing, cfg.Audit)
	}
	if cfg, err := Parse([]byte(minimal)); err != nil || cfg.Telemetry.Tracing != nil || cfg.Audit != nil {
		t.Errorf("defaults: %v, %+v", err, cfg)
	}
	// An explicit 0 is kept, not taken for "unset": vmcp then records
	// only the traces its callers sampled.
	if cfg, err := Parse([]byte(minimal + "telemetry:\n  tracing:\n    sampling: 0\n")); err != nil {
		t.Error(err)
	} else if cfg.Telemetry.Tracing.Sampling != 0 {
		t.Errorf("sampling: 0 gives tracing %+v", cfg.Telemetry.Tracing)
	}
}

func TestTelemetryAndAuditErrors(t *testing.T) {
	t.Parallel()
	_, err := Parse([]byte(minimal + `telemetry:
  tracing:
    endpoint: 127.0.0.1:4318
    protocol: thrift
    sampling: 2
audit:
  hashKeyEnv: "not a name"
`))
	assertErrors(t, err, []string{
		"line 7: telemetry.tracing.endpoint: must be an http or https URL such as http://127.0.0.1:4318 (got \"127.0.0.1:4318\")",
		"line 8: telemetry.tracing.protocol: must be one of http/protobuf, grpc (got \"thrift\")",
		"line 9: telemetry.tracing.sampling: must be a ratio from 0 to 1 (got 2)",
		"line 11: audit.path: required: a file to append JSON lines to, or \"-\" for standard output",
		"line 11: audit.hashKeyEnv: must be an environment variable name (got \"not a name\")",
	})
	_, err = Parse([]byte(minimal + "telemetry:\n  tracing:\n    sampling: half\n"))
	assertErrors(t, err, []string{`line 7: telemetry.tracing.sampling: must be a number (got "half")`})
}
