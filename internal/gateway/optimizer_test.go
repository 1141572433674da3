package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/vmcp/vmcp/internal/config"
	"github.com/vmcp/vmcp/internal/exampleserver"
	"github.com/vmcp/vmcp/internal/fixture"
	"github.com/vmcp/vmcp/internal/gateway"
)

// found is a find_tool result's structured content.
type found struct {
	Tools []struct {
		Name        string          `json:"name"`
		Description string          `json:"description"`
		InputSchema json.RawMessage `json:"inputSchema"`
	} `json:"tools"`
}

func (f found) names() []string {
	var out []string
	for _, t := range f.Tools {
		out = append(out, t.Name)
	}
	return out
}

// findTool calls find_tool and decodes its result, checking that its text
// says the same as its structured content.
func findTool(t *testing.T, cs *mcp.ClientSession, query string, limit int) found {
	t.Helper()
	args := map[string]any{"query": query}
	if limit > 0 {
		args["limit"] = limit
	}
	res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "find_tool", Arguments: args})
	if err != nil {
		t.Fatalf("find_tool %q: %v", query, err)
	}
	if res.IsError {
		t.Fatalf("find_tool %q: tool error %+v", query, res.Content)
	}
	var f, fromText found
	b, _ := json.Marshal(res.StructuredContent)
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatalf("find_tool %q: structured content %s: %v", query, b, err)
	}
	if err := json.Unmarshal([]byte(res.Content[0].(*mcp.TextContent).Text), &fromText); err != nil || !slices.Equal(f.names(), fromText.names()) {
		t.Errorf("find_tool %q: text %v disagrees with structured content %v (%v)", query, fromText.names(), f.names(), err)
	}
	return f
}

func optimizerConfig(t *testing.T, extra string) *config.Config {
	t.Helper()
	demo := fixture.StartHTTP(t, exampleserver.Options{Name: "demo"})
	cfg, err := config.Parse([]byte(fmt.Sprintf(`
backends:
  - name: demo
    transport: streamable-http
    url: %s
optimizer: {enabled: true}
%s`, demo.URL, extra)))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestOptimizerListsTwoTools: the client lists find_tool and call_tool
// only, finds a tool by what it does, runs it through call_tool, and can
// still call it by name.
func TestOptimizerListsTwoTools(t *testing.T) {
	t.Parallel()
	g := startGateway(t, optimizerConfig(t, ""), gateway.Options{})
	cs := connect(t, g.URL)
	var listed []*mcp.Tool
	for tool, err := range cs.Tools(context.Background(), nil) {
		if err != nil {
			t.Fatal(err)
		}
		listed = append(listed, tool)
	}
	if len(listed) != 2 || listed[0].Name != "find_tool" || listed[1].Name != "call_tool" {
		t.Fatalf("tools/list = %v, want find_tool and call_tool", listedTools(t, cs))
	}
	for _, tool := range listed {
		if tool.Description == "" || tool.InputSchema == nil {
			t.Errorf("%s has no description or input schema", tool.Name)
		}
	}

	f := findTool(t, cs, "return the text I give unchanged", 3)
	if len(f.Tools) == 0 || f.Tools[0].Name != "demo_echo" {
		t.Fatalf("find_tool found %v, want demo_echo first", f.names())
	}
	if !strings.Contains(string(f.Tools[0].InputSchema), `"text"`) || f.Tools[0].Description == "" {
		t.Errorf("demo_echo found without its description or schema: %+v", f.Tools[0])
	}
	if got := callText(t, cs, "call_tool", map[string]any{"name": "demo_echo", "arguments": map[string]any{"text": "via call_tool"}}); got != "via call_tool" {
		t.Errorf("call_tool demo_echo = %q", got)
	}
	// A stateful tool keeps its state across both ways of calling it: one
	// backend session serves them.
	callText(t, cs, "call_tool", map[string]any{"name": "demo_counter"})
	if got := callText(t, cs, "demo_counter", nil); got != "2" {
		t.Errorf("demo_counter by name after one call_tool = %q, want 2", got)
	}
	if f := findTool(t, cs, "count", 1); len(f.Tools) != 1 {
		t.Errorf("find_tool with limit 1 found %v", f.names())
	}
}

// TestOptimizerProgress: call_tool carries the call's progress token to
// the tool, whose notifications reach the client.
func TestOptimizerProgress(t *testing.T) {
	t.Parallel()
	g := startGateway(t, optimizerConfig(t, ""), gateway.Options{})
	progress := make(chan float64, 8)
	c := mcp.NewClient(&mcp.Implementation{Name: "vmcp-test", Version: "1"}, &mcp.ClientOptions{
		ProgressNotificationHandler: func(_ context.Context, req *mcp.ProgressNotificationClientRequest) {
			progress <- req.Params.Progress
		},
	})
	cs, err := c.Connect(context.Background(), &mcp.StreamableClientTransport{Endpoint: g.URL}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cs.Close() })
	params := &mcp.CallToolParams{Name: "call_tool", Arguments: map[string]any{"name": "demo_progress", "arguments": map[string]any{"steps": 3}}}
	params.SetProgressToken("tok")
	if res, err := cs.CallTool(context.Background(), params); err != nil || res.IsError {
		t.Fatalf("call_tool demo_progress: %v %+v", err, res)
	}
	for i := range 3 {
		select {
		case <-progress:
		case <-time.After(20 * time.Second):
			t.Fatalf("progress notification %d never arrived", i+1)
		}
	}
}

