package config

import (
	"strings"
	"testing"
)

func TestParseBackendProtocol(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, backend string
		want          string // Protocol after Parse
		err           string // a substring of the error; "" for none
	}{
		{"default is auto", "transport: streamable-http\n    url: http://127.0.0.1:1/mcp", "", ""},
		{"auto", "transport: streamable-http\n    url: http://127.0.0.1:1/mcp\n    protocol: auto", ProtocolAuto, ""},
		{"legacy", "transport: streamable-http\n    url: http://127.0.0.1:1/mcp\n    protocol: legacy", ProtocolLegacy, ""},
		{"modern", "transport: streamable-http\n    url: http://127.0.0.1:1/mcp\n    protocol: modern", ProtocolModern, ""},
		{"auto on stdio", "transport: stdio\n    command: [server]\n    protocol: auto", ProtocolAuto, ""},
		{"modern on stdio", "transport: stdio\n    command: [server]\n    protocol: modern", "",
			"line 5: backends[0].protocol: modern (2026-07-28) is only valid with transport streamable-http"},
		{"modern on sse", "transport: sse\n    url: http://127.0.0.1:1/sse\n    protocol: modern", "",
			"line 5: backends[0].protocol: modern (2026-07-28) is only valid with transport streamable-http"},
		{"unknown", "transport: streamable-http\n    url: http://127.0.0.1:1/mcp\n    protocol: 2026-07-28", "",
			`line 5: backends[0].protocol: must be one of auto, legacy, modern (got "2026-07-28")`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			src := "backends:\n  - name: a\n    " + tc.backend + "\n"
			cfg, err := Parse([]byte(src), WithLookupEnv(noEnv))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("Parse error = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := cfg.Backends[0].Protocol; got != tc.want {
				t.Errorf("protocol = %q, want %q", got, tc.want)
			}
		})
	}
}
