package gateway_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/vmcp/vmcp/internal/config"
	"github.com/vmcp/vmcp/internal/exampleserver"
	"github.com/vmcp/vmcp/internal/fixture"
	"github.com/vmcp/vmcp/internal/gateway"
)

// hintingModernBackend is a stateless (2026-07-28) backend that gives
// every result the caching hints ttl and scope.
func hintingModernBackend(t *testing.T, name string, ttl time.Duration, scope string) config.Backend {
	url, _ := hintedModernBackend(t, name, func(_ mcp.Request, c *mcp.Cacheable) {
		c.TTLMs, c.CacheScope = int(ttl.Milliseconds()), scope
	})
	return config.Backend{Name: name, Transport: config.TransportStreamableHTTP, URL: url}
}

// A 2026-07-28 client's tools/list carries its backends' caching hints
// when every backend gives some: the shortest TTL (capped by
// modern.cacheTTL when that is set), and private if a backend or
// modern.cacheScope says so. While a legacy backend, which gives none, or
// a backend the session could not connect is in the lineup, the
// configured hints apply.
func TestModernListHintsFromBackends(t *testing.T) {
	t.Parallel()
	legacy := func(t *testing.T) config.Backend {
		ex := fixture.StartHTTP(t, exampleserver.Options{Name: "ex"})
		return config.Backend{Name: "ex", Transport: config.TransportStreamableHTTP, URL: ex.URL}
	}
	tests := []struct {
		name     string
		backends func(t *testing.T) []config.Backend
		scope    string        // modern.cacheScope
		ttl      time.Duration // modern.cacheTTL
		wantTTL  float64
		want     string
	}{
		{"a public backend, public config", func(t *testing.T) []config.Backend {
			return []config.Backend{hintingModernBackend(t, "a", 30*time.Second, "public")}
		}, "public", 0, 30000, "public"},
		{"a public backend, the default private config", func(t *testing.T) []config.Backend {
			return []config.Backend{hintingModernBackend(t, "a", 30*time.Second, "public")}
		}, "", 0, 30000, "private"},
		{"the shortest, and a private backend wins", func(t *testing.T) []config.Backend {
			return []config.Backend{hintingModernBackend(t, "a", 30*time.Second, "public"), hintingModernBackend(t, "b", 10*time.Second, "private")}
		}, "public", 0, 10000, "private"},
		{"capped by modern.cacheTTL", func(t *testing.T) []config.Backend {
			return []config.Backend{hintingModernBackend(t, "a", 30*time.Second, "public")}
		}, "public", 5 * time.Second, 5000, "public"},
		{"a legacy backend beside", func(t *testing.T) []config.Backend {
			return []config.Backend{hintingModernBackend(t, "a", 30*time.Second, "public"), legacy(t)}
		}, "public", 7 * time.Second, 7000, "public"},
		{"a backend the session could not connect", func(t *testing.T) []config.Backend {
			down := config.Backend{Name: "down", Transport: config.TransportStreamableHTTP, URL: fixture.DeadURL(t)}
			return []config.Backend{hintingModernBackend(t, "a", 30*time.Second, "public"), down}
		}, "public", 0, 0, "public"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := baseConfig(tt.backends(t)...)
			cfg.Modern.CacheTTL = config.Duration(tt.ttl)
			if tt.scope != "" {
				cfg.Modern.CacheScope = tt.scope
			}
			gw := startGateway(t, cfg, gateway.Options{})
			status, msg := modernPost(t, gw.URL, "tools/list", nil, nil)
			result, _ := msg["result"].(map[string]any)
			if status != http.StatusOK || result == nil {
				t.Fatalf("tools/list = %d %v", status, msg)
			}
			if result["ttlMs"] != tt.wantTTL || result["cacheScope"] != tt.want {
				t.Errorf("ttlMs %v, cacheScope %v; want %v, %s", result["ttlMs"], result["cacheScope"], tt.wantTTL, tt.want)
			}
		})
	}
}
