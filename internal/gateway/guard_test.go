package gateway_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/vmcp/vmcp/internal/config"
	"github.com/vmcp/vmcp/internal/exampleserver"
	"github.com/vmcp/vmcp/internal/fixture"
	"github.com/vmcp/vmcp/internal/identity"
	"github.com/vmcp/vmcp/internal/redistest"
)

// Test headers naming the caller. Only these tests' middleware reads them,
// standing in for incoming authentication, which puts the verified
// identity in the request's context the same way.
const (
	headerTestSubject = "X-Test-Subject"
	headerTestGroups  = "X-Test-Groups"
)

// asCaller puts the identity the test headers name into each request's
// context; a request without them is anonymous.
func asCaller(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if sub := r.Header.Get(headerTestSubject); sub != "" {
			id := &identity.Identity{Issuer: "https://idp.test", Subject: sub, Claims: map[string]any{"sub": sub}}
			if g := r.Header.Get(headerTestGroups); g != "" {
				var groups []any
				for _, s := range strings.Split(g, ",") {
					groups = append(groups, s)
				}
				id.Claims["groups"] = groups
			}
			r = r.WithContext(identity.NewContext(r.Context(), id))
		}
		next.ServeHTTP(w, r)
	})
}

// startGuarded serves a gateway through asCaller.
func startGuarded(t *testing.T, cfg *config.Config) *replica {
	t.Helper()
	return startReplicaWith(t, cfg, asCaller)
}

// headerTransport adds the caller's test headers to every request.
type headerTransport struct{ sub, groups string }

func (h headerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set(headerTestSubject, h.sub)
	if h.groups != "" {
		r.Header.Set(headerTestGroups, h.groups)
	}
	return http.DefaultTransport.RoundTrip(r)
}

// connectAs opens a go-sdk client session as the caller sub.
func connectAs(t *testing.T, url, sub, groups string, opts *mcp.ClientOptions) *mcp.ClientSession {
	t.Helper()
	c := mcp.NewClient(&mcp.Implementation{Name: "vmcp-test", Version: "1"}, opts)
	hc := &http.Client{Transport: headerTransport{sub, groups}}
	cs, err := c.Connect(context.Background(), &mcp.StreamableClientTransport{Endpoint: url, HTTPClient: hc, DisableStandaloneSSE: opts == nil}, legacyEra)
	if err != nil {
		t.Fatalf("connect as %s: %v", sub, err)
	}
	t.Cleanup(func() { cs.Close() })
	return cs
}

func listedTools(t *testing.T, cs *mcp.ClientSession) []string {
	t.Helper()
	var names []string
	for tool, err := range cs.Tools(context.Background(), nil) {
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, tool.Name)
	}
	return names
}

// wireError is the JSON-RPC error a go-sdk client got.
func wireError(t *testing.T, err error) *jsonrpc.Error {
	t.Helper()
	var we *jsonrpc.Error
	if !errors.As(err, &we) {
		t.Fatalf("err = %v, want a JSON-RPC error", err)
	}
	return we
}

const codeForbidden, codeRateLimited = -32010, -32029

