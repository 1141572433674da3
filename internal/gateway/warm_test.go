package gateway_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/vmcp/vmcp/internal/config"
	"github.com/vmcp/vmcp/internal/exampleserver"
	"github.com/vmcp/vmcp/internal/fixture"
	"github.com/vmcp/vmcp/internal/gateway"
	"github.com/vmcp/vmcp/internal/identity"
	"github.com/vmcp/vmcp/internal/warm"
)

// The warm pool's size and hits are in /status and /metrics, without the
// identities; Shutdown closes its sessions, each backend session once.
func TestWarmPoolInStatusMetricsAndShutdown(t *testing.T) {
	web := fixture.StartHTTP(t, exampleserver.Options{Name: "web"})
	bin := fixture.ExampleServerBinary(t)
	cfg := baseConfig(
		config.Backend{Name: "web", Transport: config.TransportStreamableHTTP, URL: web.URL},
		config.Backend{Name: "notes", Transport: config.TransportStdio, Command: []string{bin, "-transport", "stdio", "-name", "notes"}},
	)
	cfg.Modern.Pool.MaxPerIdentity = 2
	gw := startGateway(t, cfg, gateway.Options{})
	alice := &identity.Identity{Issuer: "https://issuer.test", Subject: "alice-subject"}
	actx := identity.NewContext(context.Background(), alice)
	for _, c := range []struct {
		ctx context.Context
		id  string
	}{{actx, alice.Key()}, {actx, alice.Key()}, {context.Background(), warm.Anonymous}} {
		s, release, err := gw.Pool().Acquire(c.ctx, c.id)
		if err != nil {
			t.Fatal(err)
		}
		_, err = s.Operations().Call(c.ctx, "tools/call", json.RawMessage(`{"name":"notes_counter","arguments":{}}`))
		release()
		if err != nil {
			t.Fatal(err)
		}
	}
	metrics := getBody(t, gw.Base+"/metrics")
	for _, want := range []string{
		"vmcp_warm_sessions 2", "vmcp_warm_identities 2", "vmcp_warm_sessions_busy 0",
		`vmcp_warm_acquire_total{outcome="hit"} 1`, `vmcp_warm_acquire_total{outcome="miss"} 2`,
		`vmcp_warm_acquire_total{outcome="refused"} 0`, "vmcp_warm_reaped_total 0",
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	var status struct {
		Gateway struct {
			WarmPool warm.Stats `json:"warmPool"`
		} `json:"gateway"`
	}
	body := getBody(t, gw.Base+"/status")
	if err := json.Unmarshal([]byte(body), &status); err != nil {
		t.Fatalf("/status: %v\n%s", err, body)
	}
	if st := status.Gateway.WarmPool; st.Sessions != 2 || st.Hits != 1 || st.Misses != 2 || st.MaxPerIdentity != 2 {
		t.Errorf("/status warmPool = %+v, want 2 sessions, 1 hit, 2 misses, maxPerIdentity 2", st)
	}
	for _, b := range []string{metrics, body} {
		if strings.Contains(b, "alice-subject") {
			t.Error("an identity leaks into /metrics or /status")
		}
	}
	if n := web.Stats.Initializes(); n != 2 {
		t.Errorf("HTTP backend initializes = %d, want 2 (one per pooled session)", n)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := gw.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if n := web.Stats.Deletes(); n != 2 {
		t.Errorf("HTTP backend DELETEs after shutdown = %d, want 2", n)
	}
	if pids, zombies := fixture.Children("vmcp-example"); len(pids) != 0 {
		t.Errorf("stdio children after shutdown: %v (zombies %v)", pids, zombies)
	}
}
