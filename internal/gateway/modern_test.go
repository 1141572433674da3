package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/vmcp/vmcp/internal/config"
	"github.com/vmcp/vmcp/internal/exampleserver"
	"github.com/vmcp/vmcp/internal/fixture"
	"github.com/vmcp/vmcp/internal/gateway"
)

// The go-sdk v1.8.0 client, in its default mode, speaks 2026-07-28 to vmcp:
// no initialize reaches vmcp's session manager, the backend is initialized
// once for the warm pool, and the backend's per-session state (a counter)
// carries over between the client's calls.
func TestModernGoSDKClient(t *testing.T) {
	web := fixture.StartHTTP(t, exampleserver.Options{Name: "web"})
	gw := startGateway(t, baseConfig(config.Backend{Name: "web", Transport: config.TransportStreamableHTTP, URL: web.URL}), gateway.Options{})
	c := mcp.NewClient(&mcp.Implementation{Name: "modern-test", Version: "1"}, nil)
	cs, err := c.Connect(t.Context(), &mcp.StreamableClientTransport{Endpoint: gw.URL}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	tools, err := cs.ListTools(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if n := gw.Pool().Stats().Busy; n != 0 {
		t.Fatalf("after tools/list, busy warm sessions = %d, want 0", n)
	}
	var names []string
	for _, tl := range tools.Tools {
		names = append(names, tl.Name)
	}
	if !strings.Contains(strings.Join(names, " "), "web_counter") {
		t.Fatalf("tools = %v, want web_counter among them", names)
	}
	for want := 1; want <= 3; want++ {
		if got := callText(t, cs, "web_counter", nil); !strings.Contains(got, fmt.Sprint(want)) {
			t.Fatalf("call %d of web_counter = %q: the backend state did not carry over", want, got)
		}
		// The session went back before the answer came: the next call,
		// sent at once, finds it idle rather than have a second built.
		if n := gw.Pool().Stats().Busy; n != 0 {
			t.Fatalf("after call %d, busy warm sessions = %d, want 0", want, n)
		}
	}
	if n := gw.Pool().Stats().Sessions; n != 1 {
		t.Errorf("warm sessions = %d, want 1", n)
	}
	if n := web.Stats.Initializes(); n != 1 {
		t.Errorf("backend initializes = %d, want 1: a modern request must not initialize", n)
	}
	var st struct {
		Sessions int `json:"sessions"`
	}
	json.Unmarshal([]byte(getBody(t, gw.Base+"/status")), &st)
	if st.Sessions != 0 {
		t.Errorf("legacy sessions = %d, want 0: the client fell back to initialize", st.Sessions)
	}
}

// modernPost sends one 2026-07-28 request with the headers a conforming
// client sets, plus extra (a "-" value deletes a header), and returns the
// status and the JSON-RPC message of the answer (the last SSE event, if
// it streams).
func modernPost(t *testing.T, url, method string, params map[string]any, extra map[string]string) (int, map[string]any) {
	t.Helper()
	if params == nil {
		params = map[string]any{}
	}
	if _, ok := params["_meta"]; !ok {
		params["_meta"] = map[string]any{
			"io.modelcontextprotocol/protocolVersion":    "2026-07-28",
			"io.modelcontextprotocol/clientCapabilities": map[string]any{"elicitation": map[string]any{}},
		}
	}
	body, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 7, "method": method, "params": params})
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("MCP-Protocol-Version", "2026-07-28")
	req.Header.Set("Mcp-Method", method)
	if n, ok := params["name"].(string); ok {
		req.Header.Set("Mcp-Name", n)
	}
	for k, v := range extra {
		if v == "-" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	text := string(b)
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		if resp.Header.Get("X-Accel-Buffering") != "no" {
			t.Error("an SSE answer lacks X-Accel-Buffering: no")
		}
		var last string
		for _, line := range strings.Split(text, "\n") {
			if d, ok := strings.CutPrefix(line, "data: "); ok {
				last = d
			}
		}
		text = last
	}
	var msg map[string]any
	if err := json.Unmarshal([]byte(text), &msg); err != nil {
		t.Fatalf("%s: answer %d is not JSON-RPC: %q", method, resp.StatusCode, b)
	}
	return resp.StatusCode, msg
}

func errCode(msg map[string]any) float64 {
	e, _ := msg["error"].(map[string]any)
	c, _ := e["code"].(float64)
	return c
}

