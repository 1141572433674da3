package gateway_test

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vmcp/vmcp/internal/config"
	"github.com/vmcp/vmcp/internal/exampleserver"
	"github.com/vmcp/vmcp/internal/fixture"
	"github.com/vmcp/vmcp/internal/gateway"
	"github.com/vmcp/vmcp/internal/session"
)

// quickRetry makes the sessions' background retries come within
// milliseconds, so that the tests wait on what the retries do, not on the
// production backoff.
var quickRetry = session.Backoff{Initial: 5 * time.Millisecond, Max: 20 * time.Millisecond}

// TestSessionRetriesABackendThatWasDown: a backend that answered 503 when
// the client initialized (a rolling restart, say) joins that live session
// by itself once it is back, with no reload: the client is told its tools
// changed, the backend's tool answers, the healthy backend keeps its
// backend session, and the metrics count the backend's init.
func TestSessionRetriesABackendThatWasDown(t *testing.T) {
	t.Parallel()
	web := fixture.StartHTTP(t, exampleserver.Options{Name: "web"})
	more, up := downBackend(t, "more")
	cfg := baseConfig(
		config.Backend{Name: "web", Transport: config.TransportStreamableHTTP, URL: web.URL},
		config.Backend{Name: "more", Transport: config.TransportStreamableHTTP, URL: more.URL})
	gw := startGateway(t, cfg, gateway.Options{BackendRetry: quickRetry})
	cs := connectListening(t, gw.URL)
	if meta := initMetaJSON(t, cs); !strings.Contains(meta, `"unavailable":[{"name":"more"`) {
		t.Fatalf("initialize _meta = %s, want more listed unavailable", meta)
	}
	callText(t, cs.ClientSession, "web_counter", nil)
	// Some retries fail first: the session must keep at it.
	eventually(t, "a failed retry", func() bool { return strings.Contains(gw.Logs.String(), "backend retry failed") })

	up.Store(true)
	cs.awaitToolsChanged(t)
	if got := callText(t, cs.ClientSession, "more_counter", nil); got != "1" {
		t.Errorf("more_counter = %s, want 1", got)
	}
	if got := callText(t, cs.ClientSession, "web_counter", nil); got != "2" {
		t.Errorf("web_counter = %s, want 2: the healthy backend was reconnected", got)
	}
	// The session's start counted one failed init; the retries count as
	// joins, failed and then one that succeeded.
	m := scrapeText(t, gw.Base)
	for _, want := range []string{
		`vmcp_session_backend_init_total{backend="more",outcome="error",reason="http_5xx"} 1`,
		`vmcp_session_backend_joins_total{backend="more",outcome="ok",reason="",trigger="retry"} 1`,
		`vmcp_session_backend_joins_total{backend="more",outcome="error",reason="http_5xx",trigger="retry"}`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s:\n%s", want, grepLines(m, `backend="more"`))
		}
	}
	if strings.Contains(m, `vmcp_session_backend_init_total{backend="more",outcome="ok"`) {
		t.Errorf("a retry counted as a new session's init:\n%s", grepLines(m, "backend_init_total"))
	}
}

// TestSessionRetriesAStdioBackendThatFailedToStart: a stdio backend whose
// command does not exist fails at once on every retry. The session keeps
// retrying without a warning per attempt, and once the command is there
// (the operator fixed the install) the backend joins the live session.
func TestSessionRetriesAStdioBackendThatFailedToStart(t *testing.T) {
	t.Parallel()
	bin := filepath.Join(t.TempDir(), "tool-server")
	cfg := baseConfig(config.Backend{Name: "tool", Transport: config.TransportStdio,
		Command: []string{bin, "-transport", "stdio", "-name", "tool"}})
	gw := startGateway(t, cfg, gateway.Options{BackendRetry: quickRetry})
	cs := connectListening(t, gw.URL)
	if meta := initMetaJSON(t, cs); !strings.Contains(meta, `"unavailable":[{"name":"tool"`) {
		t.Fatalf("initialize _meta = %s, want tool listed unavailable", meta)
	}
	eventually(t, "several failed retries", func() bool { return strings.Count(gw.Logs.String(), "backend retry failed") >= 5 })
	if n := strings.Count(grepLines(gw.Logs.String(), "level=WARN"), "backend=tool"); n > 1 {
		t.Errorf("%d warnings about the failing backend, want the first only:\n%s", n, grepLines(gw.Logs.String(), "level=WARN"))
	}

	if err := os.Symlink(fixture.ExampleServerBinary(t), bin); err != nil {
		t.Fatal(err)
	}
	cs.awaitToolsChanged(t)
	if got := callText(t, cs.ClientSession, "tool_counter", nil); got != "1" {
		t.Errorf("tool_counter = %s, want 1", got)
	}
}

