package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/vmcp/vmcp/internal/config"
	"github.com/vmcp/vmcp/internal/exampleserver"
	"github.com/vmcp/vmcp/internal/fixture"
	"github.com/vmcp/vmcp/internal/gateway"
	"github.com/vmcp/vmcp/internal/oidctest"
)

// quoteCredential is a fault injector in front of a backend: a call whose
// body mentions "please-leak" is answered with a JSON-RPC error that
// quotes the request's Authorization header, as careless servers do.
func quoteCredential(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			next.ServeHTTP(w, r)
			return
		}
		body, _ := io.ReadAll(r.Body)
		if !bytes.Contains(body, []byte("please-leak")) {
			r.Body = io.NopCloser(bytes.NewReader(body))
			next.ServeHTTP(w, r)
			return
		}
		var req struct {
			ID json.RawMessage `json:"id"`
		}
		_ = json.Unmarshal(body, &req)
		msg, _ := json.Marshal("refused request with Authorization: " + r.Header.Get("Authorization"))
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"jsonrpc":"2.0","id":%s,"error":{"code":-32000,"message":%s,"data":{"header":%s}}}`, req.ID, msg, msg)
	})
}

func TestClientCredentialsThroughTheGateway(t *testing.T) {
	defer leakCheck(t)()
	t.Run("run", testClientCredentials)
}

func testClientCredentials(t *testing.T) {
	const secretEnv = "VMCP_TEST_OUTGOING_SECRET"
	secret := "planted-client-secret-" + fmt.Sprint(time.Now().UnixNano())
	t.Setenv(secretEnv, secret)

	idp := oidctest.Start(t, oidctest.Options{TokenTTL: time.Hour})
	idp.AddClient(oidctest.Client{ID: "vmcp", Secret: secret, Subject: "vmcp-service", Audience: []string{"files"}})
	var files, sse *oidctest.Guard
	filesB := fixture.StartHTTPBehind(t, exampleserver.Options{Name: "files"}, func(h http.Handler) http.Handler {
		files = idp.Guard("files", quoteCredential(h))
		return files
	})
	sseB := fixture.StartSSEBehind(t, exampleserver.Options{Name: "sse"}, func(h http.Handler) http.Handler {
		sse = idp.Guard("files", h)
		return sse
	})
	auth := func() *config.OutgoingAuth {
		return &config.OutgoingAuth{Type: config.OutgoingClientCredentials, TokenURL: idp.TokenURL(), ClientID: "vmcp",
			ClientSecretEnv: secretEnv, Scopes: []string{"files.read"}}
	}
	cfg := baseConfig(
		config.Backend{Name: "files", Transport: config.TransportStreamableHTTP, URL: filesB.URL, OutgoingAuth: auth()},
		config.Backend{Name: "sse", Transport: config.TransportSSE, URL: sseB.URL, OutgoingAuth: auth()},
	)
	gw := startGateway(t, cfg, gateway.Options{})
	cs := connect(t, gw.URL)

	if got := callText(t, cs, "files_echo", map[string]any{"text": "hi"}); got != "hi" {
		t.Fatalf("files_echo = %q", got)
	}
	if got := callText(t, cs, "sse_echo", map[string]any{"text": "hi"}); got != "hi" {
		t.Fatalf("sse_echo = %q", got)
	}
	var tokens []string
	for _, g := range []*oidctest.Guard{files, sse} {
		for _, a := range g.Accepted() {
			if a.Subject != "vmcp-service" || a.Claims["scope"] != "files.read" {
				t.Fatalf("backend accepted sub %q scope %v, want vmcp's own token", a.Subject, a.Claims["scope"])
			}
			tokens = append(tokens, a.Token)
		}
	}

	// A backend error that quotes the credential reaches the client, and
	// the log, without it.
	res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "files_echo", Arguments: map[string]any{"text": "please-leak"}})
	if err == nil {
		t.Fatalf("the quoting backend's error was not returned: %+v", res)
	}
	if !strings.Contains(err.Error(), "[REDACTED]") {
		t.Errorf("client error %q: want the token replaced by [REDACTED]", err)
	}

	// 401 from a backend that stopped taking the token: 20 concurrent
	// calls through the gateway recover with one new backend session.
	inits := filesB.Stats.Initializes()
	files.RevokeAll()
	for i, err := range callAtOnce(cs, 20, "files_echo") {
		if err != nil {
			t.Fatalf("call %d after the backend refused the token: %v", i, err)
		}
	}
	if n := filesB.Stats.Initializes() - inits; n != 1 {
		t.Errorf("20 refused calls made %d new backend sessions, want 1", n)
	}
	for _, a := range files.Accepted() {
		tokens = append(tokens, a.Token)
	}

	// No secret anywhere a user or an operator can look.
	var status, metrics bytes.Buffer
	for url, dst := range map[string]*bytes.Buffer{gw.Base + "/status": &status, gw.Base + "/metrics": &metrics} {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(dst, resp.Body)
		resp.Body.Close()
	}
	if !strings.Contains(strings.ReplaceAll(status.String(), " ", ""), `"outgoingAuth":"clientCredentials"`) {
		t.Errorf("/status does not show the backends' outgoingAuth type: %s", status.String())
	}
	places := map[string]string{"log": gw.Logs.String(), "/status": status.String(), "/metrics": metrics.String(), "client error": err.Error()}
	for where, text := range places {
		for _, s := range append(tokens, secret) {
			if strings.Contains(text, s) {
				t.Errorf("a planted secret or an obtained token is in the %s", where)
			}
		}
	}
	if !strings.Contains(gw.Logs.String(), "making a new client with fresh credentials") {
		t.Error("no log line for the retry with fresh credentials")
	}
}

func TestMissingClientSecretStopsStartup(t *testing.T) {
	cfg := baseConfig(config.Backend{Name: "files", Transport: config.TransportStreamableHTTP, URL: fixture.DeadURL(t),
		OutgoingAuth: &config.OutgoingAuth{Type: config.OutgoingTokenExchange, TokenURL: "http://127.0.0.1:1/token", ClientID: "vmcp",
			ClientSecretEnv: "VMCP_TEST_UNSET_SECRET"}})
	t.Setenv("VMCP_TEST_UNSET_SECRET", "")
	_, err := gateway.New(cfg, gateway.Options{})
	if err == nil || !strings.Contains(err.Error(), "VMCP_TEST_UNSET_SECRET") || !strings.Contains(err.Error(), `backend "files"`) {
		t.Fatalf("err = %v, want one naming the backend and the variable", err)
	}
}

func TestTokenExchangeBackendNeedsACaller(t *testing.T) {
	defer leakCheck(t)()
	t.Run("run", func(t *testing.T) {
		const secretEnv = "VMCP_TEST_EXCHANGE_SECRET"
		t.Setenv(secretEnv, "exchange-secret-value")
		idp := oidctest.Start(t, oidctest.Options{})
		idp.AddClient(oidctest.Client{ID: "vmcp", Secret: "exchange-secret-value"})
		var guard *oidctest.Guard
		files := fixture.StartHTTPBehind(t, exampleserver.Options{Name: "files"}, func(h http.Handler) http.Handler {
			guard = idp.Guard("files", h)
			return guard
		})
		plain := fixture.StartHTTP(t, exampleserver.Options{Name: "plain"})
		cfg := baseConfig(
			config.Backend{Name: "files", Transport: config.TransportStreamableHTTP, URL: files.URL,
				OutgoingAuth: &config.OutgoingAuth{Type: config.OutgoingTokenExchange, TokenURL: idp.TokenURL(), ClientID: "vmcp",
					ClientSecretEnv: secretEnv, Audience: "files"}},
			config.Backend{Name: "plain", Transport: config.TransportStreamableHTTP, URL: plain.URL},
		)
		gw := startGateway(t, cfg, gateway.Options{})
		// An anonymous client: the session runs without the backend that
		// needs a caller's token, and the log says why.
		cs := connect(t, gw.URL)
		if got := callText(t, cs, "plain_echo", map[string]any{"text": "hi"}); got != "hi" {
			t.Fatalf("plain_echo = %q", got)
		}
		if _, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "files_echo", Arguments: map[string]any{"text": "hi"}}); err == nil {
			t.Fatal("an anonymous session reached the token-exchange backend")
		}
		if n := len(guard.Accepted()) + guard.Refused(); n != 0 {
			t.Errorf("the backend saw %d requests from a session with no credential for it", n)
		}
		if !strings.Contains(gw.Logs.String(), "token exchange needs an authenticated caller") {
			t.Errorf("the log does not say why the backend is missing:\n%s", gw.Logs.String())
		}
		if strings.Contains(gw.Logs.String(), "exchange-secret-value") {
			t.Error("the client secret is in the log")
		}
	})
}

// A client_credentials token is replaced before it expires (a quarter of
// its lifetime ahead, at most 30s), while the session goes on: calls keep
// working, the backend sees a new token, and the fetch is counted as
// trigger="refresh". The OP's tokens live 4s, so this runs in real time.
func TestClientCredentialsAreRefreshedBeforeExpiry(t *testing.T) {
	t.Parallel()
	secretEnv := uniqueEnv()
	secret := "refresh-secret-" + uniqueEnv()
	os.Setenv(secretEnv, secret) // a name of its own, so parallel tests do not meet
	t.Cleanup(func() { os.Unsetenv(secretEnv) })
	idp := oidctest.Start(t, oidctest.Options{TokenTTL: time.Hour})
	idp.AddClient(oidctest.Client{ID: "vmcp", Secret: secret, Audience: []string{"files"}, TTL: 4 * time.Second})
	var guard *oidctest.Guard
	files := fixture.StartHTTPBehind(t, exampleserver.Options{Name: "files"}, func(h http.Handler) http.Handler {
		guard = idp.Guard("files", h)
		return guard
	})
	gw := startGateway(t, baseConfig(config.Backend{Name: "files", Transport: config.TransportStreamableHTTP, URL: files.URL,
		OutgoingAuth: &config.OutgoingAuth{Type: config.OutgoingClientCredentials, TokenURL: idp.TokenURL(), ClientID: "vmcp", ClientSecretEnv: secretEnv}}),
		gateway.Options{})
	cs := connect(t, gw.URL)

	tokens := func() map[string]bool {
		seen := map[string]bool{}
		for _, a := range guard.Accepted() {
			seen[a.Token] = true
		}
		return seen
	}
	deadline := time.Now().Add(time.Minute)
	for len(tokens()) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("after a minute of calls the backend has seen %d token(s), want a refreshed one", len(tokens()))
		}
		if got := callText(t, cs, "files_echo", map[string]any{"text": "hi"}); got != "hi" {
			t.Fatalf("files_echo = %q", got)
		}
		time.Sleep(250 * time.Millisecond)
	}
	m := scrapeText(t, gw.Base)
	for _, want := range []string{
		`vmcp_token_requests_total{backend="files",grant="clientCredentials",outcome="ok",trigger="new"} 1`,
		`vmcp_token_requests_total{backend="files",grant="clientCredentials",outcome="ok",trigger="refresh"} `,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}
