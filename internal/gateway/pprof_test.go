package gateway_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/vmcp/vmcp/internal/config"
	"github.com/vmcp/vmcp/internal/exampleserver"
	"github.com/vmcp/vmcp/internal/fixture"
	"github.com/vmcp/vmcp/internal/gateway"
)

// serveAdmin runs gw's admin listener on a loopback port until the test
// ends and returns its base URL.
func serveAdmin(t *testing.T, gw *running) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- gw.ServeAdmin(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		gw.Shutdown(ctx)
		if err := <-served; err != nil {
			t.Errorf("ServeAdmin: %v", err)
		}
	})
	return "http://" + ln.Addr().String()
}

func status(t *testing.T, url string, header map[string]string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	for k, v := range header {
		if k == "Host" {
			req.Host = v
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestAdminListener: with server.adminListen, /status, /metrics and the
// profiles are served there and not beside /mcp; /health and /readyz are on
// both. Without it, /status and /metrics stay on the main listener and
// there are no profiles anywhere.
func TestAdminListener(t *testing.T) {
	web := fixture.StartHTTP(t, exampleserver.Options{Name: "web"})
	t.Run("separate", func(t *testing.T) {
		cfg := baseConfig(config.Backend{Name: "web", Transport: config.TransportStreamableHTTP, URL: web.URL})
		cfg.Server.AdminListen, cfg.Server.Pprof = "127.0.0.1:0", true
		gw := startGateway(t, cfg, gateway.Options{})
		admin := serveAdmin(t, gw)
		for path, want := range map[string][2]int{ // main, admin
			"/health":              {200, 200},
			"/readyz":              {200, 200},
			"/status":              {404, 200},
			"/metrics":             {404, 200},
			"/debug/pprof/cmdline": {404, 200},
			"/debug/pprof/":        {404, 200},
		} {
			if got := status(t, gw.Base+path, nil); got != want[0] {
				t.Errorf("main %s = %d, want %d", path, got, want[0])
			}
			if got := status(t, admin+path, nil); got != want[1] {
				t.Errorf("admin %s = %d, want %d", path, got, want[1])
			}
		}
		sid := rawInit(t, gw.URL)
		if code, _, body := rawPost(t, gw.URL, sid, `{"jsonrpc":"2.0","id":2,"method":"ping"}`); code != http.StatusOK {
			t.Errorf("ping = %d %s", code, body)
		}
		rawDelete(t, gw.URL, sid)
	})
	t.Run("single", func(t *testing.T) {
		cfg := baseConfig(config.Backend{Name: "web", Transport: config.TransportStreamableHTTP, URL: web.URL})
		gw := startGateway(t, cfg, gateway.Options{})
		for path, want := range map[string]int{"/health": 200, "/status": 200, "/metrics": 200, "/debug/pprof/cmdline": 404} {
			if got := status(t, gw.Base+path, nil); got != want {
				t.Errorf("%s = %d, want %d", path, got, want)
			}
		}
	})
}

// TestEveryEndpointRejectsRebinding: the Host and Origin checks guard every
// endpoint of both listeners, not only /mcp.
func TestEveryEndpointRejectsRebinding(t *testing.T) {
	web := fixture.StartHTTP(t, exampleserver.Options{Name: "web"})
	cfg := baseConfig(config.Backend{Name: "web", Transport: config.TransportStreamableHTTP, URL: web.URL})
	cfg.Server.AdminListen, cfg.Server.Pprof = "127.0.0.1:0", true
	cfg.Server.AllowedOrigins = []string{"https://app.example.com"}
	gw := startGateway(t, cfg, gateway.Options{})
	admin := serveAdmin(t, gw)
	bad := []map[string]string{
		{"Host": "evil.example.com"},
		{"Host": "evil.example.com:4483"},
		{"Origin": "http://evil.example.com"},
	}
	good := []map[string]string{nil, {"Host": "localhost"}, {"Origin": "https://app.example.com"}, {"Origin": "http://127.0.0.1:9"}}
	for _, u := range []string{gw.Base + "/health", gw.Base + "/readyz", gw.Base + "/nope",
		admin + "/health", admin + "/readyz", admin + "/status", admin + "/metrics", admin + "/debug/pprof/cmdline"} {
		for _, h := range bad {
			if got := status(t, u, h); got != http.StatusForbidden {
				t.Errorf("GET %s with %v = %d, want 403", u, h, got)
			}
		}
		for _, h := range good {
			if got := status(t, u, h); got == http.StatusForbidden {
				t.Errorf("GET %s with %v = 403", u, h)
			}
		}
	}
	// A load balancer's HTTP/1.0 health check sends no Host at all.
	for _, base := range []string{gw.Base, admin} {
		if got := http10(t, base, "/readyz"); !strings.HasPrefix(got, "HTTP/1.0 200") {
			t.Errorf("HTTP/1.0 GET /readyz without Host on %s: %q", base, got)
		}
	}
}

// http10 sends an HTTP/1.0 GET with no Host header and returns the
// answer's status line.
func http10(t *testing.T, base, path string) string {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET %s HTTP/1.0\r\n\r\n", path)
	line, _ := bufio.NewReader(c).ReadString('\n')
	return line
}
