package gateway_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/vmcp/vmcp/internal/exampleserver"
	"github.com/vmcp/vmcp/internal/fixture"
	"github.com/vmcp/vmcp/internal/redistest"
)

// TestReloadKeepsRateLimits: a reload is no way to reset a rate limit,
// whether the buckets are in memory or in Redis. A caller who used up
// web_echo's limit and their initialize limit is still refused after
// reloads that change authorization, or add another rate limit. A reload
// that changes a limit starts its buckets afresh, under the new limit, and
// leaves the other limits' as they were.
func TestReloadKeepsRateLimits(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		store func(t *testing.T) string // the config's store block
	}{
		{"memory", func(*testing.T) string { return "" }},
		{"redis", func(t *testing.T) string {
			return "store: {type: redis, redis: {address: " + redistest.Start(t).Addr + "}}\n"
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			testReloadKeepsRateLimits(t, tc.name, tc.store(t))
		})
	}
}

func testReloadKeepsRateLimits(t *testing.T, storeType, store string) {
	web := fixture.StartHTTP(t, exampleserver.Options{Name: "web"})
	backends := store + "backends:\n" + httpBackendYAML("web", web.URL)
	limitsWith := func(initBurst, echoBurst, more string) string {
		return "rateLimits:\n  initialize: {rate: 1/h, burst: " + initBurst + "}\n  calls:\n    - {tools: [web_echo], rate: 1/h, burst: " + echoBurst + "}\n" + more
	}
	limits := func(echoBurst, more string) string { return limitsWith("2", echoBurst, more) }
	f := newConfigFile(t, backends+limits("1", ""))
	gw := startFromFile(t, f)
	cs := connectListening(t, gw.URL) // the first initialize token
	rawInit(t, gw.URL)                // the second
	echo := func() error {
		_, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "web_echo", Arguments: map[string]any{"text": "hi"}})
		return err
	}
	if err := echo(); err != nil {
		t.Fatalf("the first web_echo: %v", err)
	}
	limited := func(when string) {
		t.Helper()
		if err := echo(); err == nil {
			t.Errorf("web_echo %s: answered, want rate limited", when)
		} else if we := wireError(t, err); we.Code != codeRateLimited {
			t.Errorf("web_echo %s: %d %q, want rate limited", when, we.Code, we.Message)
		}
		if code, _, body := rawPost(t, gw.URL, "", initBody); code != http.StatusTooManyRequests {
			t.Errorf("initialize %s: %d %s, want 429", when, code, body)
		}
	}
	limited("over its limit")

	for _, step := range []struct{ name, yaml string }{
		{"after a reload that adds a policy", backends + limits("1", "") +
			"authorization:\n  default: allow\n  policies:\n    - {effect: deny, tools: [web_counter]}\n"},
		{"after a reload that adds another limit", backends + limits("1", "    - {tools: [web_counter], rate: 1/h, burst: 1}\n")},
	} {
		f.write(step.yaml)
		reload(t, gw, f)
		limited(step.name)
	}

	// A changed limit is another limit: its bucket starts full.
	f.write(backends + limits("2", ""))
	reload(t, gw, f)
	for i := range 2 {
		if err := echo(); err != nil {
			t.Fatalf("web_echo %d under the new burst of 2: %v", i+1, err)
		}
	}
	if err := echo(); err == nil {
		t.Error("web_echo past the new burst of 2 answered")
	}
	if code, _, body := rawPost(t, gw.URL, "", initBody); code != http.StatusTooManyRequests {
		t.Errorf("initialize after a reload that changed another limit: %d %s, want 429", code, body)
	}
	f.write(backends + limitsWith("3", "2", ""))
	reload(t, gw, f)
	rawInit(t, gw.URL) // under the new initialize limit

	var st struct{ Gateway struct{ Store string } }
	getJSON(t, gw.Base+"/status", &st)
	if st.Gateway.Store != storeType {
		t.Errorf("the buckets were in the %q store, want %q", st.Gateway.Store, storeType)
	}
}
