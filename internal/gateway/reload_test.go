package gateway_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/vmcp/vmcp/internal/config"
	"github.com/vmcp/vmcp/internal/exampleserver"
	"github.com/vmcp/vmcp/internal/fixture"
	"github.com/vmcp/vmcp/internal/gateway"
)

// configFile is a config file a test rewrites to reload.
type configFile struct {
	t    *testing.T
	path string
}

func newConfigFile(t *testing.T, yaml string) *configFile {
	f := &configFile{t: t, path: filepath.Join(t.TempDir(), "vmcp.yaml")}
	f.write(yaml)
	return f
}

// write replaces the file as an editor does: a new file renamed over it.
func (f *configFile) write(yaml string) {
	f.t.Helper()
	tmp := f.path + ".tmp"
	if err := os.WriteFile(tmp, []byte(yaml), 0o600); err != nil {
		f.t.Fatal(err)
	}
	if err := os.Rename(tmp, f.path); err != nil {
		f.t.Fatal(err)
	}
}

func (f *configFile) hash() string {
	b, err := os.ReadFile(f.path)
	if err != nil {
		f.t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// startFromFile runs a gateway on the config in f, as vmcp serve does.
func startFromFile(t *testing.T, f *configFile) *running {
	t.Helper()
	return startFromFileWith(t, f, gateway.Options{})
}

// startFromFileWith is startFromFile with opts (a fake clock, say); it
// sets opts.ConfigHash.
func startFromFileWith(t *testing.T, f *configFile, opts gateway.Options) *running {
	t.Helper()
	cfg, err := config.Load(f.path)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(f.path)
	opts.ConfigHash = gateway.HashConfig(b)
	return startGateway(t, cfg, opts)
}

func httpBackendYAML(name, url string, extra ...string) string {
	s := fmt.Sprintf("  - name: %s\n    transport: streamable-http\n    url: %s\n", name, url)
	for _, e := range extra {
		s += "    " + e + "\n"
	}
	return s
}

func stdioBackendYAML(t *testing.T, name string) string {
	return fmt.Sprintf("  - name: %s\n    transport: stdio\n    command: [%q, -transport, stdio, -name, %s]\n", name, fixture.ExampleServerBinary(t), name)
}

// listening is a client session that records the list_changed
// notifications and progress it gets; it keeps a standalone stream open
// so that notifications outside any call reach it.
type listening struct {
	*mcp.ClientSession
	toolsChanged chan struct{}
	progress     chan struct{}
}

func connectListening(t *testing.T, url string) *listening {
	t.Helper()
	l := &listening{toolsChanged: make(chan struct{}, 16), progress: make(chan struct{}, 16)}
	c := mcp.NewClient(&mcp.Implementation{Name: "vmcp-test", Version: "1"}, &mcp.ClientOptions{
		ToolListChangedHandler:      func(context.Context, *mcp.ToolListChangedRequest) { l.toolsChanged <- struct{}{} },
		ProgressNotificationHandler: func(context.Context, *mcp.ProgressNotificationClientRequest) { l.progress <- struct{}{} },
	})
	cs, err := c.Connect(context.Background(), &mcp.StreamableClientTransport{Endpoint: url}, legacyEra)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { cs.Close() })
	l.ClientSession = cs
	return l
}

func (l *listening) awaitToolsChanged(t *testing.T) {
	t.Helper()
	select {
	case <-l.toolsChanged:
	case <-time.After(30 * time.Second):
		t.Fatal("no notifications/tools/list_changed")
	}
}

func (l *listening) toolNames(t *testing.T) []string {
	t.Helper()
	res, err := l.ListTools(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tool := range res.Tools {
		names = append(names, tool.Name)
	}
	return names
}

func reload(t *testing.T, gw *running, f *configFile) {
	t.Helper()
	if err := gw.ReloadFile(context.Background(), f.path); err != nil {
		t.Fatalf("reload: %v\n%s", err, gw.Logs)
	}
}

// TestReloadAddsRemovesAndChangesBackends: a live session keeps the state
// of its stateful backend across reloads that add a backend (it sees the
// new tools and gets list_changed), remove a stdio backend (its child is
// reaped once the call in flight to it has finished) and change a
// backend (it is reconnected, and its old backend session ended once).
// Not parallel: it counts this process's stdio children.
func TestReloadAddsRemovesAndChangesBackends(t *testing.T) {
	web := fixture.StartHTTP(t, exampleserver.Options{Name: "web"})
	more := fixture.StartHTTP(t, exampleserver.Options{Name: "more"})
	defer leakCheck(t)() // after the fixtures: what vmcp starts must end
	f := newConfigFile(t, "backends:\n"+httpBackendYAML("web", web.URL)+stdioBackendYAML(t, "local"))
	gw := startFromFile(t, f)
	cs := connectListening(t, gw.URL)
	for want := 1; want <= 2; want++ {
		if got := callText(t, cs.ClientSession, "web_counter", nil); got != fmt.Sprint(want) {
			t.Fatalf("web_counter = %s, want %d", got, want)
		}
	}
	if pids, _ := fixture.Children("vmcp-example"); len(pids) != 1 {
		t.Fatalf("stdio children before the reloads: %v, want 1", pids)
	}

	// Added: the live session connects it; the state of web is kept.
	f.write("backends:\n" + httpBackendYAML("web", web.URL) + stdioBackendYAML(t, "local") + httpBackendYAML("more", more.URL))
	reload(t, gw, f)
	cs.awaitToolsChanged(t)
	if names := cs.toolNames(t); !slices.Contains(names, "more_counter") || !slices.Contains(names, "local_counter") {
		t.Errorf("tools after adding more: %v", names)
	}
	if got := callText(t, cs.ClientSession, "web_counter", nil); got != "3" {
		t.Errorf("web_counter after the reload = %s, want 3: the backend session was not kept", got)
	}
	if got := callText(t, cs.ClientSession, "more_counter", nil); got != "1" {
		t.Errorf("more_counter = %s, want 1", got)
	}
	// A new session gets it too.
	cs2 := connectListening(t, gw.URL)
	if names := cs2.toolNames(t); !slices.Contains(names, "more_counter") {
		t.Errorf("a new session's tools: %v", names)
	}
	cs2.Close()

	// Removed, with a call to it in flight: the call finishes, then the
	// child is closed and reaped.
	type result struct {
		res *mcp.CallToolResult
		err error
	}
	called := make(chan result, 1)
	go func() {
		p := &mcp.CallToolParams{Name: "local_sleep_ms", Arguments: map[string]any{"ms": 1500}}
		p.SetProgressToken("t1")
		res, err := cs.CallTool(context.Background(), p)
		called <- result{res, err}
	}()
	select {
	case <-cs.progress:
	case <-time.After(30 * time.Second):
		t.Fatal("the call to local never started")
	}
	f.write("backends:\n" + httpBackendYAML("web", web.URL) + httpBackendYAML("more", more.URL))
	reload(t, gw, f)
	r := <-called
	if r.err != nil || r.res.IsError {
		t.Errorf("the call in flight to the removed backend: %v %+v", r.err, r.res)
	}
	if pids, zombies := fixture.Children("vmcp-example"); len(pids) != 0 || len(zombies) != 0 {
		t.Errorf("stdio children after removing local: %v (zombies %v)", pids, zombies)
	}
	cs.awaitToolsChanged(t)
	if names := cs.toolNames(t); slices.Contains(names, "local_counter") {
		t.Errorf("tools after removing local: %v", names)
	}
	if res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "local_counter"}); err == nil && !res.IsError {
		t.Error("a call to the removed backend's tool succeeded")
	}

	// Changed (a header): reconnected, the old backend session ended once.
	deletes := web.Stats.Deletes()
	f.write("backends:\n" + httpBackendYAML("web", web.URL, "headers: {X-Team: platform}") + httpBackendYAML("more", more.URL))
	reload(t, gw, f)
	if got := callText(t, cs.ClientSession, "web_counter", nil); got != "1" {
		t.Errorf("web_counter after changing web = %s, want 1 (a new backend session)", got)
	}
	if n := web.Stats.Deletes() - deletes; n != 1 {
		t.Errorf("web got %d DELETEs for the replaced backend session, want 1", n)
	}
	if got := callText(t, cs.ClientSession, "more_counter", nil); got != "2" {
		t.Errorf("more_counter = %s, want 2: an unchanged backend was reconnected", got)
	}

	// A filter: the catalog is recomputed and the client told.
	f.write("backends:\n" + httpBackendYAML("web", web.URL, "headers: {X-Team: platform}") + httpBackendYAML("more", more.URL) +
		"aggregation:\n  tools:\n    - backend: more\n      filter: [counter]\n")
	reload(t, gw, f)
	cs.awaitToolsChanged(t)
	names := cs.toolNames(t)
	if !slices.Contains(names, "more_counter") || slices.Contains(names, "more_echo") || !slices.Contains(names, "web_echo") {
		t.Errorf("tools after filtering more: %v", names)
	}

	var st struct {
		Gateway struct {
			Config struct {
				Hash     string
				LoadedAt time.Time
			}
		}
	}
	getJSON(t, gw.Base+"/status", &st)
	if st.Gateway.Config.Hash != f.hash() || st.Gateway.Config.LoadedAt.IsZero() {
		t.Errorf("/status config = %+v, want hash %s", st.Gateway.Config, f.hash())
	}
	if got := metric(t, gw, `vmcp_config_reloads_total{outcome="ok"}`); got != "4" {
		t.Errorf("reloads ok = %s, want 4", got)
	}
	cs.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := gw.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestInvalidReloadChangesNothing: a config with errors leaves the
// gateway as it was; each error is logged with its line and counted.
func TestInvalidReloadChangesNothing(t *testing.T) {
	t.Parallel()
	web := fixture.StartHTTP(t, exampleserver.Options{Name: "web"})
	other := fixture.StartHTTP(t, exampleserver.Options{Name: "other"})
	f := newConfigFile(t, "backends:\n"+httpBackendYAML("web", web.URL))
	gw := startFromFile(t, f)
	hash := f.hash()
	cs := connectListening(t, gw.URL)
	callText(t, cs.ClientSession, "web_counter", nil)

	f.write("backends:\n" + httpBackendYAML("web", web.URL) + httpBackendYAML("other", other.URL, "tiemout: 3s") +
		"session:\n  maxSessions: -1\n")
	if err := gw.ReloadFile(context.Background(), f.path); err == nil {
		t.Fatal("an invalid config reloaded")
	}
	logs := gw.Logs.String()
	for _, want := range []string{"vmcp.yaml:8: backends[1].tiemout: unknown field", "vmcp.yaml:10: session.maxSessions"} {
		if !strings.Contains(logs, want) {
			t.Errorf("the log does not say %q:\n%s", want, logs)
		}
	}
	if got := metric(t, gw, `vmcp_config_reloads_total{outcome="invalid"}`); got != "1" {
		t.Errorf("invalid reloads = %s, want 1", got)
	}
	if names := cs.toolNames(t); slices.Contains(names, "other_counter") {
		t.Errorf("tools after an invalid reload: %v", names)
	}
	if got := callText(t, cs.ClientSession, "web_counter", nil); got != "2" {
		t.Errorf("web_counter = %s, want 2", got)
	}
	var st struct {
		Gateway struct{ Config struct{ Hash string } }
	}
	getJSON(t, gw.Base+"/status", &st)
	if st.Gateway.Config.Hash != hash {
		t.Errorf("/status hash %s after an invalid reload, want the old %s", st.Gateway.Config.Hash, hash)
	}
}

// TestReloadLimitsAndFixedSettings: session limits apply at once; a
// listen or store change is refused with a WARN, and the old one stays.
func TestReloadLimitsAndFixedSettings(t *testing.T) {
	t.Parallel()
	web := fixture.StartHTTP(t, exampleserver.Options{Name: "web"})
	f := newConfigFile(t, "backends:\n"+httpBackendYAML("web", web.URL))
	gw := startFromFile(t, f)
	rawInit(t, gw.URL)
	f.write("listen: 127.0.0.1:9\nstore: {type: redis, redis: {address: 127.0.0.1:1}}\nsession: {maxSessions: 1}\nbackends:\n" + httpBackendYAML("web", web.URL))
	reload(t, gw, f)
	if code, _, body := rawPost(t, gw.URL, "", initBody); code != http.StatusServiceUnavailable {
		t.Errorf("initialize beyond the reloaded maxSessions 1: %d %s", code, body)
	}
	logs := gw.Logs.String()
	for _, key := range []string{"key=listen", "key=store"} {
		if !strings.Contains(logs, "level=WARN msg=\"config reload: this setting cannot change while vmcp runs; keeping the old value until a restart\" "+key) {
			t.Errorf("no WARN for %s:\n%s", key, logs)
		}
	}
	var st struct{ Gateway struct{ Store string } }
	getJSON(t, gw.Base+"/status", &st)
	if st.Gateway.Store != "memory" {
		t.Errorf("store after the reload: %q", st.Gateway.Store)
	}
}

// TestReloadPolicy: a new authorization policy applies to a live session
// at once, and its client is told its lists changed.
func TestReloadPolicy(t *testing.T) {
	t.Parallel()
	web := fixture.StartHTTP(t, exampleserver.Options{Name: "web"})
	f := newConfigFile(t, "backends:\n"+httpBackendYAML("web", web.URL))
	gw := startFromFile(t, f)
	cs := connectListening(t, gw.URL)
	callText(t, cs.ClientSession, "web_echo", map[string]any{"text": "hi"})
	f.write("backends:\n" + httpBackendYAML("web", web.URL) +
		"authorization:\n  default: allow\n  policies:\n    - {effect: deny, tools: [web_echo]}\n")
	reload(t, gw, f)
	cs.awaitToolsChanged(t)
	if names := cs.toolNames(t); slices.Contains(names, "web_echo") || !slices.Contains(names, "web_counter") {
		t.Errorf("tools under the new policy: %v", names)
	}
	if res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "web_echo", Arguments: map[string]any{"text": "hi"}}); err == nil && !res.IsError {
		t.Error("the denied tool still answers")
	}
}

