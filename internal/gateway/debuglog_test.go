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
	backendIDs := backendSessionIDs(t, gw, sid)
	rawDelete(t, gw.URL, sid)

	logs := gw.Logs.String()
	line := func(msg string) string {
		for _, l := range strings.Split(logs, "\n") {
			if strings.Contains(l, "msg=\""+msg+"\"") {
				return l
			}
		}
		t.Fatalf("no %q record in:\n%s", msg, logs)
		return ""
	}
	for msg, wants := range map[string][]string{
		"session started": {"level=DEBUG", "session=", "by=initialize", "backends=1"},
		"backend call":    {"level=DEBUG", "backend=web", "method=tools/call", "name=echo", "took=", "outcome=ok"},
		"session ended":   {"level=DEBUG", "reason=DELETE", "age="},
	} {
		l := line(msg)
		for _, w := range wants {
			if !strings.Contains(l, w) {
				t.Errorf("%q record lacks %q: %s", msg, w, l)
			}
		}
	}
	for _, secret := range append(backendIDs, sid, "argument-text-42") {
		if strings.Contains(logs, secret) {
			t.Errorf("the log shows a session ID or an argument (%d bytes)", len(secret))
		}
	}
}
