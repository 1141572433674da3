package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/vmcp/vmcp/internal/config"
	"github.com/vmcp/vmcp/internal/exampleserver"
	"github.com/vmcp/vmcp/internal/fixture"
	"github.com/vmcp/vmcp/internal/session"
)

func webBackend(t *testing.T) (*fixture.Backend, config.Backend) {
	t.Helper()
	web := fixture.StartHTTP(t, exampleserver.Options{Name: "web"})
	return web, config.Backend{Name: "web", Transport: config.TransportStreamableHTTP, URL: web.URL}
}

// One client session, each request on a random replica: the stateful
// backend sees one session that counts on, and one initialize.
func TestScaleOutAnyReplicaServesAnySession(t *testing.T) {
	web, wb := webBackend(t)
	c := startCluster(t, 3, wb)

	client := mcp.NewClient(&mcp.Implementation{Name: "vmcp-test", Version: "1"}, nil)
	cs, err := client.Connect(context.Background(), &mcp.StreamableClientTransport{
		Endpoint:             c.reps[0].URL,
		HTTPClient:           &http.Client{Transport: newSpread(c.reps)},
		DisableStandaloneSSE: true,
	}, legacyEra)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 30; i++ {
		if got := callText(t, cs, "web_counter", nil); got != strconv.Itoa(i) {
			t.Fatalf("call %d: counter = %s: the backend session did not follow the client across replicas", i, got)
		}
	}
	if n := web.Stats.Initializes(); n != 1 {
		t.Errorf("backend saw %d initializes, want 1", n)
	}
	for i, r := range c.reps {
		if r.Manager().Len() != 1 {
			t.Errorf("replica %d holds %d sessions, want 1 (each served some calls)", i, r.Manager().Len())
		}
	}
	if err := cs.Close(); err != nil { // DELETE, on some replica
		t.Fatal(err)
	}
	eventually(t, "backend session closed", func() bool { return web.Stats.ActiveSessions() == 0 })
	if n, d := web.Stats.SessionsClosed(), web.Stats.Deletes(); n != 1 || d != 1 {
		t.Errorf("backend closed %d sessions with %d DELETEs, want 1 and 1", n, d)
	}
	eventually(t, "every replica let go of the session", func() bool {
		return c.reps[0].Manager().Len()+c.reps[1].Manager().Len()+c.reps[2].Manager().Len() == 0
	})
}

func TestScaleOutDeleteEndsSessionEverywhere(t *testing.T) {
	for _, deleterHolds := range []bool{false, true} {
		t.Run(fmt.Sprintf("deleter holds a runtime: %v", deleterHolds), func(t *testing.T) {
			web, wb := webBackend(t)
			c := startCluster(t, 3, wb)
			a, b, other := c.reps[0], c.reps[1], c.reps[2]
			sid := rawInit(t, b.URL)
			toolCall(t, b.URL, sid, "web_counter") // b holds the runtime
			if deleterHolds {
				toolCall(t, a.URL, sid, "web_counter")
			}

			if code := rawDelete(t, a.URL, sid); code != http.StatusNoContent {
				t.Fatalf("DELETE through a = %d", code)
			}
			// A replica that never held it answers 404 at once: the
			// metadata is gone.
			if r := rpc(t, other.URL, sid, "tools/list", `{}`); r.Status != http.StatusNotFound {
				t.Errorf("a replica that never held the session: HTTP %d, want 404", r.Status)
			}
			// The holder closes its runtime when the deletion reaches it.
			eventually(t, "holder closed its runtime", func() bool { return b.Manager().Len() == 0 })
			for name, r := range map[string]*replica{"a": a, "b": b, "other": other} {
				if res := rpc(t, r.URL, sid, "tools/list", `{}`); res.Status != http.StatusNotFound {
					t.Errorf("%s after DELETE: HTTP %d, want 404", name, res.Status)
				}
			}
			eventually(t, "backend session closed", func() bool { return web.Stats.ActiveSessions() == 0 })
			// One DELETE, from the replica that got the client's; the
			// holders let go without sending their own.
			if n, d := web.Stats.SessionsClosed(), web.Stats.Deletes(); n != 1 || d != 1 {
				t.Errorf("backend closed %d sessions with %d DELETEs, want 1 and 1", n, d)
			}
		})
	}
}

func TestScaleOutReplicaLost(t *testing.T) {
	cases := []struct {
		name string
		kill func(t *testing.T, r *replica)
	}{
		{"killed", func(t *testing.T, r *replica) { r.crash() }},
		{"shut down", func(t *testing.T, r *replica) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := r.Shutdown(ctx); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			web, wb := webBackend(t)
			c := startCluster(t, 2, wb)
			a, b := c.reps[0], c.reps[1]
			sid := rawInit(t, a.URL)
			for i := 1; i <= 3; i++ {
				if got, _ := toolCall(t, a.URL, sid, "web_counter"); got != strconv.Itoa(i) {
					t.Fatalf("counter on a = %s, want %d", got, i)
				}
			}
			tc.kill(t, a)
			for i := 4; i <= 6; i++ {
				if got, meta := toolCall(t, b.URL, sid, "web_counter"); got != strconv.Itoa(i) || meta[session.MetaBackendRestarted] != nil {
					t.Fatalf("counter on b = %s (meta %s), want %d: the session did not survive its replica", got, meta, i)
				}
			}
			if n := web.Stats.Initializes(); n != 1 {
				t.Errorf("backend saw %d initializes, want 1", n)
			}
			if n := web.Stats.Deletes(); n != 0 {
				t.Errorf("backend saw %d DELETEs; losing a replica must not end its sessions", n)
			}
		})
	}
}