// TestReloadTurnsTheOptimizerOn: a reload that turns the optimizer on
// puts it in front of a live session: the client is told its tools
// changed, sees find_tool and call_tool, and its stateful backend keeps
// counting through call_tool.
func TestReloadTurnsTheOptimizerOn(t *testing.T) {
	t.Parallel()
	web := fixture.StartHTTP(t, exampleserver.Options{Name: "web"})
	f := newConfigFile(t, "backends:\n"+httpBackendYAML("web", web.URL))
	gw := startFromFile(t, f)
	cs := connectListening(t, gw.URL)
	callText(t, cs.ClientSession, "web_counter", nil)
	f.write("backends:\n" + httpBackendYAML("web", web.URL) + "optimizer: {enabled: true}\n")
	reload(t, gw, f)
	cs.awaitToolsChanged(t)
	if names := cs.toolNames(t); !slices.Equal(names, []string{"find_tool", "call_tool"}) {
		t.Errorf("tools with the optimizer on: %v", names)
	}
	if got := callText(t, cs.ClientSession, "call_tool", map[string]any{"name": "web_counter"}); got != "2" {
		t.Errorf("web_counter through call_tool = %q, want 2: the backend session was kept", got)
	}
}

// TestWatchConfigFollowsAConfigMap: the watcher sees a Kubernetes
// ConfigMap update, a swap of the ..data symlink the file points
// through, and SIGHUP reloads even an unchanged file.
func TestWatchConfigFollowsAConfigMap(t *testing.T) {
	t.Parallel()
	web := fixture.StartHTTP(t, exampleserver.Options{Name: "web"})
	more := fixture.StartHTTP(t, exampleserver.Options{Name: "more"})
	dir := t.TempDir()
	version := func(name, yaml string) {
		if err := os.Mkdir(filepath.Join(dir, name), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name, "vmcp.yaml"), []byte(yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		// As the kubelet does: a new ..data link renamed over the old.
		if err := os.Symlink(name, filepath.Join(dir, "..data_tmp")); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
			t.Fatal(err)
		}
	}
	version("..v1", "backends:\n"+httpBackendYAML("web", web.URL))
	if err := os.Symlink(filepath.Join("..data", "vmcp.yaml"), filepath.Join(dir, "vmcp.yaml")); err != nil {
		t.Fatal(err)
	}
	f := &configFile{t: t, path: filepath.Join(dir, "vmcp.yaml")}
	gw := startFromFile(t, f)
	hup := make(chan os.Signal, 1)
	if err := gw.WatchConfig(f.path, hup); err != nil {
		t.Fatal(err)
	}
	cs := connectListening(t, gw.URL)
	version("..v2", "backends:\n"+httpBackendYAML("web", web.URL)+httpBackendYAML("more", more.URL))
	cs.awaitToolsChanged(t)
	if names := cs.toolNames(t); !slices.Contains(names, "more_counter") {
		t.Errorf("tools after the ConfigMap update: %v", names)
	}
	hup <- os.Interrupt // any value: the channel stands for SIGHUP
	eventually(t, "the SIGHUP reload", func() bool {
		return metric(t, gw, `vmcp_config_reloads_total{outcome="ok"}`) == "2"
	})
}

