package gateway_test

import (
	"slices"
	"strconv"
	"sync"
	"testing"

	"github.com/vmcp/vmcp/internal/config"
	"github.com/vmcp/vmcp/internal/exampleserver"
	"github.com/vmcp/vmcp/internal/fixture"
	"github.com/vmcp/vmcp/internal/gateway"
)

// TestBackendForgetsSessions: a backend restarts in process and forgets
// its sessions (404). The next call re-initializes it transparently: the
// state starts afresh and the result says so in _meta.
func TestBackendForgetsSessions(t *testing.T) {
	defer leakCheck(t)()
	t.Run("forget", func(t *testing.T) {
		web := fixture.StartHTTP(t, exampleserver.Options{Name: "web"})
		docs := fixture.StartHTTP(t, exampleserver.Options{Name: "docs"})
		cfg := baseConfig(
			config.Backend{Name: "web", Transport: config.TransportStreamableHTTP, URL: web.URL},
			config.Backend{Name: "docs", Transport: config.TransportStreamableHTTP, URL: docs.URL},
		)
		gw := startGateway(t, cfg, gateway.Options{})
		cs := connect(t, gw.URL)
		callText(t, cs, "web_counter", nil)
		callText(t, cs, "web_counter", nil)
		callText(t, cs, "docs_counter", nil)

		web.Handler.Forget()
		res, err := callResult(cs, "web_counter", nil)
		if err != nil || res.IsError {
			t.Fatalf("call after the backend forgot its sessions: %+v %v", res, err)
		}
		if text(res) != "1" || !slices.Equal(reinitialized(res), []string{"web"}) {
			t.Errorf("counter = %q, _meta = %v; want 1 and vmcp/backendReinitialized [web]", text(res), res.Meta)
		}
		res, err = callResult(cs, "web_counter", nil)
		if err != nil || text(res) != "2" || reinitialized(res) != nil {
			t.Errorf("next call: %+v %v", res, err)
		}
		if got := callText(t, cs, "docs_counter", nil); got != "2" {
			t.Errorf("docs_counter = %q: the other backend's session must be untouched", got)
		}
		if n := web.Stats.Initializes(); n != 2 {
			t.Errorf("web initializes = %d, want 2", n)
		}
		cs.Close()
		eventually(t, "both web backend sessions ended", func() bool { return web.Stats.ActiveSessions() == 0 })
	})
}

// TestConcurrentCallsOnExpiredBackendSession: 50 calls at once hit a
// backend session that has expired; the backend sees exactly one new
// initialize and every call lands in the new session.
func TestConcurrentCallsOnExpiredBackendSession(t *testing.T) {
	web := fixture.StartHTTP(t, exampleserver.Options{Name: "web"})
	gw := startGateway(t, baseConfig(config.Backend{Name: "web", Transport: config.TransportStreamableHTTP, URL: web.URL}), gateway.Options{})
	cs := connect(t, gw.URL)
	callText(t, cs, "web_counter", nil)
	web.Handler.Forget()

	const n = 50
	counts := make([]int, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			res, err := callResult(cs, "web_counter", nil)
			if err == nil {
				counts[i], err = strconv.Atoi(text(res))
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
		t.Errorf("backend initializes = %d, want 2: the first, and exactly one re-initialize", got)
	}
	slices.Sort(counts)
	for i, c := range counts {
		if c != i+1 {
			t.Fatalf("counter values %v, want 1..%d: all calls in one new backend session", counts, n)
		}
	}
}
