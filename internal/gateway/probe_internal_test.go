package gateway

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vmcp/vmcp/internal/backend"
	"github.com/vmcp/vmcp/internal/config"
	"github.com/vmcp/vmcp/internal/jsonrpc"
)

// TestProbeReasons: each failure gets its category and a reason that names
// the setting to change and never a configured secret.
func TestProbeReasons(t *testing.T) {
	t.Parallel()
	cfg := config.Default()
	cfg.Session.BackendInitTimeout = config.Duration(5 * time.Second)
	cfg.Backends = []config.Backend{
		{Name: "web", Transport: config.TransportStreamableHTTP, Timeout: config.Duration(30 * time.Second),
			Headers: map[string]string{"Authorization": "Bearer sekrit-token"}},
		{Name: "fast", Transport: config.TransportStdio, Timeout: config.Duration(time.Second)},
	}
	deadline := fmt.Errorf("backend %q: initialize: %w", "web", context.DeadlineExceeded)
	tests := []struct {
		name         string
		backend      int
		err          error
		category     string
		reasonPrefix string
	}{
		{"init timeout", 0, deadline, ProbeTimeout, "did not initialize within session.backendInitTimeout (5s)"},
		{"call timeout shorter", 1, deadline, ProbeTimeout, "did not answer initialize within backends[1].timeout (1s)"},
		{"refused", 0, fmt.Errorf("backend %q: initialize: %w: dial tcp: connection refused", "web", backend.ErrUnavailable),
			ProbeUnreachable, "initialize: backend unavailable: dial tcp: connection refused"},
		{"answered with an error", 0, jsonrpc.Errorf(-32602, "bad token Bearer sekrit-token\nsecond line"),
			ProbeRejected, "initialize answered with error -32602: bad token [REDACTED] second line"},
		{"echoes the token alone", 0, jsonrpc.Errorf(-32600, "token sekrit-token expired"),
			ProbeRejected, "initialize answered with error -32600: token [REDACTED] expired"},
		{"process limit", 1, fmt.Errorf("backend %q: start: %w", "fast", backend.ErrProcessLimit), ProbeLimit, "vmcp already runs 256 stdio processes, the most server.maxStdioProcesses allows"},
		{"other", 0, errors.New(`backend "web": initialize: unexpected HTTP status 401 Unauthorized`), ProbeError, "initialize: unexpected HTTP status 401 Unauthorized"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := probeResult(cfg, tt.backend, nil, tt.err, time.Millisecond)
			if r.Reachable() || r.Category != tt.category || r.Reason != tt.reasonPrefix {
				t.Errorf("got %s / %q, want %s / %q", r.Category, r.Reason, tt.category, tt.reasonPrefix)
			}
			if line := r.String(); strings.Contains(line, "sekrit") || strings.Contains(line, "\n") {
				t.Errorf("line %q leaks a secret or spans lines", line)
			}
		})
	}
}
