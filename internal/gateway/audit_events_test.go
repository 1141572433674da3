package gateway_test

import (
	"bufio"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vmcp/vmcp/internal/authn"
	"github.com/vmcp/vmcp/internal/config"
	"github.com/vmcp/vmcp/internal/exampleserver"
	"github.com/vmcp/vmcp/internal/fixture"
	"github.com/vmcp/vmcp/internal/gateway"
	"github.com/vmcp/vmcp/internal/redistest"
)

// These tests cover the audit events audit_test.go does not: refusals by
// authentication, rate limits and admission, and the ways a session ends
// other than a DELETE. Each checks every field of its event, so that a
// field added by mistake (a session ID, a token) fails it too.

// auditEvent is one audit line, decoded field by field.
type auditEvent map[string]any

// readAuditEvents returns the audit trail at path, decoded, and as text.
// A file not yet written reads as empty.
func readAuditEvents(t *testing.T, path string) ([]auditEvent, string) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var out []auditEvent
	sc := bufio.NewScanner(strings.NewReader(string(raw)))
	for sc.Scan() {
		var e auditEvent
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("audit line %q: %v", sc.Text(), err)
		}
		out = append(out, e)
	}
	return out, string(raw)
}

// eventsNamed returns the events of kind name, in order.
func eventsNamed(events []auditEvent, name string) []auditEvent {
	var out []auditEvent
	for _, e := range events {
		if e["event"] == name {
			out = append(out, e)
		}
	}
	return out
}

// waitForAuditEvent waits until the trail at path holds an event of kind
// name and returns the trail.
func waitForAuditEvent(t *testing.T, path, name string) []auditEvent {
	t.Helper()
	var events []auditEvent
	eventually(t, "an audit "+name+" event", func() bool {
		events, _ = readAuditEvents(t, path)
		return len(eventsNamed(events, name)) > 0
	})
	return events
}

// A field matcher stands, in a wanted event, for a value the test cannot
// know in advance.
type fieldMatcher func(v any) bool

var sessionName = regexp.MustCompile(`^[0-9a-f]{24}$`)

// aSessionName matches a keyed hash naming a session.
var aSessionName fieldMatcher = func(v any) bool {
	s, ok := v.(string)
	return ok && sessionName.MatchString(s)
}

// aDuration matches a durationMs.
var aDuration fieldMatcher = func(v any) bool {
	f, ok := v.(float64)
	return ok && f >= 0
}

// checkEvent fails the test unless e has exactly the fields of want (and
// a time), with their values.
func checkEvent(t *testing.T, e, want auditEvent) {
	t.Helper()
	if ts, ok := e["time"].(string); !ok {
		t.Errorf("%v: no time", e)
	} else if _, err := time.Parse(time.RFC3339Nano, ts); err != nil {
		t.Errorf("%v: time: %v", e, err)
	}
	var got, wanted []string
	for k := range e {
		if k != "time" {
			got = append(got, k)
		}
	}
	for k := range want {
		wanted = append(wanted, k)
	}
	slices.Sort(got)
	slices.Sort(wanted)
	if !slices.Equal(got, wanted) {
		t.Errorf("%v: fields %v, want %v", e, got, wanted)
	}
	for k, w := range want {
		if m, ok := w.(fieldMatcher); ok {
			if !m(e[k]) {
				t.Errorf("%v: %s = %v", e, k, e[k])
			}
		} else if !reflect.DeepEqual(e[k], w) {
			t.Errorf("%v: %s = %v, want %v", e, k, e[k], w)
		}
	}
}

// checkNoSecrets fails the test if any secret is in the trail.
func checkNoSecrets(t *testing.T, raw string, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if s != "" && strings.Contains(raw, s) {
			t.Errorf("a secret (%d bytes) is in the audit trail", len(s))
		}
	}
}

// apiKeyAudited is a gateway with API key authentication (one key, of
// subject ci-bot) and an audit trail, over backend a, with mutate applied
// to its config.
func apiKeyAudited(t *testing.T, key string, mutate func(*config.Config)) (*running, string) {
	t.Helper()
	backend, _ := recordedBackend(t, "a")
	cfg := baseConfig(backend)
	cfg.IncomingAuth = &config.IncomingAuth{Type: config.AuthAPIKey, APIKeys: []config.APIKey{{Subject: "ci-bot", SHA256: authn.HashKey(key)}}}
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	cfg.Audit = &config.Audit{Path: path}
	if mutate != nil {
		mutate(cfg)
	}
	return startGateway(t, cfg, gateway.Options{}), path
}

