package gateway_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/vmcp/vmcp/internal/config"
	"github.com/vmcp/vmcp/internal/exampleserver"
	"github.com/vmcp/vmcp/internal/oidctest"
)

// testResource is the resource vmcp's tokens are issued for in these
// tests; vmcp never dials it.
const testResource = "https://vmcp.test/mcp"

// headerRecorder wraps a backend and records every Authorization and
// X-API-Key value it receives, to show no client credential reaches it.
type headerRecorder struct {
	next http.Handler
	mu   sync.Mutex
	seen []string
}

func (h *headerRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	h.seen = append(h.seen, r.Header.Values("Authorization")...)
	h.seen = append(h.seen, r.Header.Values("X-Api-Key")...)
	h.mu.Unlock()
	h.next.ServeHTTP(w, r)
}

func (h *headerRecorder) values() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.seen...)
}

// recordedBackend is an example server over Streamable HTTP behind a
// headerRecorder.
func recordedBackend(t *testing.T, name string) (config.Backend, *headerRecorder) {
	t.Helper()
	h := exampleserver.HTTPHandler(exampleserver.Options{Name: name, Stats: &exampleserver.Stats{}})
	rec := &headerRecorder{next: h}
	mux := http.NewServeMux()
	mux.Handle("/mcp", rec)
	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
		h.Close()
	})
	return config.Backend{Name: name, Transport: config.TransportStreamableHTTP, URL: srv.URL + "/mcp", Timeout: config.Duration(30 * time.Second)}, rec
}

// oidcConfig is a config whose callers authenticate with tokens of p for
// testResource, with the given required scopes.
func oidcConfig(p *oidctest.Provider, required []string, backends ...config.Backend) *config.Config {
	cfg := baseConfig(backends...)
	cfg.IncomingAuth = &config.IncomingAuth{
		Type:            config.AuthOIDC,
		Issuer:          p.Issuer(),
		Resource:        testResource,
		Algorithms:      config.DefaultAlgorithms,
		ClockSkew:       config.Duration(config.DefaultClockSkew),
		RequiredScopes:  required,
		ScopesSupported: required,
		CacheSize:       config.DefaultTokenCacheSize,
	}
	return cfg
}

// authRequest sends one request to vmcp with a bearer token (none if
// empty), a session ID (none if empty) and a JSON-RPC body (none if
// empty), and returns the status, headers and body.
func authRequest(t *testing.T, method, url, tok, sid, body string) (int, http.Header, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, method, url, rd)
	req.Header.Set("Content-Type", "application/json")
	if method == http.MethodGet {
		req.Header.Set("Accept", "text/event-stream")
	} else {
		req.Header.Set("Accept", "application/json, text/event-stream")
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	if sid != "" {
		req.Header.Set("Mcp-Session-Id", sid)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if method == http.MethodGet && resp.StatusCode == http.StatusOK {
		// An open stream: its headers say enough.
		return resp.StatusCode, resp.Header, ""
	}
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

const (
	authInitBody = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"auth-test","version":"1"}}}`
	counterBody  = `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"a_counter","arguments":{}}}`
)

// authInit initializes a session with tok and returns its ID.
func authInit(t *testing.T, url, tok string) string {
	t.Helper()
	code, h, body := authRequest(t, http.MethodPost, url, tok, "", authInitBody)
	if code != http.StatusOK || h.Get("Mcp-Session-Id") == "" {
		t.Fatalf("initialize: %d %s", code, body)
	}
	return h.Get("Mcp-Session-Id")
}

// bearerTransport adds a bearer token to every request, as an MCP client
// that holds a token does.
type bearerTransport struct{ tok string }

func (b bearerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.tok)
	return http.DefaultTransport.RoundTrip(r)
}

// connectWithToken opens a go-sdk client session that sends tok.
func connectWithToken(t *testing.T, url, tok string) *mcp.ClientSession {
	t.Helper()
	c := mcp.NewClient(&mcp.Implementation{Name: "vmcp-auth-test", Version: "1"}, nil)
	tr := &mcp.StreamableClientTransport{Endpoint: url, DisableStandaloneSSE: true, HTTPClient: &http.Client{Transport: bearerTransport{tok}}}
	cs, err := c.Connect(context.Background(), tr, legacyEra)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { cs.Close() })
	return cs
}

// uniqueEnv is a fresh environment variable name.
func uniqueEnv() string { return "VMCP_TEST_SECRET_" + rand.Text()[:12] }

// rateLimited reports whether the answer to tools/call number i was a
// rate limit's refusal with a retry hint; an answer that is neither that
// nor a result fails the test.
func rateLimited(t *testing.T, i, code int, body string) bool {
	t.Helper()
	var res struct {
		Result json.RawMessage
		Error  *struct {
			Code int
			Data struct{ RetryAfterMs int64 }
		}
	}
	if err := json.Unmarshal([]byte(lastJSON(body)), &res); code != http.StatusOK || err != nil {
		t.Fatalf("call %d: %d %s", i, code, body)
	}
	switch {
	case res.Error == nil:
		return false
	case res.Error.Code == codeRateLimited && res.Error.Data.RetryAfterMs > 0:
		return true
	}
	t.Fatalf("call %d: %s", i, body)
	return false
}

// callAtOnce makes n concurrent calls of tool (an echo) on cs and returns
// their errors, in order.
func callAtOnce(cs *mcp.ClientSession, n int, tool string) []error {
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range errs {
		wg.Go(func() {
			_, errs[i] = cs.CallTool(context.Background(), &mcp.CallToolParams{Name: tool, Arguments: map[string]any{"text": "x"}})
		})
	}
	wg.Wait()
	return errs
}
