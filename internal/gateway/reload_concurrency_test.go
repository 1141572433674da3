package gateway_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/vmcp/vmcp/internal/config"
	"github.com/vmcp/vmcp/internal/exampleserver"
	"github.com/vmcp/vmcp/internal/fixture"
	"github.com/vmcp/vmcp/internal/gateway"
)

// TestShutdownDuringAReloadWaitingForACall: a reload that removed a
// backend waits for the call in flight to it before closing it; a
// shutdown meanwhile must not wait for that call beyond its own deadline.
// Once the call ends (its stdio backend dies), the child is reaped and
// nothing vmcp started is left running. Not parallel: it checks for leaked goroutines and counts this
// process's stdio children.
func TestShutdownDuringAReloadWaitingForACall(t *testing.T) {
	other := fixture.StartHTTP(t, exampleserver.Options{Name: "other"})
	defer leakCheck(t)()
	f := newConfigFile(t, "backends:\n"+stdioBackendYAML(t, "local")+"    timeout: 1h\n"+httpBackendYAML("other", other.URL))
	// Not startFromFile: this shutdown is meant to miss its deadline.
	cfg, err := config.Load(f.path)
	if err != nil {
		t.Fatal(err)
	}
	gw, err := gateway.New(cfg, gateway.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- gw.Serve(ln) }()
	url := "http://" + ln.Addr().String() + "/mcp"
	hup := make(chan os.Signal, 1)
	if err := gw.WatchConfig(f.path, hup); err != nil {
		t.Fatal(err)
	}
	cs := connectListening(t, url)
	callCtx, cancelCall := context.WithCancel(context.Background())
	called := make(chan struct{})
	go func() {
		defer close(called)
		p := &mcp.CallToolParams{Name: "local_sleep_ms", Arguments: map[string]any{"ms": 3_600_000}}
		p.SetProgressToken("t1")
		cs.CallTool(callCtx, p)
	}()
	select {
	case <-cs.progress:
	case <-time.After(30 * time.Second):
		t.Fatal("the call to local never started")
	}
	f.write("backends:\n" + httpBackendYAML("other", other.URL))
	hup <- os.Interrupt
	eventually(t, "the reload to be under way", func() bool {
		_, _, body := rawPost(t, url, rawInit(t, url), `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`)
		return !strings.Contains(body, "local_sleep_ms")
	})

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	// The call in flight makes the shutdown miss its deadline; that it
	// returns at all is the point.
	if err := gw.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("shutdown with a call in flight: %v, want its deadline exceeded", err)
	}
	if err := <-served; err != nil {
		t.Errorf("serve: %v", err)
	}
	pids, _ := fixture.Children("vmcp-example")
	if len(pids) != 1 {
		t.Fatalf("stdio children: %v, want the one serving the call", pids)
	}
	if err := syscall.Kill(pids[0], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the stdio child reaped", func() bool {
		pids, zombies := fixture.Children("vmcp-example")
		return len(pids) == 0 && len(zombies) == 0
	})
	// The client would try to resume its call's stream on a gateway that
	// is gone; it need not.
	cancelCall()
	<-called
	cs.Close()
}

// TestReloadWhileACatalogRefreshWaits: a backend's list_changed makes each
// session list that backend again; a slow answer must hold neither a
// reload (which publishes catalogs too) nor the refresh: once it comes,
// the client sees both the reload's backend and the new tool.
func TestReloadWhileACatalogRefreshWaits(t *testing.T) {
	t.Parallel()
	web := fixture.StartHTTP(t, exampleserver.Options{Name: "web"})
	srv := mcp.NewServer(&mcp.Implementation{Name: "grower", Version: "1"}, nil)
	srv.AddTool(&mcp.Tool{Name: "grow", InputSchema: map[string]any{"type": "object"}}, func(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		srv.AddTool(&mcp.Tool{Name: "late", InputSchema: map[string]any{"type": "object"}}, func(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "late"}}}, nil
		})
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "grown"}}}, nil
	})
	var hold atomic.Bool
	held, release := make(chan struct{}, 1), make(chan struct{})
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return srv }, nil)
	grower := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// A fault injector: once armed, the next tools/list waits for
		// release.
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		if bytes.Contains(body, []byte(`"tools/list"`)) && hold.CompareAndSwap(true, false) {
			held <- struct{}{}
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		grower.CloseClientConnections()
		grower.Close()
	})
	f := newConfigFile(t, "backends:\n"+httpBackendYAML("p", grower.URL))
	gw := startFromFile(t, f)
	cs := connectListening(t, gw.URL)
	hold.Store(true)
	callText(t, cs.ClientSession, "p_grow", nil)
	<-held // vmcp's refresh waits for the list

	f.write("backends:\n" + httpBackendYAML("p", grower.URL) + httpBackendYAML("web", web.URL))
	reload(t, gw, f)
	close(release)
	eventually(t, "the reload's backend and the refreshed tool", func() bool {
		names := cs.toolNames(t)
		return slices.Contains(names, "p_late") && slices.Contains(names, "web_counter")
	})
}
