package gateway_test

import (
	"context"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/vmcp/vmcp/internal/config"
	"github.com/vmcp/vmcp/internal/exampleserver"
	"github.com/vmcp/vmcp/internal/fixture"
	"github.com/vmcp/vmcp/internal/oidctest"
	"github.com/vmcp/vmcp/internal/redistest"
)

// identityStack is issue 17's parts in one config, all real: an OP
// (internal/oidctest) that signs the callers' JWTs and exchanges them;
// vmcp with incomingAuth oidc; one backend behind the OP's resource-server
// guard, reached with outgoingAuth tokenExchange, and one plain backend;
// authorization policies on the token's scopes and issuer; a rate limit
// on one tool. Replicas share one redis-server.
type identityStack struct {
	op       *oidctest.Provider
	files    *fixture.Backend
	guard    *oidctest.Guard // in front of files
	cfg      *config.Config
	replicas []*replica
}

func startIdentityStack(t *testing.T, replicas int) *identityStack {
	t.Helper()
	st := &identityStack{op: oidctest.Start(t, oidctest.Options{TokenTTL: time.Hour})}
	secretEnv := uniqueEnv()
	secret := "exchange-secret-" + uniqueEnv()
	os.Setenv(secretEnv, secret) // a name of its own, so parallel tests do not meet
	t.Cleanup(func() { os.Unsetenv(secretEnv) })
	st.op.AddClient(oidctest.Client{ID: "vmcp", Secret: secret})
	st.files = fixture.StartHTTPBehind(t, exampleserver.Options{Name: "files"}, func(h http.Handler) http.Handler {
		st.guard = st.op.Guard("files", h)
		return st.guard
	})
	cfg := oidcConfig(st.op, nil, config.Backend{Name: "files", Transport: config.TransportStreamableHTTP, URL: st.files.URL,
		OutgoingAuth: &config.OutgoingAuth{Type: config.OutgoingTokenExchange, TokenURL: st.op.TokenURL(), ClientID: "vmcp",
			ClientSecretEnv: secretEnv, Audience: "files"}})
	cfg.Backends[0].Timeout = config.Duration(30 * time.Second)
	cfg.Authorization.Policies = []config.Policy{
		{Name: "admins-count", Effect: config.EffectAllow, Tools: []string{"files_counter"}, When: `"files.admin" in scopes`},
		{Name: "others-do-not", Effect: config.EffectDeny, Tools: []string{"files_counter"}},
		{Name: "our-issuer", Effect: config.EffectAllow, Tools: []string{"files_*"}, When: `issuer == "` + st.op.Issuer() + `"`},
	}
	cfg.RateLimits.Calls = []config.CallRateLimit{{Tools: []string{"files_whoami"}, Rate: "1/h", Burst: 5}}
	if replicas > 1 {
		cfg.Store.Type, cfg.Store.Redis.Address = config.StoreRedis, redistest.Start(t).Addr
	}
	st.cfg = cfg
	for range replicas {
		st.replicas = append(st.replicas, startReplicaWith(t, cfg, func(h http.Handler) http.Handler { return h }))
	}
	return st
}

// token is a real JWT of the OP for vmcp's resource.
func (st *identityStack) token(t *testing.T, sub string, scopes ...string) string {
	t.Helper()
	return st.op.Token(t, sub, []string{testResource}, scopes, time.Hour)
}

