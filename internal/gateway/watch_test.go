package gateway_test

import (
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/vmcp/vmcp/internal/config"
	"github.com/vmcp/vmcp/internal/exampleserver"
	"github.com/vmcp/vmcp/internal/fixture"
	"github.com/vmcp/vmcp/internal/gateway"
)

// TestWatchConfigRefusesABrokenFileOnce: with vmcp's log in the config's
// directory (vmcp serve --config vmcp.yaml > vmcp.log), a config saved
// with an error is refused, and the next real change applies.
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
	data, err := os.ReadFile(f.path)
	if err != nil {
		t.Fatal(err)
	}
	gw := startGateway(t, cfg, gateway.Options{ConfigHash: gateway.HashConfig(data), Logger: slog.New(slog.NewTextHandler(logFile, nil))})
	if err := gw.WatchConfig(f.path, make(chan os.Signal)); err != nil {
		t.Fatal(err)
	}

	f.write("backends: [{name: web\n")
	eventually(t, "the broken config refused", func() bool {
		return metric(t, gw, `vmcp_config_reloads_total{outcome="invalid"}`) == "1"
	})
	f.write("backends:\n" + httpBackendYAML("web", web.URL) + httpBackendYAML("more", more.URL))
	eventually(t, "the fixed config applied", func() bool {
		return metric(t, gw, `vmcp_config_reloads_total{outcome="ok"}`) == "1"
	})
}

// Each write in the config's directory wakes the watcher, the line vmcp
// logs about a refused config among them. Content refused once is not read
// again for one (it would log the same errors again, four times a second,
// for every line it logs); a SIGHUP or a change of the file is.
func TestWatchConfigDoesNotRereadRefusedContent(t *testing.T) {
	t.Parallel()
	web := fixture.StartHTTP(t, exampleserver.Options{Name: "web"})
	more := fixture.StartHTTP(t, exampleserver.Options{Name: "more"})
	f := newConfigFile(t, "backends:\n"+httpBackendYAML("web", web.URL))
	gw := startFromFile(t, f)
	invalid := func() string { return metric(t, gw, `vmcp_config_reloads_total{outcome="invalid"}`) }

	if got := gw.ReloadIfChanged(f.path, ""); got != "" {
		t.Errorf("the file in effect: refused %q, want nothing read", got)
	}
	f.write("backends: [{name: web\n")
	refused := gw.ReloadIfChanged(f.path, "")
	if refused == "" || invalid() != "1" {
		t.Fatalf("broken config: refused %q, %s refusals; want it refused once", refused, invalid())
	}
	for range 3 {
		if got := gw.ReloadIfChanged(f.path, refused); got != refused {
			t.Errorf("the refused content again: refused %q, want %q kept", got, refused)
		}
	}
	if got := invalid(); got != "1" {
		t.Errorf("the broken config was refused %s times, want once", got)
	}
	f.write("backends:\n" + httpBackendYAML("web", web.URL) + httpBackendYAML("more", more.URL))
	if got := gw.ReloadIfChanged(f.path, refused); got != "" {
		t.Errorf("the fixed config: refused %q, want it applied", got)
	}
	if got := metric(t, gw, `vmcp_config_reloads_total{outcome="ok"}`); got != "1" || invalid() != "1" {
		t.Errorf("reloads ok %s, invalid %s; want 1 and 1", got, invalid())
	}
}