// A modern request that breaks the era's rules gets the spec's status and
// JSON-RPC error, with its own id.
func TestModernRequestErrors(t *testing.T) {
	web := fixture.StartHTTP(t, exampleserver.Options{Name: "web"})
	gw := startGateway(t, baseConfig(config.Backend{Name: "web", Transport: config.TransportStreamableHTTP, URL: web.URL}), gateway.Options{})
	echo := map[string]any{"name": "web_echo", "arguments": map[string]any{"text": "hi"}}
	tests := []struct {
		name     string
		method   string
		params   map[string]any
		headers  map[string]string
		status   int
		code     float64
		supports bool // error.data.supported lists 2026-07-28
	}{
		{"no _meta", "tools/list", map[string]any{"_meta": nil}, nil, 400, -32602, false},
		{"no protocol version header", "tools/list", nil, map[string]string{"MCP-Protocol-Version": "-"}, 400, -32020, false},
		{"header and _meta disagree", "tools/list", map[string]any{"_meta": map[string]any{
			"io.modelcontextprotocol/protocolVersion": "2099-01-01", "io.modelcontextprotocol/clientCapabilities": map[string]any{}}}, nil, 400, -32020, false},
		{"unsupported version", "tools/list", map[string]any{"_meta": map[string]any{
			"io.modelcontextprotocol/protocolVersion": "2099-01-01", "io.modelcontextprotocol/clientCapabilities": map[string]any{}}},
			map[string]string{"MCP-Protocol-Version": "2099-01-01"}, 400, -32022, true},
		{"no client capabilities", "tools/list", map[string]any{"_meta": map[string]any{
			"io.modelcontextprotocol/protocolVersion": "2026-07-28"}}, nil, 400, -32602, false},
		{"unknown method", "nope/nothing", nil, nil, 404, -32601, false},
		{"removed method", "ping", nil, nil, 404, -32601, false},
		{"initialize is not modern", "initialize", nil, nil, 404, -32601, false},
		{"no Mcp-Method", "tools/list", nil, map[string]string{"Mcp-Method": "-"}, 400, -32020, false},
		{"Mcp-Method mismatch", "tools/list", nil, map[string]string{"Mcp-Method": "prompts/list"}, 400, -32020, false},
		{"Mcp-Method case", "tools/list", nil, map[string]string{"Mcp-Method": "TOOLS/LIST"}, 400, -32020, false},
		{"no Mcp-Name", "tools/call", echo, map[string]string{"Mcp-Name": "-"}, 400, -32020, false},
		{"Mcp-Name mismatch", "tools/call", echo, map[string]string{"Mcp-Name": "web_other"}, 400, -32020, false},
		{"Mcp-Name bad base64", "tools/call", echo, map[string]string{"Mcp-Name": "=?base64?d2Vi?X2VjaG8?="}, 400, -32020, false},
		{"Mcp-Name base64", "tools/call", echo, map[string]string{"Mcp-Name": "=?base64?d2ViX2VjaG8=?="}, 200, 0, false},
		{"forged requestState", "tools/call", map[string]any{"name": "web_echo", "arguments": map[string]any{"text": "x"}, "requestState": "vmcp1.AAAA"}, nil, 200, -32602, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, msg := modernPost(t, gw.URL, tt.method, tt.params, tt.headers)
			if status != tt.status || errCode(msg) != tt.code {
				t.Fatalf("got %d %v, want %d code %v", status, msg, tt.status, tt.code)
			}
			if tt.code != 0 && msg["id"] != float64(7) {
				t.Errorf("error id = %v, want 7", msg["id"])
			}
			if tt.supports {
				data, _ := msg["error"].(map[string]any)["data"].(map[string]any)
				if s := fmt.Sprint(data["supported"]); !strings.Contains(s, "2026-07-28") || data["requested"] != "2099-01-01" {
					t.Errorf("error data = %v, want supported versions and the requested one", data)
				}
			}
		})
	}
}

// askingBackend is a legacy, stateful go-sdk server whose tool "confirm"
// elicits mid-call, as legacy backends do.
func askingBackend(t *testing.T) string {
	srv := mcp.NewServer(&mcp.Implementation{Name: "asker", Version: "1"}, nil)
	srv.AddTool(&mcp.Tool{Name: "confirm", InputSchema: map[string]any{"type": "object"}},
		func(ctx context.Context, r *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			res, err := r.Session.Elicit(ctx, &mcp.ElicitParams{Message: "Your name?", RequestedSchema: map[string]any{
				"type": "object", "properties": map[string]any{"name": map[string]any{"type": "string"}}}})
			if err != nil {
				return nil, err
			}
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: fmt.Sprintf("hello %v", res.Content["name"])}}}, nil
		})
	return serveSDK(t, srv)
}