// TestIdentityEndToEnd: policies decide on the claims of real tokens that
// incoming auth verified, token exchange gives each user a backend token
// of their own, and a backend that revokes them is recovered with one
// new backend session under 20 concurrent calls.
func TestIdentityEndToEnd(t *testing.T) {
	t.Parallel()
	st := startIdentityStack(t, 1)
	g := st.replicas[0]
	aliceTok := st.token(t, "alice", "files.admin")
	bobTok := st.token(t, "bob")
	alice := connectWithToken(t, g.URL, aliceTok)
	bob := connectWithToken(t, g.URL, bobTok)

	t.Run("the policy shows the counter to alice only", func(t *testing.T) {
		if got := listedTools(t, alice); !slices.Contains(got, "files_counter") {
			t.Errorf("alice lists %q, want files_counter among them", got)
		}
		got := listedTools(t, bob)
		if slices.Contains(got, "files_counter") || !slices.Contains(got, "files_echo") {
			t.Errorf("bob lists %q, want files_echo and no files_counter", got)
		}
		if got := callText(t, alice, "files_counter", nil); got != "1" {
			t.Errorf("alice's counter = %q", got)
		}
		_, err := bob.CallTool(context.Background(), &mcp.CallToolParams{Name: "files_counter"})
		if we := wireError(t, err); we.Code != codeForbidden {
			t.Errorf("bob calling the counter: %v, want code %d", err, codeForbidden)
		}
		if line := logLine(g.Logs.String(), "call denied by policy"); !strings.Contains(line, "sub=bob") || !strings.Contains(line, "rule=others-do-not") {
			t.Errorf("denial log line %q: want bob and the deciding rule", line)
		}
	})

	t.Run("refusals are counted in /metrics", func(t *testing.T) {
		authRequest(t, http.MethodPost, g.URL, "", "", authInitBody)
		authRequest(t, http.MethodPost, g.URL, st.op.Token(t, "alice", []string{"https://other.test/mcp"}, nil, time.Hour), "", authInitBody)
		m := getBody(t, strings.TrimSuffix(g.URL, "/mcp")+"/metrics")
		for _, want := range []string{
			`vmcp_policy_denials_total{kind="tool"} 1`,
			`vmcp_auth_failures_total{reason="missing_token"} 1`,
			`vmcp_auth_failures_total{reason="invalid_token"} 1`,
			`vmcp_auth_failures_total{reason="insufficient_scope"} 0`,
			`vmcp_rate_limited_total{limit="call"} 0`,
			// The two refused requests were initializes.
			`vmcp_sessions_rejected_total{reason="auth"} 2`,
			// One exchange for each of alice's and bob's sessions.
			`vmcp_token_requests_total{backend="files",grant="tokenExchange",outcome="ok",trigger="new"} 2`,
		} {
			if !strings.Contains(m, want) {
				t.Errorf("/metrics lacks %q", want)
			}
		}
	})

	t.Run("token exchange gives each user their own backend token", func(t *testing.T) {
		for _, cs := range []*mcp.ClientSession{alice, bob} {
			if got := callText(t, cs, "files_echo", map[string]any{"text": "hi"}); got != "hi" {
				t.Fatalf("echo = %q", got)
			}
		}
		bySubject := map[string]map[string]bool{}
		for _, a := range st.guard.Accepted() {
			if a.Token == aliceTok || a.Token == bobTok {
				t.Fatal("a caller's own token reached the backend")
			}
			if bySubject[a.Subject] == nil {
				bySubject[a.Subject] = map[string]bool{}
			}
			bySubject[a.Subject][a.Token] = true
		}
		if len(bySubject) != 2 || len(bySubject["alice"]) == 0 || len(bySubject["bob"]) == 0 {
			t.Fatalf("the backend saw subjects %v, want alice and bob", bySubject)
		}
		for tok := range bySubject["alice"] {
			if bySubject["bob"][tok] {
				t.Fatal("alice and bob were sent the same backend token")
			}
		}
	})

	t.Run("a backend that revokes the tokens is recovered once under 20 concurrent calls", func(t *testing.T) {
		inits := st.files.Stats.Initializes()
		st.guard.RevokeAll()
		for i, err := range callAtOnce(alice, 20, "files_echo") {
			if err != nil {
				t.Fatalf("call %d after the backend revoked alice's token: %v", i, err)
			}
		}
		if n := st.files.Stats.Initializes() - inits; n != 1 {
			t.Errorf("20 refused calls made %d new backend sessions, want 1", n)
		}
		if !strings.Contains(g.Logs.String(), "making a new client with fresh credentials") {
			t.Error("no log line for the retry with fresh credentials")
		}
		m := getBody(t, strings.TrimSuffix(g.URL, "/mcp")+"/metrics")
		if want := `vmcp_backend_reinitializations_total{backend="files",cause="unauthorized"} 1`; !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	})
}

// TestIdentityAcrossReplicas: three replicas on one Redis, real tokens.
// A session bound to alice's (iss, sub) follows her to every replica,
// with a refreshed token too, and nobody else's valid token opens it; her
// rate limit is one bucket across the replicas and across her tokens,
// while bob has his own.
func TestIdentityAcrossReplicas(t *testing.T) {
	t.Parallel()
	st := startIdentityStack(t, 3)
	aliceTok := st.token(t, "alice")
	bobTok := st.token(t, "bob")
	sid := authInit(t, st.replicas[0].URL, aliceTok)
	whoami := `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"files_whoami","arguments":{}}}`

	// Another identity's valid token, on every replica (the other two
	// have not seen the session yet), finds no session.
	for i, r := range st.replicas {
		if code, _, body := authRequest(t, http.MethodPost, r.URL, bobTok, sid, whoami); code != http.StatusNotFound {
			t.Fatalf("replica %d: bob with alice's session ID: %d %s, want 404", i, code, body)
		}
	}

	allowed, limited := 0, 0
	var limitedAt [3]int
	tok := aliceTok
	for i := range 15 {
		if i == 7 {
			// A refreshed token: the same (iss, sub), new bytes.
			tok = st.token(t, "alice")
		}
		code, _, body := authRequest(t, http.MethodPost, st.replicas[i%3].URL, tok, sid, whoami)
		if rateLimited(t, i, code, body) {
			limited++
			limitedAt[i%3]++
		} else {
			allowed++
		}
	}
	if allowed != 5 || limited != 10 {
		t.Errorf("allowed %d, limited %d across 3 replicas and two tokens; want the burst of 5 allowed", allowed, limited)
	}
	for i, r := range st.replicas {
		want := `vmcp_rate_limited_total{limit="call"} ` + strconv.Itoa(limitedAt[i])
		if m := getBody(t, strings.TrimSuffix(r.URL, "/mcp")+"/metrics"); !strings.Contains(m, want) {
			t.Errorf("replica %d: /metrics lacks %q", i, want)
		}
	}
	for i, r := range st.replicas[1:] {
		if !strings.Contains(r.Logs.String(), "took over a session") {
			t.Errorf("replica %d did not take the session over", i+1)
		}
	}
	// The replicas that took over exchanged alice's token for their own
	// backend clients: every backend request was alice's.
	for _, a := range st.guard.Accepted() {
		if a.Subject != "alice" {
			t.Errorf("the backend served subject %q on alice's session", a.Subject)
		}
	}
	// Bob's bucket is his own.
	bsid := authInit(t, st.replicas[1].URL, bobTok)
	if code, _, body := authRequest(t, http.MethodPost, st.replicas[2].URL, bobTok, bsid, whoami); code != http.StatusOK || strings.Contains(body, `"error"`) {
		t.Errorf("bob: %d %s", code, body)
	}
}
