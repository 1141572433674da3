package session_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/vmcp/vmcp/internal/backend"
	"github.com/vmcp/vmcp/internal/fixture"
	"github.com/vmcp/vmcp/internal/session"
	"github.com/vmcp/vmcp/internal/store"
)

// httpBackend is a session.Backend for a Streamable HTTP URL.
func httpBackend(name, url string) session.Backend {
	return session.Backend{Name: name, Connector: backend.NewStreamableHTTP(backend.HTTPOptions{Name: name, URL: url, Timeout: 30 * time.Second})}
}

// newFactory returns a factory over backends whose connectors are closed
// when the test ends.
func newFactory(t *testing.T, logs io.Writer, calls session.CallLimits, backends ...session.Backend) *session.Factory {
	t.Helper()
	if logs == nil {
		logs = io.Discard
	}
	t.Cleanup(func() {
		for _, b := range backends {
			b.Connector.Close()
		}
	})
	return session.NewFactory(session.FactoryOptions{
		Backends:    backends,
		InitTimeout: 5 * time.Second,
		Logger:      slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Calls:       calls,
	})
}

// newSession builds a session closed when the test ends.
func newSession(t *testing.T, f *session.Factory) *session.Session {
	t.Helper()
	id, err := session.NewID()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	s, err := f.New(context.Background(), &store.Metadata{ID: id, Created: now, LastSeen: now, ClientCapabilities: json.RawMessage(`{}`)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// toolResult is the part of a tools/call result the tests look at.
type toolResult struct {
	Content []struct {
		Text string `json:"text"`
	} `json:"content"`
	Meta    map[string]json.RawMessage `json:"_meta"`
	IsError bool                       `json:"isError"`
}

func callTool(ctx context.Context, s *session.Session, name string, args map[string]any) (toolResult, error) {
	params, _ := json.Marshal(map[string]any{"name": name, "arguments": args})
	raw, err := s.CallTool(ctx, params)
	if err != nil {
		return toolResult{}, err
	}
	var r toolResult
	if err := json.Unmarshal(raw, &r); err != nil {
		return r, fmt.Errorf("decoding %s: %w", raw, err)
	}
	if r.IsError || len(r.Content) == 0 {
		return r, fmt.Errorf("tool error: %s", raw)
	}
	return r, nil
}

func mustCall(t *testing.T, s *session.Session, name string) toolResult {
	t.Helper()
	r, err := callTool(context.Background(), s, name, nil)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return r
}

// reinitialized returns the backends a result's _meta says were
// re-initialized.
func reinitialized(t *testing.T, r toolResult) []string {
	t.Helper()
	raw, ok := r.Meta[session.MetaBackendReinitialized]
	if !ok {
		return nil
	}
	var names []string
	if err := json.Unmarshal(raw, &names); err != nil {
		t.Fatalf("%s: %v", raw, err)
	}
	return names
}

func backendSessionID(s *session.Session, name string) string {
	for _, b := range s.Metadata().Backends {
		if b.Name == name {
			return b.SessionID
		}
	}
	return ""
}

// leakCheck fails the test if goroutines started after it are still
// running once every later cleanup has run. Register it first.
func leakCheck(t *testing.T) {
	t.Helper()
	opt := goleak.IgnoreCurrent()
	t.Cleanup(func() {
		http.DefaultClient.CloseIdleConnections()
		goleak.VerifyNone(t, opt)
	})
}

func TestReinitAfterBackendForgetsSession(t *testing.T) {
	leakCheck(t)
	web := fixture.StartFaulty(t, "web")
	f := newFactory(t, nil, session.CallLimits{}, httpBackend("web", web.URL))
	s := newSession(t, f)
	changed := make(chan struct{}, 1)
	s.OnBackendChange(func() { changed <- struct{}{} })

	for i := 1; i <= 3; i++ {
		if r := mustCall(t, s, "web_counter"); r.Content[0].Text != fmt.Sprint(i) || reinitialized(t, r) != nil {
			t.Fatalf("call %d: %+v", i, r)
		}
	}
	before := backendSessionID(s, "web")
	web.Handler.Forget() // the backend restarts and forgets every session

	r := mustCall(t, s, "web_counter")
	if r.Content[0].Text != "1" {
		t.Errorf("counter after the backend lost its session = %q, want 1 (a new backend session)", r.Content[0].Text)
	}
	if got := reinitialized(t, r); !slices.Equal(got, []string{"web"}) {
		t.Errorf("_meta[%s] = %v, want [web]", session.MetaBackendReinitialized, got)
	}
	if n := web.Stats.Initializes(); n != 2 {
		t.Errorf("backend initializes = %d, want 2", n)
	}
	<-changed
	after := backendSessionID(s, "web")
	if after == "" || after == before {
		t.Errorf("stored backend session ID not replaced (changed: %v)", after != before)
	}
	// Later calls use the new backend session and say nothing more.
	if r := mustCall(t, s, "web_counter"); r.Content[0].Text != "2" || reinitialized(t, r) != nil {
		t.Errorf("next call: %+v", r)
	}
}

func TestReinitKeepsBackendMeta(t *testing.T) {
	t.Parallel()
	web := fixture.StartFaulty(t, "web")
	s := newSession(t, newFactory(t, nil, session.CallLimits{}, httpBackend("web", web.URL)))
	web.Handler.Forget()
	r := mustCall(t, s, "web_rich")
	if string(r.Meta["example/meta"]) != `"kept"` || !slices.Equal(reinitialized(t, r), []string{"web"}) {
		t.Errorf("_meta = %s", r.Meta)
	}
}

func TestReinitOnceForManyConcurrentCalls(t *testing.T) {
	t.Parallel()
	web := fixture.StartFaulty(t, "web")
	s := newSession(t, newFactory(t, nil, session.CallLimits{}, httpBackend("web", web.URL)))
	mustCall(t, s, "web_counter")
	web.Handler.Forget()

	const n = 50
	var wg sync.WaitGroup
	counts := make([]string, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			r, err := callTool(context.Background(), s, "web_counter", nil)
			if err == nil {
				counts[i] = r.Content[0].Text
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := web.Stats.Initializes(); got != 2 {
		t.Errorf("backend initializes = %d, want 2: one at start, exactly one after it forgot the session", got)
	}
	// All 50 calls landed in the same new backend session.
	got := make([]int, n)
	for i, c := range counts {
		got[i], _ = strconv.Atoi(c)
	}
	slices.Sort(got)
	for i, c := range got {
		if c != i+1 {
			t.Fatalf("counter values = %v, want 1..%d", got, n)
		}
	}
}

func TestReinitFailsClearlyWhileBackendDown(t *testing.T) {
	t.Parallel()
	web := fixture.StartFaulty(t, "web")
	s := newSession(t, newFactory(t, nil, session.CallLimits{}, httpBackend("web", web.URL)))
	mustCall(t, s, "web_counter")
	sid := backendSessionID(s, "web")
	web.Handler.Forget()
	web.Hang.Store(true) // and it does not come back in time
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := callTool(ctx, s, "web_counter", nil)
	if err == nil {
		t.Fatal("call succeeded against a hung backend")
	}
	if !strings.Contains(err.Error(), `"web"`) || strings.Contains(err.Error(), sid) || strings.Contains(err.Error(), s.ID()) {
		t.Errorf("error does not name the backend, or shows a session ID: %v", err)
	}
	web.Hang.Store(false)
	if r := mustCall(t, s, "web_counter"); r.Content[0].Text != "1" || !slices.Equal(reinitialized(t, r), []string{"web"}) {
		t.Errorf("after recovery: %+v", r)
	}
}

func TestResumeFallsBackToNewBackendSession(t *testing.T) {
	t.Parallel()
	web := fixture.StartFaulty(t, "web")
	f := newFactory(t, nil, session.CallLimits{}, httpBackend("web", web.URL))
	first := newSession(t, f)
	mustCall(t, first, "web_counter")
	meta := first.Metadata()
	web.Handler.Forget()

	// Another replica takes the session over from its stored metadata, but
	// the stored backend session is gone.
	meta.ID, _ = session.NewID()
	s, err := f.New(context.Background(), meta)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if r := mustCall(t, s, "web_counter"); r.Content[0].Text != "1" {
		t.Errorf("counter = %q, want 1 in a new backend session", r.Content[0].Text)
	}
}
