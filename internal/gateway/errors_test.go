package gateway_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/vmcp/vmcp/internal/config"
	"github.com/vmcp/vmcp/internal/exampleserver"
	"github.com/vmcp/vmcp/internal/fixture"
	"github.com/vmcp/vmcp/internal/gateway"
)

func TestBadInput(t *testing.T) {
	web := fixture.StartHTTP(t, exampleserver.Options{Name: "web"})
	cfg := baseConfig(config.Backend{Name: "web", Transport: config.TransportStreamableHTTP, URL: web.URL})
	cfg.Server.MaxBodyBytes = 1024
	gw := startGateway(t, cfg, gateway.Options{})
	sid := rawInit(t, gw.URL)

	cases := []struct {
		name     string
		sid      string
		body     string
		header   map[string]string
		wantCode int
		wantBody string
	}{
		{"malformed JSON", sid, `{"jsonrpc":"2.0","id":1,"method":`, nil, 400, `"code":-32700`},
		{"not JSON-RPC", sid, `{"hello":"world"}`, nil, 400, `"code":-32600`},
		{"wrong version", sid, `{"jsonrpc":"1.0","id":1,"method":"ping"}`, nil, 400, `"code":-32600`},
		{"array of numbers", sid, `[1,2,3]`, nil, 400, `"code":-32600`},
		{"too deep", sid, `{"jsonrpc":"2.0","id":1,"method":"ping","params":{"a":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}}`, nil, 400, `"code":-32700`},
		{"oversized body", sid, `{"jsonrpc":"2.0","id":1,"method":"ping","params":{"pad":"` + strings.Repeat("x", 2000) + `"}}`, nil, 413, ``},
		{"unknown method", sid, `{"jsonrpc":"2.0","id":1,"method":"nope/nothing"}`, nil, 200, `"code":-32601`},
		{"unknown tool", sid, `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"nope"}}`, nil, 200, `"code":-32602`},
		{"invalid cursor", sid, `{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"cursor":"garbage"}}`, nil, 200, `"code":-32602`},
		{"unknown session", "no-such-session", `{"jsonrpc":"2.0","id":1,"method":"ping"}`, nil, 404, ``},
		{"missing session", "", `{"jsonrpc":"2.0","id":1,"method":"ping"}`, nil, 400, ``},
		{"unsupported protocol version", sid, `{"jsonrpc":"2.0","id":1,"method":"ping"}`, map[string]string{"MCP-Protocol-Version": "1999-01-01"}, 400, ``},
		{"ping ok", sid, `{"jsonrpc":"2.0","id":"x","method":"ping"}`, nil, 200, `"result":{}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, gw.URL, strings.NewReader(tc.body))
			req.Header.Set("Content-Type", "application/json")
			if tc.sid != "" {
				req.Header.Set("Mcp-Session-Id", tc.sid)
			}
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.wantCode || !strings.Contains(string(b), tc.wantBody) {
				t.Fatalf("got %d %s; want %d containing %s", resp.StatusCode, b, tc.wantCode, tc.wantBody)
			}
		})
	}
	if code := rawDelete(t, gw.URL, ""); code != http.StatusBadRequest {
		t.Errorf("DELETE without session = %d, want 400", code)
	}
	if code := rawDelete(t, gw.URL, "unknown"); code != http.StatusNotFound {
		t.Errorf("DELETE unknown session = %d, want 404", code)
	}
	// The session that received all that garbage still works.
	if code, _, body := rawPost(t, gw.URL, sid, `{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"web_counter"}}`); code != 200 || !strings.Contains(body, `"1"`) {
		t.Fatalf("session broken after bad input: %d %s", code, body)
	}
}

func TestPartialInit(t *testing.T) {
	web := fixture.StartHTTP(t, exampleserver.Options{Name: "web"})
	cfg := baseConfig(
		config.Backend{Name: "web", Transport: config.TransportStreamableHTTP, URL: web.URL},
		config.Backend{Name: "down", Transport: config.TransportStreamableHTTP, URL: fixture.DeadURL(t), Headers: map[string]string{"X-Api-Key": "sekrit-key-123"}},
	)
	gw := startGateway(t, cfg, gateway.Options{})
	// The initialize result tells the client which backend is missing, and
	// why, in a category that carries nothing of the backend's.
	_, _, body := rawPost(t, gw.URL, "", `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`)
	var init struct {
		Result struct {
			Meta map[string]struct {
				Unavailable []struct{ Name, Reason string }
			} `json:"_meta"`
		}
	}
	if err := json.Unmarshal([]byte(body), &init); err != nil {
		t.Fatalf("initialize: %v: %s", err, body)
	}
	if u := init.Result.Meta["vmcp/backends"].Unavailable; len(u) != 1 || u[0].Name != "down" || u[0].Reason != "unreachable" {
		t.Errorf("initialize _meta = %s, want vmcp/backends.unavailable = [down: unreachable]", body)
	}
	cs := connect(t, gw.URL)
	if got := callText(t, cs, "web_counter", nil); got != "1" {
		t.Fatalf("web_counter = %q", got)
	}
	logs := gw.Logs.String()
	if !strings.Contains(logs, "level=WARN") || !strings.Contains(logs, "backend=down") {
		t.Errorf("no WARN naming the failed backend in logs:\n%s", logs)
	}
	if strings.Contains(logs, "sekrit-key-123") || strings.Contains(logs, cs.ID()) {
		t.Errorf("logs leak a secret:\n%s", logs)
	}
	// The live backend's tools are there; the dead one's are not.
	tools, err := cs.ListTools(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tl := range tools.Tools {
		if strings.HasPrefix(tl.Name, "down_") {
			t.Errorf("tool from failed backend listed: %s", tl.Name)
		}
	}
}

func TestAllBackendsDown(t *testing.T) {
	cfg := baseConfig(
		config.Backend{Name: "a", Transport: config.TransportStreamableHTTP, URL: fixture.DeadURL(t)},
		config.Backend{Name: "b", Transport: config.TransportSSE, URL: fixture.DeadURL(t)},
		config.Backend{Name: "c", Transport: config.TransportStdio, Command: []string{"/nonexistent/mcp-server"}},
	)
	gw := startGateway(t, cfg, gateway.Options{})
	cs := connect(t, gw.URL) // the session still starts
	_, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "a_echo"})
	if err == nil || !strings.Contains(err.Error(), "no backends available: all 3 backends failed to initialize") {
		t.Fatalf("call with all backends down: %v", err)
	}
	for _, name := range []string{"a:", "b:", "c:"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error does not name backend %s: %v", name, err)
		}
	}
}
