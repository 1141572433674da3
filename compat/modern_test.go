package compat

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/vmcp/vmcp/internal/exampleserver"
	"github.com/vmcp/vmcp/internal/fixture"
)

// The TypeScript SDK v2 client, pinned to 2026-07-28 and in auto mode,
// speaks the modern era to vmcp: it lists the tools and calls a stateful
// tool, whose state (a counter in the backend session) carries over
// between calls, and between the two clients of one identity (anonymous)
// that the warm pool serves from one backend session.
func TestModernTSClientV2(t *testing.T) {
	t.Parallel()
	requireNPM(t)
	dir := t.TempDir()
	bin := buildVMCP(t, dir)
	web := fixture.StartHTTP(t, exampleserver.Options{Name: "web"})
	cfg := filepath.Join(dir, "vmcp.yaml")
	writeFile(t, cfg, fmt.Sprintf("backends:\n  - name: web\n    transport: streamable-http\n    url: %s\n", q(web.URL)))
	g := startGateway(t, bin, cfg)
	next := 1
	for _, mode := range []string{"pin", "auto"} {
		t.Run(mode, func(t *testing.T) {
			out, err := exec.CommandContext(t.Context(), "node", "modern.mjs", g.mcp, mode, "web_counter", "3").Output()
			var res struct {
				ProtocolVersion string   `json:"protocolVersion"`
				Tools           []string `json:"tools"`
				Texts           []string `json:"texts"`
				Error           string   `json:"error"`
			}
			if jerr := json.Unmarshal(out, &res); jerr != nil || res.Error != "" {
				t.Fatalf("modern.mjs %s: %v %s %s", mode, err, res.Error, out)
			}
			if res.ProtocolVersion != "2026-07-28" {
				t.Errorf("negotiated %q, want 2026-07-28", res.ProtocolVersion)
			}
			if !slices.Contains(res.Tools, "web_counter") {
				t.Fatalf("tools = %v, want web_counter", res.Tools)
			}
			for _, text := range res.Texts {
				if !strings.Contains(text, fmt.Sprint(next)) {
					t.Fatalf("counter said %q, want %d: the backend state did not carry over", text, next)
				}
				next++
			}
		})
	}
	// One warm session served both clients' ten requests, each sent once
	// the one before it was answered; the backend's other initialize is
	// vmcp's startup probe.
	code, body, err := g.get("/status")
	var st struct {
		Gateway struct {
			WarmPool struct {
				Misses int `json:"misses"`
				Hits   int `json:"hits"`
			} `json:"warmPool"`
		} `json:"gateway"`
	}
	if err != nil || code != http.StatusOK || json.Unmarshal(body, &st) != nil {
		t.Fatalf("GET /status = %d %s %v", code, body, err)
	}
	if wp := st.Gateway.WarmPool; wp.Misses != 1 || wp.Hits != 9 {
		t.Errorf("warm pool: %d sessions built and %d reused for 10 requests, want 1 and 9", wp.Misses, wp.Hits)
	}
	if n := web.Stats.Initializes(); n != 2 {
		t.Errorf("backend initializes = %d for 6 calls, want 2 (the startup probe and one warm session, none per request)", n)
	}
}

// The TypeScript SDK v2 client's listChanged subscription (one
// subscriptions/listen stream, opened at connect) outlives a config
// reload that adds a backend: the client is told the tools changed, and
// its refreshed list has the added backend's tools. The client would not
// open the stream again had vmcp ended it.
func TestModernTSClientV2ListenAcrossReload(t *testing.T) {
	t.Parallel()
	requireNPM(t)
	dir := t.TempDir()
	bin := buildVMCP(t, dir)
	web := fixture.StartHTTP(t, exampleserver.Options{Name: "web"})
	more := fixture.StartHTTP(t, exampleserver.Options{Name: "more"})
	backend := func(name, url string) string {
		return fmt.Sprintf("  - name: %s\n    transport: streamable-http\n    url: %s\n", name, q(url))
	}
	cfg := filepath.Join(dir, "vmcp.yaml")
	writeFile(t, cfg, "backends:\n"+backend("web", web.URL))
	g := startGateway(t, bin, cfg)
	node := startProc(t, "listen.mjs", nil, nil, "node", "listen.mjs", g.mcp, "more_counter")
	type line struct {
		Ready     []string `json:"ready"`
		Listening bool     `json:"listening"`
		Changed   []string `json:"changed"`
		Closed    *string  `json:"closed"`
		Error     string   `json:"error"`
	}
	lines := func() []line {
		var out []line
		for _, s := range strings.Split(node.log.String(), "\n") {
			var l line
			if json.Unmarshal([]byte(s), &l) == nil {
				out = append(out, l)
			}
		}
		return out
	}
	fixture.Eventually(t, "listen.mjs to connect", func() bool {
		if node.exited() && len(lines()) == 0 {
			t.Fatalf("listen.mjs exited: %s", node.log.String())
		}
		return len(lines()) > 0
	})
	if first := lines()[0]; first.Error != "" || !first.Listening || !slices.Contains(first.Ready, "web_counter") {
		t.Fatalf("listen.mjs: %s", node.log.String())
	}

	writeFile(t, cfg, "backends:\n"+backend("web", web.URL)+backend("more", more.URL))
	if err := g.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	fixture.Eventually(t, "listen.mjs to see more_counter", node.exited)
	// Up to the list with more's tools (the client closes after it).
	var changed []string
	for _, l := range lines()[1:] {
		if l.Error != "" {
			t.Fatalf("listen.mjs: %s", l.Error)
		}
		if l.Closed != nil {
			t.Fatalf("the subscription ended (%s) before the tools changed: %s", *l.Closed, node.log.String())
		}
		if changed = l.Changed; slices.Contains(changed, "more_counter") {
			break
		}
	}
	if !slices.Contains(changed, "more_counter") || !slices.Contains(changed, "web_counter") {
		t.Errorf("tools after the reload = %v, want web's and more's; output:\n%s", changed, node.log.String())
	}
}
