package gateway_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/vmcp/vmcp/internal/config"
	"github.com/vmcp/vmcp/internal/exampleserver"
	"github.com/vmcp/vmcp/internal/gateway"
)

// startIntercepted runs a real example server behind a fault injector:
// intercept sees each request and its body first, and either answers it
// (true) or returns the body to pass on to the server.
func startIntercepted(t *testing.T, opts exampleserver.Options, intercept func(w http.ResponseWriter, r *http.Request, body []byte) ([]byte, bool)) string {
	h := exampleserver.HTTPHandler(opts)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		body, answered := intercept(w, r, body)
		if answered {
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(func() { srv.CloseClientConnections(); srv.Close(); h.Close() })
	return srv.URL + "/mcp"
}

// startLenient starts a real example server behind a front that decodes
// each tools/call's params as a backend written with Go's encoding/json
// does (member names matched case-insensitively, the last duplicate wins)
// and passes on what it decoded: the backend of the review's bypass.
func startLenient(t *testing.T, stats *exampleserver.Stats) string {
	return startIntercepted(t, exampleserver.Options{Name: "web", Stats: stats}, func(_ http.ResponseWriter, _ *http.Request, body []byte) ([]byte, bool) {
		var msg map[string]json.RawMessage
		if json.Unmarshal(body, &msg) != nil || string(msg["method"]) != `"tools/call"` {
			return body, false
		}
		var p struct {
			Name      string
			Arguments json.RawMessage
		}
		if json.Unmarshal(msg["params"], &p) != nil {
			return body, false
		}
		if p.Arguments == nil {
			p.Arguments = json.RawMessage(`{}`)
		}
		msg["params"], _ = json.Marshal(map[string]any{"name": p.Name, "arguments": p.Arguments})
		body, _ = json.Marshal(msg)
		return body, false
	})
}

// TestToolFilterCannotBeBypassed: the review's bypass. A backend decoding
// with encoding/json would take "NAME" for the tool name; vmcp filters
// "counter" out, so smuggling it in beside an exposed name, or as a
// duplicate, gets -32602 and never reaches the backend.
func TestToolFilterCannotBeBypassed(t *testing.T) {
	stats := &exampleserver.Stats{}
	cfg := baseConfig(config.Backend{Name: "web", Transport: config.TransportStreamableHTTP, URL: startLenient(t, stats)})
	cfg.Aggregation.Tools = []config.ToolRule{{Backend: "web", Filter: []string{"echo"}}}
	gw := startGateway(t, cfg, gateway.Options{})
	sid := rawInit(t, gw.URL)

	for _, params := range []string{
		`{"name":"web_echo","NAME":"counter","arguments":{"text":"x"}}`,
		`{"name":"web_echo","Name":"counter"}`,
		`{"name":"web_echo","name":"counter"}`,
		`{"name":"web_counter","name":"web_echo"}`,
	} {
		code, _, body := rawPost(t, gw.URL, sid, `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":`+params+`}`)
		if code != http.StatusOK || !strings.Contains(body, `"code":-32602`) || !strings.Contains(body, "name") {
			t.Errorf("params %s: %d %s; want -32602 naming the member", params, code, body)
		}
	}
	if n := stats.Calls("counter"); n != 0 {
		t.Fatalf("the filtered tool ran %d times", n)
	}
	// Members vmcp does not forward are dropped, not refused.
	code, _, body := rawPost(t, gw.URL, sid, `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"web_echo","arguments":{"text":"hi"},"tool":"counter"}}`)
	if code != http.StatusOK || !strings.Contains(body, `hi`) || strings.Contains(body, `"error"`) {
		t.Errorf("echo with an extra member: %d %s", code, body)
	}
	if stats.Calls("counter") != 0 || stats.Calls("echo") != 1 {
		t.Errorf("calls: counter %d, echo %d; want 0 and 1", stats.Calls("counter"), stats.Calls("echo"))
	}
	code, _, body = rawPost(t, gw.URL, sid, `{"jsonrpc":"2.0","id":4,"method":"resources/read","params":{"uri":"a","URI":"b"}}`)
	if code != http.StatusOK || !strings.Contains(body, `"code":-32602`) {
		t.Errorf("resources/read with URI: %d %s", code, body)
	}
}
