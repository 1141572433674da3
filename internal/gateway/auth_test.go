package gateway_test

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/vmcp/vmcp/internal/authn"
	"github.com/vmcp/vmcp/internal/config"
	"github.com/vmcp/vmcp/internal/gateway"
	"github.com/vmcp/vmcp/internal/oidctest"
	"github.com/vmcp/vmcp/internal/redistest"
)

// TestOIDCEndToEnd runs vmcp with incomingAuth oidc against a real OP
// (internal/oidctest): real signed JWTs, real discovery and JWKS, real
// HTTP. The subtests share one gateway and run in order.
func TestOIDCEndToEnd(t *testing.T) {
	t.Parallel()
	p := oidctest.Start(t, oidctest.Options{})
	backend, rec := recordedBackend(t, "a")
	cfg := oidcConfig(p, []string{"mcp"}, backend)
	cfg.Session.MaxSessionsPerIdentity = 3
	g := startGateway(t, cfg, gateway.Options{})
	aud := []string{testResource}
	alice := p.Token(t, "alice", aud, []string{"mcp"}, time.Hour)
	bob := p.Token(t, "bob", aud, []string{"mcp"}, time.Hour)
	wantChallenge := `Bearer resource_metadata="https://vmcp.test/.well-known/oauth-protected-resource/mcp"`
	var tokens, sessions []string
	tokens = append(tokens, alice, bob)

	t.Run("no token gets 401 with resource metadata", func(t *testing.T) {
		code, h, _ := authRequest(t, http.MethodPost, g.URL, "", "", authInitBody)
		if code != http.StatusUnauthorized || h.Get("WWW-Authenticate") != wantChallenge {
			t.Fatalf("got %d, WWW-Authenticate %q", code, h.Get("WWW-Authenticate"))
		}
	})

	var sid string
	t.Run("valid token opens a session", func(t *testing.T) {
		sid = authInit(t, g.URL, alice)
		sessions = append(sessions, sid)
		code, _, body := authRequest(t, http.MethodPost, g.URL, alice, sid, counterBody)
		if code != http.StatusOK || !strings.Contains(body, `"text":"1"`) {
			t.Fatalf("counter: %d %s", code, body)
		}
	})

	t.Run("stolen session ID with another identity's token is 404", func(t *testing.T) {
		for _, m := range []struct{ method, body string }{
			{http.MethodPost, counterBody},
			{http.MethodGet, ""},
			{http.MethodDelete, ""},
		} {
			code, _, body := authRequest(t, m.method, g.URL, bob, sid, m.body)
			if code != http.StatusNotFound {
				t.Errorf("%s with bob's token: %d %s, want 404", m.method, code, body)
			}
		}
		// The owner's session is unharmed: its counter goes on.
		code, _, body := authRequest(t, http.MethodPost, g.URL, alice, sid, counterBody)
		if code != http.StatusOK || !strings.Contains(body, `"text":"2"`) {
			t.Fatalf("owner after the attempts: %d %s", code, body)
		}
		logs := g.Logs.String()
		if n := strings.Count(logs, "request for a session bound to another identity refused"); n != 3 {
			t.Errorf("refusals logged: %d, want 3\n%s", n, logs)
		}
		if !strings.Contains(logs, "caller=\""+p.Issuer()+" bob\"") {
			t.Errorf("refusal does not name the caller:\n%s", logs)
		}
	})

	t.Run("refreshed token for the same subject keeps the session", func(t *testing.T) {
		fresh := p.Token(t, "alice", aud, []string{"mcp"}, time.Hour)
		tokens = append(tokens, fresh)
		if fresh == alice {
			t.Fatal("OP returned the same token")
		}
		code, _, body := authRequest(t, http.MethodPost, g.URL, fresh, sid, counterBody)
		if code != http.StatusOK || !strings.Contains(body, `"text":"3"`) {
			t.Fatalf("with the refreshed token: %d %s", code, body)
		}
	})

	refused := func(t *testing.T, tok string) {
		t.Helper()
		code, h, body := authRequest(t, http.MethodPost, g.URL, tok, "", authInitBody)
		want := `Bearer error="invalid_token", resource_metadata="https://vmcp.test/.well-known/oauth-protected-resource/mcp"`
		if code != http.StatusUnauthorized || h.Get("WWW-Authenticate") != want {
			t.Fatalf("got %d %q %s, want 401 %q", code, h.Get("WWW-Authenticate"), body, want)
		}
		// Same answer whatever failed: the body names no check.
		if !strings.Contains(body, `"message":"Unauthorized"`) {
			t.Fatalf("body %s", body)
		}
	}
	t.Run("expired token gets 401", func(t *testing.T) {
		tok := p.Token(t, "alice", aud, []string{"mcp"}, -2*time.Minute)
		tokens = append(tokens, tok)
		refused(t, tok)
		// Also on an existing session.
		code, _, _ := authRequest(t, http.MethodPost, g.URL, tok, sid, counterBody)
		if code != http.StatusUnauthorized {
			t.Fatalf("expired token on the session: %d", code)
		}
	})
	t.Run("token for another audience gets 401", func(t *testing.T) {
		tok := p.Token(t, "alice", []string{"https://other.test/mcp"}, []string{"mcp"}, time.Hour)
		tokens = append(tokens, tok)
		refused(t, tok)
	})
	t.Run("token of another issuer gets 401", func(t *testing.T) {
		other := oidctest.Start(t, oidctest.Options{})
		tok := other.Token(t, "alice", aud, []string{"mcp"}, time.Hour)
		tokens = append(tokens, tok)
		refused(t, tok)
	})
	t.Run("HMAC and none tokens are refused", func(t *testing.T) {
		claims := map[string]any{"iss": p.Issuer(), "sub": "mallory", "aud": aud, "scope": "mcp",
			"exp": time.Now().Add(time.Hour).Unix(), "iat": time.Now().Unix()}
		hs := hmacWithPublicKey(t, p, claims)
		none := unsignedToken(t, claims)
		tokens = append(tokens, hs, none)
		refused(t, hs)
		refused(t, none)
	})
	t.Run("malformed headers get 401", func(t *testing.T) {
		for _, auth := range []string{"Basic YWxpY2U6cHc=", "Bearer", "Bearer a b", "Token " + alice} {
			req, _ := http.NewRequest(http.MethodPost, g.URL, strings.NewReader(authInitBody))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", auth)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("Authorization %.12q...: %d, want 401", auth, resp.StatusCode)
			}
		}
	})
	t.Run("missing scope gets 403 insufficient_scope", func(t *testing.T) {
		tok := p.Token(t, "carol", aud, []string{"other"}, time.Hour)
		tokens = append(tokens, tok)
		code, h, _ := authRequest(t, http.MethodPost, g.URL, tok, "", authInitBody)
		want := `Bearer error="insufficient_scope", scope="mcp", resource_metadata="https://vmcp.test/.well-known/oauth-protected-resource/mcp"`
		if code != http.StatusForbidden || h.Get("WWW-Authenticate") != want {
			t.Fatalf("got %d %q, want 403 %q", code, h.Get("WWW-Authenticate"), want)
		}
	})
	t.Run("JWKS rotation", func(t *testing.T) {
		if err := p.RotateKeys(); err != nil {
			t.Fatal(err)
		}
		tok := p.Token(t, "dave", aud, []string{"mcp"}, time.Hour)
		tokens = append(tokens, tok)
		sessions = append(sessions, authInit(t, g.URL, tok))
		// Only the newest key left: a token signed by it still verifies.
		if err := p.DropOldKeys(); err != nil {
			t.Fatal(err)
		}
		tok = p.Token(t, "dave", aud, []string{"mcp"}, time.Hour)
		tokens = append(tokens, tok)
		sessions = append(sessions, authInit(t, g.URL, tok))
	})
	t.Run("sessions per identity count by subject", func(t *testing.T) {
		// alice holds 1 session; the limit is 3.
		sessions = append(sessions, authInit(t, g.URL, alice), authInit(t, g.URL, alice))
		code, _, body := authRequest(t, http.MethodPost, g.URL, alice, "", authInitBody)
		if code != http.StatusServiceUnavailable {
			t.Fatalf("alice's 4th session: %d %s, want 503", code, body)
		}
		sessions = append(sessions, authInit(t, g.URL, bob)) // another subject is not affected
	})
	t.Run("a real SDK client with a token", func(t *testing.T) {
		cs := connectWithToken(t, g.URL, bob)
		sessions = append(sessions, cs.ID())
		if got := callText(t, cs, "a_echo", map[string]any{"text": "hi"}); got != "hi" {
			t.Fatalf("echo = %q", got)
		}
	})
	t.Run("protected resource metadata at both paths", func(t *testing.T) {
		for _, path := range []string{"/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource/mcp"} {
			resp, err := http.Get(g.Base + path)
			if err != nil {
				t.Fatal(err)
			}
			var doc struct {
				Resource             string   `json:"resource"`
				AuthorizationServers []string `json:"authorization_servers"`
				ScopesSupported      []string `json:"scopes_supported"`
			}
			err = json.NewDecoder(resp.Body).Decode(&doc)
			resp.Body.Close()
			if err != nil || resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
				t.Fatalf("GET %s: %d %v", path, resp.StatusCode, err)
			}
			if doc.Resource != testResource || len(doc.AuthorizationServers) != 1 || doc.AuthorizationServers[0] != p.Issuer() ||
				len(doc.ScopesSupported) != 1 || doc.ScopesSupported[0] != "mcp" {
				t.Fatalf("GET %s: %+v", path, doc)
			}
		}
	})
	t.Run("no token reaches a backend, log or status", func(t *testing.T) {
		for _, v := range rec.values() {
			t.Errorf("backend received a client credential header: %.20q...", v)
		}
		resp, err := http.Get(g.Base + "/status")
		if err != nil {
			t.Fatal(err)
		}
		var status strings.Builder
		json.NewDecoder(resp.Body).Decode(&map[string]any{})
		resp.Body.Close()
		status.WriteString(getBody(t, g.Base+"/status"))
		logs := g.Logs.String()
		for _, secret := range append(tokens, sessions...) {
			if secret == "" {
				continue
			}
			for where, text := range map[string]string{"log": logs, "/status": status.String()} {
				if strings.Contains(text, secret) {
					t.Errorf("%s contains a token or session ID %.16q...", where, secret)
				}
			}
			// A token's signature alone is secret enough to look for.
			if i := strings.LastIndexByte(secret, '.'); i > 0 && len(secret)-i > 16 && strings.Contains(logs, secret[i+1:]) {
				t.Errorf("log contains a token's signature")
			}
		}
	})
}