func policyConfig(t *testing.T) *config.Config {
	t.Helper()
	demo := fixture.StartHTTP(t, exampleserver.Options{Name: "demo"})
	cfg, err := config.Parse([]byte(fmt.Sprintf(`
backends:
  - name: demo
    transport: streamable-http
    url: %s
authorization:
  policies:
    - name: admins-count
      effect: allow
      tools: [demo_counter]
      when: '"admin" in claims.groups'
    - name: echo-under-tmp
      effect: allow
      tools: [demo_echo]
      when: arguments.text.startsWith("/tmp/")
    - name: signed-in
      effect: allow
      tools: [demo_whoami]
      when: subject != ""
`, demo.URL)))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestPolicyHidesToolPerUser: one gateway, two callers. The admin lists
// and calls the counter; the other caller does not see it, and calling it
// anyway gets a clear JSON-RPC error and a log line.
func TestPolicyHidesToolPerUser(t *testing.T) {
	t.Parallel()
	g := startGuarded(t, policyConfig(t))
	alice := connectAs(t, g.URL, "alice", "admin", nil)
	bob := connectAs(t, g.URL, "bob", "dev", nil)

	if got, want := listedTools(t, alice), []string{"demo_echo", "demo_whoami", "demo_counter"}; !sameSet(got, want) {
		t.Errorf("alice lists %v, want %v", got, want)
	}
	if got, want := listedTools(t, bob), []string{"demo_echo", "demo_whoami"}; !sameSet(got, want) {
		t.Errorf("bob lists %v, want %v", got, want)
	}
	if got := callText(t, alice, "demo_counter", nil); got != "1" {
		t.Errorf("alice's counter = %q", got)
	}
	_, err := bob.CallTool(context.Background(), &mcp.CallToolParams{Name: "demo_counter", Arguments: map[string]any{"secret": "s3cr3t-arg"}})
	we := wireError(t, err)
	if we.Code != codeForbidden || !strings.Contains(we.Message, `tool "demo_counter" is not allowed`) {
		t.Errorf("bob's call: %d %q, want %d forbidden", we.Code, we.Message, codeForbidden)
	}
	if strings.Contains(we.Message, "admins-count") || strings.Contains(we.Message, "admin") {
		t.Errorf("the error reveals the policy: %q", we.Message)
	}
	// A tool that does not exist is refused the same way: a caller cannot
	// tell a hidden tool from a missing one.
	_, err = bob.CallTool(context.Background(), &mcp.CallToolParams{Name: "demo_nosuch"})
	if we := wireError(t, err); we.Code != codeForbidden {
		t.Errorf("unknown tool: %d %q", we.Code, we.Message)
	}
	logs := g.Logs.String()
	line := logLine(logs, "call denied by policy")
	for _, want := range []string{"caller.sub=bob", "name=demo_counter", "backend=demo", "rule=default", "method=tools/call"} {
		if !strings.Contains(line, want) {
			t.Errorf("denial log line %q lacks %q", line, want)
		}
	}
	if strings.Contains(logs, "s3cr3t-arg") {
		t.Error("an argument's value reached the log")
	}
	// Anonymous callers have no subject: whoami is hidden from them.
	anon := connect(t, g.URL)
	if got := listedTools(t, anon); slices.Contains(got, "demo_whoami") || slices.Contains(got, "demo_counter") {
		t.Errorf("anonymous lists %v", got)
	}
}

// TestPolicyArguments: a rule that reads the call's arguments allows
// /tmp/ paths only, and arguments that say a key twice, in any case, are
// refused before any rule sees them.
func TestPolicyArguments(t *testing.T) {
	t.Parallel()
	g := startGuarded(t, policyConfig(t))
	bob := connectAs(t, g.URL, "bob", "", nil)
	if got := callText(t, bob, "demo_echo", map[string]any{"text": "/tmp/notes.txt"}); got != "/tmp/notes.txt" {
		t.Errorf("echo = %q", got)
	}
	_, err := bob.CallTool(context.Background(), &mcp.CallToolParams{Name: "demo_echo", Arguments: map[string]any{"text": "/etc/passwd"}})
	if we := wireError(t, err); we.Code != codeForbidden {
		t.Errorf("echo /etc/passwd: %d %q", we.Code, we.Message)
	}
	if logs := g.Logs.String(); strings.Contains(logs, "/etc/passwd") || !strings.Contains(logLine(logs, "call denied by policy"), "name=demo_echo") {
		t.Errorf("denial not logged, or logged with the argument: %s", logLine(logs, "call denied by policy"))
	}
	// Go's encoding/json, in a backend, would take the last key that
	// matches without regard to case: the rule must not see another value.
	sid := initAs(t, g.URL, "bob")
	code, _, body := postAs(t, g.URL, sid, "bob", `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"demo_echo","arguments":{"text":"/tmp/x","TEXT":"/etc/passwd"}}}`)
	if code != http.StatusOK || !strings.Contains(body, `"code":-32602`) {
		t.Errorf("case-variant duplicate argument: %d %s, want -32602", code, body)
	}
}

// TestPolicyCacheFollowsCatalog: decisions are cached per caller and
// catalog; a list_changed that brings a new tool brings a decision for it,
// for each caller its own.
func TestPolicyCacheFollowsCatalog(t *testing.T) {
	t.Parallel()
	alice, bob, changed := startLateToolGateway(t, "")
	before := listedTools(t, alice)
	if slices.Contains(before, "p_late_tool") || !sameSet(before, listedTools(t, bob)) {
		t.Fatalf("before: alice %v, bob %v", before, listedTools(t, bob))
	}
	callText(t, alice, "p_add_tool", nil)
	select {
	case <-changed:
	case <-time.After(20 * time.Second):
		t.Fatal("no tools/list_changed")
	}
	eventually(t, "alice lists the new tool", func() bool { return slices.Contains(listedTools(t, alice), "p_late_tool") })
	if got := callText(t, alice, "p_late_tool", nil); got != "late" {
		t.Errorf("late_tool = %q", got)
	}
	// Bob's session learns of the new tool too, and his decision hides it.
	_, err := bob.CallTool(context.Background(), &mcp.CallToolParams{Name: "p_late_tool"})
	if we := wireError(t, err); we.Code != codeForbidden {
		t.Errorf("bob's late_tool: %d %q", we.Code, we.Message)
	}
	if slices.Contains(listedTools(t, bob), "p_late_tool") {
		t.Error("bob lists p_late_tool")
	}
}

// TestRateLimitAcrossReplicas: three replicas on one Redis share a
// caller's bucket; with a refill of one token an hour, exactly the burst
// gets through, whichever replica serves each call, the two that took the
// session over included.
func TestRateLimitAcrossReplicas(t *testing.T) {
	t.Parallel()
	demo := fixture.StartHTTP(t, exampleserver.Options{Name: "demo"})
	rs := redistest.Start(t)
	cfg := baseConfig(config.Backend{Name: "demo", Transport: config.TransportStreamableHTTP, URL: demo.URL})
	cfg.Store.Type, cfg.Store.Redis.Address = config.StoreRedis, rs.Addr
	cfg.RateLimits.Calls = []config.CallRateLimit{{Tools: []string{"demo_*"}, Rate: "1/h", Burst: 5}}
	var reps []*replica
	var urls []string
	for range 3 {
		r := startGuarded(t, cfg)
		reps, urls = append(reps, r), append(urls, r.URL)
	}
	// One session, created on the first replica: the others take it over,
	// and the sessions they rebuild are decorated alike.
	sid := initAs(t, urls[0], "carol")
	allowed, limited := 0, 0
	for i := range 15 {
		code, _, body := postAs(t, urls[i%3], sid, "carol", `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"demo_whoami","arguments":{}}}`)
		if rateLimited(t, i, code, body) {
			limited++
		} else {
			allowed++
		}
	}
	if allowed != 5 || limited != 10 {
		t.Errorf("allowed %d, limited %d across 3 replicas; want the burst of 5 allowed", allowed, limited)
	}
	for i, r := range reps[1:] {
		if !strings.Contains(r.Logs.String(), "took over a session") {
			t.Errorf("replica %d did not take the session over", i+1)
		}
	}
	// Another caller has a bucket of its own.
	if code, _, body := postAs(t, urls[0], initAs(t, urls[0], "dave"), "dave", `{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"demo_whoami","arguments":{}}}`); code != http.StatusOK || strings.Contains(body, `"error"`) {
		t.Errorf("dave: %d %s", code, body)
	}
}

// TestInitializeRateLimit: initialize over the caller's rate gets 429
// with Retry-After; other callers are not affected.
func TestInitializeRateLimit(t *testing.T) {
	t.Parallel()
	demo := fixture.StartHTTP(t, exampleserver.Options{Name: "demo"})
	cfg := baseConfig(config.Backend{Name: "demo", Transport: config.TransportStreamableHTTP, URL: demo.URL})
	cfg.RateLimits.Initialize = &config.RateLimit{Rate: "1/h", Burst: 2}
	g := startGuarded(t, cfg)
	initAs(t, g.URL, "erin")
	initAs(t, g.URL, "erin")
	code, h, body := postAs(t, g.URL, "", "erin", initBody)
	if code != http.StatusTooManyRequests {
		t.Fatalf("third initialize: %d %s, want 429", code, body)
	}
	if s, err := strconv.Atoi(h.Get("Retry-After")); err != nil || s < 1 {
		t.Errorf("Retry-After = %q", h.Get("Retry-After"))
	}
	if h.Get("Mcp-Session-Id") != "" {
		t.Error("a refused initialize got a session")
	}
	initAs(t, g.URL, "frank")
	if m := getBody(t, strings.TrimSuffix(g.URL, "/mcp")+"/metrics"); !strings.Contains(m, `vmcp_rate_limited_total{limit="initialize"} 1`) {
		t.Error("/metrics does not count the refused initialize")
	}
}

// postAs sends one JSON-RPC body as the caller sub.
func postAs(t *testing.T, url, sid, sub, body string) (int, http.Header, string) {
	t.Helper()
	return rawPostWith(t, &http.Client{Transport: headerTransport{sub: sub}}, url, sid, body)
}

func initAs(t *testing.T, url, sub string) string {
	t.Helper()
	return rawInitWith(t, &http.Client{Transport: headerTransport{sub: sub}}, url)
}

// lastJSON returns a body's JSON-RPC message, from plain JSON or SSE.
func lastJSON(body string) string {
	if strings.HasPrefix(strings.TrimSpace(body), "{") {
		return body
	}
	return string(lastSSEMessage([]byte(body)))
}

func logLine(logs, msg string) string {
	for _, l := range strings.Split(logs, "\n") {
		if strings.Contains(l, msg) {
			return l
		}
	}
	return ""
}

func sameSet(a, b []string) bool {
	a, b = slices.Sorted(slices.Values(a)), slices.Sorted(slices.Values(b))
	return slices.Equal(a, b)
}
