package main

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/vmcp/vmcp/internal/exampleserver"
	"github.com/vmcp/vmcp/internal/fixture"
)

// The MODERN scenario's load: go-sdk v1.8.0 clients negotiate 2026-07-28
// with the modern backend (this test binary as the stateless example
// server, as the bench starts it) and every echo and counter call is
// checked; against the stateful example server they fall back to
// initialize, which is why the warm pool part uses it as the legacy one.
func TestModernLoad(t *testing.T) {
	exe, err := os.Executable() // TestMain runs the helper when the env asks
	if err != nil {
		t.Fatal(err)
	}
	f := &fleet{}
	t.Cleanup(f.stopAll)
	b, err := f.startServer("modern backend", []string{exe}, []string{modernServerEnv + "=1"})
	if err != nil {
		t.Fatal(err)
	}
	legacy := fixture.StartHTTP(t, exampleserver.Options{Name: "st"})
	for _, c := range []struct {
		url, tool, proto string
	}{
		{b.url, "echo", modernProtocol},
		{b.url, "counter", modernProtocol},
		{legacy.URL, "counter", "2025-11-25"},
	} {
		warmed := false
		res, protos := runModernLoad(context.Background(), modernSpec{url: c.url, tool: c.tool, sessions: 4, calls: 5, warmup: 2, onWarm: func() { warmed = true }})
		if res.errors != 0 || res.calls != 20 || res.rate() <= 0 {
			t.Errorf("%s %s: %d errors in %d calls (%q), rate %.0f; want 0 in 20", c.url, c.tool, res.errors, res.calls, res.errSamples, res.rate())
		}
		if protos[c.proto] != 4 || !warmed {
			t.Errorf("%s %s: protocols %v (warm-up hook ran: %v), want all 4 clients on %s", c.url, c.tool, protos, warmed, c.proto)
		}
	}
	b.stop(5 * time.Second)
}