// TestOptimizerBadArguments: find_tool and call_tool called wrongly answer
// a tool error that says how to call them, and an unknown tool is an
// unknown tool, as it is when called directly.
func TestOptimizerBadArguments(t *testing.T) {
	t.Parallel()
	g := startGateway(t, optimizerConfig(t, ""), gateway.Options{})
	cs := connect(t, g.URL)
	for _, tc := range []struct {
		tool string
		args any
		want string
	}{
		{"find_tool", map[string]any{}, "query is required"},
		{"find_tool", map[string]any{"query": 7}, "must be an object with query"},
		{"find_tool", map[string]any{"query": "echo", "limit": 0}, "limit must be 1 or more"},
		{"find_tool", map[string]any{"query": strings.Repeat("echo ", 300)}, "query is too long: at most 1024 bytes"},
		{"call_tool", map[string]any{}, "call_tool: arguments must be an object with name"},
		{"call_tool", map[string]any{"name": "demo_echo", "arguments": "text"}, "call_tool: arguments must be an object with name"},
	} {
		res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: tc.tool, Arguments: tc.args})
		if err != nil {
			t.Errorf("%s %v: %v", tc.tool, tc.args, err)
			continue
		}
		if text := res.Content[0].(*mcp.TextContent).Text; !res.IsError || !strings.Contains(text, tc.want) {
			t.Errorf("%s %v = %q (isError %v), want a tool error saying %q", tc.tool, tc.args, text, res.IsError, tc.want)
		}
	}
	_, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "call_tool", Arguments: map[string]any{"name": "demo_nosuch"}})
	if we := wireError(t, err); we.Code != -32602 {
		t.Errorf("call_tool of an unknown tool: %d %q, want -32602", we.Code, we.Message)
	}
}