func getBody(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			return b.String()
		}
	}
}

// hmacWithPublicKey forges the classic algorithm-confusion token: HS256
// with the OP's RSA public key (PEM) as the HMAC secret, under the OP's
// key ID.
func hmacWithPublicKey(t *testing.T, p *oidctest.Provider, claims map[string]any) string {
	t.Helper()
	resp, err := http.Get(p.JWKSURL())
	if err != nil {
		t.Fatal(err)
	}
	var set jose.JSONWebKeySet
	err = json.NewDecoder(resp.Body).Decode(&set)
	resp.Body.Close()
	if err != nil || len(set.Keys) == 0 {
		t.Fatalf("jwks: %v", err)
	}
	der, err := x509.MarshalPKIXPublicKey(set.Keys[len(set.Keys)-1].Key)
	if err != nil {
		t.Fatal(err)
	}
	secret := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: secret},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", set.Keys[len(set.Keys)-1].KeyID))
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := json.Marshal(claims)
	jws, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// unsignedToken is an alg "none" JWT.
func unsignedToken(t *testing.T, claims map[string]any) string {
	t.Helper()
	payload, _ := json.Marshal(claims)
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + enc(payload) + "."
}

// TestIntrospectionEndToEnd checks opaque tokens by RFC 7662 at the OP,
// with vmcp's own client credentials from the environment.
func TestIntrospectionEndToEnd(t *testing.T) {
	t.Parallel()
	p := oidctest.Start(t, oidctest.Options{})
	secret := "rs-secret-" + uniqueEnv()
	p.AddClient(oidctest.Client{ID: "vmcp-rs", Secret: secret})
	env := uniqueEnv()
	os.Setenv(env, secret)
	t.Cleanup(func() { os.Unsetenv(env) })
	backend, _ := recordedBackend(t, "a")
	cfg := oidcConfig(p, nil, backend)
	cfg.IncomingAuth.IntrospectionURL = p.IntrospectionURL()
	cfg.IncomingAuth.ClientID = "vmcp-rs"
	cfg.IncomingAuth.ClientSecretEnv = env
	g := startGateway(t, cfg, gateway.Options{})

	opaque := p.OpaqueToken(t, "erin", []string{testResource}, []string{"mcp"}, time.Hour)
	sid := authInit(t, g.URL, opaque)
	code, _, body := authRequest(t, http.MethodPost, g.URL, opaque, sid, counterBody)
	if code != http.StatusOK || !strings.Contains(body, `"text":"1"`) {
		t.Fatalf("counter with an opaque token: %d %s", code, body)
	}
	// The same subject with a JWT is the same identity.
	jwt := p.Token(t, "erin", []string{testResource}, nil, time.Hour)
	if code, _, body := authRequest(t, http.MethodPost, g.URL, jwt, sid, counterBody); code != http.StatusOK {
		t.Fatalf("same subject with a JWT: %d %s", code, body)
	}
	for name, tok := range map[string]string{
		"unknown":        "c29tZSBvcGFxdWUgdG9rZW4",
		"expired":        p.OpaqueToken(t, "erin", []string{testResource}, nil, -time.Minute),
		"other audience": p.OpaqueToken(t, "erin", []string{"https://other.test"}, nil, time.Hour),
	} {
		if code, _, _ := authRequest(t, http.MethodPost, g.URL, tok, "", authInitBody); code != http.StatusUnauthorized {
			t.Errorf("%s opaque token: %d, want 401", name, code)
		}
	}
	logs := g.Logs.String()
	for _, s := range []string{opaque, secret, sid} {
		if strings.Contains(logs, s) {
			t.Errorf("log contains a secret %.12q...", s)
		}
	}
}

