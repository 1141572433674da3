package gateway_test

import (
	"strings"
	"testing"

	"github.com/vmcp/vmcp/internal/config"
	"github.com/vmcp/vmcp/internal/exampleserver"
	"github.com/vmcp/vmcp/internal/fixture"
	"github.com/vmcp/vmcp/internal/gateway"
)

// At debug level the log tells a session's start and end, with the reason,
// and each call's backend, tool, duration and outcome; never the
// arguments, the result, or a session ID.
func TestDebugLogShowsSessionsAndCalls(t *testing.T) {
	web := fixture.StartHTTP(t, exampleserver.Options{Name: "web"})
	cfg := baseConfig(config.Backend{Name: "web", Transport: config.TransportStreamableHTTP, URL: web.URL})
	gw := startGateway(t, cfg, gateway.Options{})
	sid := rawInit(t, gw.URL)
	rawPost(t, gw.URL, sid, `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"web_echo","arguments":{"text":"argument-text-42"}}}`)
	rawPost(t, gw.URL, sid, `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"web_fail","arguments":{"message":"argument-text-43"}}}`)
	backendIDs := backendSessionIDs(t, gw, sid)
	rawDelete(t, gw.URL, sid)

	logs := gw.Logs.String()
	line := func(msg string) string {
		msg, tool, _ := strings.Cut(msg, " of ")
		for _, l := range strings.Split(logs, "\n") {
			if strings.Contains(l, "msg=\""+msg+"\"") && strings.Contains(l, tool) {
				return l
			}
		}
		t.Fatalf("no %q record in:\n%s", msg, logs)
		return ""
	}
	for msg, wants := range map[string][]string{
		"session started":           {"level=DEBUG", "session=", "by=initialize", "backends=1"},
		"backend call of name=echo": {"level=DEBUG", "backend=web", "method=tools/call", "took=", "outcome=ok"},
		// isError is a JSON-RPC success, but not what a debugging user calls ok.
		"backend call of name=fail": {"level=DEBUG", "backend=web", "method=tools/call", "took=", `outcome="tool error"`},
		"session ended":             {"level=DEBUG", "reason=DELETE", "age="},
	} {
		l := line(msg)
		for _, w := range wants {
			if !strings.Contains(l, w) {
				t.Errorf("%q record lacks %q: %s", msg, w, l)
			}
		}
	}
	for _, secret := range append(backendIDs, sid, "argument-text-42", "argument-text-43") {
		if strings.Contains(logs, secret) {
			t.Errorf("the log shows a session ID or an argument (%d bytes)", len(secret))
		}
	}
}
