package gateway_test

import (
	"strings"
	"testing"

	"github.com/vmcp/vmcp/internal/config"
	"github.com/vmcp/vmcp/internal/exampleserver"
	"github.com/vmcp/vmcp/internal/fixture"
	"github.com/vmcp/vmcp/internal/gateway"
)

// TestResponseLimitsReachTheClient: an answer beyond a backend's
// maxResponseBytes, or beyond server.maxBufferedResponseBytes, fails that
// call with an error naming the setting; smaller answers pass.
func TestResponseLimitsReachTheClient(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		setting string
		mutate  func(*config.Config)
	}{
		{"maxResponseBytes", func(c *config.Config) { c.Backends[0].MaxResponseBytes = 256 << 10 }},
		{"server.maxBufferedResponseBytes", func(c *config.Config) { c.Server.MaxBufferedResponseBytes = 256 << 10 }},
	} {
		t.Run(tc.setting, func(t *testing.T) {
			t.Parallel()
			web := fixture.StartHTTP(t, exampleserver.Options{Name: "web"})
			cfg := baseConfig(config.Backend{Name: "web", Transport: config.TransportStreamableHTTP, URL: web.URL})
			tc.mutate(cfg)
			gw := startGateway(t, cfg, gateway.Options{})
			cs := connect(t, gw.URL)
			res, err := callResult(cs, "web_echo", map[string]any{"text": strings.Repeat("x", 512<<10)})
			if err == nil {
				t.Fatalf("a 1 MiB answer passed: isError=%v", res.IsError)
			}
			if !strings.Contains(err.Error(), tc.setting) || !strings.Contains(err.Error(), `backend "web"`) {
				t.Errorf("err = %v, want it to name %s and the backend", err, tc.setting)
			}
			if got := callText(t, cs, "web_echo", map[string]any{"text": "small"}); got != "small" {
				t.Errorf("small echo = %q", got)
			}
		})
	}
}