// TestAPIKeyEndToEnd authenticates with API keys stored as hashes.
func TestAPIKeyEndToEnd(t *testing.T) {
	t.Parallel()
	key := "k-" + uniqueEnv()
	backend, rec := recordedBackend(t, "a")
	cfg := baseConfig(backend)
	cfg.IncomingAuth = &config.IncomingAuth{Type: config.AuthAPIKey, APIKeys: []config.APIKey{
		{Subject: "ci-bot", SHA256: authn.HashKey(key)},
		{Subject: "other", SHA256: authn.HashKey(key + "-other")},
	}}
	g := startGateway(t, cfg, gateway.Options{})

	sid := authInit(t, g.URL, key) // Authorization: Bearer
	send := func(header, value, sid, body string) (int, http.Header) {
		req, _ := http.NewRequest(http.MethodPost, g.URL, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		if header != "" {
			req.Header.Set(header, value)
		}
		if sid != "" {
			req.Header.Set("Mcp-Session-Id", sid)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode, resp.Header
	}
	if code, _ := send("X-API-Key", key, sid, counterBody); code != http.StatusOK {
		t.Fatalf("X-API-Key on the session: %d", code)
	}
	if code, _ := send("X-API-Key", key+"-other", sid, counterBody); code != http.StatusNotFound {
		t.Fatalf("another key's subject on the session: %d, want 404", code)
	}
	for name, c := range map[string][2]string{
		"wrong key":    {"X-API-Key", "nope"},
		"wrong bearer": {"Authorization", "Bearer nope"},
		"none":         {"", ""},
	} {
		code, h := send(c[0], c[1], "", authInitBody)
		if code != http.StatusUnauthorized || !strings.HasPrefix(h.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("%s: %d %q, want 401 Bearer", name, code, h.Get("WWW-Authenticate"))
		}
	}
	if len(rec.values()) != 0 {
		t.Error("a backend received a client credential")
	}
	if strings.Contains(g.Logs.String(), key) || strings.Contains(getBody(t, g.Base+"/status"), key) {
		t.Error("the API key leaked into the log or /status")
	}
}

// TestAuthRequiredOffLoopback: with no incomingAuth vmcp refuses a
// non-loopback listener, says how to choose, and runs anonymous on
// loopback with a WARN.
func TestAuthRequiredOffLoopback(t *testing.T) {
	t.Parallel()
	cfg := baseConfig(config.Backend{Name: "a", Transport: config.TransportStreamableHTTP, URL: "http://127.0.0.1:1/mcp", Timeout: config.Duration(time.Second)})
	cfg.Listen = "0.0.0.0:4483"
	_, err := gateway.New(cfg, gateway.Options{})
	if err == nil || !strings.Contains(err.Error(), "incomingAuth") || !strings.Contains(err.Error(), "anonymous") {
		t.Fatalf("New on 0.0.0.0 without incomingAuth: %v", err)
	}
	cfg.IncomingAuth = &config.IncomingAuth{Type: config.AuthAnonymous}
	g := startGateway(t, cfg, gateway.Options{})
	getBody(t, g.Base+"/health") // Serve is running, so Shutdown will stop it
	if strings.Contains(g.Logs.String(), "no incomingAuth configured") {
		t.Error("explicit anonymous still warns")
	}
	cfg2 := *cfg
	cfg2.Listen, cfg2.IncomingAuth = "127.0.0.1:4483", nil
	g2 := startGateway(t, &cfg2, gateway.Options{})
	getBody(t, g2.Base+"/health")
	if !strings.Contains(g2.Logs.String(), "level=WARN msg=\"no incomingAuth configured") {
		t.Errorf("no WARN on loopback without incomingAuth:\n%s", g2.Logs.String())
	}
}

// TestOIDCTakeoverChecksBinding: a replica that does not hold a session
// checks its binding from the Redis metadata before it rebuilds anything.
func TestOIDCTakeoverChecksBinding(t *testing.T) {
	t.Parallel()
	p := oidctest.Start(t, oidctest.Options{})
	backend, _ := recordedBackend(t, "a")
	cfg := oidcConfig(p, nil, backend)
	rd := redistest.Start(t)
	cfg.Store.Type = config.StoreRedis
	cfg.Store.Redis.Address = rd.Addr
	a, b := startReplica(t, cfg), startReplica(t, cfg)
	eventually(t, "replicas subscribed to deletions", func() bool {
		return redisSubscribers(t, rd.Addr, cfg.Store.Redis.KeyPrefix+"deleted") == 2
	})
	aud := []string{testResource}
	alice := p.Token(t, "alice", aud, nil, time.Hour)
	bob := p.Token(t, "bob", aud, nil, time.Hour)

	sid := authInit(t, a.URL, alice)
	if code, _, body := authRequest(t, http.MethodPost, a.URL, alice, sid, counterBody); code != http.StatusOK || !strings.Contains(body, `"text":"1"`) {
		t.Fatalf("counter on a: %d %s", code, body)
	}
	for _, m := range []struct{ method, body string }{{http.MethodPost, counterBody}, {http.MethodGet, ""}, {http.MethodDelete, ""}} {
		if code, _, body := authRequest(t, m.method, b.URL, bob, sid, m.body); code != http.StatusNotFound {
			t.Errorf("%s on b with bob's token: %d %s, want 404", m.method, code, body)
		}
	}
	if n := b.Manager().Len(); n != 0 {
		t.Fatalf("b built %d sessions for another identity", n)
	}
	if !strings.Contains(b.Logs.String(), "request for a session bound to another identity refused") || strings.Contains(b.Logs.String(), sid) {
		t.Errorf("b's log: want the refusal, without the session ID:\n%s", b.Logs.String())
	}
	// The owner moves to b: the takeover admits it, and the counter goes on.
	fresh := p.Token(t, "alice", aud, nil, time.Hour)
	if code, _, body := authRequest(t, http.MethodPost, b.URL, fresh, sid, counterBody); code != http.StatusOK || !strings.Contains(body, `"text":"2"`) {
		t.Fatalf("owner on b: %d %s", code, body)
	}
}
