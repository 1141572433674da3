package gateway_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vmcp/vmcp/internal/config"
	"github.com/vmcp/vmcp/internal/exampleserver"
	"github.com/vmcp/vmcp/internal/fixture"
	"github.com/vmcp/vmcp/internal/gateway"
)

const initBody = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`

type initAnswer struct {
	code       int
	sid        string
	retryAfter string
	body       string
}

// initializeAtOnce sends n initializes concurrently.
func initializeAtOnce(t *testing.T, url string, n int) []initAnswer {
	t.Helper()
	out := make([]initAnswer, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			code, h, body := rawPost(t, url, "", initBody)
			out[i] = initAnswer{code, h.Get("Mcp-Session-Id"), h.Get("Retry-After"), body}
		})
	}
	close(start)
	wg.Wait()
	return out
}

// TestAdmissionAtTheLimit: concurrent initializes at the limit. Exactly the
// limit succeed; the rest get 503 with Retry-After and the -32000 error,
// without a count in sight and without any backend being contacted.
func TestAdmissionAtTheLimit(t *testing.T) {
	cases := []struct {
		name       string
		mutate     func(*config.Session)
		admitted   int
		retryAfter string
	}{
		{"maxSessions", func(s *config.Session) { s.MaxSessions = 3 }, 3, "30"},
		{"maxSessionsPerIdentity", func(s *config.Session) { s.MaxSessionsPerIdentity = 2 }, 2, "30"},
		{"configured Retry-After", func(s *config.Session) {
			s.MaxSessions, s.RetryAfter = 4, config.Duration(7*time.Second)
		}, 4, "7"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			web := fixture.StartHTTP(t, exampleserver.Options{Name: "web"})
			cfg := baseConfig(config.Backend{Name: "web", Transport: config.TransportStreamableHTTP, URL: web.URL})
			tc.mutate(&cfg.Session)
			gw := startGateway(t, cfg, gateway.Options{})

			answers := initializeAtOnce(t, gw.URL, 10)
			var ok []string
			for _, a := range answers {
				switch a.code {
				case http.StatusOK:
					ok = append(ok, a.sid)
				case http.StatusServiceUnavailable:
					if a.retryAfter != tc.retryAfter {
						t.Errorf("Retry-After = %q, want %q", a.retryAfter, tc.retryAfter)
					}
					var msg struct {
						Error struct {
							Code    int    `json:"code"`
							Message string `json:"message"`
						} `json:"error"`
					}
					if err := json.Unmarshal([]byte(a.body), &msg); err != nil {
						t.Fatalf("503 body %q: %v", a.body, err)
					}
					if msg.Error.Code != -32000 || msg.Error.Message != "Maximum concurrent sessions exceeded; retry later" {
						t.Errorf("503 error = %+v", msg.Error)
					}
				default:
					t.Errorf("initialize answered %d: %s", a.code, a.body)
				}
			}
			if len(ok) != tc.admitted {
				t.Fatalf("%d initializes succeeded, want exactly %d", len(ok), tc.admitted)
			}
			if n := web.Stats.Initializes(); n != int64(tc.admitted) {
				t.Errorf("backend initializes = %d, want %d: a rejected initialize must contact no backend", n, tc.admitted)
			}
			// Ending one session makes room for exactly one more.
			if code := rawDelete(t, gw.URL, ok[0]); code != http.StatusNoContent {
				t.Fatalf("DELETE = %d", code)
			}
			answers = initializeAtOnce(t, gw.URL, 3)
			admitted := 0
			for _, a := range answers {
				if a.code == http.StatusOK {
					admitted++
				}
			}
			if admitted != 1 {
				t.Errorf("after one DELETE, %d of 3 initializes succeeded, want 1", admitted)
			}
			if strings.Contains(gw.Logs.String(), ok[0]) {
				t.Error("logs show a session ID")
			}
		})
	}
}

// TestDefaultPerIdentityCap: with no session settings, one anonymous
// client (one address) gets at most config.DefaultMaxSessionsPerIdentity
// sessions; the rest are refused before any backend is contacted.
func TestDefaultPerIdentityCap(t *testing.T) {
	web := fixture.StartHTTP(t, exampleserver.Options{Name: "web"})
	gw := startGateway(t, baseConfig(config.Backend{Name: "web", Transport: config.TransportStreamableHTTP, URL: web.URL}), gateway.Options{})
	ok, refused := 0, 0
	for _, a := range initializeAtOnce(t, gw.URL, config.DefaultMaxSessionsPerIdentity+5) {
		switch a.code {
		case http.StatusOK:
			ok++
		case http.StatusServiceUnavailable:
			refused++
		}
	}
	if ok != config.DefaultMaxSessionsPerIdentity || refused != 5 {
		t.Fatalf("%d admitted, %d refused; want %d and 5", ok, refused, config.DefaultMaxSessionsPerIdentity)
	}
	if n := web.Stats.Initializes(); n != int64(ok) {
		t.Errorf("backend initializes = %d, want %d", n, ok)
	}
}