// TestAuditAuthFailure: a request authentication refuses leaves exactly
// one auth_failure event, with its reason and no trace of the key
// presented or of the real one.
func TestAuditAuthFailure(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, header, value, reason string
		onSession                   bool
	}{
		{"wrong X-API-Key", "X-API-Key", "wrong-x-api-key-" + uniqueEnv(), "invalid_token", false},
		{"wrong bearer", "Authorization", "Bearer wrong-bearer-" + uniqueEnv(), "invalid_token", false},
		{"wrong key on a live session", "X-API-Key", "wrong-on-session-" + uniqueEnv(), "invalid_token", true},
		{"no key", "", "", "missing_token", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			key := "real-key-" + uniqueEnv()
			g, path := apiKeyAudited(t, key, nil)
			// The real key goes through the gateway too, so that the
			// trail could hold it.
			sid := authInit(t, g.URL, key)
			body, target := authInitBody, ""
			if tc.onSession {
				body, target = counterBody, sid
			}
			req, _ := http.NewRequest(http.MethodPost, g.URL, strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Accept", "application/json, text/event-stream")
			if tc.header != "" {
				req.Header.Set(tc.header, tc.value)
			}
			if target != "" {
				req.Header.Set("Mcp-Session-Id", target)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("%s: %d, want 401", tc.name, resp.StatusCode)
			}
			shutdown(t, g)

			events, raw := readAuditEvents(t, path)
			failures := eventsNamed(events, "auth_failure")
			if len(failures) != 1 {
				t.Fatalf("%d auth_failure events, want 1:\n%s", len(failures), raw)
			}
			checkEvent(t, failures[0], auditEvent{"event": "auth_failure", "reason": tc.reason})
			wrong := strings.TrimPrefix(tc.value, "Bearer ")
			checkNoSecrets(t, raw, key, authn.HashKey(key), wrong, authn.HashKey(wrong), sid)
		})
	}
}

// TestAuditRateLimited: a call or an initialize over its rate limit
// leaves a rate_limited event naming the caller (and the tool), after the
// event of the one the limit let through.
func TestAuditRateLimited(t *testing.T) {
	t.Parallel()
	const call = `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"a_counter","arguments":{}}}`
	cases := []struct {
		name   string
		mutate func(*config.Config)
		// act makes the requests, the last refused; it returns the
		// session it made.
		act  func(t *testing.T, g *running, key string) string
		want []auditEvent // the events of kind tool_call or rate_limited
	}{
		{"call", func(c *config.Config) {
			c.RateLimits.Calls = []config.CallRateLimit{{Tools: []string{"a_*"}, Rate: "1/h", Burst: 1}}
		}, func(t *testing.T, g *running, key string) string {
			sid := authInit(t, g.URL, key)
			for i := range 2 {
				code, _, body := authRequest(t, http.MethodPost, g.URL, key, sid, call)
				if limited := rateLimited(t, i, code, body); limited != (i == 1) {
					t.Fatalf("call %d: rate limited %v: %s", i, limited, body)
				}
			}
			return sid
		}, []auditEvent{
			{"event": "tool_call", "session": aSessionName, "issuer": "apikey", "subject": "ci-bot", "backend": "a",
				"method": "tools/call", "tool": "a_counter", "outcome": "ok", "durationMs": aDuration},
			{"event": "rate_limited", "session": aSessionName, "issuer": "apikey", "subject": "ci-bot", "backend": "a",
				"method": "tools/call", "tool": "a_counter", "limit": "call", "outcome": "rate_limited", "durationMs": aDuration},
		}},
		{"initialize", func(c *config.Config) {
			c.RateLimits.Initialize = &config.RateLimit{Rate: "1/h", Burst: 1}
		}, func(t *testing.T, g *running, key string) string {
			sid := authInit(t, g.URL, key)
			if code, _, body := authRequest(t, http.MethodPost, g.URL, key, "", authInitBody); code != http.StatusTooManyRequests {
				t.Fatalf("second initialize: %d %s, want 429", code, body)
			}
			return sid
		}, []auditEvent{
			{"event": "rate_limited", "issuer": "apikey", "subject": "ci-bot", "limit": "initialize"},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			key := "rate-key-" + uniqueEnv()
			g, path := apiKeyAudited(t, key, tc.mutate)
			sid := tc.act(t, g, key)
			shutdown(t, g)

			events, raw := readAuditEvents(t, path)
			var got []auditEvent
			for _, e := range events {
				if e["event"] == "tool_call" || e["event"] == "rate_limited" {
					got = append(got, e)
				}
			}
			if len(got) != len(tc.want) {
				t.Fatalf("%d tool_call and rate_limited events, want %d:\n%s", len(got), len(tc.want), raw)
			}
			for i := range got {
				checkEvent(t, got[i], tc.want[i])
			}
			if len(got) == 2 && got[0]["session"] != got[1]["session"] {
				t.Errorf("the refused call names another session: %v", got)
			}
			checkNoSecrets(t, raw, key, sid)
		})
	}
}

