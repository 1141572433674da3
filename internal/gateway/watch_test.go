package gateway_test

import (
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/vmcp/vmcp/internal/config"
	"github.com/vmcp/vmcp/internal/exampleserver"
	"github.com/vmcp/vmcp/internal/fixture"
	"github.com/vmcp/vmcp/internal/gateway"
)

// TestWatchConfigRefusesABrokenFileOnce: with vmcp's log in the config's
// directory (vmcp serve --config vmcp.yaml > vmcp.log), a config saved
// with an error is refused once. The refusal's own log line, like any
// other write in the directory, is no reason to read the file again and
// log the same errors four times a second; the next real change applies.
func TestWatchConfigRefusesABrokenFileOnce(t *testing.T) {
	t.Parallel()
	web := fixture.StartHTTP(t, exampleserver.Options{Name: "web"})
	more := fixture.StartHTTP(t, exampleserver.Options{Name: "more"})
	f := newConfigFile(t, "backends:\n"+httpBackendYAML("web", web.URL))
	cfg, err := config.Load(f.path)
	if err != nil {
		t.Fatal(err)
	}
	logFile, err := os.Create(filepath.Join(filepath.Dir(f.path), "vmcp.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { logFile.Close() })
	gw := startGateway(t, cfg, gateway.Options{ConfigHash: f.hash(), Logger: slog.New(slog.NewTextHandler(logFile, nil))})
	if err := gw.WatchConfig(f.path, make(chan os.Signal)); err != nil {
		t.Fatal(err)
	}

	f.write("backends: [{name: web\n")
	eventually(t, "the broken config refused", func() bool {
		return metric(t, gw, `vmcp_config_reloads_total{outcome="invalid"}`) == "1"
	})
	if err := os.WriteFile(filepath.Join(filepath.Dir(f.path), "notes.txt"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Long enough for a watcher that re-reads on every write in the
	// directory to do so several times; nothing is timed.
	time.Sleep(time.Second)
	f.write("backends:\n" + httpBackendYAML("web", web.URL) + httpBackendYAML("more", more.URL))
	eventually(t, "the fixed config applied", func() bool {
		return metric(t, gw, `vmcp_config_reloads_total{outcome="ok"}`) == "1"
	})
	if got := metric(t, gw, `vmcp_config_reloads_total{outcome="invalid"}`); got != "1" {
		t.Errorf("the broken config was refused %s times, want once", got)
	}
}