// MRTR in front of a legacy backend: its elicitation/create becomes an
// InputRequiredResult, the backend's call waits, and the client's retry
// with inputResponses and the sealed requestState completes it. A tampered
// state is refused, and the call still waits for a genuine retry.
func TestModernMRTRLegacyBackend(t *testing.T) {
	gw := startGateway(t, baseConfig(config.Backend{Name: "ask", Transport: config.TransportStreamableHTTP, URL: askingBackend(t)}), gateway.Options{})
	call := map[string]any{"name": "ask_confirm", "arguments": map[string]any{}}
	status, msg := modernPost(t, gw.URL, "tools/call", call, nil)
	res, _ := msg["result"].(map[string]any)
	if status != 200 || res["resultType"] != "input_required" {
		t.Fatalf("first round: %d %v, want an InputRequiredResult", status, msg)
	}
	reqs, _ := res["inputRequests"].(map[string]any)
	if len(reqs) != 1 {
		t.Fatalf("inputRequests = %v, want one", reqs)
	}
	var key string
	for k, v := range reqs {
		key = k
		if m, _ := v.(map[string]any)["method"].(string); m != "elicitation/create" {
			t.Fatalf("input request %v, want elicitation/create", v)
		}
	}
	state, _ := res["requestState"].(string)
	answer := map[string]any{key: map[string]any{"action": "accept", "content": map[string]any{"name": "Ada"}}}

	tampered := map[string]any{"name": "ask_confirm", "arguments": map[string]any{}, "inputResponses": answer, "requestState": state + "x"}
	if _, msg := modernPost(t, gw.URL, "tools/call", tampered, nil); errCode(msg) != -32602 {
		t.Fatalf("tampered requestState: %v, want -32602", msg)
	}
	// A retry that answers nothing the backend asked is asked again.
	wrong := map[string]any{"name": "ask_confirm", "arguments": map[string]any{},
		"inputResponses": map[string]any{"other": map[string]any{"action": "accept"}}, "requestState": state}
	_, msg = modernPost(t, gw.URL, "tools/call", wrong, nil)
	res, _ = msg["result"].(map[string]any)
	if again, _ := res["inputRequests"].(map[string]any); res["resultType"] != "input_required" || again[key] == nil {
		t.Fatalf("retry without the answer: %v, want %s asked again", msg, key)
	}
	state, _ = res["requestState"].(string)
	retry := map[string]any{"name": "ask_confirm", "arguments": map[string]any{}, "inputResponses": answer, "requestState": state}
	status, msg = modernPost(t, gw.URL, "tools/call", retry, nil)
	res, _ = msg["result"].(map[string]any)
	if status != 200 || res["resultType"] != "complete" || !strings.Contains(fmt.Sprint(res["content"]), "hello Ada") {
		t.Fatalf("retry: %d %v, want the completed call", status, msg)
	}
	if _, msg := modernPost(t, gw.URL, "tools/call", retry, nil); errCode(msg) != -32602 {
		t.Fatalf("a second retry with the same state: %v, want -32602 (the call is over)", msg)
	}
	if n := gw.WaitingCalls(); n != 0 {
		t.Errorf("calls waiting for input = %d, want 0", n)
	}
}

// A client that did not declare elicitation is never asked: the backend's
// request is refused and its tool fails, as it would for a legacy client.
func TestModernMRTRUndeclaredCapability(t *testing.T) {
	gw := startGateway(t, baseConfig(config.Backend{Name: "ask", Transport: config.TransportStreamableHTTP, URL: askingBackend(t)}), gateway.Options{})
	call := map[string]any{"name": "ask_confirm", "arguments": map[string]any{}, "_meta": map[string]any{
		"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": map[string]any{}}}
	_, msg := modernPost(t, gw.URL, "tools/call", call, nil)
	res, _ := msg["result"].(map[string]any)
	if res["resultType"] == "input_required" {
		t.Fatalf("a client without elicitation was asked for input: %v", msg)
	}
}

// server/discover offers what the backends declared, merged; a request for
// a feature no backend offers is -32601 (404), as discover says.
func TestModernDiscoverCapabilities(t *testing.T) {
	gw := startGateway(t, baseConfig(config.Backend{Name: "ask", Transport: config.TransportStreamableHTTP, URL: askingBackend(t)}), gateway.Options{})
	status, msg := modernPost(t, gw.URL, "server/discover", nil, nil)
	res, _ := msg["result"].(map[string]any)
	caps, _ := res["capabilities"].(map[string]any)
	if status != 200 || caps["tools"] == nil || caps["prompts"] != nil || caps["resources"] != nil {
		t.Fatalf("discover: %d %v, want tools and neither prompts nor resources", status, msg)
	}
	if !strings.Contains(fmt.Sprint(res["supportedVersions"]), "2026-07-28") || res["resultType"] != "complete" {
		t.Errorf("discover result %v lacks the versions or resultType", res)
	}
	if status, msg := modernPost(t, gw.URL, "prompts/list", nil, nil); status != 404 || errCode(msg) != -32601 {
		t.Errorf("prompts/list with no prompts backend: %d %v, want 404 -32601", status, msg)
	}
	if status, msg := modernPost(t, gw.URL, "tools/list", nil, nil); status != 200 || msg["result"] == nil {
		t.Errorf("tools/list: %d %v", status, msg)
	}
}

// serveSDK serves a go-sdk server over stateful Streamable HTTP until the
// test ends and returns its URL.
func serveSDK(t *testing.T, srv *mcp.Server) string {
	t.Helper()
	ts := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return srv }, nil))
	t.Cleanup(func() {
		ts.CloseClientConnections()
		ts.Close()
	})
	return ts.URL
}
