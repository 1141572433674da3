package gateway_test

import (
	"net/http"
	"testing"

	"github.com/vmcp/vmcp/internal/config"
	"github.com/vmcp/vmcp/internal/exampleserver"
	"github.com/vmcp/vmcp/internal/fixture"
	"github.com/vmcp/vmcp/internal/gateway"
)

// TestPprofFlag checks that the profiling endpoints exist only when
// server.pprof is set, and that the MCP endpoint still works beside them.
func TestPprofFlag(t *testing.T) {
	web := fixture.StartHTTP(t, exampleserver.Options{Name: "web"})
	for _, on := range []bool{false, true} {
		cfg := baseConfig(config.Backend{Name: "web", Transport: config.TransportStreamableHTTP, URL: web.URL})
		cfg.Server.Pprof = on
		gw := startGateway(t, cfg, gateway.Options{})

		resp, err := http.Get(gw.Base + "/debug/pprof/cmdline")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		want := http.StatusNotFound
		if on {
			want = http.StatusOK
		}
		if resp.StatusCode != want {
			t.Errorf("pprof %v: GET /debug/pprof/cmdline = %d, want %d", on, resp.StatusCode, want)
		}
		sid := rawInit(t, gw.URL)
		if code, _, body := rawPost(t, gw.URL, sid, `{"jsonrpc":"2.0","id":2,"method":"ping"}`); code != http.StatusOK {
			t.Errorf("pprof %v: ping = %d %s", on, code, body)
		}
		rawDelete(t, gw.URL, sid)
	}
}
