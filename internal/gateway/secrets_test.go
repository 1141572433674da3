package gateway_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/vmcp/vmcp/internal/authn"
	"github.com/vmcp/vmcp/internal/config"
	"github.com/vmcp/vmcp/internal/exampleserver"
	"github.com/vmcp/vmcp/internal/fixture"
	"github.com/vmcp/vmcp/internal/gateway"
	"github.com/vmcp/vmcp/internal/identity"
	"github.com/vmcp/vmcp/internal/oidctest"
)

// echoCredentials is a JSON-RPC error body quoting the credentials a
// request carried, as a careless backend's 401 does.
func echoCredentials(r *http.Request, id json.RawMessage) []byte {
	if id == nil {
		id = json.RawMessage("null")
	}
	auth := r.Header.Get("Authorization") + " / " + r.Header.Get("X-Api-Key")
	b, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": id, "error": map[string]any{
		"code": -32001, "message": "unauthorized: you sent " + auth,
		"data": map[string]any{"headers": auth, "hint": "check <" + r.Header.Get("Authorization") + ">"},
	}})
	return b
}

func requestID(body []byte) (string, json.RawMessage) {
	var msg struct {
		ID     json.RawMessage `json:"id"`
		Method string          `json:"method"`
	}
	_ = json.Unmarshal(body, &msg)
	return msg.Method, msg.ID
}

// startEcho401 is a fault injector: every request gets 401 and a JSON-RPC
// error that quotes its credentials.
func startEcho401(t *testing.T) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		_, id := requestID(body)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		w.Write(echoCredentials(r, id))
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/mcp"
}