func TestScaleOutRedisOutage(t *testing.T) {
	web, wb := webBackend(t)
	c := startCluster(t, 2, wb)
	a, b := c.reps[0], c.reps[1]
	held := rawInit(t, a.URL)
	toolCall(t, a.URL, held, "web_counter")

	c.redis.Stop()
	code, hdr, body := rawPost(t, a.URL, "", initializeBody)
	if code != http.StatusServiceUnavailable || hdr.Get("Retry-After") == "" {
		t.Errorf("initialize with Redis down: HTTP %d, Retry-After %q, body %s; want 503 with Retry-After", code, hdr.Get("Retry-After"), body)
	}
	if !strings.Contains(body, "store") {
		t.Errorf("initialize with Redis down: the error does not say the session store is down: %s", body)
	}
	// The replica holding the session keeps serving it.
	for i := 2; i <= 4; i++ {
		if got, _ := toolCall(t, a.URL, held, "web_counter"); got != strconv.Itoa(i) {
			t.Fatalf("held session during the outage: counter = %s, want %d", got, i)
		}
	}
	// Another replica cannot load it: it must not claim the session is gone.
	if r := rpc(t, b.URL, held, "tools/list", `{}`); r.Status == http.StatusNotFound || r.Status == http.StatusOK {
		t.Errorf("unheld session during the outage: HTTP %d, want a retryable error, not 404", r.Status)
	}

	c.redis.Restart()
	var sid string
	eventually(t, "new sessions accepted again", func() bool {
		code, hdr, _ := rawPost(t, b.URL, "", initializeBody)
		sid = hdr.Get("Mcp-Session-Id")
		return code == http.StatusOK && sid != ""
	})
	if got, _ := toolCall(t, a.URL, sid, "web_counter"); got != "1" {
		t.Errorf("new session after the outage, taken over by a: counter = %s, want 1", got)
	}
	if n := web.Stats.Initializes(); n != 2 {
		t.Errorf("backend saw %d initializes, want 2 (one per session that reached it)", n)
	}
	// The deletion announcements flow again: a DELETE on b makes a let go
	// of its runtime without a request telling it.
	held0 := a.Manager().Len()
	eventually(t, "both replicas subscribed again", func() bool { return redisSubscribers(t, c.redis.Addr, "vmcp:deleted") == 2 })
	if code := rawDelete(t, b.URL, sid); code != http.StatusNoContent {
		t.Fatalf("DELETE after the outage = %d", code)
	}
	eventually(t, "a let go of the deleted session", func() bool { return a.Manager().Len() == held0-1 })
}

const initializeBody = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`

// A stdio backend cannot follow its session to another replica: it starts
// afresh there and the first result it serves says so.
func TestScaleOutStdioRestartsOnTakeover(t *testing.T) {
	_, wb := webBackend(t)
	bin := fixture.ExampleServerBinary(t)
	c := startCluster(t, 2, wb, config.Backend{Name: "notes", Transport: config.TransportStdio, Command: []string{bin, "-transport", "stdio", "-name", "notes"}})
	a, b := c.reps[0], c.reps[1]
	sid := rawInit(t, a.URL)
	toolCall(t, a.URL, sid, "notes_counter")
	toolCall(t, a.URL, sid, "notes_counter")
	toolCall(t, a.URL, sid, "web_counter")

	got, meta := toolCall(t, b.URL, sid, "web_counter")
	if got != "2" || meta[session.MetaBackendRestarted] != nil {
		t.Errorf("HTTP backend on b: counter %s, meta %s; want 2, resumed", got, meta)
	}
	got, meta = toolCall(t, b.URL, sid, "notes_counter")
	var restarted []string
	json.Unmarshal(meta[session.MetaBackendRestarted], &restarted)
	if got != "1" || !slices.Equal(restarted, []string{"notes"}) {
		t.Errorf("stdio backend on b: counter %s, %s %s; want 1 and [\"notes\"]", got, session.MetaBackendRestarted, meta[session.MetaBackendRestarted])
	}
	if got, meta := toolCall(t, b.URL, sid, "notes_counter"); got != "2" || meta[session.MetaBackendRestarted] != nil {
		t.Errorf("second stdio call on b: counter %s, meta %s; want 2 and no notice", got, meta)
	}
}

func TestScaleOutConcurrentFirstRequestsBuildOnce(t *testing.T) {
	web, wb := webBackend(t)
	c := startCluster(t, 2, wb)
	a, b := c.reps[0], c.reps[1]
	sid := rawInit(t, a.URL)

	const n = 10
	counts := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { counts[i], _ = toolCall(t, b.URL, sid, "web_counter") })
	}
	wg.Wait()
	slices.SortFunc(counts, func(x, y string) int { xi, _ := strconv.Atoi(x); yi, _ := strconv.Atoi(y); return xi - yi })
	for i, got := range counts {
		if got != strconv.Itoa(i+1) {
			t.Fatalf("counters = %v, want 1..%d", counts, n)
		}
	}
	if k := strings.Count(b.Logs.String(), "took over a session"); k != 1 {
		t.Errorf("b built the session %d times, want once", k)
	}
	if k := web.Stats.Initializes(); k != 1 {
		t.Errorf("backend saw %d initializes, want 1", k)
	}
	for i, r := range c.reps {
		if strings.Contains(r.Logs.String(), sid) {
			t.Errorf("replica %d logged the session ID", i)
		}
	}
}
