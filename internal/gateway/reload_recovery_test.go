package gateway_test

import (
	"context"
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vmcp/vmcp/internal/config"
	"github.com/vmcp/vmcp/internal/exampleserver"
	"github.com/vmcp/vmcp/internal/fixture"
	"github.com/vmcp/vmcp/internal/gateway"
	"github.com/vmcp/vmcp/internal/session"
)

// TestReloadRepairsASessionWhoseBackendsAllFailed: a client that
// initialized while the only backend's URL was wrong gets a session that
// says so (initialize names the backend unavailable; tools/list fails with
// "no backends available"). Once the operator fixes the URL and reloads,
// that same session connects the backend, its client is told its tools
// changed, and the tools answer: the session is not left useless.
func TestReloadRepairsASessionWhoseBackendsAllFailed(t *testing.T) {
	t.Parallel()
	web := fixture.StartHTTP(t, exampleserver.Options{Name: "web"})
	wrong := strings.TrimSuffix(web.URL, "/mcp") + "/wrong"
	f := newConfigFile(t, "backends:\n"+httpBackendYAML("web", wrong))
	gw := startFromFile(t, f)
	cs := connectListening(t, gw.URL)
	if meta := initMetaJSON(t, cs); !strings.Contains(meta, `"unavailable":[{"name":"web"`) {
		t.Errorf("initialize _meta = %s, want web listed unavailable", meta)
	}
	if _, err := cs.ListTools(context.Background(), nil); err == nil || !strings.Contains(err.Error(), "no backends available") {
		t.Fatalf("tools/list with every backend failed: %v, want no backends available", err)
	}

	f.write("backends:\n" + httpBackendYAML("web", web.URL))
	reload(t, gw, f)
	cs.awaitToolsChanged(t)
	if names := cs.toolNames(t); !slices.Contains(names, "web_counter") {
		t.Errorf("tools after fixing the URL: %v", names)
	}
	if got := callText(t, cs.ClientSession, "web_counter", nil); got != "1" {
		t.Errorf("web_counter = %s, want 1", got)
	}
}

// TestReloadRepairsOneFailedBackend: of two backends, the one whose URL
// was wrong at initialize is connected by the reload that fixes it, while
// the other keeps its backend session (and its state).
func TestReloadRepairsOneFailedBackend(t *testing.T) {
	t.Parallel()
	web := fixture.StartHTTP(t, exampleserver.Options{Name: "web"})
	more := fixture.StartHTTP(t, exampleserver.Options{Name: "more"})
	wrong := strings.TrimSuffix(more.URL, "/mcp") + "/wrong"
	f := newConfigFile(t, "backends:\n"+httpBackendYAML("web", web.URL)+httpBackendYAML("more", wrong))
	gw := startFromFile(t, f)
	cs := connectListening(t, gw.URL)
	callText(t, cs.ClientSession, "web_counter", nil)
	if names := cs.toolNames(t); slices.Contains(names, "more_counter") {
		t.Fatalf("tools with more's URL wrong: %v", names)
	}

	f.write("backends:\n" + httpBackendYAML("web", web.URL) + httpBackendYAML("more", more.URL))
	reload(t, gw, f)
	cs.awaitToolsChanged(t)
	if names := cs.toolNames(t); !slices.Contains(names, "more_counter") {
		t.Errorf("tools after fixing more's URL: %v", names)
	}
	if got := callText(t, cs.ClientSession, "more_counter", nil); got != "1" {
		t.Errorf("more_counter = %s, want 1", got)
	}
	if got := callText(t, cs.ClientSession, "web_counter", nil); got != "2" {
		t.Errorf("web_counter = %s, want 2: the healthy backend was reconnected", got)
	}
}

// TestReloadRetriesABackendThatWasDown: a backend that was down when a
// session started is not in its catalog, so no call of the session
// reaches it. Once it is back, a reload of the unchanged file (SIGHUP)
// connects it in that live session at once, without waiting for the
// session's background retry (retry_test.go; put off here for an hour),
// and the client is told.
func TestReloadRetriesABackendThatWasDown(t *testing.T) {
	t.Parallel()
	web := fixture.StartHTTP(t, exampleserver.Options{Name: "web"})
	more, up := downBackend(t, "more")
	f := newConfigFile(t, "backends:\n"+httpBackendYAML("web", web.URL)+httpBackendYAML("more", more.URL))
	cfg, err := config.Load(f.path)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(f.path)
	gw := startGateway(t, cfg, gateway.Options{ConfigHash: gateway.HashConfig(b), BackendRetry: session.Backoff{Initial: time.Hour}})
	cs := connectListening(t, gw.URL)
	callText(t, cs.ClientSession, "web_counter", nil)
	if meta := initMetaJSON(t, cs); !strings.Contains(meta, `"unavailable":[{"name":"more"`) {
		t.Errorf("initialize _meta = %s, want more listed unavailable", meta)
	}

	up.Store(true)
	reload(t, gw, f)
	cs.awaitToolsChanged(t)
	if got := callText(t, cs.ClientSession, "more_counter", nil); got != "1" {
		t.Errorf("more_counter = %s, want 1", got)
	}
	if got := callText(t, cs.ClientSession, "web_counter", nil); got != "2" {
		t.Errorf("web_counter = %s, want 2: the healthy backend was reconnected", got)
	}
}

// initMetaJSON is the _meta of the initialize result cs got, as JSON.
func initMetaJSON(t *testing.T, cs *listening) string {
	t.Helper()
	b, err := json.Marshal(cs.InitializeResult().Meta)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
