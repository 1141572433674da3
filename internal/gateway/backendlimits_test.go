package gateway_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/vmcp/vmcp/internal/config"
	"github.com/vmcp/vmcp/internal/exampleserver"
	"github.com/vmcp/vmcp/internal/fixture"
	"github.com/vmcp/vmcp/internal/gateway"
)

// TestResponseLimitsReachTheClient: an answer beyond a backend's
// maxResponseBytes, or beyond server.maxBufferedResponseBytes, fails that
// call with an error naming the setting; smaller answers pass, and the
// backend session goes on (a stdio child skips the long line). An SSE
// backend's stream ends on such an event (the go-sdk's reader stops
// there): the next call re-initializes it.
func TestResponseLimitsReachTheClient(t *testing.T) {
	t.Parallel()
	httpWeb := func(t *testing.T) config.Backend {
		web := fixture.StartHTTP(t, exampleserver.Options{Name: "web"})
		return config.Backend{Name: "web", Transport: config.TransportStreamableHTTP, URL: web.URL}
	}
	stdioWeb := func(t *testing.T) config.Backend {
		return config.Backend{Name: "web", Transport: config.TransportStdio,
			Command: []string{fixture.ExampleServerBinary(t), "-transport", "stdio", "-name", "web"}}
	}
	sseWeb := func(t *testing.T) config.Backend {
		web := fixture.StartSSE(t, exampleserver.Options{Name: "web"})
		return config.Backend{Name: "web", Transport: config.TransportSSE, URL: web.URL}
	}
	for _, tc := range []struct {
		name, setting string
		backend       func(*testing.T) config.Backend
		mutate        func(*config.Config)
		sessionLost   bool
	}{
		{"maxResponseBytes", "maxResponseBytes", httpWeb, func(c *config.Config) { c.Backends[0].MaxResponseBytes = 256 << 10 }, false},
		{"server.maxBufferedResponseBytes", "server.maxBufferedResponseBytes", httpWeb, func(c *config.Config) { c.Server.MaxBufferedResponseBytes = 256 << 10 }, false},
		{"stdio maxResponseBytes", "maxResponseBytes", stdioWeb, func(c *config.Config) { c.Backends[0].MaxResponseBytes = 256 << 10 }, false},
		{"SSE maxResponseBytes", "maxResponseBytes", sseWeb, func(c *config.Config) { c.Backends[0].MaxResponseBytes = 256 << 10 }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := baseConfig(tc.backend(t))
			tc.mutate(cfg)
			gw := startGateway(t, cfg, gateway.Options{})
			cs := connect(t, gw.URL)
			callText(t, cs, "web_counter", nil)
			res, err := callResult(cs, "web_echo", map[string]any{"text": strings.Repeat("x", 512<<10)})
			if err == nil {
				t.Fatalf("a 512 KiB answer passed: isError=%v", res.IsError)
			}
			if !strings.Contains(err.Error(), tc.setting) || !strings.Contains(err.Error(), `backend "web"`) {
				t.Errorf("err = %v, want it to name %s and the backend", err, tc.setting)
			}
			res, err = callResult(cs, "web_counter", nil)
			switch {
			case tc.sessionLost:
				if err != nil || text(res) != "1" || !slices.Equal(reinitialized(res), []string{"web"}) {
					t.Errorf("counter after the long answer = %q, %v, _meta %v; want 1 on a new backend session", text(res), err, res.Meta)
				}
			case err != nil || text(res) != "2" || reinitialized(res) != nil:
				t.Errorf("counter after the long answer = %q, %v, _meta %v; want 2 on the same backend session", text(res), err, res.Meta)
			}
			if got := callText(t, cs, "web_echo", map[string]any{"text": "small"}); got != "small" {
				t.Errorf("small echo = %q", got)
			}
		})
	}
}
