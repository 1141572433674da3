package main

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vmcp/vmcp/internal/exampleserver"
	"github.com/vmcp/vmcp/internal/fixture"
)

// TestServeAdminListener: vmcp serve opens server.adminListen beside the
// main listener, serves the profiles and /status there only, and stops
// both on SIGTERM.
func TestServeAdminListener(t *testing.T) {
	t.Parallel()
	web := fixture.StartHTTP(t, exampleserver.Options{Name: "web"})
	cfg := filepath.Join(t.TempDir(), "vmcp.yaml")
	os.WriteFile(cfg, fmt.Appendf(nil, `backends:
  - name: web
    transport: streamable-http
    url: %s
server:
  pprof: true
  adminListen: 127.0.0.1:0
`, web.URL), 0o600)
	cmd, url, logs := startVMCP(t, "serve", "--config", cfg, "--listen", "127.0.0.1:0")
	re := regexp.MustCompile(`msg="vmcp admin listening" url=(\S+)`)
	var admin string
	fixture.Eventually(t, "the admin listener's log line", func() bool {
		if m := re.FindStringSubmatch(logs.String()); m != nil {
			admin = m[1]
		}
		return admin != ""
	})
	base := strings.TrimSuffix(url, "/mcp")
	for u, want := range map[string]int{
		admin + "/debug/pprof/cmdline": 200, admin + "/status": 200, admin + "/health": 200,
		base + "/debug/pprof/cmdline": 404, base + "/status": 404, base + "/health": 200,
	} {
		resp, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s = %d, want %d", u, resp.StatusCode, want)
		}
	}
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("vmcp exited with %v\n%s", err, logs)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("vmcp did not exit after SIGTERM")
	}
}