// metric reads one sample's value from /metrics.
func metric(t *testing.T, gw *running, series string) string {
	t.Helper()
	resp, err := http.Get(gw.Base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			return v
		}
	}
	return ""
}

// TestReloadWhileSessionsStart: sessions being built while a reload adds
// a backend end up with it too, whichever lineup they started from.
func TestReloadWhileSessionsStart(t *testing.T) {
	t.Parallel()
	web := fixture.StartHTTP(t, exampleserver.Options{Name: "web"})
	more := fixture.StartHTTP(t, exampleserver.Options{Name: "more"})
	f := newConfigFile(t, "backends:\n"+httpBackendYAML("web", web.URL))
	gw := startFromFile(t, f)
	const n = 8
	sids := make(chan string, n)
	for range n {
		go func() {
			req, _ := http.NewRequest(http.MethodPost, gw.URL, strings.NewReader(initBody))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Accept", "application/json, text/event-stream")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				sids <- ""
				return
			}
			resp.Body.Close()
			sids <- resp.Header.Get("Mcp-Session-Id")
		}()
	}
	f.write("backends:\n" + httpBackendYAML("web", web.URL) + httpBackendYAML("more", more.URL))
	reload(t, gw, f)
	for range n {
		sid := <-sids
		if sid == "" {
			t.Fatal("an initialize failed")
		}
		eventually(t, "the session to have more's tools", func() bool {
			_, _, body := rawPost(t, gw.URL, sid, `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`)
			return strings.Contains(body, `"more_counter"`)
		})
	}
}