// TestAuditSessionRejected: an initialize refused for want of room leaves
// a session_rejected event with the limit that refused it, naming the
// caller and no session.
func TestAuditSessionRejected(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, reason string
		mutate       func(*config.Session)
	}{
		{"maxSessions", "limit", func(s *config.Session) { s.MaxSessions = 1 }},
		{"maxSessionsPerIdentity", "identity", func(s *config.Session) { s.MaxSessionsPerIdentity = 1 }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			web := fixture.StartHTTP(t, exampleserver.Options{Name: "web"})
			cfg := baseConfig(config.Backend{Name: "web", Transport: config.TransportStreamableHTTP, URL: web.URL})
			tc.mutate(&cfg.Session)
			path := filepath.Join(t.TempDir(), "audit.jsonl")
			cfg.Audit = &config.Audit{Path: path}
			g := startGateway(t, cfg, gateway.Options{})
			sid := rawInit(t, g.URL)
			if code, _, body := rawPost(t, g.URL, "", initBody); code != http.StatusServiceUnavailable {
				t.Fatalf("second initialize: %d %s, want 503", code, body)
			}
			shutdown(t, g)

			events, raw := readAuditEvents(t, path)
			rejected := eventsNamed(events, "session_rejected")
			if len(rejected) != 1 {
				t.Fatalf("%d session_rejected events, want 1:\n%s", len(rejected), raw)
			}
			checkEvent(t, rejected[0], auditEvent{"event": "session_rejected", "client": "127.0.0.1", "reason": tc.reason})
			if n := len(eventsNamed(events, "session_created")); n != 1 {
				t.Errorf("%d session_created events, want 1:\n%s", n, raw)
			}
			checkNoSecrets(t, raw, sid)
		})
	}
}

// auditRig is an audited gateway over one HTTP backend, with a fake clock
// for session expiry.
type auditRig struct {
	gw    *running
	path  string
	clock *fakeClock
}

// TestAuditSessionClosedReasons: each way a session ends, other than a
// DELETE (audit_test.go), leaves exactly one session_closed event for it,
// with the reason, once the session ends; Shutdown writes its own before
// it returns.
func TestAuditSessionClosedReasons(t *testing.T) {
	defer leakCheck(t)()
	cases := []struct {
		name, reason string
		shared       bool // a Redis store
		mutate       func(*config.Session)
		end          func(t *testing.T, r *auditRig, sid string)
	}{
		{"idle", "idle", false, func(s *config.Session) { s.IdleTimeout = config.Duration(time.Minute) },
			func(t *testing.T, r *auditRig, sid string) {
				r.clock.Advance(2 * time.Minute)
				waitForAuditEvent(t, r.path, "session_closed")
			}},
		{"ttl", "ttl", false, func(s *config.Session) { s.TTL, s.IdleTimeout = config.Duration(time.Hour), 0 },
			func(t *testing.T, r *auditRig, sid string) {
				// Activity does not extend a TTL.
				r.clock.Advance(59 * time.Minute)
				if code, _, body := rawPost(t, r.gw.URL, sid, `{"jsonrpc":"2.0","id":2,"method":"ping"}`); code != http.StatusOK {
					t.Fatalf("ping before the TTL: %d %s", code, body)
				}
				r.clock.Advance(2 * time.Minute)
				waitForAuditEvent(t, r.path, "session_closed")
			}},
		{"shutdown", "shutdown", false, nil,
			func(t *testing.T, r *auditRig, sid string) { shutdown(t, r.gw) }},
		// With a shared store, a stopping replica leaves its sessions to
		// the others.
		{"evicted by shutdown", "evicted", true, nil,
			func(t *testing.T, r *auditRig, sid string) { shutdown(t, r.gw) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			web := fixture.StartHTTP(t, exampleserver.Options{Name: "web"})
			cfg := baseConfig(config.Backend{Name: "web", Transport: config.TransportStreamableHTTP, URL: web.URL})
			if tc.mutate != nil {
				tc.mutate(&cfg.Session)
			}
			if tc.shared {
				cfg.Store.Type, cfg.Store.Redis.Address = config.StoreRedis, redistest.Start(t).Addr
			}
			r := &auditRig{path: filepath.Join(t.TempDir(), "audit.jsonl"), clock: fixture.NewClock(time.Unix(1_700_000_000, 0))}
			cfg.Audit = &config.Audit{Path: r.path}
			r.gw = startGateway(t, cfg, gateway.Options{Now: r.clock.Now, SweepInterval: 5 * time.Millisecond})
			sid := rawInit(t, r.gw.URL)
			secrets := append(backendSessionIDs(t, r.gw, sid), sid)

			tc.end(t, r, sid)
			// No more than one event: the sweeps after it and the
			// shutdown write none.
			shutdown(t, r.gw)

			events, raw := readAuditEvents(t, r.path)
			created, closed := eventsNamed(events, "session_created"), eventsNamed(events, "session_closed")
			if len(created) != 1 || len(closed) != 1 {
				t.Fatalf("%d session_created and %d session_closed events, want 1 each:\n%s", len(created), len(closed), raw)
			}
			checkEvent(t, created[0], auditEvent{"event": "session_created", "session": aSessionName, "client": "127.0.0.1",
				"how": "initialize", "backends": []any{"web"}})
			checkEvent(t, closed[0], auditEvent{"event": "session_closed", "session": created[0]["session"], "client": "127.0.0.1", "reason": tc.reason})
			checkNoSecrets(t, raw, secrets...)
		})
	}
}