// TestOptimizerRespectsPolicy: find_tool never returns a tool the
// caller's policy hides, and call_tool of it is denied as a direct call
// is, with the same log line.
func TestOptimizerRespectsPolicy(t *testing.T) {
	t.Parallel()
	cfg := policyConfig(t)
	cfg.Optimizer.Enabled = true
	g := startGuarded(t, cfg)
	alice := connectAs(t, g.URL, "alice", "admin", nil)
	bob := connectAs(t, g.URL, "bob", "dev", nil)

	if got := findTool(t, alice, "count calls in this session", 5).names(); len(got) == 0 || got[0] != "demo_counter" {
		t.Errorf("alice finds %v, want demo_counter first", got)
	}
	for _, q := range []string{"count calls in this session", "demo_counter", "counter", "sleep", "return"} {
		got := findTool(t, bob, q, 20).names()
		if slices.Contains(got, "demo_counter") {
			t.Errorf("bob's find_tool %q returns demo_counter: %v", q, got)
		}
		for _, name := range got {
			if name != "demo_echo" && name != "demo_whoami" {
				t.Errorf("bob's find_tool %q returns %s, which his tools/list would not show", q, name)
			}
		}
	}
	_, err := bob.CallTool(context.Background(), &mcp.CallToolParams{Name: "call_tool", Arguments: map[string]any{"name": "demo_counter"}})
	if we := wireError(t, err); we.Code != codeForbidden || !strings.Contains(we.Message, `tool "demo_counter" is not allowed`) {
		t.Errorf("bob's call_tool demo_counter: %d %q, want %d forbidden", we.Code, we.Message, codeForbidden)
	}
	if line := logLine(g.Logs.String(), "call denied by policy"); !strings.Contains(line, "name=demo_counter") || !strings.Contains(line, "caller.sub=bob") {
		t.Errorf("denial log line = %q", line)
	}
	// A rule on arguments sees call_tool's inner arguments.
	if got := callText(t, bob, "call_tool", map[string]any{"name": "demo_echo", "arguments": map[string]any{"text": "/tmp/ok"}}); got != "/tmp/ok" {
		t.Errorf("call_tool echo /tmp/ok = %q", got)
	}
	_, err = bob.CallTool(context.Background(), &mcp.CallToolParams{Name: "call_tool", Arguments: map[string]any{"name": "demo_echo", "arguments": map[string]any{"text": "/etc/passwd"}}})
	if we := wireError(t, err); we.Code != codeForbidden {
		t.Errorf("call_tool echo /etc/passwd: %d %q, want forbidden", we.Code, we.Message)
	}
}

// TestOptimizerRateLimited: call_tool and a direct call draw on one
// bucket, the tool's.
func TestOptimizerRateLimited(t *testing.T) {
	t.Parallel()
	g := startGateway(t, optimizerConfig(t, `
rateLimits:
  calls:
    - tools: [demo_echo]
      rate: 1/h
      burst: 1
`), gateway.Options{})
	cs := connect(t, g.URL)
	if got := callText(t, cs, "call_tool", map[string]any{"name": "demo_echo", "arguments": map[string]any{"text": "one"}}); got != "one" {
		t.Fatalf("first call = %q", got)
	}
	_, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "demo_echo", Arguments: map[string]any{"text": "two"}})
	if we := wireError(t, err); we.Code != codeRateLimited {
		t.Errorf("direct call after call_tool: %d %q, want rate limited", we.Code, we.Message)
	}
	_, err = cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "call_tool", Arguments: map[string]any{"name": "demo_echo", "arguments": map[string]any{"text": "three"}}})
	if we := wireError(t, err); we.Code != codeRateLimited {
		t.Errorf("call_tool over the limit: %d %q, want rate limited", we.Code, we.Message)
	}
	// find_tool is the optimizer's own and costs no token of any tool.
	findTool(t, cs, "echo", 1)
}

// TestOptimizerFollowsCatalog: a backend's list_changed brings a new
// catalog, and find_tool finds the new tool, for each caller as their
// policy allows.
func TestOptimizerFollowsCatalog(t *testing.T) {
	t.Parallel()
	alice, bob, changed := startLateToolGateway(t, "optimizer: {enabled: true}\n")
	if got := findTool(t, alice, "late tool", 5).names(); slices.Contains(got, "p_late_tool") {
		t.Fatalf("before: alice finds %v", got)
	}
	callText(t, alice, "call_tool", map[string]any{"name": "p_add_tool"})
	select {
	case <-changed:
	case <-time.After(20 * time.Second):
		t.Fatal("no tools/list_changed")
	}
	eventually(t, "alice finds the new tool", func() bool {
		return slices.Contains(findTool(t, alice, "late tool", 5).names(), "p_late_tool")
	})
	if got := callText(t, alice, "call_tool", map[string]any{"name": "p_late_tool"}); got != "late" {
		t.Errorf("late_tool = %q", got)
	}
	// Bob's session has the new catalog too (his call is refused, not
	// unknown), and his find_tool never shows the tool.
	_, err := bob.CallTool(context.Background(), &mcp.CallToolParams{Name: "call_tool", Arguments: map[string]any{"name": "p_late_tool"}})
	if we := wireError(t, err); we.Code != codeForbidden {
		t.Errorf("bob's late_tool: %d %q", we.Code, we.Message)
	}
	if got := findTool(t, bob, "late tool", 20).names(); slices.Contains(got, "p_late_tool") {
		t.Errorf("bob finds %v", got)
	}
}