// startEchoOnCall is a real example server whose tool calls are answered,
// by a fault injector in front, with a JSON-RPC error quoting the
// credentials.
func startEchoOnCall(t *testing.T) string {
	return startIntercepted(t, exampleserver.Options{Name: "echoerr"}, func(w http.ResponseWriter, r *http.Request, body []byte) ([]byte, bool) {
		method, id := requestID(body)
		if method != "tools/call" {
			return body, false
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(echoCredentials(r, id))
		return nil, true
	})
}

// TestSecretsNeverLeak plants every kind of secret vmcp handles at once:
// backend headers, a backend URL's query, stdio env values, the Redis
// password, the OIDC introspection client secret, the outgoing
// (token-exchange) client secret, the callers' bearer tokens (JWT and
// opaque), the tokens exchanged for a backend, an incoming API key, and
// vmcp's and the backends' session IDs. Backends echo what they were sent
// in a 401, in a JSON-RPC error and on stderr. No log line, no error a
// client sees, no /status and no /metrics body may hold one, nor an
// internal address.
func TestSecretsNeverLeak(t *testing.T) {
	secrets := []string{
		"planted-bearer-0001", "planted-apikey-0002", "planted-bearer-0003",
		"planted-query-0004", "planted-env-0005", "planted-redis-0006",
		"planted-introspection-0007", "planted-outgoing-0008", "planted-incoming-key-0009", "planted-wrong-key-0010",
	}
	t.Setenv("VMCP_TEST_REDIS_PASSWORD", "planted-redis-0006")
	t.Setenv("VMCP_TEST_INTROSPECTION_SECRET", "planted-introspection-0007")
	t.Setenv("VMCP_TEST_EXCHANGE_SECRET", "planted-outgoing-0008")
	op := oidctest.Start(t, oidctest.Options{TokenTTL: time.Hour})
	op.AddClient(oidctest.Client{ID: "vmcp-rs", Secret: "planted-introspection-0007"})
	op.AddClient(oidctest.Client{ID: "vmcp", Secret: "planted-outgoing-0008"})
	var files *oidctest.Guard
	filesB := fixture.StartHTTPBehind(t, exampleserver.Options{Name: "files"}, func(h http.Handler) http.Handler {
		files = op.Guard("files", quoteCredential(h))
		return files
	})
	bin := fixture.ExampleServerBinary(t)
	gone := fixture.StartHTTP(t, exampleserver.Options{Name: "gone"})
	backends := []config.Backend{
		{Name: "echo401", Transport: config.TransportStreamableHTTP, URL: startEcho401(t),
			Headers: map[string]string{"Authorization": "Bearer planted-bearer-0001", "X-Api-Key": "planted-apikey-0002"}},
		{Name: "echoerr", Transport: config.TransportStreamableHTTP, URL: startEchoOnCall(t),
			Headers: map[string]string{"Authorization": "Bearer planted-bearer-0003"}},
		{Name: "down", Transport: config.TransportStreamableHTTP, URL: fixture.DeadURL(t) + "?token=planted-query-0004"},
		{Name: "gone", Transport: config.TransportStreamableHTTP, URL: gone.URL},
		{Name: "child", Transport: config.TransportStdio, InheritEnv: true,
			Command: []string{"/bin/sh", "-c", `echo "child sees $CHILD_TOKEN and $VMCP_TEST_REDIS_PASSWORD" >&2; exec "$0" -transport stdio -name child`, bin},
			Env:     map[string]string{"CHILD_TOKEN": "planted-env-0005"}},
		{Name: "files", Transport: config.TransportStreamableHTTP, URL: filesB.URL,
			OutgoingAuth: &config.OutgoingAuth{Type: config.OutgoingTokenExchange, TokenURL: op.TokenURL(), ClientID: "vmcp",
				ClientSecretEnv: "VMCP_TEST_EXCHANGE_SECRET", Audience: "files"}},
	}
	cfg := oidcConfig(op, nil, backends...)
	cfg.IncomingAuth.IntrospectionURL = op.IntrospectionURL()
	cfg.IncomingAuth.ClientID = "vmcp-rs"
	cfg.IncomingAuth.ClientSecretEnv = "VMCP_TEST_INTROSPECTION_SECRET"
	cfg.Store.Redis.PasswordEnv = "VMCP_TEST_REDIS_PASSWORD"
	gw := startGateway(t, cfg, gateway.Options{})
	gw.StartProbe()
	jwt := op.Token(t, "alice", []string{testResource}, nil, time.Hour)
	opaque := op.OpaqueToken(t, "alice", []string{testResource}, nil, time.Hour)
	expired := op.Token(t, "alice", []string{testResource}, nil, -time.Minute)
	secrets = append(secrets, jwt, opaque, expired)
	cs := connectWithToken(t, gw.URL, jwt)
	sessionIDs := []string{cs.ID()}

	var seen []string // every error text a client saw
	see := func(what string, err error) {
		t.Helper()
		if err == nil {
			t.Fatalf("%s: no error", what)
		}
		seen = append(seen, what+": "+err.Error())
	}
	_, err := callResult(cs, "echoerr_echo", map[string]any{"text": "x"})
	see("tool call answered with an echo", err)
	if !strings.Contains(err.Error(), "unauthorized: you sent") {
		t.Errorf("the backend's own error did not pass through: %v", err)
	}
	if got := callText(t, cs, "child_echo", map[string]any{"text": "hi"}); got != "hi" {
		t.Fatalf("child_echo = %q", got)
	}
	gone.Server.CloseClientConnections()
	gone.Server.Close()
	_, err = callResult(cs, "gone_echo", map[string]any{"text": "x"})
	see("call to a backend that went away", err)
	if !strings.Contains(err.Error(), `backend "gone"`) {
		t.Errorf("error does not name the backend: %v", err)
	}
	// The exchanged token, quoted by the backend it was sent to.
	if got := callText(t, cs, "files_echo", map[string]any{"text": "hi"}); got != "hi" {
		t.Fatalf("files_echo = %q", got)
	}
	_, err = callResult(cs, "files_echo", map[string]any{"text": "please-leak"})
	see("a backend quoting its exchanged token", err)
	// An opaque token, checked by introspection with vmcp's client secret,
	// and an expired one.
	sid := authInit(t, gw.URL, opaque)
	sessionIDs = append(sessionIDs, sid)
	if code, _, body := authRequest(t, http.MethodPost, gw.URL, opaque, sid, `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"files_echo","arguments":{"text":"please-leak"}}}`); code != http.StatusOK {
		t.Fatalf("call with an opaque token: %d %s", code, body)
	} else {
		seen = append(seen, "opaque caller's call: "+body)
	}
	code, _, body := authRequest(t, http.MethodPost, gw.URL, expired, sid, counterBody)
	if code != http.StatusUnauthorized {
		t.Fatalf("expired token: %d", code)
	}
	seen = append(seen, "expired token: "+body)
	for _, a := range files.Accepted() {
		secrets = append(secrets, a.Token)
	}
	if len(files.Accepted()) == 0 {
		t.Fatal("no exchanged token reached the backend")
	}
	alice := (&identity.Identity{Issuer: op.Issuer(), Subject: "alice"}).Key()
	for _, id := range sessionIDs {
		s, err := gw.Manager().GetFor(context.Background(), id, alice)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range s.BackendSessions() {
			secrets = append(secrets, b.SessionID)
		}
	}
	secrets = append(secrets, sessionIDs...)

	// An incoming API key, and a wrong one, on a gateway of its own (one
	// incomingAuth type per gateway).
	keyed := baseConfig(backends[1])
	keyed.IncomingAuth = &config.IncomingAuth{Type: config.AuthAPIKey, APIKeys: []config.APIKey{{Subject: "ci-bot", SHA256: authn.HashKey("planted-incoming-key-0009")}}}
	kg := startGateway(t, keyed, gateway.Options{})
	ksid := authInit(t, kg.URL, "planted-incoming-key-0009")
	secrets = append(secrets, ksid)
	code, _, body = authRequest(t, http.MethodPost, kg.URL, "planted-incoming-key-0009", ksid, `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echoerr_echo","arguments":{"text":"x"}}}`)
	seen = append(seen, "API key caller's call: "+body)
	if code != http.StatusOK || !strings.Contains(body, "unauthorized: you sent") {
		t.Errorf("API key caller's call: %d %s", code, body)
	}
	code, _, body = authRequest(t, http.MethodPost, kg.URL, "planted-wrong-key-0010", "", authInitBody)
	seen = append(seen, "wrong API key: "+body)
	if code != http.StatusUnauthorized {
		t.Errorf("wrong API key: %d", code)
	}

	fixture.Eventually(t, "the child's stderr in the log", func() bool { return strings.Contains(gw.Logs.String(), "child sees") })
	fixture.Eventually(t, "the probe's log lines", func() bool { return strings.Count(gw.Logs.String(), "backend unreachable") >= 2 })

	// Every backend failing: the error joins no backend text.
	only := startGateway(t, baseConfig(backends[0], backends[2]), gateway.Options{})
	cs2 := connect(t, only.URL)
	_, err = callResult(cs2, "echo401_echo", nil)
	see("all backends failed", err)
	if !strings.Contains(err.Error(), "echo401: credential refused") || !strings.Contains(err.Error(), "down: unreachable") {
		t.Errorf("error lacks each backend's name and category: %v", err)
	}

	var st json.RawMessage
	if code := getJSON(t, gw.Base+"/status", &st); code != http.StatusOK {
		t.Fatalf("/status = %d", code)
	}
	status := string(st) + getBody(t, only.Base+"/status") + getBody(t, kg.Base+"/status")
	metrics := getBody(t, gw.Base+"/metrics") + getBody(t, only.Base+"/metrics") + getBody(t, kg.Base+"/metrics")
	logs := gw.Logs.String() + only.Logs.String() + kg.Logs.String()
	if !strings.Contains(logs, "[REDACTED]") {
		t.Errorf("nothing was redacted in the log; did the echoes happen?\n%s", logs)
	}
	if !strings.Contains(strings.Join(seen, "\n"), "[REDACTED]") {
		t.Errorf("the exchanged token was not redacted from the client's error; did the backend quote it?")
	}
	for where, text := range map[string]string{"log": logs, "/status": status, "/metrics": metrics, "client errors": strings.Join(seen, "\n")} {
		for _, s := range secrets {
			if s != "" && strings.Contains(text, s) {
				t.Errorf("%s shows the secret %.24s…:\n%s", where, s, text)
			}
		}
	}
	if clientText := strings.Join(seen, "\n"); strings.Contains(clientText, "127.0.0.1") {
		t.Errorf("a client sees an internal address:\n%s", clientText)
	}
}

func TestSecretValuesOfURLs(t *testing.T) {
	t.Setenv("VMCP_TEST_PW", "redis-pass-9")
	cfg := baseConfig(config.Backend{Name: "a", Transport: config.TransportStreamableHTTP,
		URL: "http://user:url-pass-1@127.0.0.1:1/mcp?api_key=query-key-2&version=2025-06-18"})
	t.Setenv("VMCP_TEST_OUT", "outgoing-secret-3")
	t.Setenv("VMCP_TEST_IN", "introspection-secret-4")
	cfg.Store.Redis.PasswordEnv = "VMCP_TEST_PW"
	cfg.Backends[0].OutgoingAuth = &config.OutgoingAuth{ClientSecretEnv: "VMCP_TEST_OUT"}
	cfg.IncomingAuth = &config.IncomingAuth{ClientSecretEnv: "VMCP_TEST_IN"}
	got := strings.Join(gateway.SecretValues(cfg), " ")
	for _, want := range []string{"url-pass-1", "query-key-2", "redis-pass-9", "outgoing-secret-3", "introspection-secret-4"} {
		if !strings.Contains(got, want) {
			t.Errorf("secret values %q lack %s", got, want)
		}
	}
	if strings.Contains(got, "2025-06-18") {
		t.Errorf("a version counts as a secret: %q", got)
	}
}