// TestReloadRedactsNewSecrets: a header value that a reload brings is
// hidden in vmcp's log from then on, like the ones it started with.
func TestReloadRedactsNewSecrets(t *testing.T) {
	t.Parallel()
	web := fixture.StartHTTP(t, exampleserver.Options{Name: "web"})
	f := newConfigFile(t, "backends:\n"+httpBackendYAML("web", web.URL, "headers: {X-Api-Key: first-secret-1}"))
	gw := startFromFile(t, f)
	f.write("backends:\n" + httpBackendYAML("web", web.URL, "headers: {X-Api-Key: second-secret-2}"))
	reload(t, gw, f)
	gw.Logger().Info("backend said", "text", "rejected first-secret-1 and second-secret-2")
	logs := gw.Logs.String()
	if strings.Contains(logs, "first-secret-1") || strings.Contains(logs, "second-secret-2") || !strings.Contains(logs, "rejected [REDACTED] and [REDACTED]") {
		t.Errorf("secrets in the log:\n%s", logs)
	}
}

// TestReloadReachesModernClients: a 2026-07-28 client is served from the
// warm pool, which the session manager does not hold; after a reload that
// adds a backend its next request sees the new backend's tools.
func TestReloadReachesModernClients(t *testing.T) {
	t.Parallel()
	web := fixture.StartHTTP(t, exampleserver.Options{Name: "web"})
	more := fixture.StartHTTP(t, exampleserver.Options{Name: "more"})
	f := newConfigFile(t, "backends:\n"+httpBackendYAML("web", web.URL))
	gw := startFromFile(t, f)
	c := mcp.NewClient(&mcp.Implementation{Name: "vmcp-test", Version: "1"}, nil)
	cs, err := c.Connect(context.Background(), &mcp.StreamableClientTransport{Endpoint: gw.URL}, nil)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { cs.Close() })
	if v := cs.InitializeResult().ProtocolVersion; v != "2026-07-28" {
		t.Fatalf("the client negotiated %q, want 2026-07-28", v)
	}
	names := func() []string { return (&listening{ClientSession: cs}).toolNames(t) }
	if got := names(); slices.Contains(got, "more_counter") {
		t.Fatalf("tools before the reload: %v", got)
	}
	f.write("backends:\n" + httpBackendYAML("web", web.URL) + httpBackendYAML("more", more.URL))
	reload(t, gw, f)
	if got := names(); !slices.Contains(got, "more_counter") || !slices.Contains(got, "web_counter") {
		t.Errorf("tools after adding more: %v", got)
	}
}
