package gateway_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/vmcp/vmcp/internal/config"
	"github.com/vmcp/vmcp/internal/exampleserver"
	"github.com/vmcp/vmcp/internal/fixture"
	"github.com/vmcp/vmcp/internal/gateway"
)

// auditLine is what the test compares of each audit event.
type auditLine struct {
	Event, Session, Client, Backend, Method, Tool, Prompt, Resource, Decision, Outcome, Reason string
	Backends                                                                                   []string
	Arguments                                                                                  json.RawMessage
}

func readAudit(t *testing.T, path string) ([]auditLine, string) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []auditLine
	sc := bufio.NewScanner(strings.NewReader(string(raw)))
	for sc.Scan() {
		var l auditLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("audit line %q: %v", sc.Text(), err)
		}
		out = append(out, l)
	}
	return out, string(raw)
}

// A session with calls, a call the policy denies, one to an unknown tool
// and a DELETE leaves
// exactly its events in the audit trail, in order, naming the session by
// a hash and holding none of the secrets that passed through.
func TestAuditTrailOfASession(t *testing.T) {
	const apiKey, planted = "audit-backend-api-key", "planted-argument-secret"
	web := fixture.StartHTTP(t, exampleserver.Options{Name: "web"})
	files := fixture.StartHTTP(t, exampleserver.Options{Name: "files"})
	cfg := baseConfig(
		config.Backend{Name: "web", Transport: config.TransportStreamableHTTP, URL: web.URL, Headers: map[string]string{"X-Api-Key": apiKey}},
		config.Backend{Name: "files", Transport: config.TransportStreamableHTTP, URL: files.URL})
	cfg.Authorization.Default = config.EffectAllow
	cfg.Authorization.Policies = []config.Policy{{Name: "no-counting", Effect: config.EffectDeny, Tools: []string{"files_counter"}}}
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	cfg.Audit = &config.Audit{Path: path}
	gw := startGateway(t, cfg, gateway.Options{})

	sid := rawInit(t, gw.URL)
	backendIDs := backendSessionIDs(t, gw, sid)
	for _, body := range []string{
		`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"web_echo","arguments":{"text":"` + planted + `"}}}`,
		`{"jsonrpc":"2.0","id":3,"method":"prompts/get","params":{"name":"web_greet","arguments":{"name":"Ada"}}}`,
		`{"jsonrpc":"2.0","id":4,"method":"resources/read","params":{"uri":"example://web/info"}}`,
		`{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"files_counter","arguments":{}}}`,
		`{"jsonrpc":"2.0","id":6,"method":"tools/call","params":{"name":"web_nonesuch","arguments":{}}}`,
	} {
		if code, _, resp := rawPost(t, gw.URL, sid, body); code != http.StatusOK {
			t.Fatalf("%s: %d %s", body, code, resp)
		}
	}
	if code := rawDelete(t, gw.URL, sid); code != http.StatusOK && code != http.StatusNoContent {
		t.Fatalf("DELETE: %d", code)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := gw.Shutdown(ctx); err != nil { // flushes the trail
		t.Fatal(err)
	}

	got, raw := readAudit(t, path)
	if len(got) == 0 {
		t.Fatal("empty audit trail")
	}
	name := got[1].Session
	if name == "" || strings.Contains(sid, name) {
		t.Fatalf("session named %q", name)
	}
	const client = "127.0.0.1"
	want := []auditLine{
		{Event: "audit_started"},
		{Event: "backend_client_initialized", Session: name, Client: client, Backend: "web", Outcome: "ok"},
		{Event: "backend_client_initialized", Session: name, Client: client, Backend: "files", Outcome: "ok"},
		{Event: "session_created", Session: name, Client: client, Backends: []string{"web", "files"}},
		{Event: "tool_call", Session: name, Client: client, Backend: "web", Method: "tools/call", Tool: "web_echo", Decision: "allow", Outcome: "ok"},
		{Event: "prompt_get", Session: name, Client: client, Backend: "web", Method: "prompts/get", Prompt: "web_greet", Decision: "allow", Outcome: "ok"},
		{Event: "resource_read", Session: name, Client: client, Backend: "web", Method: "resources/read", Resource: "example://web/info", Decision: "allow", Outcome: "ok"},
		{Event: "policy_denied", Session: name, Client: client, Backend: "files", Method: "tools/call", Tool: "files_counter", Decision: "deny", Outcome: "denied"},
		{Event: "tool_call", Session: name, Client: client, Method: "tools/call", Tool: "web_nonesuch", Decision: "allow", Outcome: "invalid_params"},
		{Event: "session_closed", Session: name, Client: client, Reason: "delete"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("audit trail:\n%s\nwant events:\n%+v", raw, want)
	}
	for _, secret := range append(backendIDs, sid, apiKey, planted) {
		if strings.Contains(raw, secret) {
			t.Errorf("a secret (%d bytes) is in the audit trail", len(secret))
		}
	}
}

// An audit path vmcp cannot write is an error before it listens.
func TestAuditPathUnwritableFailsStart(t *testing.T) {
	web := fixture.StartHTTP(t, exampleserver.Options{Name: "web"})
	cfg := baseConfig(config.Backend{Name: "web", Transport: config.TransportStreamableHTTP, URL: web.URL})
	cfg.Audit = &config.Audit{Path: filepath.Join(t.TempDir(), "missing", "audit.jsonl")}
	_, err := gateway.New(cfg, gateway.Options{})
	if err == nil || !strings.Contains(err.Error(), "audit.path") {
		t.Fatalf("New = %v, want an audit.path error", err)
	}
}

// With audit.arguments on, a call's arguments are in its event, with
// every configured secret value redacted.
func TestAuditArgumentsAreRedacted(t *testing.T) {
	const apiKey = "audit-arguments-api-key"
	web := fixture.StartHTTP(t, exampleserver.Options{Name: "web"})
	cfg := baseConfig(config.Backend{Name: "web", Transport: config.TransportStreamableHTTP, URL: web.URL, Headers: map[string]string{"X-Api-Key": apiKey}})
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	cfg.Audit = &config.Audit{Path: path, Arguments: true}
	gw := startGateway(t, cfg, gateway.Options{})
	sid := rawInit(t, gw.URL)
	rawPost(t, gw.URL, sid, `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"web_echo","arguments":{"text":"hello `+apiKey+`"}}}`)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := gw.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	lines, raw := readAudit(t, path)
	var args string
	for _, l := range lines {
		if l.Event == "tool_call" {
			args = string(l.Arguments)
		}
	}
	if !strings.Contains(args, "hello") || strings.Contains(raw, apiKey) {
		t.Errorf("tool_call arguments %s; the trail:\n%s", args, raw)
	}
}
