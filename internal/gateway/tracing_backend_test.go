package gateway_test

import (
	"context"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vmcp/vmcp/internal/config"
	"github.com/vmcp/vmcp/internal/exampleserver"
	"github.com/vmcp/vmcp/internal/fixture"
	"github.com/vmcp/vmcp/internal/gateway"
	"github.com/vmcp/vmcp/internal/identity"
	"github.com/vmcp/vmcp/internal/oidctest"
)

// A stdio backend has no headers: vmcp sends the trace context in the
// call's params._meta (traceparent, as SEP-414 names it). A real go-sdk
// server reads it there and exports a span of its own to the same Jaeger;
// the trace read back shows that span as a child of vmcp's call span.
func TestJaegerStdioBackendJoinsTheTrace(t *testing.T) {
	j := startJaeger(t)
	bin := fixture.Binary(t, "./internal/gateway/testdata/traceserver")
	cfg := baseConfig(config.Backend{Name: "local", Transport: config.TransportStdio, Command: []string{bin},
		Env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": j.otlp}})
	cfg.Telemetry.Tracing = j.config()
	gw := startGateway(t, cfg, gateway.Options{})

	initTrace, callTrace := newTraceID(), newTraceID()
	sid := rawInitWith(t, tracedClient(initTrace, ""), gw.URL)
	code, _, body := rawPostWith(t, tracedClient(callTrace, ""), gw.URL, sid,
		`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"local_traced","arguments":{},"_meta":{"progressToken":"p1"}}}`)
	if code != http.StatusOK {
		t.Fatalf("tools/call: %d %s", code, body)
	}
	shutdown(t, gw)

	spans := j.spans(t, callTrace, "tools/call", "traceserver tools/call")
	call := find(spans, "tools/call", "vmcp.backend", "local")
	served := find(spans, "traceserver tools/call")
	if call == nil || served == nil {
		t.Fatalf("trace %s has spans %v; want vmcp's tools/call and the backend's own", callTrace, names(spans))
	}
	if call.Service != "vmcp" || served.Service != "traceserver" {
		t.Errorf("services: call %q, backend %q", call.Service, served.Service)
	}
	if served.parent() != call.SpanID {
		t.Errorf("the backend's span has parent %q, want vmcp's call span %s", served.parent(), call.SpanID)
	}
	if want := "00-" + callTrace + "-" + call.SpanID + "-01"; !strings.Contains(body, want) {
		t.Errorf("the backend saw params._meta.traceparent %s, want %s", body, want)
	}
}

// A token exchange and a backend re-initialization each show in Jaeger as
// a span in the trace of the request that caused it, with its backend and
// kind; no span of those traces holds a token, a client secret or a
// session ID (vmcp's or a backend's).
func TestJaegerTracesTokenExchangeAndReinitialization(t *testing.T) {
	j := startJaeger(t)
	op := oidctest.Start(t, oidctest.Options{TokenTTL: time.Hour})
	secretEnv, secret := uniqueEnv(), "exchange-secret-"+uniqueEnv()
	os.Setenv(secretEnv, secret)
	t.Cleanup(func() { os.Unsetenv(secretEnv) })
	op.AddClient(oidctest.Client{ID: "vmcp", Secret: secret})
	var guard *oidctest.Guard
	files := fixture.StartHTTPBehind(t, exampleserver.Options{Name: "files"}, func(h http.Handler) http.Handler {
		guard = op.Guard("files", h)
		return guard
	})
	web := fixture.StartHTTP(t, exampleserver.Options{Name: "web"})
	cfg := oidcConfig(op, nil,
		config.Backend{Name: "files", Transport: config.TransportStreamableHTTP, URL: files.URL,
			OutgoingAuth: &config.OutgoingAuth{Type: config.OutgoingTokenExchange, TokenURL: op.TokenURL(), ClientID: "vmcp",
				ClientSecretEnv: secretEnv, Audience: "files"}},
		config.Backend{Name: "web", Transport: config.TransportStreamableHTTP, URL: web.URL})
	for i := range cfg.Backends {
		cfg.Backends[i].Timeout = config.Duration(30 * time.Second)
	}
	cfg.Telemetry.Tracing = j.config()
	gw := startGateway(t, cfg, gateway.Options{})

	tok := op.Token(t, "alice", []string{testResource}, nil, time.Hour)
	initTrace, callTrace, reinitTrace, deleteTrace := newTraceID(), newTraceID(), newTraceID(), newTraceID()
	startup := len(gw.Logs.String())
	sid := rawInitWith(t, tracedClient(initTrace, tok), gw.URL)
	post := func(traceID, body string) {
		t.Helper()
		if code, _, resp := rawPostWith(t, tracedClient(traceID, tok), gw.URL, sid, body); code != http.StatusOK || strings.Contains(resp, `"error"`) {
			t.Fatalf("%s: %d %s", body, code, resp)
		}
	}
	post(callTrace, `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"files_echo","arguments":{"text":"x"}}}`)
	post(callTrace, `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"web_counter","arguments":{}}}`)
	planted := []string{tok, secret, sid}
	backendSessions := func() {
		s, err := gw.Manager().GetFor(context.Background(), sid, (&identity.Identity{Issuer: op.Issuer(), Subject: "alice"}).Key())
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range s.BackendSessions() {
			planted = append(planted, b.SessionID)
		}
	}
	backendSessions()
	web.Handler.Forget()
	post(reinitTrace, `{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"web_counter","arguments":{}}}`)
	backendSessions()
	for _, a := range guard.Accepted() {
		planted = append(planted, a.Token)
	}
	if n := len(guard.Accepted()); n == 0 {
		t.Fatal("no exchanged token reached the backend")
	}
	del, _ := http.NewRequest(http.MethodDelete, gw.URL, nil)
	del.Header.Set("Mcp-Session-Id", sid)
	if resp, err := tracedClient(deleteTrace, tok).Do(del); err != nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("DELETE: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	requests := gw.Logs.String()[startup:]
	shutdown(t, gw)

	// Every line the requests logged, at debug level, carries the trace of
	// its request: the session manager's, the session's and the backend
	// connector's.
	lines := strings.Split(strings.TrimSpace(requests), "\n")
	for _, want := range []struct{ line, trace string }{
		{`msg="backend is not a 2026-07-28 server; using initialize" backend=files`, initTrace},
		{`msg="session started" session=1 by=initialize backends=2`, initTrace},
		{`msg="backend call" session=1 backend=files method=tools/call name=echo`, callTrace},
		{`msg="backend session re-initialized; the state it held is lost" backend=web`, reinitTrace},
		{`msg="session ended" session=1 reason=DELETE`, deleteTrace},
	} {
		if !slices.ContainsFunc(lines, func(l string) bool {
			return strings.Contains(l, want.line) && strings.Contains(l, "trace_id="+want.trace)
		}) {
			t.Errorf("the requests' log lacks %s with trace_id=%s", want.line, want.trace)
		}
	}
	for _, line := range lines {
		// The backend's standalone stream lives with its backend session,
		// not with a request.
		if !strings.Contains(line, "trace_id=") && !strings.Contains(line, `msg="standalone stream`) {
			t.Errorf("a request's log line without its trace: %s", line)
		}
	}
	if t.Failed() {
		t.Logf("log of the requests:\n%s", requests)
	}

	init, initJSON := j.trace(t, initTrace, "initialize", "token.tokenExchange")
	backendInit := find(init, "backend.initialize", "vmcp.backend", "files")
	exchange := find(init, "token.tokenExchange")
	if backendInit == nil || exchange == nil {
		t.Fatalf("initialize trace has spans %v; want files' backend.initialize and token.tokenExchange", names(init))
	}
	if exchange.parent() != backendInit.SpanID || exchange.tag("vmcp.backend") != "files" ||
		exchange.tag("vmcp.grant") != "tokenExchange" || exchange.tag("vmcp.refresh") != "false" {
		t.Errorf("token exchange span %+v; want a child of files' backend.initialize %s", *exchange, backendInit.SpanID)
	}

	reinit, reinitJSON := j.trace(t, reinitTrace, "tools/call", "backend.reinitialize")
	call := find(reinit, "tools/call", "vmcp.backend", "web")
	renew := find(reinit, "backend.reinitialize")
	if call == nil || renew == nil {
		t.Fatalf("re-initialization trace has spans %v; want web's tools/call and backend.reinitialize", names(reinit))
	}
	if renew.parent() != call.SpanID || renew.tag("vmcp.backend") != "web" || renew.tag("vmcp.cause") != "session_lost" {
		t.Errorf("re-initialization span %+v; want a child of web's tools/call %s", *renew, call.SpanID)
	}

	_, callJSON := j.trace(t, callTrace, "tools/call")
	_, deleteJSON := j.trace(t, deleteTrace, "DELETE /mcp")
	for _, traceJSON := range []string{string(initJSON), string(callJSON), string(reinitJSON), string(deleteJSON)} {
		for _, p := range planted {
			if p != "" && strings.Contains(traceJSON, p) {
				t.Errorf("a trace holds a secret (%.12s...)", p)
			}
		}
	}
}

// shutdown stops gw, which exports the spans it still holds.
func shutdown(t *testing.T, gw *running) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := gw.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
}