// TestClosedSessionStopsItsRetries: a session closed (DELETE) while a
// retry of a backend is pending, waiting out its backoff or connecting,
// stops retrying at once: no retry loop is left, and nothing leaks.
func TestClosedSessionStopsItsRetries(t *testing.T) {
	defer leakCheck(t)()
	refused := func(t *testing.T) (url string, connecting func()) { return fixture.DeadURL(t), nil }
	hanging := func(t *testing.T) (url string, connecting func()) {
		var hang atomic.Bool
		entered := make(chan struct{}, 1)
		b := fixture.StartHTTPBehind(t, exampleserver.Options{Name: "down"}, func(http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if !hang.Load() {
					http.Error(w, "restarting", http.StatusServiceUnavailable)
					return
				}
				// Read to the end, so that the server sees the client
				// hang up (and ends r's context).
				io.Copy(io.Discard, r.Body)
				select {
				case entered <- struct{}{}:
				default:
				}
				<-r.Context().Done()
			})
		})
		return b.URL, func() {
			hang.Store(true)
			<-entered
		}
	}
	for _, tc := range []struct {
		name    string
		backend func(t *testing.T) (url string, connecting func())
		backoff session.Backoff
	}{
		{"waiting", refused, session.Backoff{Initial: time.Hour}},
		{"connecting", hanging, quickRetry},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url, connecting := tc.backend(t)
			cfg := baseConfig(config.Backend{Name: "down", Transport: config.TransportStreamableHTTP, URL: url})
			// Longer than eventually waits: only the session's close can
			// end a hanging retry in time.
			cfg.Session.BackendInitTimeout = config.Duration(time.Hour)
			gw := startGateway(t, cfg, gateway.Options{BackendRetry: tc.backoff})
			sid := rawInit(t, gw.URL)
			eventually(t, "the session's retry loop", retryLoopRunning)
			if connecting != nil {
				connecting()
			}
			if code := rawDelete(t, gw.URL, sid); code != http.StatusNoContent {
				t.Fatalf("DELETE = %d", code)
			}
			eventually(t, "the closed session's retry loop to end", func() bool { return !retryLoopRunning() })
		})
	}
}

// downBackend is an example server that answers 503 (a rolling restart,
// say) until up is set.
func downBackend(t *testing.T, name string) (b *fixture.Backend, up *atomic.Bool) {
	t.Helper()
	up = new(atomic.Bool)
	b = fixture.StartHTTPBehind(t, exampleserver.Options{Name: name}, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !up.Load() {
				http.Error(w, "restarting", http.StatusServiceUnavailable)
				return
			}
			h.ServeHTTP(w, r)
		})
	})
	return b, up
}

// retryLoopRunning reports whether some session's retry loop is running.
func retryLoopRunning() bool {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return strings.Contains(string(buf[:n]), "session.(*Session).retryLoop")
		}
		buf = make([]byte, 2*len(buf))
	}
}

// grepLines returns the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for l := range strings.SplitSeq(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestRetriedBackendIsStoredForOtherReplicas: with a Redis store, the
// backend session a background retry connected is written to the Store
// like the others, so another replica that takes the session over resumes
// it: the stateful backend keeps counting, with no second initialize.
func TestRetriedBackendIsStoredForOtherReplicas(t *testing.T) {
	web := fixture.StartHTTP(t, exampleserver.Options{Name: "web"})
	more, up := downBackend(t, "more")
	c := startCluster(t, 2,
		config.Backend{Name: "web", Transport: config.TransportStreamableHTTP, URL: web.URL},
		config.Backend{Name: "more", Transport: config.TransportStreamableHTTP, URL: more.URL})
	sid := rawInit(t, c.reps[0].URL)
	up.Store(true)
	call := func(url string) string {
		t.Helper()
		code, _, body := rawPost(t, url, sid, `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"more_counter","arguments":{}}}`)
		if code != http.StatusOK {
			t.Fatalf("more_counter: %d %s", code, body)
		}
		return body
	}
	eventually(t, "the retried backend in the session", func() bool { return strings.Contains(call(c.reps[0].URL), `"text":"1"`) })
	if body := call(c.reps[1].URL); !strings.Contains(body, `"text":"2"`) {
		t.Errorf("more_counter on the other replica: %s, want 2: the retried backend session was not resumed", body)
	}
	if n := more.Stats.Initializes(); n != 1 {
		t.Errorf("more saw %d initializes, want 1", n)
	}
}