// startLateToolGateway serves a backend whose add_tool adds p_late_tool,
// with a policy that hides p_late_* from everyone but alice, plus extra
// config; alice's client reports each tools/list_changed on changed.
func startLateToolGateway(t *testing.T, extra string) (alice, bob *mcp.ClientSession, changed chan struct{}) {
	t.Helper()
	proto := startProtoBackend(t, 0, 0)
	cfg, err := config.Parse([]byte(fmt.Sprintf(`
backends:
  - name: p
    transport: streamable-http
    url: %s
authorization:
  policies:
    - effect: deny
      tools: ["p_late_*"]
      when: subject != "alice"
    - effect: allow
%s`, proto.URL, extra)))
	if err != nil {
		t.Fatal(err)
	}
	g := startGuarded(t, cfg)
	changed = make(chan struct{}, 8)
	alice = connectAs(t, g.URL, "alice", "", &mcp.ClientOptions{
		ToolListChangedHandler: func(context.Context, *mcp.ToolListChangedRequest) { changed <- struct{}{} },
	})
	bob = connectAs(t, g.URL, "bob", "", nil)
	return alice, bob, changed
}

// TestOptimizerCallToolIsTheSessionsCall: call_tool goes down the
// session's one call path. The audit trail records it as the tool it
// names, on that tool's backend, and a backend that forgot its session is
// re-initialized under it, as under a direct call.
func TestOptimizerCallToolIsTheSessionsCall(t *testing.T) {
	t.Parallel()
	demo := fixture.StartHTTP(t, exampleserver.Options{Name: "demo"})
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	cfg := baseConfig(config.Backend{Name: "demo", Transport: config.TransportStreamableHTTP, URL: demo.URL})
	cfg.Optimizer.Enabled = true
	cfg.Audit = &config.Audit{Path: path}
	gw := startGateway(t, cfg, gateway.Options{})
	cs := connect(t, gw.URL)

	callCounter := func() *mcp.CallToolResult {
		t.Helper()
		res, err := callResult(cs, "call_tool", map[string]any{"name": "demo_counter"})
		if err != nil || res.IsError {
			t.Fatalf("call_tool demo_counter: %+v %v", res, err)
		}
		return res
	}
	callCounter()
	demo.Handler.Forget()
	if res := callCounter(); text(res) != "1" || !slices.Equal(reinitialized(res), []string{"demo"}) {
		t.Errorf("call_tool after the backend forgot its session: %q, _meta %v; want 1 and vmcp/backendReinitialized [demo]", text(res), res.Meta)
	}
	cs.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := gw.Shutdown(ctx); err != nil { // flushes the trail
		t.Fatal(err)
	}
	lines, raw := readAudit(t, path)
	var calls []auditLine
	for _, l := range lines {
		if l.Event == "tool_call" {
			calls = append(calls, l)
		}
	}
	if len(calls) != 2 {
		t.Fatalf("%d tool_call events, want the 2 call_tool calls:\n%s", len(calls), raw)
	}
	for _, l := range calls {
		if l.Tool != "demo_counter" || l.Backend != "demo" || l.Outcome != "ok" {
			t.Errorf("call_tool audited as %+v, want tool demo_counter on backend demo, ok", l)
		}
	}
}