// TestAuditSessionEndedOnAnotherReplica: a session ended by a replica
// that does not hold it, for the client's DELETE or for its TTL when
// another replica would take it over, is recorded as ended, with the
// reason, by that replica, and as evicted by the one that held it.
func TestAuditSessionEndedOnAnotherReplica(t *testing.T) {
	defer leakCheck(t)()
	cases := []struct {
		name, reason string
		ttl          time.Duration
		clock        time.Duration // how far ahead of the first replica the second one's clock is
		end          func(t *testing.T, url, sid string)
	}{
		{"DELETE", "delete", 0, 0, func(t *testing.T, url, sid string) {
			if code := rawDelete(t, url, sid); code != http.StatusNoContent {
				t.Fatalf("DELETE on the other replica = %d", code)
			}
		}},
		{"ttl at takeover", "ttl", time.Hour, 2 * time.Hour, func(t *testing.T, url, sid string) {
			if code, _, body := rawPost(t, url, sid, `{"jsonrpc":"2.0","id":2,"method":"ping"}`); code != http.StatusNotFound {
				t.Fatalf("ping past the TTL on the other replica: %d %s, want 404", code, body)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			web := fixture.StartHTTP(t, exampleserver.Options{Name: "web"})
			cfg := baseConfig(config.Backend{Name: "web", Transport: config.TransportStreamableHTTP, URL: web.URL})
			cfg.Session.TTL = config.Duration(tc.ttl)
			cfg.Store.Type, cfg.Store.Redis.Address = config.StoreRedis, redistest.Start(t).Addr
			// One hash key, so that both trails name the session alike.
			keyEnv := uniqueEnv()
			t.Setenv(keyEnv, "audit-hash-key-"+keyEnv)
			holder, other := *cfg, *cfg
			holder.Audit = &config.Audit{Path: filepath.Join(t.TempDir(), "holder.jsonl"), HashKeyEnv: keyEnv}
			other.Audit = &config.Audit{Path: filepath.Join(t.TempDir(), "other.jsonl"), HashKeyEnv: keyEnv}
			a := startGateway(t, &holder, gateway.Options{})
			b := startGateway(t, &other, gateway.Options{Now: fixture.NewClock(time.Now().Add(tc.clock)).Now})
			eventually(t, "both replicas subscribed to deletions", func() bool {
				return redisSubscribers(t, cfg.Store.Redis.Address, cfg.Store.Redis.KeyPrefix+"deleted") == 2
			})
			sid := rawInit(t, a.URL)
			secrets := append(backendSessionIDs(t, a, sid), sid, os.Getenv(keyEnv))

			tc.end(t, b.URL, sid)
			waitForAuditEvent(t, holder.Audit.Path, "session_closed")
			shutdown(t, a)
			shutdown(t, b)

			held, rawHeld := readAuditEvents(t, holder.Audit.Path)
			ended, rawEnded := readAuditEvents(t, other.Audit.Path)
			created := eventsNamed(held, "session_created")
			if len(created) != 1 {
				t.Fatalf("%d session_created events, want 1:\n%s", len(created), rawHeld)
			}
			name := created[0]["session"]
			for _, tr := range []struct {
				who, reason string
				events      []auditEvent
				raw         string
			}{{"the replica holding it", "evicted", held, rawHeld}, {"the replica ending it", tc.reason, ended, rawEnded}} {
				closed := eventsNamed(tr.events, "session_closed")
				if len(closed) != 1 {
					t.Errorf("%s: %d session_closed events, want 1:\n%s", tr.who, len(closed), tr.raw)
					continue
				}
				checkEvent(t, closed[0], auditEvent{"event": "session_closed", "session": name, "client": "127.0.0.1", "reason": tr.reason})
				checkNoSecrets(t, tr.raw, secrets...)
			}
		})
	}
}
