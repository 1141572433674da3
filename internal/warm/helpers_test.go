package warm_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/vmcp/vmcp/internal/backend"
	"github.com/vmcp/vmcp/internal/exampleserver"
	"github.com/vmcp/vmcp/internal/fixture"
	"github.com/vmcp/vmcp/internal/identity"
	"github.com/vmcp/vmcp/internal/session"
	"github.com/vmcp/vmcp/internal/warm"
)

func TestMain(m *testing.M) {
	code := m.Run()
	fixture.RemoveBinaries()
	os.Exit(code)
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

// httpBackend is a session.Backend for a Streamable HTTP URL; its
// connector is closed when the test ends.
func httpBackend(t *testing.T, name, url string) session.Backend {
	c := backend.NewStreamableHTTP(backend.HTTPOptions{Name: name, URL: url, Timeout: 30 * time.Second})
	t.Cleanup(func() { c.Close() })
	return session.Backend{Name: name, Connector: c}
}

// stdioBackend runs the example server binary as a stdio child per
// session.
func stdioBackend(t *testing.T, name string) session.Backend {
	c := backend.NewStdio(backend.StdioOptions{Name: name, Command: []string{fixture.ExampleServerBinary(t), "-transport", "stdio", "-name", name}, Timeout: 30 * time.Second})
	t.Cleanup(func() { c.Close() })
	return session.Backend{Name: name, Connector: c}
}

func newFactory(opts session.FactoryOptions, backends ...session.Backend) *session.Factory {
	opts.Backends = backends
	opts.InitTimeout = 10 * time.Second
	opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	return session.NewFactory(opts)
}

// newPool returns a pool closed when the test ends.
func newPool(t *testing.T, opts warm.Options) *warm.Pool {
	t.Helper()
	p := warm.New(opts)
	t.Cleanup(func() { p.Close() })
	return p
}

// caller returns a context for a verified caller with subject sub, and its
// identity key.
func caller(sub string) (context.Context, string) {
	id := &identity.Identity{Issuer: "https://issuer.test", Subject: sub}
	return identity.NewContext(context.Background(), id), id.Key()
}

// counter calls tool name (an example server's counter) through the
// session's decorated operations, as the front end does, and returns the
// count.
func counter(ctx context.Context, s *session.Session, name string) (int, error) {
	params, _ := json.Marshal(map[string]any{"name": name, "arguments": map[string]any{}})
	raw, err := s.Operations().Call(ctx, "tools/call", params)
	if err != nil {
		return 0, err
	}
	var r struct {
		Content []struct {
			Text string `json:"text"`
		} `json:"content"`
		IsError bool `json:"isError"`
	}
	if err := json.Unmarshal(raw, &r); err != nil || r.IsError || len(r.Content) == 0 {
		return 0, fmt.Errorf("tool result %s (%v)", raw, err)
	}
	return strconv.Atoi(r.Content[0].Text)
}

// acquireCount acquires a session for id, calls the counter once and
// releases the session.
func acquireCount(t *testing.T, p *warm.Pool, ctx context.Context, id, tool string) int {
	t.Helper()
	s, release, err := p.Acquire(ctx, id)
	if err != nil {
		t.Fatalf("Acquire(%s): %v", id, err)
	}
	defer release()
	n, err := counter(ctx, s, tool)
	if err != nil {
		t.Fatalf("%s: %v", tool, err)
	}
	return n
}

func startHTTP(t *testing.T, name string) *fixture.Backend {
	return fixture.StartHTTP(t, exampleserver.Options{Name: name})
}
